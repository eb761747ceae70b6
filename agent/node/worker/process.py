"""One TensorFlow worker process, from start to kill (the child side is :mod:`remote_tf.worker`).

started (:mod:`agent.node.worker.starter`) -> warm -> assigned once -> ready -> killed. Its stdout
carries one JSON event per line, read by a thread of its own; its stderr goes to
``<log_dir>/<name>-pid<pid>.log``, kept only when it failed. With network isolation the agent
makes the namespace first and hands the worker a descriptor for it, so the agent knows where the
worker's port is without reading the worker's ``/proc`` entry (which, under another uid, would
need CAP_SYS_PTRACE, a capability the systemd unit does not keep). Once it is reaped, its
resources (namespace, uid, scratch directory) are given back.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.node.netns import NetworkNamespace
from agent.node.worker.fork_server import ForkedProcess
from agent.node.worker.launch import WorkerLaunch
from agent.node.worker.records import WorkerRecords
from agent.node.worker.resources import WorkerResources

log = logging.getLogger(__name__)
POLL_S = 0.1
Abandon = Callable[[], bool]


class WorkerFailed(RuntimeError):
    """The worker cannot serve; the message says why (it goes into the controller's log)."""


class WorkerAbandoned(RuntimeError):
    """The wait was given up because the worker is no longer wanted."""


class WorkerProcess:
    def __init__(self, name: str, process: subprocess.Popen | ForkedProcess, resources: WorkerResources,
                 launch: WorkerLaunch, records: WorkerRecords, on_change: Callable[[], None] | None = None) -> None:
        self.name, self.process, self.resources = name, process, resources
        self._launch, self._records = launch, records
        self._on_change = on_change
        self.spawned_at = time.monotonic()
        self.warm_info: dict[str, Any] | None = None
        self.ready_info: dict[str, Any] | None = None
        self.error: str | None = None
        self.exit_code: int | None = None
        self._changed = threading.Condition()
        self._killed = False
        # Before anyone can reap the child: a forked one's fork server opened it before it could.
        self._pidfd = os.dup(process.pidfd) if isinstance(process, ForkedProcess) else os.pidfd_open(process.pid)
        threading.Thread(target=self._read_events, name=f"{name}-events", daemon=True).start()

    @property
    def namespace(self) -> NetworkNamespace | None:
        return self.resources.namespace

    @property
    def log_path(self) -> Path:
        return self.resources.log_path

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.exit_code is None and not self._killed

    @property
    def is_warm(self) -> bool:
        return self.warm_info is not None and self.alive

    def wait_warm(self, timeout_s: float, abandon: Abandon | None = None) -> None:
        self._wait_for(lambda: self.warm_info is not None, timeout_s, abandon, "import TensorFlow")

    def assign(self, assignment: dict[str, Any]) -> None:
        try:
            self.process.stdin.write(json.dumps(assignment) + "\n")
            self.process.stdin.flush()
        except (OSError, ValueError):
            raise WorkerFailed(f"worker {self.name} (pid {self.pid}) is gone: {self.describe_end()}") from None

    def wait_ready(self, timeout_s: float, abandon: Abandon | None = None) -> dict[str, Any]:
        self._wait_for(lambda: self.ready_info is not None, timeout_s, abandon, "start its TensorFlow server")
        return self.ready_info or {}

    def connect(self, port: int, timeout_s: float) -> socket.socket:
        """A blocking socket to the worker's port: inside its namespace, or on the host's loopback."""
        if self.namespace is not None:
            return self.namespace.connect(port, timeout_s)
        sock = socket.create_connection(("127.0.0.1", port), timeout=timeout_s)
        sock.settimeout(None)
        return sock

    def kill(self, timeout_s: float = 10.0) -> None:
        """SIGKILL the worker and reap it; then drop its namespace, uid and record."""
        with self._changed:
            self._killed = True
        if self.process.returncode is None:
            try:  # through a pidfd: a pid already reaped and reused cannot be hit by mistake
                signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)
            except OSError:
                pass  # already gone
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            log.error("worker %s (pid %s) survived SIGKILL for %.0fs", self.name, self.pid, timeout_s)
            return
        self._release_resources()

    def describe_end(self) -> str:
        code = self.process.poll()
        if code is None:
            return "still running"
        ending = f"killed by signal {-code}" if code < 0 else f"exited with code {code}"
        return f"{ending}{self._log_tail()}"

    def notify_to(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` on every event and on exit from now on (the pool's, then its owner's)."""
        self._on_change = listener
        if self.exit_code is not None:
            listener()

    def discard_log(self) -> None:
        self.log_path.unlink(missing_ok=True)

    def _release_resources(self) -> None:
        self.resources.release(self._launch)
        if self._pidfd >= 0:
            os.close(self._pidfd)
            self._pidfd = -1
        self._records.forget(self.pid)
        for stream in (self.process.stdin, self.process.stdout):
            try:
                stream.close()
            except OSError:
                pass

    def _wait_for(self, done: Callable[[], bool], timeout_s: float, abandon: Abandon | None, step: str) -> None:
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while not done():
                if self.error is not None:
                    raise WorkerFailed(f"worker {self.name} could not {step}: {self.error}")
                if self.exit_code is not None or self._killed:
                    raise WorkerFailed(f"worker {self.name} (pid {self.pid}) {self.describe_end()} "
                                       f"before it could {step}")
                if abandon is not None and abandon():
                    raise WorkerAbandoned(f"worker {self.name} is no longer wanted")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise WorkerFailed(f"worker {self.name} (pid {self.pid}) did not {step} within {timeout_s:.0f}s")
                self._changed.wait(min(POLL_S, left))

    def _read_events(self) -> None:
        try:
            for line in self.process.stdout:
                self._take_event(line)
        except (OSError, ValueError):
            pass  # stdout closed by kill()
        code = self.process.wait()
        with self._changed:
            self.exit_code = code
            self._changed.notify_all()
        self._tell_listener()

    def _tell_listener(self) -> None:
        if self._on_change is not None:
            self._on_change()

    def _take_event(self, line: str) -> None:
        try:
            event = json.loads(line)
            kind = event.get("event")
        except (ValueError, AttributeError):
            log.debug("worker %s: stray output %r", self.name, line[:200])
            return
        with self._changed:
            if kind == "warm":
                self.warm_info = event
            elif kind == "ready":
                self.ready_info = event
            elif kind == "error":
                self.error = str(event.get("message", "no message"))[:500]
            self._changed.notify_all()
        self._tell_listener()

    def _log_tail(self, lines: int = 3) -> str:
        try:
            with open(self.log_path, "rb") as log_file:
                log_file.seek(max(0, log_file.seek(0, os.SEEK_END) - 4096))
                tail = log_file.read().decode(errors="replace").strip().splitlines()[-lines:]
        except OSError:
            return ""
        return "; its log ends: " + " | ".join(line.strip()[:200] for line in tail) if tail else ""
