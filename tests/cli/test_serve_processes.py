"""``eais-controller serve --api-processes N``: more processes answer, none outlives the controller."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from benchmarks.describe_eais import free_port

pytestmark = pytest.mark.sqlite_only


def _children(pid: int) -> set[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return {int(p) for p in out.split()}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True).stdout.strip()
    return bool(state) and not state.startswith("Z")


def _start(tmp_path, processes: int) -> tuple[subprocess.Popen, int]:
    port = free_port()
    serve = subprocess.Popen([sys.executable, "-m", "controller.cli", "serve", "--db", f"sqlite:///{tmp_path}/c.db",
                              "--api-port", str(port), "--grpc-port", str(free_port()), "--api-processes", str(processes)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return serve, port
        except httpx.HTTPError:
            time.sleep(0.1)
    serve.kill()
    raise AssertionError("controller did not start")


def _wait_gone(pids: set[int], seconds: float) -> set[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.2)
    return {p for p in pids if _alive(p)}


def test_extra_api_processes_answer_and_stop_with_the_controller(tmp_path):
    serve, port = _start(tmp_path, 2)
    try:
        workers = _children(serve.pid)
        assert len(workers) == 1
        answers = {httpx.get(f"http://127.0.0.1:{port}/", timeout=5).json()["Code"] for _ in range(20)}
        assert answers == {"IncompleteSignature"}
        serve.send_signal(signal.SIGTERM)
        serve.wait(timeout=30)
        assert _wait_gone(workers, 15) == set()
    finally:
        serve.kill()


def test_api_processes_exit_when_the_controller_is_killed(tmp_path):
    serve, _ = _start(tmp_path, 2)
    workers = _children(serve.pid)
    serve.kill()
    serve.wait(timeout=10)
    assert _wait_gone(workers, 15) == set()


def test_a_second_controller_on_the_same_ports_refuses_to_start(tmp_path):
    first, port = _start(tmp_path, 1)
    try:
        args = list(first.args)
        grpc_port = args[args.index("--grpc-port") + 1]
        for clash in (["--api-port", str(port), "--grpc-port", str(free_port())],
                      ["--api-port", str(free_port()), "--grpc-port", grpc_port]):
            second = subprocess.run([sys.executable, "-m", "controller.cli", "serve", "--db",
                                     f"sqlite:///{tmp_path}/other.db", *clash], capture_output=True, text=True, timeout=60)
            assert second.returncode == 1 and "cannot bind" in second.stderr, clash
    finally:
        first.terminate()
        first.wait(timeout=30)
