"""A real TensorFlow worker (``tf.distribute.Server``, job "worker", task 0) in its own process.

``python tests/remote_tf/worker_process.py [PORT]`` serves on ``127.0.0.1:PORT`` (0: any free
port) and prints ``listening 127.0.0.1:PORT`` once it serves. :func:`start_worker` runs that and
returns when the worker accepts connections. This is what the VM agent forwards to, with no agent
in between; tests use the worker's own address as the endpoint.
"""

from __future__ import annotations

import os
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

READY_PREFIX = "listening "
START_TIMEOUT_S = 90.0  # TensorFlow's import alone takes ~10 s on a busy two-core machine


class WorkerProcess:
    """A started worker: its endpoint, its pid, and the ways tests make it fail."""

    def __init__(self, process: subprocess.Popen[str], endpoint: str, log_path: Path) -> None:
        self.process, self.endpoint, self.log_path = process, endpoint, log_path

    @property
    def pid(self) -> int:
        return self.process.pid

    def kill(self) -> None:
        """Like a detach: the node agent kills the worker and its connections close."""
        if self.process.poll() is None:
            os.kill(self.pid, signal.SIGCONT)  # a frozen worker must run to die
            self.process.kill()
        self.process.wait(timeout=10)

    def freeze(self) -> None:
        """Like a lost node behind a relay that keeps the VM side open: connected, never answering."""
        os.kill(self.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.kill(self.pid, signal.SIGCONT)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def __enter__(self) -> WorkerProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.kill()


def start_worker(port: int = 0, *, cwd: str | os.PathLike[str] | None = None,
                 timeout_s: float = START_TIMEOUT_S) -> WorkerProcess:
    """Start a worker on ``127.0.0.1:port`` and wait until it accepts connections."""
    log_path = Path(tempfile.mkstemp(prefix="tf-worker-", suffix=".log")[1])
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "1", "CUDA_VISIBLE_DEVICES": ""}
    env.pop("TF_GRPC_DEFAULT_OPTIONS", None)  # the worker keeps gRPC's defaults, like a real one
    with log_path.open("w") as log:
        process = subprocess.Popen([sys.executable, os.path.abspath(__file__), str(port)], cwd=cwd, env=env,
                                   stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        endpoint = _wait_for_ready_line(process, timeout_s)
        _wait_until_accepting(endpoint, timeout_s)
    except BaseException:
        process.kill()
        raise
    return WorkerProcess(process, endpoint, log_path)


def _wait_for_ready_line(process: subprocess.Popen[str], timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if selector.select(timeout=deadline - time.monotonic()):
                line = process.stdout.readline()
                if not line:
                    raise RuntimeError(f"the TensorFlow worker exited with {process.wait()} before serving")
                if line.startswith(READY_PREFIX):
                    return line.removeprefix(READY_PREFIX).strip()
    raise TimeoutError(f"the TensorFlow worker did not serve within {timeout_s}s")


def _wait_until_accepting(endpoint: str, timeout_s: float) -> None:
    host, _, port = endpoint.rpartition(":")
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            socket.create_connection((host, int(port)), timeout=1.0).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def serve(port: int) -> None:
    import tensorflow as tf

    cluster = tf.train.ClusterSpec({"worker": [f"127.0.0.1:{port}"]})
    server = tf.distribute.Server(cluster, job_name="worker", task_index=0, protocol="grpc", start=True)
    print(READY_PREFIX + server.target.removeprefix("grpc://"), flush=True)  # port 0 resolved to the bound one
    server.join()


if __name__ == "__main__":
    serve(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
