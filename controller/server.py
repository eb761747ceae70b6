"""Runs one controller replica: EAIS API (uvicorn), agent gRPC service, change listener and reconciler.

Replicas on one PostgreSQL each run all of it; the reconciler lease lets one of them reconcile.
Changes other processes commit reach this one's agent streams through the change listener
(PostgreSQL NOTIFY), or, for API worker processes on SQLite, through a pipe.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import uvicorn

from controller.agent_link.server import AgentLinkServer, create_grpc_server
from controller.api.app import create_app
from controller.api.http_server import uvicorn_config
from controller.api_workers import spawn_api_workers, stop_api_workers
from controller.change_listener import PipeChangeReader, PostgresChangeListener
from controller.context import ControllerContext
from controller.gc_tuning import freeze_startup_objects
from controller.observability.registry import share_between_processes
from controller.reconciler import ReconcilerThread

log = logging.getLogger("eais.controller")


def bind_api_socket(host: str, port: int) -> tuple[socket.socket, int]:
    """Bind the API socket ourselves so that port 0 works and the bound port is known."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock, sock.getsockname()[1]


@dataclass
class RunningController:
    ctx: ControllerContext
    api_port: int
    grpc_port: int
    api_server: uvicorn.Server
    grpc_server: AgentLinkServer
    reconciler: ReconcilerThread
    api_socket: socket.socket
    api_workers: list = field(default_factory=list)
    listeners: list = field(default_factory=list)

    def serve_api_forever(self, every_second: Callable[[], None] | None = None) -> None:
        """Serve HTTP in this thread until SIGINT/SIGTERM (uvicorn handles the signals).

        ``every_second`` runs on the serving loop about once a second, the first time as soon as
        the API accepts requests: where systemd's READY=1 and WATCHDOG=1 come from.
        """
        if every_second is not None:
            async def on_tick() -> None:
                every_second()

            # uvicorn's main loop calls callback_notify at most once a second, when timeout_notify has passed.
            self.api_server.config.callback_notify = on_tick
            self.api_server.config.timeout_notify = 0
        self.api_server.run(sockets=[self.api_socket])

    def start_api_in_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self.api_server.run, kwargs={"sockets": [self.api_socket]},
                                  name="eais-api", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        stop_api_workers(self.api_workers)
        self.api_server.should_exit = True
        self.reconciler.stop()
        self.grpc_server.stop(grace=2).wait(10)
        for listener in self.listeners:
            listener.stop()


def start_controller(ctx: ControllerContext, *, reconcile: bool = True, api_processes: int = 1) -> RunningController:
    """Bind everything and start gRPC and the reconciler; HTTP starts with ``serve_api_forever``."""
    settings = ctx.settings
    api_socket, api_port = bind_api_socket(settings.api_host, settings.api_port)
    listeners = []
    if ctx.db.is_postgresql:
        listeners.append(PostgresChangeListener(ctx.db))
        listeners[0].start()
    # Workers are separate interpreters (not forks), started before gRPC's threads exist.
    workers = []
    if api_processes > 1:
        share_between_processes()  # /metrics adds up every API process's counts, whichever answers
        read_fd, write_fd = os.pipe() if not ctx.db.is_postgresql else (None, None)
        workers = spawn_api_workers(settings, api_socket, api_processes - 1, changes_fd=write_fd)
        if read_fd is not None:
            os.close(write_fd)
            PipeChangeReader(ctx.db.changes, read_fd).start()
    grpc_server, grpc_port = create_grpc_server(ctx, f"{settings.grpc_host}:{settings.grpc_port}")
    grpc_server.start()
    config = uvicorn_config(create_app(ctx), settings, graceful_shutdown_s=5)
    reconciler = ReconcilerThread(ctx)
    if reconcile:
        reconciler.start()
    freeze_startup_objects()
    return RunningController(ctx, api_port, grpc_port, uvicorn.Server(config), grpc_server, reconciler, api_socket,
                             workers, listeners)
