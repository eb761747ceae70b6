"""The agent link for threaded code: :class:`ControllerLink` runs an ``AsyncControllerLink`` on a private loop.

The node and VM agents are threaded (workers, relays, reporters); they call this facade from any
thread, and each call runs on the link's own event loop thread. Behaviour (registration,
heartbeats, the reconnecting desired-state stream, failover between controller addresses,
bounded backoff, LinkRefused and ControllerUntrusted) is ``agent.controller_link_async``'s.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import queue
import threading
from collections.abc import Callable, Coroutine, Iterator, Sequence
from typing import Any, TypeVar

from agent.backoff import Backoff
from agent.controller_link_async import AsyncControllerLink, controller_targets
from agent.controller_trust import ControllerTrust
from agent.link_auth import AccessKey, NodeToken, register_signature_metadata
from agent.link_errors import ControllerUntrusted, LinkRefused
from protos.eais.v1 import agents_pb2 as pb

T = TypeVar("T")
CLOSE_WAIT_S = 3.0  # how long close() lets calls in flight end by themselves before cancelling them
__all__ = [
    "AccessKey", "Backoff", "ControllerLink", "ControllerUntrusted", "LinkRefused", "NodeToken",
    "controller_targets", "register_signature_metadata",
]


class ControllerLink:
    """One agent's connection to the controller. Thread-safe: heartbeats, watch and reports may run apart."""

    def __init__(
        self, target: str | Sequence[str], registration: pb.RegisterRequest, credentials: NodeToken | AccessKey,
        *, trust: ControllerTrust, call_timeout_s: float = 10.0,
    ) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="controller-link", daemon=True)
        self._thread.start()
        self._link = AsyncControllerLink(target, registration, credentials, trust=trust, call_timeout_s=call_timeout_s)
        self._stops: dict[int, asyncio.Event] = {}
        self._stops_lock = threading.Lock()
        self._pending: set[concurrent.futures.Future] = set()
        self._closed = False

    @property
    def registration(self) -> pb.RegisterRequest:
        return self._link.registration

    @property
    def agent_id(self) -> str:
        return self._link.agent_id

    @property
    def last_registration(self) -> pb.RegisterResponse | None:
        return self._link.last_registration

    @property
    def target(self) -> str:
        return self._link.target

    def register(self) -> pb.RegisterResponse:
        """Register now (replacing any session); LinkRefused when the controller says no for good."""
        return self._run(self._link.register())

    def register_until_done(self, stop: threading.Event) -> pb.RegisterResponse | None:
        """Register, retrying while the controller is unreachable; None if ``stop`` is set first."""
        return self._run(self._link.register_until_done(self._bridge(stop)))

    def heartbeat(self) -> pb.HeartbeatResponse:
        return self._run(self._link.heartbeat())

    def report(self, report: pb.ActualStateReport) -> pb.ReportAck:
        return self._run(self._link.report(report))

    def run_heartbeats(self, stop: threading.Event, on_beat: Callable[[bool], None] = lambda ok: None) -> None:
        """Beat before every deadline the controller sets, until ``stop``; raises LinkRefused."""
        self._run(self._link.run_heartbeats(self._bridge(stop), on_beat))

    def desired_states(self, stop: threading.Event) -> Iterator[pb.DesiredState]:
        """Every desired state the controller sends, across reconnects, until ``stop``."""
        states: queue.Queue[tuple[str, Any]] = queue.Queue()

        async def pump() -> None:
            try:
                async for state in self._link.desired_states(self._bridge(stop)):
                    states.put(("state", state))
                states.put(("end", None))
            except BaseException as error:  # noqa: BLE001 - handed to the consuming thread
                states.put(("error", error))

        future = self._submit(pump())
        try:
            while True:
                kind, value = states.get()
                if kind == "end":
                    return
                if kind == "error":
                    raise value
                yield value
        finally:
            future.cancel()

    def close(self) -> None:
        """End the stream and the channel; loops blocked on them return."""
        if self._closed:
            return
        self._closed = True
        for stop in list(self._stops.values()):
            self._loop.call_soon_threadsafe(stop.set)
        try:
            asyncio.run_coroutine_threadsafe(self._link.close(), self._loop).result(10)
            concurrent.futures.wait(self._in_flight(), timeout=CLOSE_WAIT_S)  # loops see their stop event
        finally:
            for future in self._in_flight():
                future.cancel()
            self._loop.call_soon_threadsafe(self._loop.stop)

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        try:
            return self._submit(coroutine).result()
        except concurrent.futures.CancelledError:
            raise ValueError("the controller link was closed during the call") from None

    def _submit(self, coroutine: Coroutine[Any, Any, T]) -> concurrent.futures.Future:
        if self._closed:
            coroutine.close()
            raise ValueError("the controller link is closed")
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        with self._stops_lock:
            self._pending.add(future)
        future.add_done_callback(self._done)
        return future

    def _done(self, future: concurrent.futures.Future) -> None:
        with self._stops_lock:
            self._pending.discard(future)

    def _in_flight(self) -> list[concurrent.futures.Future]:
        with self._stops_lock:
            return list(self._pending)

    def _bridge(self, stop: threading.Event) -> asyncio.Event:
        """An asyncio.Event on the link's loop that is set once ``stop`` is (one waiting thread per stop event)."""
        with self._stops_lock:
            bridged = self._stops.get(id(stop))
            if bridged is not None:
                return bridged
            bridged = self._stops[id(stop)] = asyncio.Event()

        def relay() -> None:
            stop.wait()
            if not self._loop.is_closed():
                self._loop.call_soon_threadsafe(bridged.set)

        threading.Thread(target=relay, name="controller-link-stop", daemon=True).start()
        return bridged
