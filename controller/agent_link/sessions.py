"""Agent sessions: the bearer token handed out by Register, and the agent it stands for.

Only a SHA-256 hash of each session token is stored (``Node.session_token_hash``,
``ClientInstance.session_token_hash``); a new Register replaces the hash, so the old token stops
working. :class:`SessionCache` remembers who holds which token, so a heartbeat costs no database
read: a Register on this process, or a session change another replica announces
(``controller.changes``), drops the agent's entry at once, and every entry is checked against the
database again after ``recheck_s`` in case an announcement was missed.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from sqlmodel import select

from controller.context import ControllerContext
from controller.db import in_chunks
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


def current_session_hashes(ctx: ControllerContext, agents: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """The stored session hash of each (kind, agent id); agents not registered are missing."""
    wanted: dict[str, set[str]] = {AgentKind.NODE.value: set(), AgentKind.VM.value: set()}
    for kind, agent_id in agents:
        wanted[kind].add(agent_id)
    found: dict[tuple[str, str], str] = {}
    with ctx.db.read() as session:
        for kind, table in ((AgentKind.NODE.value, Node), (AgentKind.VM.value, ClientInstance)):
            for chunk in in_chunks(wanted[kind]):
                rows = session.exec(select(table.id, table.session_token_hash).where(table.id.in_(chunk))).all()
                found.update({(kind, agent_id): hashed for agent_id, hashed in rows})
    return found


class SessionCache:
    """Session token hash -> agent, remembered for ``recheck_s``; thread-safe."""

    def __init__(self, ctx: ControllerContext, recheck_s: float = 60.0) -> None:
        self._ctx, self._recheck_s = ctx, recheck_s
        self._lock = threading.Lock()
        self._by_hash: dict[str, tuple[AgentIdentity, float]] = {}
        self._hash_of: dict[tuple[str, str], str] = {}

    def cached(self, token: str) -> AgentIdentity | None:
        """The agent holding ``token`` if this process vouched for it recently; None means: ask ``load``."""
        with self._lock:
            entry = self._by_hash.get(session_token_hash(token))
        if entry is None or time.monotonic() - entry[1] > self._recheck_s:
            return None
        return entry[0]

    def load(self, token: str) -> AgentIdentity:
        """Look the token up in the database (raises SignatureMismatch) and remember the answer."""
        identity = identity_for_session(self._ctx, token)
        self.remember(session_token_hash(token), identity)
        return identity

    def remember(self, token_hash: str, identity: AgentIdentity) -> None:
        key = (identity.kind.value, identity.agent_id)
        with self._lock:
            previous = self._hash_of.get(key)
            if previous is not None and previous != token_hash:
                self._by_hash.pop(previous, None)
            self._hash_of[key] = token_hash
            self._by_hash[token_hash] = (identity, time.monotonic())

    def confirm(self, token_hashes: Iterable[str]) -> None:
        """The database still holds these sessions (checked in bulk): their entries count as fresh again."""
        now = time.monotonic()
        with self._lock:
            for token_hash in token_hashes:
                entry = self._by_hash.get(token_hash)
                if entry is not None:
                    self._by_hash[token_hash] = (entry[0], now)

    def forget(self, kind: str, agent_id: str) -> None:
        """The agent's session changed (it registered again): its old token must be looked up anew."""
        with self._lock:
            token_hash = self._hash_of.pop((kind, agent_id), None)
            if token_hash is not None:
                self._by_hash.pop(token_hash, None)
