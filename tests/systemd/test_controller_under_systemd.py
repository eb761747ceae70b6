"""``eais-controller serve`` as a real child process, in the conditions its unit sets.

systemd's notify socket is ours here; MemoryDenyWriteExecute= is stood in for by the kernel's
PR_SET_MDWE (Linux 6.3+), which refuses writable-and-executable memory in much the same way.
"""

from __future__ import annotations

import subprocess
import sys
import time

import grpc
import httpx
import pytest

from tests.controller_process import LOOPBACK, REPO_ROOT, ControllerProcess, free_port

pytestmark = pytest.mark.sqlite_only


def test_controller_is_ready_only_when_serving_pings_the_watchdog_and_says_stopping_on_sigterm(
    notify_socket, tmp_path, monkeypatch,
):
    monkeypatch.setenv("WATCHDOG_USEC", "500000")  # as WatchdogSec=0.5s would: ping every 0.25 s at most
    controller = ControllerProcess(f"sqlite:///{tmp_path}/c.db", tmp_path / "state", tmp_path / "controller.log")
    with controller:
        controller.start(wait=False)

        ready = (f"READY=1\nSTATUS=EAIS API on {LOOPBACK}:{controller.api_port}, "
                 f"agent gRPC on {LOOPBACK}:{controller.grpc_port}")
        before_ready = notify_socket.wait_for(ready, timeout_s=60)[:-1]
        with httpx.Client(trust_env=False, timeout=2.0) as client:
            healthz = client.get(f"http://{controller.endpoint}/healthz").status_code
        trusted = grpc.ssl_channel_credentials(root_certificates=controller.agent_ca_file.read_bytes())
        with grpc.secure_channel(controller.grpc_target, trusted) as channel:
            grpc.channel_ready_future(channel).result(timeout=2.0)
        pings = [notify_socket.wait_for("WATCHDOG=1", timeout_s=5) for _ in range(3)]
        exit_status = controller.stop()
        after_stop = notify_socket.wait_for("STOPPING=1", timeout_s=10)

    assert before_ready == [], controller.log_tail()
    assert healthz == 200
    assert all(ping == ["WATCHDOG=1"] for ping in pings)
    assert set(after_stop) <= {"WATCHDOG=1", "STOPPING=1"}
    assert exit_status == 0, controller.log_tail()
    assert "eais-controller: stopped" in controller.log_tail()


def test_controller_without_a_watchdog_sends_ready_and_no_pings(notify_socket, tmp_path):
    controller = ControllerProcess(f"sqlite:///{tmp_path}/c.db", tmp_path / "state", tmp_path / "controller.log")
    with controller:
        controller.start(wait=False)
        first = notify_socket.receive(timeout_s=60)
        later = notify_socket.receive(timeout_s=2.5)  # uvicorn's tick would have pinged twice by now

    assert first is not None and first.startswith("READY=1\nSTATUS=EAIS API on "), controller.log_tail()
    assert later is None


# Turns on PR_SET_MDWE (refuse exec gain; inherited across exec), then execs argv[1:].
MDWE_LAUNCHER = """
import ctypes, os, sys
if ctypes.CDLL(None, use_errno=True).prctl(65, 1, 0, 0, 0) != 0:
    sys.exit(77)
os.execv(sys.argv[1], sys.argv[1:])
"""


def _under_mdwe(*command: str, **popen: object) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", MDWE_LAUNCHER, *command], cwd=REPO_ROOT, **popen)


def test_controller_serves_with_memory_deny_write_execute(tmp_path):
    probe = _under_mdwe(sys.executable, "-c", "import mmap; mmap.mmap(-1, 4096, prot=7)", stderr=subprocess.PIPE)
    if probe.wait(timeout=30) == 77:
        pytest.skip("this kernel has no PR_SET_MDWE (Linux 6.3+)")
    assert probe.returncode != 0 and b"PermissionError" in probe.stderr.read()  # the stand-in does refuse W+X
    api_port = free_port()
    with (tmp_path / "controller.log").open("wb") as log:
        serve = _under_mdwe(sys.executable, "-m", "controller.cli", "serve", "--db", f"sqlite:///{tmp_path}/c.db",
                            "--state-dir", str(tmp_path / "state"), "--api-port", str(api_port),
                            "--grpc-port", str(free_port()), stdout=log, stderr=subprocess.STDOUT)
    try:
        answer = _first_answer(f"http://{LOOPBACK}:{api_port}/?Action=DescribeRegions", serve, timeout_s=60)
    finally:
        serve.kill()
        serve.wait(timeout=10)

    assert answer == "IncompleteSignature", (tmp_path / "controller.log").read_text()


def _first_answer(url: str, serve: subprocess.Popen, timeout_s: float) -> str | None:
    deadline = time.monotonic() + timeout_s
    with httpx.Client(trust_env=False, timeout=1.0) as client:
        while time.monotonic() < deadline and serve.poll() is None:
            try:
                return client.get(url).json()["Code"]
            except httpx.HTTPError:
                time.sleep(0.1)
    return None
