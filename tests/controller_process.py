"""``eais-controller serve`` as a real child process on loopback ports, for crash and restart tests.

* ``free_port()``: a free TCP port on 127.0.0.1.
* ``create_account_cli(db_url, state_dir, name)``: ``eais-controller account create`` in a child
  process; returns its JSON (``AccountId``, ``AccessKeyId``, ``AccessKeySecret``).
* ``ControllerProcess``: start (and wait for ``/healthz``, or not: to kill it while it starts),
  ``kill`` (SIGKILL), ``stop`` (SIGTERM), ``start`` again on the same database, state directory,
  ports and extra ``serve_args``. Use it as a context manager:
  leaving the block always kills the child.

Every wait is bounded; a child that dies while starting fails with the tail of its log.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[1]
LOOPBACK = "127.0.0.1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def _child_env() -> dict[str, str]:
    # Only what the command line says: no EAIS_* setting of the developer's shell leaks in.
    env = {k: v for k, v in os.environ.items() if not k.startswith("EAIS_")}
    env["PYTHONUNBUFFERED"] = "1"
    env["NO_PROXY"] = env["no_proxy"] = LOOPBACK
    return env


def create_account_cli(
    db_url: str, state_dir: Path, name: str, *, balance: str = "1000", real_name_verified: bool = True,
    timeout_s: float = 60.0,
) -> dict[str, str]:
    """``python -m controller.cli account create ...``; the JSON it prints."""
    command = [sys.executable, "-m", "controller.cli", "account", "create", "--db", db_url,
               "--state-dir", str(state_dir), "--name", name, "--balance", balance]
    if real_name_verified:
        command.append("--real-name-verified")
    done = subprocess.run(command, cwd=REPO_ROOT, env=_child_env(), capture_output=True, text=True, timeout=timeout_s)
    if done.returncode != 0:
        raise RuntimeError(f"account create exited {done.returncode}:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout)


class ControllerProcess:
    """One ``eais-controller serve`` child at a time, always on the same ports, database and state."""

    def __init__(
        self, db_url: str, state_dir: Path, log_path: Path, *, api_port: int | None = None, grpc_port: int | None = None,
        serve_args: tuple[str, ...] = (),
    ) -> None:
        self.db_url, self.state_dir, self.log_path, self.serve_args = db_url, state_dir, log_path, serve_args
        self.api_port = api_port or free_port()
        self.grpc_port = grpc_port or free_port()
        self.process: subprocess.Popen | None = None
        self.starts = 0
        self.kills = 0

    @property
    def endpoint(self) -> str:
        return f"{LOOPBACK}:{self.api_port}"

    @property
    def grpc_target(self) -> str:
        return f"{LOOPBACK}:{self.grpc_port}"

    @property
    def agent_ca_file(self) -> Path:
        """What agents are given as --controller-ca (the controller makes it at its first start)."""
        return self.state_dir / "agent-ca.crt"

    @property
    def node_token(self) -> str:
        return (self.state_dir / "node.token").read_text().strip()

    def start(self, timeout_s: float = 45.0, *, wait: bool = True) -> None:
        """Start ``serve`` and return once ``/healthz`` answers 200 (at once with ``wait=False``)."""
        assert self.process is None or self.process.poll() is not None, "the controller is already running"
        command = [sys.executable, "-m", "controller.cli", "serve", "--db", self.db_url,
                   "--state-dir", str(self.state_dir), "--api-host", LOOPBACK, "--api-port", str(self.api_port),
                   "--grpc-host", LOOPBACK, "--grpc-port", str(self.grpc_port), *self.serve_args]
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"\n===== start #{self.starts} at {time.strftime('%H:%M:%S')} =====\n".encode())
            log.flush()
            self.process = subprocess.Popen(command, cwd=REPO_ROOT, env=_child_env(), stdin=subprocess.DEVNULL,
                                            stdout=log, stderr=subprocess.STDOUT)
        if wait:
            self._wait_ready(timeout_s)

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        with httpx.Client(trust_env=False, timeout=1.0) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"the controller exited with {self.process.returncode} while starting:\n"
                                       f"{self.log_tail()}")
                try:
                    if client.get(f"http://{self.endpoint}/healthz").status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"the controller was not ready within {timeout_s}s:\n{self.log_tail()}")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> int | None:
        """SIGKILL the child (no clean-up of any kind) and reap it; its exit status, None if none ran."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.kills += 1
        try:
            return self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL cannot be ignored
            return None

    def stop(self, timeout_s: float = 20.0) -> int | None:
        """SIGTERM and wait; SIGKILL if it does not stop in time."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return self.kill()

    def log_tail(self, chars: int = 6000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    def __enter__(self) -> ControllerProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.kill()
