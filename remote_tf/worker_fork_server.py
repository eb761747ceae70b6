"""The worker fork server: TensorFlow imported once, then one worker forked from it per request.

    python -m remote_tf.worker_fork_server --control-fd FD [--parent-pid PID]

Importing TensorFlow takes seconds on a busy node; forking a process that has done so takes
milliseconds, and the forked worker has its server up some 50 ms later. The node agent starts one
fork server (as itself, in the host's network namespace) and asks it for workers over a control
socket; each forked worker then enters its own sandbox (:mod:`remote_tf.worker_sandbox`) and runs
exactly as a freshly started :mod:`remote_tf.worker` does.

What makes the fork safe (checked at start, refused otherwise):
- one thread: after ``import tensorflow`` the only other thread is OpenBLAS's pool, which the agent
  turns off (``OPENBLAS_NUM_THREADS=1``); TensorFlow starts its thread pools lazily, in the worker;
- CUDA is never initialised here (no device is listed or touched), so each worker starts its own
  after hiding the other GPUs;
- a forked worker closes every descriptor it was not given, the control socket first: no tenant's
  process can ask the fork server (which keeps the agent's privileges) for anything.

Control socket (``AF_UNIX``/``SOCK_SEQPACKET``, one JSON object per message, descriptors as SCM_RIGHTS)::

    server -> agent  {"event": "ready", "pid": P, "tf_version": "2.21.0", "import_s": 3.9}
                     {"event": "error", "message": "..."}                (then it exits)
    agent -> server  {"fork": ID, "uid": 61000 | null, "scratch": "/tmp/eais-worker-..."}
                     + descriptors [stdin, stdout, stderr] (+ [netns] for a private network namespace)
    server -> agent  {"event": "forked", "fork": ID, "pid": P} + [pidfd of P]
                     {"event": "fork_failed", "fork": ID, "message": "..."}
                     {"event": "exited", "pid": P, "code": C}    (C as subprocess's returncode)

The server ends when the control socket closes (the agent let go of it, or died: it also has
``PR_SET_PDEATHSIG``); its workers die with it.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import selectors
import signal
import socket
import sys
import time
from typing import Any

PR_SET_PDEATHSIG, PR_SET_NAME = 1, 15
MAX_MESSAGE = 64 * 1024
MAX_FDS = 4
WORKER_NAME = b"eais-worker"  # the process name (comm) of forked workers, as ps and /proc show it

_libc = ctypes.CDLL(None, use_errno=True)


def send(control: socket.socket, message: dict[str, Any], fds: list[int] = ()) -> None:  # type: ignore[assignment]
    socket.send_fds(control, [json.dumps(message).encode()], list(fds))


def import_tensorflow() -> str:
    """Import TensorFlow and the parts every worker uses; its version. RuntimeError if forking would be unsafe."""
    import tensorflow as tf

    tf.distribute.Server, tf.train.ClusterSpec, tf.config.set_visible_devices  # noqa: B018 - load them now, once
    threads = len(os.listdir("/proc/self/task"))
    if threads != 1:
        raise RuntimeError(f"{threads} threads run after importing TensorFlow (is OPENBLAS_NUM_THREADS=1 set?); "
                           "forking workers from this process would be unsafe")
    return tf.__version__


def become_worker(control: socket.socket, request: dict[str, Any], fds: list[int], started: float,
                  server_pid: int) -> int:
    """In the forked child: take the given descriptors as 0/1/2 (+3 for the namespace), drop the rest, serve."""
    from remote_tf.worker import run_worker
    from remote_tf.worker_sandbox import Sandbox

    control.close()  # first of all: a tenant's worker must never reach the fork server
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    for target, fd in enumerate(fds):
        os.dup2(fd, target, inheritable=True)
    os.closerange(len(fds), os.sysconf("SC_OPEN_MAX"))
    os.setsid()
    _libc.prctl(PR_SET_NAME, WORKER_NAME, 0, 0, 0)
    sys.stdin, sys.stdout, sys.stderr = (open(0, closefd=False), open(1, "w", closefd=False),  # noqa: SIM115
                                         open(2, "w", closefd=False))
    netns_fd = 3 if len(fds) > 3 else None
    return run_worker(Sandbox(netns_fd, request.get("uid"), server_pid, request.get("scratch")), started)


class ForkServer:
    def __init__(self, control: socket.socket) -> None:
        self._control = control
        self._selector = selectors.DefaultSelector()
        self._wakeup_r, wakeup_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wakeup_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # the wakeup descriptor tells the loop to reap
        self._selector.register(control, selectors.EVENT_READ)
        self._selector.register(self._wakeup_r, selectors.EVENT_READ)

    def serve(self) -> int:
        """Fork on every request and report every exit, until the control socket closes."""
        while True:
            for key, _ in self._selector.select():
                if key.fileobj == self._wakeup_r:
                    self._drain_wakeups()
                    self._reap()
                elif not self._take_request():
                    return 0

    def _take_request(self) -> bool:
        try:
            data, fds, _flags, _address = socket.recv_fds(self._control, MAX_MESSAGE, MAX_FDS)
        except InterruptedError:
            return True
        if not data:
            return False  # the agent closed its end
        started, server_pid = time.monotonic(), os.getpid()
        try:
            request = json.loads(data)
            pid = os.fork()
        except (ValueError, OSError) as error:
            _close_all(fds)
            send(self._control, {"event": "fork_failed", "fork": _fork_id(data), "message": str(error)})
            return True
        if pid == 0:
            os._exit(become_worker(self._control, request, fds, started, server_pid))
        pidfd = os.pidfd_open(pid)  # before this process can reap the child: the agent's handle is never stale
        _close_all(fds)
        send(self._control, {"event": "forked", "fork": request.get("fork"), "pid": pid}, [pidfd])
        os.close(pidfd)
        return True

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            send(self._control, {"event": "exited", "pid": pid, "code": os.waitstatus_to_exitcode(status)})

    def _drain_wakeups(self) -> None:
        try:
            while os.read(self._wakeup_r, 512):
                pass
        except BlockingIOError:
            pass


def _fork_id(data: bytes) -> object:
    try:
        return json.loads(data).get("fork")
    except (ValueError, AttributeError):
        return None


def _close_all(fds: list[int]) -> None:
    for fd in fds:
        os.close(fd)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m remote_tf.worker_fork_server", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--control-fd", type=int, required=True, help="the agent's control socket (SOCK_SEQPACKET)")
    parser.add_argument("--parent-pid", type=int, help="exit at once if the parent is no longer this process")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    control = socket.socket(fileno=options.control_fd)
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # dies with the agent's thread that started it
    if options.parent_pid is not None and os.getppid() != options.parent_pid:
        return 3
    started = time.monotonic()
    try:
        version = import_tensorflow()
    except Exception as error:  # noqa: BLE001 - told to the agent, which says it to the operator
        send(control, {"event": "error", "message": f"{type(error).__name__}: {error}"})
        return 2
    send(control, {"event": "ready", "pid": os.getpid(), "tf_version": version,
                   "import_s": round(time.monotonic() - started, 3)})
    return ForkServer(control).serve()


if __name__ == "__main__":
    sys.exit(main())
