"""Starting worker processes for the pool: forked from the fork server (default), or spawned afresh.

``fork``: one fork server per agent imports TensorFlow once (seconds, at start); each worker forked
from it enters its sandbox and is warm within milliseconds, so an emptied pool refills before the
next attach needs it. ``spawn``: each worker is a fresh interpreter that imports TensorFlow itself,
the fallback when forking is not wanted. Either way the worker dies with the thread that started it
(or its fork server), so :meth:`WorkerStarter.start` is called from the pool's one long-lived thread.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Callable

from agent.node.worker.fork_server import ForkServer
from agent.node.worker.launch import WorkerLaunch
from agent.node.worker.process import WorkerProcess
from agent.node.worker.records import WorkerRecords
from agent.node.worker.resources import WorkerResources

log = logging.getLogger(__name__)
FORK_SERVER_START_TIMEOUT_S = 300.0  # one TensorFlow import on a busy node, with room


class WorkerStarter:
    def __init__(self, launch: WorkerLaunch, records: WorkerRecords, say: Callable[[str], None]) -> None:
        self._launch, self._records, self._say = launch, records, say
        self._fork_server: ForkServer | None = None
        self.fork_server_starts = 0

    def start(self, name: str, on_change: Callable[[], None] | None = None) -> WorkerProcess:
        """A new worker (warm soon); raises when none can be started (the pool backs off and tells takers)."""
        server = self._running_fork_server() if self._launch.start == "fork" else None
        resources = WorkerResources.allocate(self._launch, name)
        try:
            with open(resources.log_path, "wb") as log_file:
                if server is not None:
                    process = server.fork(resources.uid, str(resources.scratch), log_file.fileno(), resources.netns_fd)
                else:
                    process = self._spawn(resources, log_file.fileno())
        except BaseException:
            resources.release(self._launch)
            raise
        self._records.remember(process.pid, scratch=resources.scratch)
        resources.name_log_after(process.pid)
        return WorkerProcess(name, process, resources, self._launch, self._records, on_change)

    def close(self) -> None:
        """End the fork server, even while it imports (after every taken worker was stopped: they die with it)."""
        server, self._fork_server = self._fork_server, None
        if server is not None:
            server.close()
            self._records.forget(server.pid)

    def _running_fork_server(self) -> ForkServer:
        server = self._fork_server
        if server is not None and server.alive:
            return server
        if server is not None:
            self._say(f"the worker fork server (pid {server.pid}) is gone; starting another")
            self.close()
        log_path = self._launch.log_dir / "fork-server.log"
        server = ForkServer.launch(self._launch.fork_server_command(), self._launch.environment(), log_path)
        self._records.remember(server.pid)
        self._fork_server, self.fork_server_starts = server, self.fork_server_starts + 1  # close() may end it now
        server.wait_ready(FORK_SERVER_START_TIMEOUT_S)
        log.info("worker fork server pid %s imported TensorFlow %s in %.1fs", server.pid, server.tf_version,
                 server.import_s)
        return server

    def _spawn(self, resources: WorkerResources, log_fd: int) -> subprocess.Popen:
        fds = (resources.netns_fd,) if resources.netns_fd is not None else ()
        return subprocess.Popen(
            self._launch.command(resources.netns_fd, resources.uid, str(resources.scratch)), stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=log_fd, env=self._launch.environment(), cwd="/", text=True,
            pass_fds=fds, start_new_session=True)
