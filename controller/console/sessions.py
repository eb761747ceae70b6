"""Console sessions: sealed cookies that name who signed in, expire by themselves, and carry their CSRF secret.

A session is a token sealed (Fernet: AES-CBC + HMAC-SHA256) with a key derived from the master key
for this one purpose, so every replica that shares the master key reads every other's sessions and
nothing is stored server-side. It holds the role (tenant or operator), the account and AccessKey ID
for a tenant, a random session id, when it was issued and when it was last used — never a secret.
It ends after :data:`IDLE_S` without a request or :data:`MAX_S` after sign-in, whichever comes first.
The CSRF token of a session is an HMAC of its id: forms and ``fetch`` calls send it back, and a
request that changes anything without it is refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, replace

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from controller.clock import US_PER_S, Clock

IDLE_S = 30 * 60
MAX_S = 8 * 3600
REFRESH_AFTER_S = 60  # a used session's cookie is written again at most this often (its idle clock restarts)
PRE_SESSION_S = 15 * 60  # how long a sign-in form stays valid
TENANT, OPERATOR, SIGN_IN = "tenant", "operator", "sign-in"


@dataclass(frozen=True)
class Session:
    role: str
    session_id: str
    issued_us: int
    seen_us: int
    account_id: str = ""
    access_key_id: str = ""


class SessionSeal:
    """Seals and opens session tokens; derives their CSRF tokens."""

    def __init__(self, master_key: str, clock: Clock) -> None:
        fernet_key, self._csrf_key = _derived_keys(master_key)
        self._fernet = Fernet(fernet_key)
        self._clock = clock

    def new(self, role: str, *, account_id: str = "", access_key_id: str = "") -> Session:
        now = self._clock.now_us()
        return Session(role, secrets.token_urlsafe(18), now, now, account_id, access_key_id)

    def seal(self, session: Session) -> str:
        fields = {"r": session.role, "s": session.session_id, "i": session.issued_us, "u": session.seen_us,
                  "a": session.account_id, "k": session.access_key_id}
        return self._fernet.encrypt(json.dumps(fields, separators=(",", ":")).encode()).decode()

    def open(self, token: str | None, role: str) -> Session | None:
        """The live session of ``role`` in ``token``; None when absent, forged, of another role or expired."""
        if not token or len(token) > 4096:
            return None
        try:
            fields = json.loads(self._fernet.decrypt(token.encode()))
            session = Session(fields["r"], fields["s"], int(fields["i"]), int(fields["u"]), fields["a"], fields["k"])
        except (InvalidToken, ValueError, KeyError, TypeError):
            return None
        if session.role != role or self.expired(session):
            return None
        return session

    def expired(self, session: Session) -> bool:
        now = self._clock.now_us()
        limit_s = PRE_SESSION_S if session.role == SIGN_IN else MAX_S
        return now - session.seen_us > IDLE_S * US_PER_S or now - session.issued_us > limit_s * US_PER_S

    def touched(self, session: Session) -> Session | None:
        """The session with its idle clock restarted, when it is time to write its cookie again."""
        now = self._clock.now_us()
        return replace(session, seen_us=now) if now - session.seen_us > REFRESH_AFTER_S * US_PER_S else None

    def csrf_token(self, session: Session) -> str:
        digest = hmac.new(self._csrf_key, f"{session.role}:{session.session_id}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def csrf_matches(self, session: Session, sent: str | None) -> bool:
        return bool(sent) and hmac.compare_digest(self.csrf_token(session).encode(), sent.encode("utf-8", "replace"))

    def cookie_max_age_s(self, session: Session) -> int:
        """Seconds the browser keeps the cookie: until the session's absolute end."""
        limit_s = PRE_SESSION_S if session.role == SIGN_IN else MAX_S
        return max(0, limit_s - (self._clock.now_us() - session.issued_us) // US_PER_S)


def _derived_keys(master_key: str) -> tuple[bytes, bytes]:
    """Two keys of their own (sealing, CSRF) from the master key: session tokens never share a key with stored secrets."""
    material = HKDF(algorithm=hashes.SHA256(), length=64, salt=None, info=b"eais console sessions v1").derive(
        master_key.encode())
    return base64.urlsafe_b64encode(material[:32]), material[32:]
