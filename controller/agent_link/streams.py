"""The open WatchDesiredState streams of this process, and what wakes each of them.

No thread and no database poll per stream: a stream is a coroutine waiting on its own
:class:`asyncio.Event`. :meth:`StreamRegistry.on_changes` (a ``ChangeHub`` subscriber, called from
any thread) wakes only the streams of the agents a commit touched; a stream then reads its own
agent's desired state once. :meth:`StreamRegistry.resync` is the safety net for news that never
came (a NOTIFY lost while a replica's listener reconnected): it reads the desired state and the
session of connected agents in a few bulk queries and wakes the streams that are behind, a share
of the agents at a time.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from controller.agent_link.desired_state import NodeDesired, VmDesired, node_desired_states, vm_desired_states
from controller.agent_link.link_metrics import STREAMS
from controller.agent_link.sessions import AgentIdentity, SessionCache, current_session_hashes
from controller.changes import RESYNC_ALL, Change
from controller.context import ControllerContext

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Stream:
    """One agent's open stream: what it last sent, and the event that wakes it."""

    agent: AgentIdentity
    token_hash: str
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    last_sent: NodeDesired | VmDesired | None = None
    session_void: bool = False  # the agent registered again: this stream's token is no longer its session

    @property
    def key(self) -> tuple[str, str]:
        return (self.agent.kind.value, self.agent.agent_id)


class StreamRegistry:
    """Streams by agent; lives on the agent link's event loop (only ``on_changes`` may be called off it)."""

    def __init__(self, ctx: ControllerContext, loop: asyncio.AbstractEventLoop, sessions: SessionCache) -> None:
        self._ctx, self._loop, self._sessions = ctx, loop, sessions
        self._streams: dict[tuple[str, str], set[Stream]] = {}
        self.resync_requested = asyncio.Event()

    def __len__(self) -> int:
        return sum(len(streams) for streams in self._streams.values())

    @contextmanager
    def open(self, agent: AgentIdentity, token_hash: str) -> Iterator[Stream]:
        stream = Stream(agent, token_hash)
        self._streams.setdefault(stream.key, set()).add(stream)
        STREAMS.inc()
        try:
            yield stream
        finally:
            STREAMS.dec()
            peers = self._streams.get(stream.key, set())
            peers.discard(stream)
            if not peers:
                self._streams.pop(stream.key, None)

    def on_changes(self, changes: frozenset[Change]) -> None:
        """Thread-safe: hand the changes to the event loop."""
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._dispatch, changes)

    def _dispatch(self, changes: frozenset[Change]) -> None:
        if RESYNC_ALL in changes:
            self.resync_requested.set()
        for change in changes:
            if change.session:
                self._sessions.forget(change.kind, change.agent_id)
            for stream in self._streams.get((change.kind, change.agent_id), ()):
                stream.session_void = stream.session_void or change.session
                stream.wake.set()

    async def resync(self, run_in_db: Callable, share: tuple[int, int] = (0, 1)) -> int:  # noqa: ANN401
        """Wake the streams whose session or desired state the database says moved on; how many woke.

        ``share=(k, n)`` checks only the k-th of n shares of the agents (by a stable hash of their id), so
        that a large fleet is checked a bit at a time instead of in one long pass that would hold up
        everything else the process does.
        """
        part, parts = share
        streams = [stream for key, peers in self._streams.items() if zlib.crc32(key[1].encode()) % parts == part
                   for stream in peers]
        if not streams:
            return 0
        keys = {stream.key for stream in streams}
        hashes, states = await run_in_db(self._bulk_read, keys)
        woken = 0
        self._sessions.confirm(hashes.values())  # connected agents' sessions checked: no lookup one by one
        for stream in streams:
            stale_session = hashes.get(stream.key) != stream.token_hash
            if stale_session or (stream.last_sent is not None and states.get(stream.key) != stream.last_sent):
                stream.session_void = stream.session_void or stale_session
                stream.wake.set()
                woken += 1
        return woken

    def _bulk_read(self, keys: set[tuple[str, str]]) -> tuple[dict, dict]:
        hashes = current_session_hashes(self._ctx, keys)
        nodes = node_desired_states(self._ctx, [agent_id for kind, agent_id in keys if kind == "node"])
        vms = vm_desired_states(self._ctx, [agent_id for kind, agent_id in keys if kind == "vm"])
        states = {("node", k): v for k, v in nodes.items()} | {("vm", k): v for k, v in vms.items()}
        return hashes, states
