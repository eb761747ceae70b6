"""The processes a fleet benchmark runs: controller replicas on one database, and simulated fleet processes.

Every process is a real ``eais-controller serve`` or ``python -m agent.simulated_fleet``; the
benchmark only starts them, reads what they expose (``/healthz``, the fleet's ``--stats-file``)
and stops them.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

REPO_ROOT = Path(__file__).resolve().parents[1]
LOOPBACK = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EAIS_") or k.startswith("EAIS_LIFECYCLE__")}
    return {**env, "PYTHONUNBUFFERED": "1", "NO_PROXY": LOOPBACK, "no_proxy": LOOPBACK}


@dataclass
class Replica:
    api_port: int
    grpc_port: int
    process: subprocess.Popen

    @property
    def api(self) -> str:
        return f"{LOOPBACK}:{self.api_port}"

    @property
    def grpc(self) -> str:
        return f"{LOOPBACK}:{self.grpc_port}"


@dataclass
class Controllers:
    """``count`` replicas of ``eais-controller serve`` on ``db_url``, sharing one state directory."""

    db_url: str
    state_dir: Path
    log_dir: Path
    count: int = 1
    api_processes: int = 1
    replicas: list[Replica] = field(default_factory=list)

    def start(self, timeout_s: float = 90.0) -> None:
        for number in range(self.count):
            api_port, grpc_port = free_port(), free_port()
            command = [sys.executable, "-m", "controller.cli", "serve", "--db", self.db_url, "--state-dir",
                       str(self.state_dir), "--api-port", str(api_port), "--grpc-port", str(grpc_port),
                       "--grpc-tls-name", LOOPBACK, "--api-processes", str(self.api_processes)]
            log = (self.log_dir / f"controller-{number}.log").open("ab")
            process = subprocess.Popen(command, cwd=REPO_ROOT, env=_env(), stdout=log, stderr=subprocess.STDOUT)
            self.replicas.append(Replica(api_port, grpc_port, process))
            _wait_healthy(self.replicas[-1], timeout_s)  # one after another: the first creates keys and schema

    def account(self, name: str) -> dict[str, str]:
        done = subprocess.run([sys.executable, "-m", "controller.cli", "account", "create", "--db", self.db_url,
                               "--state-dir", str(self.state_dir), "--name", name, "--balance", "1000000",
                               "--real-name-verified"], cwd=REPO_ROOT, env=_env(), capture_output=True, text=True,
                              check=True, timeout=60)
        return json.loads(done.stdout)

    def processes(self) -> list[psutil.Process]:
        """Every process of every replica (API worker processes included)."""
        found = []
        for replica in self.replicas:
            main = psutil.Process(replica.process.pid)
            found += [main, *main.children(recursive=True)]
        return found

    def stop(self) -> None:
        for replica in self.replicas:
            replica.process.terminate()
        for replica in self.replicas:
            try:
                replica.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                replica.process.kill()


def _wait_healthy(replica: Replica, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if replica.process.poll() is not None:
            raise RuntimeError(f"controller on {replica.api} exited with {replica.process.returncode}")
        try:
            if httpx.get(f"http://{replica.api}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"controller on {replica.api} not healthy within {timeout_s}s")


@dataclass
class FleetProcess:
    """One ``python -m agent.simulated_fleet`` with its agents numbered from ``first``."""

    nodes: int
    vms: int
    first: int
    stats_file: Path
    process: subprocess.Popen | None = None

    def start(self, controllers: Controllers, account: dict[str, str], log_dir: Path) -> None:
        targets = ",".join(replica.grpc for replica in controllers.replicas)
        command = [sys.executable, "-m", "agent.simulated_fleet", "--controller", targets, "--spread",
                   "--controller-ca", str(controllers.state_dir / "agent-ca.crt"),
                   "--node-token-file", str(controllers.state_dir / "node.token"),
                   f"--access-key-id={account['AccessKeyId']}", f"--access-key-secret={account['AccessKeySecret']}",
                   "--nodes", str(self.nodes), "--vms", str(self.vms), "--first-number", str(self.first),
                   "--slices-per-type", "2", "--quiet", "--stats-file", str(self.stats_file), "--stats-every-s", "1"]
        log = (log_dir / f"fleet-{self.first}.log").open("ab")
        self.process = subprocess.Popen(command, cwd=REPO_ROOT, env=_env(), stdout=log, stderr=subprocess.STDOUT)

    def stats(self) -> dict:
        try:
            return json.loads(self.stats_file.read_text())
        except (OSError, ValueError):
            return {"agents": self.nodes + self.vms, "registered": 0, "heartbeats": {"answered": 0, "late": 0,
                                                                                   "failed": 0, "worst_late_s": 0}}

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
