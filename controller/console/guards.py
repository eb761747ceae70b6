"""Who is using the console: signing in, the session of a request, and the CSRF check of every change.

A tenant signs in with an AccessKey ID and its secret, checked against the same key store as
signed API calls (same codes: ``InvalidAccessKeyId.NotFound``, ``InvalidAccessKeyId.Inactive``,
``SignatureDoesNotMatch`` for a wrong secret). An operator signs in with the admin token
(``InvalidAdminToken``). The secret and the token are compared in constant time and never
stored: the session holds the AccessKey ID and account only, and every request checks that the
key is still active. A request that changes anything must come from the console's own origin
and carry the session's CSRF token, else ``InvalidParameter.CsrfToken``.
"""

from __future__ import annotations

import hmac

from fastapi import Request

from controller.accounts import KeyRing
from controller.console.sessions import OPERATOR, SIGN_IN, TENANT, Session, SessionSeal
from controller.console.web import BASE, clear_cookie, set_cookie
from controller.context import ControllerContext
from controller.errors import AccessKeyInactive, AccessKeyNotFound, AdminTokenRejected, InvalidParameter, SignatureMismatch
from controller.key_store import admin_token, master_key

COOKIES = {TENANT: ("eais_console", BASE), OPERATOR: ("eais_operator", f"{BASE}/operator"),
           SIGN_IN: ("eais_sign_in", BASE)}
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"


class SignInRequired(Exception):
    """No live session of ``role`` on this request: pages send the browser to sign in, the console API answers IncompleteSignature."""

    def __init__(self, role: str, reason: str) -> None:
        super().__init__(reason)
        self.role = role
        self.reason = reason


class ConsoleAuth:
    def __init__(self, ctx: ControllerContext) -> None:
        self.ctx = ctx
        self.seal = SessionSeal(master_key(ctx.settings), ctx.clock)
        self.keys = KeyRing(ctx)
        self._admin_token = admin_token(ctx.settings)

    def sign_in_tenant(self, access_key_id: str, secret: str) -> Session:
        if not access_key_id or len(access_key_id) > 128:
            raise AccessKeyNotFound("Enter the AccessKey ID you were issued (it starts with LTAI).")
        owner = self.keys.owner(access_key_id)  # AccessKeyNotFound / AccessKeyInactive
        if not hmac.compare_digest(owner.secret.encode(), secret.encode("utf-8", "replace")):
            raise SignatureMismatch("The AccessKey secret does not match this AccessKey ID; check both and try again.")
        return self.seal.new(TENANT, account_id=owner.account_id, access_key_id=access_key_id)

    def sign_in_operator(self, token: str) -> Session:
        if not hmac.compare_digest(self._admin_token.encode(), token.strip().encode("utf-8", "replace")):
            raise AdminTokenRejected("The admin token is wrong. It is EAIS_ADMIN_TOKEN, or STATE_DIR/admin.token on the "
                                     "controller host.")
        return self.seal.new(OPERATOR)

    def session(self, request: Request, role: str) -> Session:
        """The request's live session of ``role`` (its cookie renewed when due); SignInRequired otherwise."""
        name, _path = COOKIES[role]
        session = self.seal.open(request.cookies.get(name), role)
        if session is None:
            raise SignInRequired(role, "Sign in to continue." if name not in request.cookies else
                                 "Your session has ended; sign in again.")
        if role == TENANT:
            self._check_key(session)
        renewed = self.seal.touched(session)
        if renewed is not None:
            self.start(request, renewed)
        return renewed or session

    def start(self, request: Request, session: Session) -> None:
        name, path = COOKIES[session.role]
        set_cookie(request, name, self.seal.seal(session), path=path, max_age_s=self.seal.cookie_max_age_s(session))

    def end(self, request: Request, role: str) -> None:
        name, path = COOKIES[role]
        clear_cookie(request, name, path=path)

    def check_change(self, request: Request, session: Session, sent_token: str | None) -> None:
        """Refuse a state-changing request from another origin or without this session's CSRF token."""
        origin = request.headers.get("origin")
        if origin is not None and origin != own_origin(request):
            raise InvalidParameter(f"A request from {origin[:100]} may not act in the console; use the console's own "
                                   "pages.", detail="CsrfToken")
        if not self.seal.csrf_matches(session, sent_token):
            raise InvalidParameter("This request does not carry the console's CSRF token for your session; reload the "
                                   "page and try again.", detail="CsrfToken")

    def _check_key(self, session: Session) -> None:
        try:
            owner = self.keys.owner(session.access_key_id)
        except (AccessKeyNotFound, AccessKeyInactive) as error:
            raise SignInRequired(TENANT, f"{error.code}: {error.message}") from None
        if owner.account_id != session.account_id:
            raise SignInRequired(TENANT, "Your session has ended; sign in again.")


def own_origin(request: Request) -> str:
    scheme = "https" if request.headers.get("x-forwarded-proto", "").lower().startswith("https") else request.url.scheme
    return f"{scheme}://{request.headers.get('host', '')}"
