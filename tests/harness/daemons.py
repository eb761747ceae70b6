"""The agents as real child processes, the way an operator runs them: their lines, SIGKILL and restart,
and what each holds (threads, descriptors, memory) for leak checks.

* ``DaemonProcess``: start a console script; its output goes to a log file and, line by line, to
  ``lines``; ``said``/``wait_for`` look for a line; ``kill`` is SIGKILL (no clean-up of any kind),
  ``stop`` is SIGTERM then SIGKILL; ``start`` again runs the same command on the same state.
* ``node_agent_args`` / ``vm_agent_args``: the ``eais-node run`` and ``eais-agent run`` command lines
  for a controller on this machine.
* ``holdings(pid)``: threads, open descriptors and resident memory of one process right now.

Every wait is bounded, and a child that dies while it is awaited fails with the tail of its log.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

SCRIPTS = Path(sys.executable).parent
QUIET_TF = {"TF_CPP_MIN_LOG_LEVEL": "2", "TF_ENABLE_ONEDNN_OPTS": "0", "CUDA_VISIBLE_DEVICES": ""}


@dataclass(frozen=True)
class Holdings:
    threads: int
    fds: int
    rss_mib: float


def holdings(pid: int) -> Holdings:
    process = psutil.Process(pid)
    with process.oneshot():
        return Holdings(process.num_threads(), process.num_fds(), process.memory_info().rss / 2**20)


class DaemonProcess:
    def __init__(self, name: str, args: list[str], log_path: Path, *, env: dict[str, str] | None = None,
                 prefix: tuple[str, ...] = ()) -> None:
        self.name, self.args, self.log_path, self.prefix = name, args, log_path, prefix
        self.env = {**os.environ, **QUIET_TF, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.lines: list[str] = []
        self.process: subprocess.Popen | None = None
        self.starts = 0

    @property
    def pid(self) -> int:
        assert self.process is not None, f"{self.name} was never started"
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> DaemonProcess:
        assert not self.alive, f"{self.name} is already running"
        self.starts += 1
        self.lines.append(f"===== start #{self.starts}")
        self.process = subprocess.Popen([*self.prefix, *self.args], stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True, env=self.env)
        threading.Thread(target=self._read, args=(self.process,), name=f"{self.name}-lines", daemon=True).start()
        return self

    def said(self, text: str, *, since_start: bool = True) -> bool:
        lines = self._since_start() if since_start else self.lines
        return any(text in line for line in lines)

    def wait_for(self, text: str, timeout_s: float = 60.0) -> None:
        """Until a line of this run contains ``text``; fails at once if the process exits first."""
        deadline = time.monotonic() + timeout_s
        while not self.said(text):
            if not self.alive:
                raise AssertionError(f"{self.name} exited with {self.process.returncode} before saying "
                                     f"{text!r}:\n{self.tail()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name} did not say {text!r} within {timeout_s}s:\n{self.tail()}")
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL and reap: no clean-up of any kind."""
        if self.alive:
            self.process.send_signal(signal.SIGKILL)
        if self.process is not None:
            self.process.wait(15)

    def stop(self, timeout_s: float = 30.0) -> int | None:
        """SIGTERM; SIGKILL if it has not stopped within ``timeout_s``."""
        if not self.alive:
            return self.process.returncode if self.process else None
        self.process.terminate()
        try:
            return self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.lines[-lines:])

    def _since_start(self) -> list[str]:
        lines = list(self.lines)
        marker = f"===== start #{self.starts}"
        return lines[lines.index(marker) + 1:] if marker in lines else lines

    def _read(self, process: subprocess.Popen) -> None:
        with open(self.log_path, "a") as log:
            for line in process.stdout:
                self.lines.append(line.rstrip())
                log.write(line)
                log.flush()


def node_agent_args(controller: str, ca_file: Path, token_file: Path, state_dir: Path, *extra: str,
                    advertise: str = "127.0.0.1") -> list[str]:
    return [str(SCRIPTS / "eais-node"), "run", "--controller", controller, "--controller-ca", str(ca_file),
            "--node-token-file", str(token_file), "--backend", "cpu", "--gateway-port", "0",
            "--advertise", advertise, "--worker-isolation", "netns", "--region", "cn-hangzhou",
            "--zone", "cn-hangzhou-a", "--node-id", "fault-node", "--state-dir", str(state_dir), *extra]


def vm_agent_args(controller: str, ca_file: Path, credentials_file: Path, endpoint: str, state_dir: Path,
                  *extra: str) -> list[str]:
    return [str(SCRIPTS / "eais-agent"), "run", "--controller", controller, "--controller-ca", str(ca_file),
            "--credentials-file", str(credentials_file), "--endpoint", endpoint, "--region", "cn-hangzhou",
            "--zone", "cn-hangzhou-a", "--vpc-id", "vpc-local", "--vswitch-id", "vsw-local",
            "--state-dir", str(state_dir), *extra]
