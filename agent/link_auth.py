"""How an agent proves who it is to the controller (see ``protos/eais/v1/agents.proto``).

A node agent presents the operator's node token; a VM agent signs its Register with an AccessKey
of the account it belongs to; every later call carries the session token Register returned.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from protos.eais.v1 import agents_pb2 as pb

REGISTER_METHOD = "/eais.v1.AgentLink/Register"


@dataclass(frozen=True)
class NodeToken:
    """A node agent's credential: the controller's shared node token."""

    token: str


@dataclass(frozen=True)
class AccessKey:
    """A VM agent's credential: an AccessKey of the account the VM belongs to."""

    access_key_id: str
    access_key_secret: str


def register_signature_metadata(
    request: pb.RegisterRequest, key: AccessKey, *, now: datetime | None = None, nonce: str | None = None
) -> list[tuple[str, str]]:
    """Metadata that signs a VM agent's Register with an AccessKey (see agents.proto)."""
    date = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    nonce = nonce or secrets.token_hex(16)
    body_hash = hashlib.sha256(request.SerializeToString(deterministic=True)).hexdigest()
    text = "\n".join((REGISTER_METHOD, date, nonce, body_hash))
    signature = hmac.new(key.access_key_secret.encode(), text.encode(), hashlib.sha256).hexdigest()
    return [
        ("x-eais-access-key-id", key.access_key_id), ("x-eais-date", date),
        ("x-eais-nonce", nonce), ("x-eais-signature", signature),
    ]


def register_metadata(request: pb.RegisterRequest, credentials: NodeToken | AccessKey) -> list[tuple[str, str]]:
    if isinstance(credentials, NodeToken):
        return session_metadata(credentials.token)
    return register_signature_metadata(request, credentials)


def session_metadata(token: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {token}")]
