"""``eais-agent run`` as a real child process, in the conditions its systemd unit sets: a notify
socket, a watchdog, MemoryDenyWriteExecute (stood in for by PR_SET_MDWE where the kernel has it)."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

import grpc

from tests.agent_trust import agent_ca_file
from tests.systemd.conftest import notify_socket  # noqa: F401 - the fixture
from tests.systemd.test_controller_under_systemd import MDWE_LAUNCHER
from tests.vm_agent.conftest import REGION, ZONE
from tests.vm_agent.lifecycle import Controller
from tests.vm_agent.probes import call_endpoint
from tests.vm_agent.tf_processes import free_port

VM = "i-service0001"


def test_the_service_is_ready_once_registered_counts_refusals_and_stops_cleanly_on_sigterm(
        controller, account, tmp_path, notify_socket, monkeypatch) -> None:  # noqa: F811
    monkeypatch.setenv("WATCHDOG_USEC", "400000")
    port = free_port()
    service = _start_service(tmp_path, controller, account, port)
    try:
        before_ready = notify_socket.wait_for(f"READY=1\nSTATUS=registered; TensorFlow endpoint on 127.0.0.1:{port}",
                                              timeout_s=30)[:-1]
        refused = call_endpoint(port)
        refusal_line = service.wait_for_line("refused 1 TensorFlow call(s)", timeout_s=10)
        ping = notify_socket.wait_for("WATCHDOG=1", timeout_s=5)
        service.process.send_signal(signal.SIGTERM)
        exit_code = service.process.wait(timeout=15)
        after_stop = notify_socket.wait_for("STOPPING=1", timeout_s=5)
    finally:
        service.process.kill()

    assert all(m.startswith("STATUS=the agent of") or m == "WATCHDOG=1" for m in before_ready)  # no early READY
    assert refused.code() is grpc.StatusCode.UNAVAILABLE and f"no accelerator attached to {VM}" in refused.details()
    assert f"no accelerator attached to {VM}" in refusal_line
    assert ping[-1] == "WATCHDOG=1"
    assert after_stop[-1] == "STOPPING=1"
    assert exit_code == 0, service.output()
    assert service.output().splitlines()[-1].endswith("stopped")


def test_the_service_refuses_to_start_without_its_identity_and_says_what_to_set(tmp_path) -> None:
    result = subprocess.run([_script(), "run", "--state-dir", str(tmp_path)], check=False, capture_output=True,
                            text=True, timeout=30, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})

    assert result.returncode == 2
    assert "--client-instance-id" in result.stderr and "--vswitch-id" in result.stderr
    assert "--credentials-file" in result.stderr


class _Service:
    def __init__(self, process: subprocess.Popen) -> None:
        self.process, self._lines, self._seen = process, queue.Queue(), []
        threading.Thread(target=self._read, daemon=True).start()

    def wait_for_line(self, text: str, timeout_s: float) -> str:
        while True:
            try:
                line = self._lines.get(timeout=timeout_s)
            except queue.Empty:
                raise AssertionError(f"no line with {text!r}; output so far:\n{self.output()}") from None
            if text in line:
                return line

    def output(self) -> str:
        return "".join(self._seen)

    def _read(self) -> None:
        for line in self.process.stdout:
            self._seen.append(line)
            self._lines.put(line)


def _start_service(tmp_path: Path, controller: Controller, account, port: int) -> _Service:
    credentials = tmp_path / "credentials.json"
    credentials.write_text(json.dumps({
        "AccessKeyId": account.access_key_id, "AccessKeySecret": account.access_key_secret,
        "RegionId": REGION, "ClientInstanceId": VM, "Endpoint": "127.0.0.1:8080",  # the API's; not ours
    }))
    config = tmp_path / "agent.toml"
    config.write_text("[timing]\nloop_tick_s = 0.05\nstatus_line_every_s = 0.2\n")
    command = [_script(), "run", "--config", str(config), "--controller", controller.target,
               "--controller-ca", str(agent_ca_file(controller.ctx.settings)),
               "--credentials-file", str(credentials), "--endpoint", f"127.0.0.1:{port}", "--zone", ZONE,
               "--vpc-id", "vpc-test", "--vswitch-id", "vsw-test", "--state-dir", str(tmp_path / "agent")]
    process = subprocess.Popen([sys.executable, "-c", MDWE_LAUNCHER, *command], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    return _Service(process)


def _script() -> str:
    return str(Path(sys.executable).with_name("eais-agent"))
