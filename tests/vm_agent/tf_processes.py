"""Real TensorFlow processes for the tests: one worker and one client, started once per session.

Importing TensorFlow takes about ten seconds on two cores, so both start in the background as
soon as the first test asks for either, and each is waited for only when it is needed.
"""

from __future__ import annotations

import json
import os
import queue
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 90.0
QUIET_TF = {"TF_CPP_MIN_LOG_LEVEL": "2", "TF_ENABLE_ONEDNN_OPTS": "0", "CUDA_VISIBLE_DEVICES": ""}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class TfProcess:
    """A python -m MODULE child whose stdout lines arrive on a queue; stderr goes to ``log_path``."""

    def __init__(self, module: str, args: list[str], log_path: Path) -> None:
        self.log_path = log_path
        self._lines: queue.Queue[str] = queue.Queue()
        self._log = open(log_path, "wb")  # noqa: SIM115 - the child writes it until stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", module, *args], cwd=REPO_ROOT, env={**os.environ, **QUIET_TF},
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, text=True, bufsize=1)
        threading.Thread(target=self._read_lines, daemon=True).start()
        self._ready = False

    def wait_ready(self) -> None:
        if not self._ready:
            line = self.next_line(START_TIMEOUT_S)
            assert line == "READY", f"{self.process.args} said {line!r}; see {self.log_path}"
            self._ready = True

    def next_line(self, timeout_s: float) -> str:
        try:
            return self._lines.get(timeout=timeout_s)
        except queue.Empty:
            raise AssertionError(f"no answer within {timeout_s}s from {self.process.args}; see {self.log_path}") from None

    def stop(self) -> None:
        self.process.kill()
        self.process.wait(10)
        self._log.close()

    def _read_lines(self) -> None:
        for line in self.process.stdout:
            self._lines.put(line.strip())


class TfWorker(TfProcess):
    def __init__(self, log_dir: Path) -> None:
        self.port = free_port()
        super().__init__("tests.vm_agent.tf_worker_main", [str(self.port)], log_dir / "tf_worker.log")


class TfClient(TfProcess):
    def __init__(self, log_dir: Path) -> None:
        super().__init__("tests.vm_agent.tf_client_main", [], log_dir / "tf_client.log")

    def ask(self, timeout_s: float = 30.0, **command: Any) -> dict[str, Any]:
        """Run one command in the client; its answer (see tf_client_main)."""
        self.send(**command)
        return self.answer(timeout_s)

    def send(self, **command: Any) -> None:
        """Start a command whose answer is read later with :meth:`answer`."""
        self.wait_ready()
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()

    def answer(self, timeout_s: float) -> dict[str, Any]:
        return json.loads(self.next_line(timeout_s))
