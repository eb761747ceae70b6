"""The agents' side of ``eais.v1.AgentLink`` on grpc.aio: one coroutine-friendly link per agent.

Register (node token, or AccessKey-signed for a VM) -> heartbeats at the pace the controller
sets -> a desired-state stream that reconnects by itself -> actual-state reports. A replaced or
forgotten session is re-registered once, transparently. An unreachable controller is retried
with a bounded, jittered backoff (gRPC's own reconnect backoff is bounded the same way), so an
agent is back within a few seconds of the controller however long it was away. Given several
controller addresses (``"a:50051,b:50051"``, or one DNS name whose addresses gRPC tries in turn),
the link moves to the next address whenever the current one does not answer.

A refusal that retrying cannot fix (wrong token, invalid registration) raises
:class:`~agent.link_errors.LinkRefused`; a TLS mismatch a handshake shows (another CA, an address
the certificate does not name, plaintext on one side only) raises ``ControllerUntrusted``.
The node and VM agents use it through the threaded facade ``agent.controller_link.ControllerLink``;
the simulated fleet runs thousands of them on one event loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TypeVar

import grpc

from agent.backoff import Backoff
from agent.controller_trust import ControllerTrust
from agent.link_auth import AccessKey, NodeToken, register_metadata, session_metadata
from agent.link_errors import UNREACHABLE, ControllerUntrusted, LinkRefused, raise_unless_retryable
from protos.eais.v1 import agents_pb2 as pb
from protos.eais.v1 import agents_pb2_grpc

log = logging.getLogger("agent.controller_link")
T = TypeVar("T")
BEAT_AT_SHARE = 0.75  # beat after this share of the allowed time, leaving room for one retry
CHANNEL_OPTIONS = (
    # gRPC's reconnect backoff grows to 120 s by default: an agent would come back a minute late.
    ("grpc.initial_reconnect_backoff_ms", 250),
    ("grpc.min_reconnect_backoff_ms", 250),
    ("grpc.max_reconnect_backoff_ms", 2000),
    # A cut link (no FIN, no RST) shows up within ~30 s on an idle stream instead of never.
    ("grpc.keepalive_time_ms", 20_000),
    ("grpc.keepalive_timeout_ms", 10_000),
)


def controller_targets(targets: str | Sequence[str]) -> list[str]:
    """``"a:1,b:2"`` or ``["a:1", "b:2"]`` -> the addresses, in order, without blanks or repeats."""
    items = targets.split(",") if isinstance(targets, str) else list(targets)
    found = list(dict.fromkeys(item.strip() for item in items if item.strip()))
    if not found:
        raise ValueError("no controller address given; pass --controller HOST:PORT (several, comma-separated)")
    return found


class AsyncControllerLink:
    """One agent's connection to the controller; every method runs on the event loop that created it."""

    def __init__(
        self, targets: str | Sequence[str], registration: pb.RegisterRequest, credentials: NodeToken | AccessKey,
        *, trust: ControllerTrust, call_timeout_s: float = 10.0, channel_options: Sequence[tuple] = (),
    ) -> None:
        self._targets, self._current = controller_targets(targets), 0
        self._trust, self._registration, self._credentials = trust, registration, credentials
        self._timeout_s = call_timeout_s
        self._options = (*CHANNEL_OPTIONS, *channel_options)
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._token: str | None = None
        self._beat_in_s = 1.0
        self.last_beat_within_s = 0.0  # the time the controller allowed until the next beat, last it said
        self._watch_call: grpc.aio.UnaryStreamCall | None = None
        self._register_lock: asyncio.Lock | None = None
        self._closing = False
        self.last_registration: pb.RegisterResponse | None = None

    @property
    def registration(self) -> pb.RegisterRequest:
        return self._registration

    @property
    def agent_id(self) -> str:
        return self.last_registration.agent_id if self.last_registration else ""

    @property
    def target(self) -> str:
        """The controller address in use now."""
        return self._targets[self._current]

    async def register(self) -> pb.RegisterResponse:
        """Register now (replacing any session); LinkRefused when the controller says no for good."""
        async with self._lock():
            return await self._register_locked()

    async def register_until_done(self, stop: asyncio.Event) -> pb.RegisterResponse | None:
        """Register, retrying while no controller answers; None if ``stop`` is set first."""
        backoff = Backoff()
        while not stop.is_set():
            try:
                return await self.register()
            except grpc.RpcError as error:
                delay = backoff.next_delay_s()
                log.warning("cannot reach the controller to register (%s); retrying in %.1fs", error.code().name, delay)
                await _wait(stop, delay)
        return None

    async def heartbeat(self) -> pb.HeartbeatResponse:
        response = await self._with_session(
            lambda stub, metadata: stub.Heartbeat(pb.HeartbeatRequest(), metadata=metadata, timeout=self._timeout_s)
        )
        self._beat_in_s = _beat_delay_s(response.heartbeat)
        self.last_beat_within_s = response.heartbeat.beat_within_ms / 1000
        return response

    async def report(self, report: pb.ActualStateReport) -> pb.ReportAck:
        return await self._with_session(
            lambda stub, metadata: stub.ReportActualState(report, metadata=metadata, timeout=self._timeout_s)
        )

    async def run_heartbeats(self, stop: asyncio.Event, on_beat: Callable[[bool], None] = lambda ok: None) -> None:
        """Beat before every deadline the controller sets, until ``stop``; raises LinkRefused.

        ``on_beat(True)`` after each answered beat, ``on_beat(False)`` after each failed one.
        """
        backoff = Backoff()
        wait_s = self._beat_in_s
        while not await _wait(stop, wait_s):
            try:
                await self.heartbeat()
                on_beat(True)
                backoff.reset()
                wait_s = self._beat_in_s
            except grpc.RpcError as error:
                on_beat(False)
                raise_unless_retryable("Heartbeat", error)
                wait_s = backoff.next_delay_s()
                log.warning("heartbeat failed (%s); retrying in %.1fs", error.code().name, wait_s)

    async def desired_states(self, stop: asyncio.Event) -> AsyncIterator[pb.DesiredState]:
        """Every desired state the controller sends, across reconnects, until ``stop``."""
        backoff = Backoff()
        while not stop.is_set():
            target = self.target
            try:
                async for state in self._watch_once():
                    backoff.reset()
                    yield state
            except asyncio.CancelledError:
                if self._closing:  # close() cancelled the stream: the end, not an error
                    return
                raise
            except grpc.RpcError as error:
                if stop.is_set():
                    return
                if error.code() is grpc.StatusCode.UNAUTHENTICATED:
                    self._token = None  # replaced by a newer Register: register again below
                else:
                    raise_unless_retryable("WatchDesiredState", error)
                    await self._raise_if_untrusted(target, error)  # a controller restarted with other names or CA
                    self._move_on_from(target, error)
                    log.warning("desired-state stream from %s lost (%s); reconnecting", target, error.code().name)
            await _wait(stop, backoff.next_delay_s())

    async def close(self) -> None:
        """End the stream and the channels; loops waiting on them return."""
        self._closing = True
        if self._watch_call is not None:
            self._watch_call.cancel()
        channels, self._channels = list(self._channels.values()), {}
        for channel in channels:
            await channel.close()

    async def _watch_once(self) -> AsyncIterator[pb.DesiredState]:
        if self._token is None:
            await self.register()
        call = self._stub().WatchDesiredState(pb.WatchRequest(), metadata=session_metadata(self._token))
        self._watch_call = call
        try:
            async for state in call:
                yield state
        finally:
            self._watch_call = None

    async def _register_locked(self) -> pb.RegisterResponse:
        target = self.target
        try:
            response = await self._stub().Register(self._registration, timeout=self._timeout_s,
                                                   metadata=register_metadata(self._registration, self._credentials))
        except grpc.RpcError as error:
            raise_unless_retryable("Register", error)
            await self._raise_if_untrusted(target, error)
            self._move_on_from(target, error)
            raise
        self._token = response.session_token
        self._beat_in_s = _beat_delay_s(response.heartbeat)
        self.last_beat_within_s = response.heartbeat.beat_within_ms / 1000
        self.last_registration = response
        return response

    async def _with_session(self, call: Callable[[agents_pb2_grpc.AgentLinkStub, list], Awaitable[T]]) -> T:
        token = self._token or (await self.register()).session_token
        target = self.target
        try:
            return await call(self._stub(), session_metadata(token))
        except grpc.RpcError as error:
            if error.code() is not grpc.StatusCode.UNAUTHENTICATED:
                self._move_on_from(target, error)
                raise
        return await call(self._stub(), session_metadata(await self._reregister(token)))  # session replaced

    async def _reregister(self, stale_token: str) -> str:
        async with self._lock():
            if self._token == stale_token or self._token is None:  # another task may have done it already
                await self._register_locked()
            return self._token or ""

    def _stub(self) -> agents_pb2_grpc.AgentLinkStub:
        target = self.target
        channel = self._channels.get(target)
        if channel is None:
            credentials = self._trust.channel_credentials()
            channel = (grpc.aio.secure_channel(target, credentials, options=self._options) if credentials
                       else grpc.aio.insecure_channel(target, options=self._options))
            self._channels[target] = channel
        return agents_pb2_grpc.AgentLinkStub(channel)

    def _move_on_from(self, target: str, error: grpc.RpcError) -> None:
        """The controller at ``target`` did not answer: use the next address, if there is another."""
        if len(self._targets) > 1 and error.code() in UNREACHABLE and self.target == target:
            self._current = (self._current + 1) % len(self._targets)
            log.warning("controller %s does not answer (%s); trying %s", target, error.code().name, self.target)

    async def _raise_if_untrusted(self, target: str, error: grpc.RpcError) -> None:
        if error.code() is grpc.StatusCode.UNAVAILABLE:
            reason = await asyncio.to_thread(self._trust.mismatch, target)
            if reason is not None:
                raise ControllerUntrusted(reason) from error

    def _lock(self) -> asyncio.Lock:
        if self._register_lock is None:
            self._register_lock = asyncio.Lock()
        return self._register_lock


def _beat_delay_s(deadline: pb.HeartbeatDeadline) -> float:
    return max(0.05, deadline.beat_within_ms / 1000 * BEAT_AT_SHARE)


async def _wait(stop: asyncio.Event, delay_s: float) -> bool:
    """Sleep ``delay_s`` unless ``stop`` is set first; whether it is set."""
    try:
        await asyncio.wait_for(stop.wait(), max(0.0, delay_s))
    except TimeoutError:
        pass
    return stop.is_set()


__all__ = ["AsyncControllerLink", "LinkRefused", "controller_targets"]
