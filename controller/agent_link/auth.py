"""Who is calling the agent link, read from gRPC metadata.

- Node agents Register with ``authorization: Bearer <node token>`` (compared in constant time).
- VM agents Register signed with an AccessKey (``x-eais-access-key-id``, ``x-eais-date``,
  ``x-eais-nonce``, ``x-eais-signature``; see ``protos/eais/v1/agents.proto``). Checks run in this
  order: fields present -> date format and window -> key lookup -> signature -> nonce (recorded
  only once the signature holds, so nobody can burn someone else's nonces).
- Every later call carries ``authorization: Bearer <session token>``.
Failures are EaisErrors whose table entries map to UNAUTHENTICATED (PERMISSION_DENIED for a
disabled key).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable
from datetime import timedelta

from controller.accounts import KeyRing, remember_nonce
from controller.agent_link.sessions import AgentIdentity, identity_for_session
from controller.api.caller_auth import check_freshness, parse_timestamp
from controller.clock import from_datetime, to_datetime
from controller.context import ControllerContext
from controller.errors import (
    IncompleteSignature,
    NonceReplayed,
    SignatureMismatch,
)
from controller.key_store import node_token

REGISTER_METHOD = "/eais.v1.AgentLink/Register"
SIGNATURE_HEADERS = ("x-eais-access-key-id", "x-eais-date", "x-eais-nonce", "x-eais-signature")
_PRINTABLE = re.compile(r"[\x21-\x7e]{1,128}")


def metadata_dict(metadata: Iterable[tuple[str, str | bytes]]) -> dict[str, str]:
    """gRPC invocation metadata as a dict of text values (keys are lower-case on the wire)."""
    return {key.lower(): value for key, value in metadata if isinstance(value, str)}


def bearer_token(metadata: dict[str, str]) -> str:
    header = metadata.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if not header:
        raise IncompleteSignature("No credentials: send the metadata 'authorization: Bearer <token>'.")
    if scheme.lower() != "bearer" or not token.strip():
        raise IncompleteSignature("The authorization metadata must read 'Bearer <token>'.")
    return token.strip()


def string_to_sign(method: str, date: str, nonce: str, request_bytes: bytes) -> str:
    """What a VM agent signs for Register (the agent side builds the same string)."""
    return "\n".join((method, date, nonce, hashlib.sha256(request_bytes).hexdigest()))


def signature_for(secret: str, text: str) -> str:
    return hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()


class AgentAuthenticator:
    """The three ways in: node token, AccessKey signature, session token."""

    def __init__(self, ctx: ControllerContext) -> None:
        self._ctx = ctx
        self._node_token = node_token(ctx.settings).encode()  # read once: the file is created at first start
        self._keys = KeyRing(ctx)

    def require_node_token(self, metadata: dict[str, str]) -> None:
        offered = bearer_token(metadata).encode()
        if not hmac.compare_digest(offered, self._node_token):
            raise SignatureMismatch(
                "The node token is wrong; use the controller's node token (file node.token in its state directory)."
            )

    def vm_account(self, metadata: dict[str, str], request_bytes: bytes) -> str:
        """The account whose AccessKey signed this Register; raises on any failed check."""
        missing = [name for name in SIGNATURE_HEADERS if not metadata.get(name)]
        if missing:
            raise IncompleteSignature(
                f"A VM agent's Register must be signed with an AccessKey; missing metadata: {', '.join(missing)}."
            )
        key_id, date, nonce = (metadata[name] for name in SIGNATURE_HEADERS[:3])
        if not _PRINTABLE.fullmatch(key_id) or not _PRINTABLE.fullmatch(nonce):
            raise IncompleteSignature("x-eais-access-key-id and x-eais-nonce must be 1-128 printable ASCII characters.")
        signed_us = self._fresh_signing_time(date)
        owner = self._keys.owner(key_id)
        expected = signature_for(owner.secret, string_to_sign(REGISTER_METHOD, date, nonce, request_bytes))
        if not hmac.compare_digest(expected, metadata["x-eais-signature"].strip().lower()):
            raise SignatureMismatch(
                "The x-eais-signature does not match: sign \"/eais.v1.AgentLink/Register\\n<date>\\n<nonce>\\n"
                "<hex sha256 of the deterministically serialized request>\" with HMAC-SHA256 and the AccessKey secret."
            )
        if not remember_nonce(self._ctx, key_id, nonce, signed_us):
            raise NonceReplayed(f"The nonce {nonce!r} was already used; sign every Register with a new random nonce.")
        return owner.account_id

    def session(self, metadata: dict[str, str]) -> AgentIdentity:
        return identity_for_session(self._ctx, bearer_token(metadata))

    def _fresh_signing_time(self, date: str) -> int:
        """The signed time as epoch µs, refused when malformed or outside the signature window."""
        signed_at = parse_timestamp(date)
        window = timedelta(seconds=self._ctx.settings.api.signature_window_s)
        check_freshness(signed_at, to_datetime(self._ctx.clock.now_us()), window)
        return from_datetime(signed_at)
