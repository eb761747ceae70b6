"""``eais-node`` as an operator runs it: a separate process, its lines, its exit codes, systemd's view."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.harness.waiting import eventually
from tests.node_agent.conftest import NODE_TOKEN, Controller

EAIS_NODE = [str(Path(sys.executable).with_name("eais-node"))]
PR_CAPBSET_DROP, CAP_SYS_ADMIN = 24, 21


class Running:
    """A started ``eais-node run``: its output lines as they come, and its notify datagrams."""

    def __init__(self, process: subprocess.Popen, notify: socket.socket | None) -> None:
        self.process, self.lines, self.notices = process, [], []
        threading.Thread(target=self._read, daemon=True).start()
        if notify is not None:
            threading.Thread(target=self._listen, args=(notify,), daemon=True).start()

    def said(self, text: str) -> bool:
        return any(text in line for line in list(self.lines))

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip())

    def _listen(self, notify: socket.socket) -> None:
        while True:
            try:
                self.notices.append(notify.recv(4096).decode())
            except OSError:
                return


def run_args(controller: Controller, state_dir: Path, *extra: str) -> list[str]:
    return [*EAIS_NODE, "run", "--controller", controller.target, "--controller-ca", str(controller.ca_file),
            "--backend", "cpu", "--gateway-port", "0", "--advertise", "127.0.0.1", "--node-id", "cli-node",
            "--state-dir", str(state_dir), *extra]


@pytest.fixture
def start(tmp_path: Path) -> Iterator:
    started: list[Running] = []

    def start(args: list[str], *, notify: socket.socket | None = None, env_token: bool = True) -> Running:
        env = {**os.environ, "EAIS_NODE_GATEWAY_HOST": "127.0.0.1"}
        if env_token:
            env["EAIS_NODE_TOKEN"] = NODE_TOKEN
        if notify is not None:
            env.update(NOTIFY_SOCKET=notify.getsockname(), WATCHDOG_USEC="1000000")
        process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        started.append(Running(process, notify))
        return started[-1]

    yield start
    for running in started:
        running.process.kill()
        running.process.wait()


def worker_pids(state_dir: Path) -> list[int]:
    return [int(path.stem) for path in (state_dir / "workers").glob("*.json")]


def test_inventory_prints_the_cpu_backend_and_its_slice_plan_without_contacting_anyone() -> None:
    shown = subprocess.run([*EAIS_NODE, "inventory", "--backend", "cpu"], capture_output=True, text=True, timeout=30)

    found = json.loads(shown.stdout)
    assert found["backend"] == "cpu" and found["accelerator_model"].startswith("CPU backend (no accelerator): ")
    assert found["memory_capped"] is False and found["gpus"] == []
    assert [s["local_id"] for s in found["slices"]] == ["cpu-xlarge-0", "cpu-xlarge-1", "cpu-2xlarge-0"]


def test_the_gpu_backend_on_a_server_without_a_gpu_is_refused_with_what_to_do(
        controller: Controller, tmp_path: Path) -> None:
    refused = subprocess.run([*EAIS_NODE, "run", "--backend", "gpu", "--controller-ca", str(controller.ca_file),
                              "--state-dir", str(tmp_path)], capture_output=True, text=True, timeout=30,
                             env={**os.environ, "EAIS_NODE_TOKEN": NODE_TOKEN})

    assert refused.returncode == 1
    assert "--backend gpu, but NVML" in refused.stderr and "--backend cpu" in refused.stderr


# A fresh interpreter drops the capability and execs the agent: a preexec_fn would run Python in a fork of
# this process, whose gRPC threads (in-process controllers) can abort the child before it execs.
WITHOUT_CAP_SYS_ADMIN = [sys.executable, "-c", f"""
import ctypes, os, sys
if ctypes.CDLL(None, use_errno=True).prctl({PR_CAPBSET_DROP}, {CAP_SYS_ADMIN}, 0, 0, 0) != 0:
    sys.exit(f"PR_CAPBSET_DROP failed: {{os.strerror(ctypes.get_errno())}}")
os.execv(sys.argv[1], sys.argv[1:])
"""]


def test_without_the_right_to_make_namespaces_the_agent_refuses_to_start_and_says_how_to_fix_it(
        controller: Controller, tmp_path: Path) -> None:
    refused = subprocess.run([*WITHOUT_CAP_SYS_ADMIN, *EAIS_NODE, "run", "--backend", "cpu", "--controller-ca",
                              str(controller.ca_file), "--state-dir", str(tmp_path)],
                             capture_output=True, text=True, timeout=30,
                             env={**os.environ, "EAIS_NODE_TOKEN": NODE_TOKEN})

    assert refused.returncode == 1
    assert "cannot isolate workers" in refused.stderr
    assert "CAP_SYS_ADMIN" in refused.stderr and "--worker-isolation none" in refused.stderr


def test_the_service_kills_leftovers_registers_tells_systemd_and_stops_cleanly_on_sigterm(
        controller: Controller, tmp_path: Path, start) -> None:  # noqa: ANN001
    state_dir = tmp_path / "node"
    leftover = subprocess.Popen(["sleep", "60"])
    (state_dir / "workers").mkdir(parents=True)
    (state_dir / "workers" / f"{leftover.pid}.json").write_text(
        json.dumps({"pid": leftover.pid, "create_time": psutil.Process(leftover.pid).create_time()}))
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify.sock"))

    node = start(run_args(controller, state_dir, "--warm-workers", "1"), notify=notify)
    eventually(lambda: node.said("registered node cli-node (cpu backend"), 30, f"registration: {node.lines}")
    eventually(lambda: any("WATCHDOG=1" in n for n in node.notices), 10, "a watchdog ping")
    workers = eventually(lambda: worker_pids(state_dir), 10, "a warm worker spawned")
    node.process.send_signal(signal.SIGTERM)
    assert node.process.wait(timeout=30) == 0

    assert node.said("killed 1 worker(s) left by a previous run") and leftover.wait(timeout=5) is not None
    ready = next(n for n in node.notices if "READY=1" in n)
    assert "STATUS=serving 3 slices (cpu) at 127.0.0.1:" in ready
    assert "STOPPING=1" in node.notices and node.said("node agent stopped")
    assert not any(psutil.pid_exists(pid) for pid in workers) and worker_pids(state_dir) == []
    notify.close()


@pytest.mark.parametrize("worker_start", ["fork", "spawn"])
def test_workers_die_with_an_agent_that_is_killed(controller: Controller, tmp_path: Path, start,  # noqa: ANN001
                                                   worker_start: str) -> None:
    node = start(run_args(controller, tmp_path, "--warm-workers", "1", "--worker-start", worker_start))
    started = 2 if worker_start == "fork" else 1  # the fork server is recorded too
    workers = eventually(lambda: len(pids := worker_pids(tmp_path)) >= started and pids, 60,
                         f"a warm worker started: {node.lines}")

    node.process.kill()

    eventually(lambda: not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
                               for pid in workers), 10, "the workers gone with their agent")


def test_a_wrong_node_token_stops_the_agent_with_the_controllers_refusal(
        controller: Controller, tmp_path: Path, start) -> None:  # noqa: ANN001
    token_file = tmp_path / "node.token"
    token_file.write_text("not-the-node-token\n")
    args = run_args(controller, tmp_path, "--warm-workers", "0", "--node-token-file", str(token_file))

    node = start(args, env_token=False)

    assert node.process.wait(timeout=30) == 1
    assert node.said("error: Register refused by the controller: UNAUTHENTICATED")
