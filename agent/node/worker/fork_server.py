"""The agent's end of the worker fork server (:mod:`remote_tf.worker_fork_server`): start it, ask it for workers.

The fork server imports TensorFlow once; each worker forked from it is ready to serve in tens of
milliseconds instead of the seconds an import takes. A forked worker is a :class:`ForkedProcess`,
which offers what the agent uses of :class:`subprocess.Popen` (``pid``, ``returncode``, ``poll``,
``wait``, ``kill``, ``stdin``, ``stdout``): the fork server is the worker's parent and reports its
exit status, and it hands over a pidfd opened before it could reap the worker, so a signal sent
through it can never hit a reused pid. When the fork server itself is gone, so are its workers
(``PR_SET_PDEATHSIG``); their pidfds say when they have exited.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import queue
import select
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import IO, Any

log = logging.getLogger(__name__)
MAX_MESSAGE = 64 * 1024
REPLY_TIMEOUT_S = 10.0
# The fork server must be single-threaded when it forks: no OpenBLAS thread pool in it (workers keep one thread too).
FORK_SAFE_ENV = {"OPENBLAS_NUM_THREADS": "1"}


class ForkServerFailed(RuntimeError):
    """The fork server could not start or fork; the message says why."""


class ForkedProcess:
    """A worker forked by the fork server, seen like a ``subprocess.Popen``."""

    def __init__(self, pid: int, pidfd: int, stdin: IO[str], stdout: IO[str]) -> None:
        self.pid, self.pidfd, self.stdin, self.stdout = pid, pidfd, stdin, stdout
        self.returncode: int | None = None
        self._server_gone = False
        self._changed = threading.Condition()

    def poll(self) -> int | None:
        with self._changed:
            self._settle_if_orphaned()
            return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            while self._settle_if_orphaned() is None:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise subprocess.TimeoutExpired(f"worker pid {self.pid}", timeout or 0.0)
                self._changed.wait(0.05 if self._server_gone else left)
            return self.returncode

    def kill(self) -> None:
        if self.pidfd >= 0:
            try:
                signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
            except ProcessLookupError:
                pass  # already exited

    def exited(self, code: int) -> None:
        """The fork server reaped it with this status (subprocess's convention: -signal or exit code)."""
        with self._changed:
            if self.returncode is None:
                self.returncode = code
            self._close_pidfd()
            self._changed.notify_all()

    def server_gone(self) -> None:
        """No exit status will come: the fork server is gone, and with it (PDEATHSIG) this worker."""
        with self._changed:
            self._server_gone = True
            self._changed.notify_all()

    def _settle_if_orphaned(self) -> int | None:
        """Once the fork server is gone, an exited worker counts as killed with it (SIGKILL)."""
        if self.returncode is None and self._server_gone and _has_exited(self.pidfd):
            self.returncode = -signal.SIGKILL
            self._close_pidfd()
        return self.returncode

    def _close_pidfd(self) -> None:
        if self.pidfd >= 0:
            os.close(self.pidfd)
            self.pidfd = -1


class ForkServer:
    """One running fork server; :meth:`fork` from any thread, one request at a time."""

    def __init__(self, process: subprocess.Popen, control: socket.socket, log_path: Path) -> None:
        self.process, self._control, self._log_path = process, control, log_path
        self.tf_version, self.import_s = "", 0.0
        self._requests = itertools.count(1)
        self._request_lock = threading.Lock()
        self._replies: queue.Queue[tuple[dict[str, Any], ForkedProcess | None]] = queue.Queue()
        self._pending: dict[int, dict[str, IO[str]]] = {}  # request -> the agent's ends of its pipes
        self._children: dict[int, ForkedProcess] = {}
        self._children_lock = threading.Lock()
        self._gone = threading.Event()

    @classmethod
    def launch(cls, command: list[str], env: dict[str, str], log_path: Path) -> ForkServer:
        """Start one; it imports TensorFlow meanwhile (:meth:`wait_ready`). ``close`` ends it at any point.

        Call it from a thread that lives as long as the fork server should: it dies with that thread.
        """
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        with open(log_path, "ab") as log_file:
            process = subprocess.Popen([*command, "--control-fd", str(theirs.fileno())], pass_fds=(theirs.fileno(),),
                                       stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file,
                                       env={**env, **FORK_SAFE_ENV}, cwd="/", start_new_session=True)
        theirs.close()
        return cls(process, ours, log_path)

    def wait_ready(self, timeout_s: float) -> None:
        """Until TensorFlow is imported (seconds); ForkServerFailed (and the process ended) otherwise."""
        self._control.settimeout(timeout_s)
        try:
            message, _ = _receive(self._control)
        except (TimeoutError, OSError, ValueError) as error:
            self.close()
            raise ForkServerFailed(f"the worker fork server did not import TensorFlow within {timeout_s:.0f}s "
                                   f"({error or type(error).__name__}); see {self._log_path}") from None
        if message.get("event") != "ready":
            self.close()
            raise ForkServerFailed(f"the worker fork server cannot start: {message.get('message', message)}")
        self._control.settimeout(None)
        self.tf_version, self.import_s = str(message.get("tf_version", "")), float(message.get("import_s", 0.0))
        threading.Thread(target=self._read_messages, name="fork-server", daemon=True).start()

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return not self._gone.is_set() and self.process.poll() is None

    def fork(self, uid: int | None, scratch: str, stderr_fd: int, netns_fd: int | None) -> ForkedProcess:
        """A new worker process with these descriptors and sandbox; ForkServerFailed if it cannot be had."""
        stdin_r, stdin_w = os.pipe2(os.O_CLOEXEC)
        stdout_r, stdout_w = os.pipe2(os.O_CLOEXEC)
        theirs = [stdin_r, stdout_w, stderr_fd, *([netns_fd] if netns_fd is not None else [])]
        pipes = {"stdin": os.fdopen(stdin_w, "w"), "stdout": os.fdopen(stdout_r, "r")}
        try:
            with self._request_lock:
                request = next(self._requests)
                self._pending[request] = pipes
                message = json.dumps({"fork": request, "uid": uid, "scratch": scratch}).encode()
                socket.send_fds(self._control, [message], theirs)
                reply, process = self._reply(request)
        except (OSError, ForkServerFailed) as error:
            reply, process = {"message": str(error)}, None
        finally:
            os.close(stdin_r)
            os.close(stdout_w)
            self._pending.pop(request, None)
        if process is None:
            for pipe in pipes.values():
                pipe.close()
            raise ForkServerFailed(f"the worker fork server cannot fork: {reply.get('message', reply)}")
        return process

    def close(self) -> None:
        """End the fork server, importing or serving (its workers die with it: stop them first)."""
        self._control.close()  # a serving fork server exits when it sees that
        try:
            self.process.wait(0 if self._gone.is_set() or not self.tf_version else 5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def _reply(self, request: int) -> tuple[dict[str, Any], ForkedProcess | None]:
        while True:
            try:
                reply, process = self._replies.get(timeout=REPLY_TIMEOUT_S)
            except queue.Empty:
                raise ForkServerFailed(f"no answer within {REPLY_TIMEOUT_S:.0f}s") from None
            if reply.get("fork") == request or reply.get("event") == "gone":
                return reply, process

    def _read_messages(self) -> None:
        try:
            while True:
                message, fds = _receive(self._control)
                self._take(message, fds)
        except (OSError, ValueError):
            pass  # closed: by us (close) or by its end (it died)
        self._gone.set()
        self._replies.put(({"event": "gone", "message": "the fork server exited"}, None))
        with self._children_lock:
            children = list(self._children.values())
        for child in children:
            child.server_gone()

    def _take(self, message: dict[str, Any], fds: list[int]) -> None:
        event = message.get("event")
        pipes = self._pending.get(message.get("fork"))  # type: ignore[arg-type]
        if event == "forked" and fds and pipes is not None:
            child = ForkedProcess(int(message["pid"]), fds[0], pipes["stdin"], pipes["stdout"])
            with self._children_lock:
                self._children[child.pid] = child  # before its exit can be read below
            self._replies.put((message, child))
        elif event == "forked" and fds:  # a request given up on: nobody will ever use this worker
            signal.pidfd_send_signal(fds[0], signal.SIGKILL)
            os.close(fds[0])
        elif event == "exited":
            with self._children_lock:
                child = self._children.pop(int(message["pid"]), None)
            if child is not None:
                child.exited(int(message["code"]))
        else:
            for fd in fds:
                os.close(fd)
            self._replies.put((message, None))


def _receive(control: socket.socket) -> tuple[dict[str, Any], list[int]]:
    data, fds, _flags, _address = socket.recv_fds(control, MAX_MESSAGE, 4)
    if not data:
        raise ValueError("the fork server closed its end")
    return json.loads(data), fds


def _has_exited(pidfd: int) -> bool:
    if pidfd < 0:
        return True
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    return bool(poller.poll(0))
