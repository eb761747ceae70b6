"""Extra API processes sharing the controller's listening socket, to use more than one core.

The primary process serves the API too, and alone runs the agent gRPC service and the
reconciler; workers only answer HTTP. What they commit reaches the primary's agent streams by
NOTIFY on PostgreSQL, through a pipe on SQLite. Each worker opens the same database with the same
settings (passed as JSON in ``EAIS_WORKER_SETTINGS``) and gets the socket as an inherited fd.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time

import uvicorn

from controller.api.app import create_app
from controller.api.http_server import uvicorn_config
from controller.change_listener import forward_changes_to_pipe
from controller.context import ControllerContext
from controller.gc_tuning import freeze_startup_objects
from controller.settings import ControllerSettings

SETTINGS_ENV = "EAIS_WORKER_SETTINGS"


def spawn_api_workers(
    settings: ControllerSettings, sock: socket.socket, count: int, *, changes_fd: int | None = None
) -> list[subprocess.Popen]:
    """``count`` workers on ``sock``; with ``changes_fd`` (SQLite) they write their committed changes there."""
    env = {**os.environ, SETTINGS_ENV: settings.model_dump_json()}
    fd = sock.fileno()
    fds = (fd,) if changes_fd is None else (fd, changes_fd)
    return [
        subprocess.Popen([sys.executable, "-m", "controller.api_workers", str(fd), str(os.getpid()),
                          str(-1 if changes_fd is None else changes_fd)], env=env, pass_fds=fds)
        for _ in range(count)
    ]


def stop_api_workers(workers: list[subprocess.Popen]) -> None:
    for worker in workers:
        worker.terminate()
    for worker in workers:
        try:
            worker.wait(timeout=10)
        except subprocess.TimeoutExpired:
            worker.kill()


def _exit_with_parent(server: uvicorn.Server, parent_pid: int) -> None:
    """A worker must not outlive the controller, even one that was SIGKILLed."""
    while os.getppid() == parent_pid:
        time.sleep(0.5)
    server.should_exit = True


def _serve(fd: int, parent_pid: int, changes_fd: int) -> None:
    settings = ControllerSettings.model_validate_json(os.environ[SETTINGS_ENV])
    ctx = ControllerContext.open(settings, migrate=False)
    if changes_fd >= 0:
        forward_changes_to_pipe(ctx.db.changes, ctx.db.origin, changes_fd)
    sock = socket.socket(fileno=fd)
    config = uvicorn_config(create_app(ctx), settings, graceful_shutdown_s=2)
    server = uvicorn.Server(config)
    freeze_startup_objects()
    threading.Thread(target=_exit_with_parent, args=(server, parent_pid), daemon=True).start()
    server.run(sockets=[sock])


if __name__ == "__main__":
    _serve(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))
