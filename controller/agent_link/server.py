"""``create_grpc_server``: the AgentLink service on grpc.aio, in an event loop thread of its own.

Kept apart from any serving loop so tests bind port 0 and the controller's ``main`` wires it. The
port speaks TLS with the certificate of :mod:`controller.agent_link.tls`, unless the
``grpc_plaintext`` setting says otherwise. One thread runs the loop for every stream, heartbeat
and report; a few executor threads run the database work; background tasks flush heartbeats and
resync the streams. Thousands of agents cost coroutines, not threads.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc

from controller.agent_link.heartbeat_book import HeartbeatBook
from controller.agent_link.link_metrics import HEARTBEAT_FLUSH_FAILURES
from controller.agent_link.servicer import AgentLinkServicer, WatchTiming
from controller.agent_link.sessions import SessionCache
from controller.agent_link.streams import StreamRegistry
from controller.agent_link.tls import AgentLinkCertificates
from controller.context import ControllerContext
from protos.eais.v1 import agents_pb2_grpc

log = logging.getLogger(__name__)
MAX_MESSAGE_BYTES = 4 * 1024 * 1024  # a node with 1024 slices reports well under this
START_TIMEOUT_S = 30.0
RESYNC_STEP_S = 0.5  # the safety-net resync checks a share of the agents this often


class AgentLinkServer:
    """The running service; ``start()``, then ``stop(grace)`` returns an event set once it has stopped."""

    def __init__(self, ctx: ControllerContext, address: str, *, watch: WatchTiming, db_threads: int,
                 rng: random.Random | None) -> None:
        self._ctx, self._watch, self._rng = ctx, watch, rng
        self._executor = ThreadPoolExecutor(max_workers=db_threads, thread_name_prefix="agent-link-db")
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="agent-link", daemon=True)
        self._thread.start()
        self._tasks: list[asyncio.Task] = []
        self._unsubscribe = lambda: None
        self._stopped = threading.Event()
        self.book = HeartbeatBook(ctx, rng)
        self.sessions = SessionCache(ctx)
        try:
            self.port = self._call(self._bind(address))
        except BaseException:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._executor.shutdown(wait=False)
            raise

    @property
    def streams(self) -> StreamRegistry:
        return self._streams

    def start(self) -> None:
        self._call(self._start())

    def stop(self, grace: float | None = None) -> threading.Event:
        """Stop serving (in-flight calls get ``grace`` seconds); flushes the heartbeats it answered."""
        if self._thread.is_alive() and not self._stopped.is_set():
            asyncio.run_coroutine_threadsafe(self._stop(grace), self._loop)
        return self._stopped

    def flush_heartbeats(self) -> int:
        return self.book.flush()

    async def run_in_db(self, function: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: ANN401
        return await self._loop.run_in_executor(self._executor, functools.partial(function, *args, **kwargs))

    def _call(self, coroutine: Any) -> Any:  # noqa: ANN401
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(START_TIMEOUT_S)

    async def _bind(self, address: str) -> int:
        self._streams = StreamRegistry(self._ctx, self._loop, self.sessions)
        self._server = grpc.aio.server(options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            # gRPC shares ports by default: a second controller would silently split the agents.
            ("grpc.so_reuseport", 0),
        ])
        servicer = AgentLinkServicer(self._ctx, run_in_db=self.run_in_db, sessions=self.sessions, book=self.book,
                                     streams=self._streams, watch=self._watch, rng=self._rng)
        agents_pb2_grpc.add_AgentLinkServicer_to_server(servicer, self._server)
        if self._ctx.settings.grpc_plaintext:
            port = self._server.add_insecure_port(address)
        else:
            port = self._server.add_secure_port(address, AgentLinkCertificates(self._ctx.settings).server_credentials())
        if port == 0:
            raise RuntimeError(f"could not bind the agent link to {address}; is the port in use?")
        return port

    async def _start(self) -> None:
        self._unsubscribe = self._ctx.db.changes.subscribe(self._streams.on_changes)
        await self._server.start()
        self._tasks = [asyncio.create_task(self._flush_heartbeats_forever(), name="heartbeat-flush"),
                       asyncio.create_task(self._resync_forever(), name="stream-resync")]

    async def _stop(self, grace: float | None) -> None:
        try:
            self._unsubscribe()
            await self._server.stop(grace)
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._flush_once()
        finally:
            self._executor.shutdown(wait=False)
            self._stopped.set()
            self._loop.call_soon(self._loop.stop)

    async def _flush_heartbeats_forever(self) -> None:
        while True:
            await asyncio.sleep(self._ctx.settings.lifecycle.heartbeat_flush_s)
            await self._flush_once()

    async def _flush_once(self) -> None:
        try:
            await self.run_in_db(self.book.flush)
        except Exception as error:  # noqa: BLE001 - kept for the next flush; say why once per failure
            HEARTBEAT_FLUSH_FAILURES.inc()
            log.warning("could not write %d heartbeat(s) yet (kept for the next try): %s", self.book.pending, error)

    async def _resync_forever(self) -> None:
        """Every agent is checked once per ``resync_s``, a share every RESYNC_STEP_S; all at once when asked."""
        requested, step = self._streams.resync_requested, 0
        parts = max(1, round(self._watch.resync_s / RESYNC_STEP_S))
        while True:
            try:
                await asyncio.wait_for(requested.wait(), self._watch.resync_s / parts)
                shares = [(part, parts) for part in range(parts)]  # asked for (missed news): everyone, share by share
            except TimeoutError:
                shares, step = [(step % parts, parts)], step + 1
            requested.clear()
            for share in shares:
                try:
                    await self._streams.resync(self.run_in_db, share)
                except Exception as error:  # noqa: BLE001 - the next round tries again
                    log.warning("stream resync failed (retrying): %s", error)
                    break


def create_grpc_server(
    ctx: ControllerContext,
    address: str = "127.0.0.1:0",
    *,
    watch: WatchTiming | None = None,
    db_threads: int = 4,
    rng: random.Random | None = None,
) -> tuple[AgentLinkServer, int]:
    """Build the server and bind ``address``; returns (server, bound port). Call ``server.start()``."""
    life = ctx.settings.lifecycle
    watch = watch or WatchTiming(resync_s=life.stream_resync_s, resend_s=life.stream_resend_s)
    server = AgentLinkServer(ctx, address, watch=watch, db_threads=db_threads, rng=rng)
    return server, server.port
