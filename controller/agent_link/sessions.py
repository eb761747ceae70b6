"""Agent sessions: the bearer token handed out by Register, and the agent it stands for.

Only a SHA-256 hash of each session token is stored (``Node.session_token_hash``,
``ClientInstance.session_token_hash``); a new Register replaces the hash, so the old token stops
working at once.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from enum import StrEnum

from sqlmodel import select

from controller.context import ControllerContext
from controller.errors import SignatureMismatch
from controller.tables import ClientInstance, Node


class AgentKind(StrEnum):
    NODE = "node"
    VM = "vm"


@dataclass(frozen=True, slots=True)
class AgentIdentity:
    """An authenticated agent: a node (by node id) or a VM (by client instance id, with its account)."""

    kind: AgentKind
    agent_id: str
    account_id: str | None = None


# The prefix tells which table holds the session, and makes leaked tokens recognisable.
_TOKEN_PREFIX = {AgentKind.NODE: "eais-node-session-", AgentKind.VM: "eais-vm-session-"}


def new_session_token(kind: AgentKind) -> str:
    return _TOKEN_PREFIX[kind] + secrets.token_urlsafe(32)


def session_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def identity_for_session(ctx: ControllerContext, token: str) -> AgentIdentity:
    """The agent holding ``token``; SignatureMismatch (UNAUTHENTICATED) for an unknown or replaced one."""
    kind = next((k for k, prefix in _TOKEN_PREFIX.items() if token.startswith(prefix)), None)
    if kind is None:
        raise SignatureMismatch(
            "The bearer token is not an agent session token; call Register first and use its session_token."
        )
    # Looked up by hash: the hash of a random token reveals nothing, so timing does not matter here.
    hashed = session_token_hash(token)
    with ctx.db.read() as session:
        if kind is AgentKind.NODE:
            node = session.exec(select(Node).where(Node.session_token_hash == hashed)).first()
            identity = AgentIdentity(kind, node.id) if node else None
        else:
            vm = session.exec(select(ClientInstance).where(ClientInstance.session_token_hash == hashed)).first()
            identity = AgentIdentity(kind, vm.id, vm.account_id) if vm else None
    if identity is None:
        raise SignatureMismatch(
            "The session token is not valid: it was never issued or a newer Register replaced it. Register again."
        )
    return identity
