"""Heartbeats answered from memory and written to the database in batches.

A fleet of thousands beats hundreds of times a second; one write transaction per beat would be
most of the controller's work. :meth:`HeartbeatBook.beat` answers at once with the next deadline
and keeps the newest beat of each agent; :meth:`HeartbeatBook.flush` (every
``heartbeat_flush_s``) writes them all in one transaction, each row only while the session that
beat is still the agent's (a replaced session keeps nobody alive). A flush that fails (disk full,
database away) keeps the beats for the next one, so a beat the controller answered is never lost
while the process lives; the reconciler's deadline check allows for the flush period.
"""

from __future__ import annotations

import logging
import random
import threading
from dataclasses import dataclass

from sqlalchemy import bindparam, update

from controller.agent_link.heartbeats import next_heartbeat_deadline_us
from controller.agent_link.sessions import AgentIdentity, AgentKind
from controller.context import ControllerContext
from controller.tables import ClientInstance, Node

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Beat:
    token_hash: str
    seen_us: int
    deadline_us: int


@dataclass(frozen=True, slots=True)
class BeatOutcome:
    deadline_us: int
    late: bool  # it came after the deadline this process had handed the agent


_STATEMENTS = {
    kind: update(table)
    .where(table.id == bindparam("agent"), table.session_token_hash == bindparam("token_hash"))
    .values(online=True, last_seen_us=bindparam("seen"), heartbeat_deadline_us=bindparam("deadline"))
    for kind, table in ((AgentKind.NODE, Node), (AgentKind.VM, ClientInstance))
}


class HeartbeatBook:
    """The beats not yet written, newest per agent; thread-safe."""

    def __init__(self, ctx: ControllerContext, rng: random.Random | None = None) -> None:
        self._ctx, self._rng = ctx, rng
        self._lock = threading.Lock()
        self._pending: dict[tuple[AgentKind, str], Beat] = {}
        self._deadlines: dict[tuple[AgentKind, str], int] = {}  # last deadline handed out, per agent

    def beat(self, agent: AgentIdentity, token_hash: str) -> BeatOutcome:
        now = self._ctx.clock.now_us()
        deadline = next_heartbeat_deadline_us(self._ctx.settings.lifecycle, now, self._rng)
        key = (agent.kind, agent.agent_id)
        with self._lock:
            previous = self._deadlines.get(key)
            self._deadlines[key] = deadline
            self._pending[key] = Beat(token_hash, now, deadline)
        return BeatOutcome(deadline, late=previous is not None and now > previous)

    def handed_out(self, agent: AgentIdentity, deadline_us: int) -> None:
        """Register handed out a first deadline (already written): later beats are late after it."""
        with self._lock:
            self._deadlines[(agent.kind, agent.agent_id)] = deadline_us

    @property
    def pending(self) -> int:
        return len(self._pending)

    def flush(self) -> int:
        """Write every pending beat in one transaction; the number written. Raises (and keeps them) on failure."""
        with self._lock:
            taken, self._pending = self._pending, {}
        if not taken:
            return 0
        try:
            with self._ctx.db.write_connection(lazy_sync=True) as connection:
                for kind, statement in _STATEMENTS.items():
                    rows = [{"agent": agent_id, "token_hash": beat.token_hash, "seen": beat.seen_us,
                             "deadline": beat.deadline_us} for (k, agent_id), beat in taken.items() if k is kind]
                    if rows:
                        connection.execute(statement, rows)
        except Exception:
            self._put_back(taken)
            raise
        return len(taken)

    def _put_back(self, taken: dict[tuple[AgentKind, str], Beat]) -> None:
        with self._lock:
            for key, beat in taken.items():
                newer = self._pending.get(key)
                if newer is None or newer.seen_us < beat.seen_us:
                    self._pending[key] = beat
