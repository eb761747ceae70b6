"""The agent link's TLS as operators meet it: what ``eais-controller serve`` prints, and how agent programs
started without the right CA (or without any) stop, saying what to give them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509

from controller.agent_ca import load_or_create_agent_ca
from controller.settings import ControllerSettings
from tests.controller_process import REPO_ROOT, ControllerProcess, create_account_cli

pytestmark = pytest.mark.sqlite_only


def _script(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


@pytest.fixture
def start_controller(tmp_path: Path) -> Iterator:
    started: list[ControllerProcess] = []

    def start(*serve_args: str) -> ControllerProcess:
        controller = ControllerProcess(f"sqlite:///{tmp_path}/c.db", tmp_path / "state", tmp_path / "controller.log",
                                       serve_args=serve_args)
        started.append(controller)
        controller.start()
        return controller

    yield start
    for controller in started:
        controller.kill()


def test_serve_prints_the_agent_ca_to_give_agents_and_the_names_its_certificate_holds(start_controller) -> None:
    controller = start_controller("--grpc-tls-name", "ctl.example", "--grpc-tls-name", "127.0.0.1")

    log = controller.log_tail()

    assert f"agent CA: {controller.agent_ca_file} — give it to agents as --controller-ca" in log
    assert f"agent gRPC    127.0.0.1:{controller.grpc_port}, TLS for ctl.example, 127.0.0.1" in log
    served = x509.load_pem_x509_certificate((controller.state_dir / "agent-link.crt").read_bytes())
    names = served.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(name.value) for name in names] == ["ctl.example", "127.0.0.1"]


def test_serve_with_grpc_plaintext_warns_and_serves_agents_that_chose_plaintext(start_controller) -> None:
    controller = start_controller("--grpc-plaintext")
    fleet = [sys.executable, "-m", "agent.simulated_fleet", "--controller", controller.grpc_target,
             "--controller-plaintext", "--node-token", controller.node_token]

    output = _run_until(fleet, "registered node")

    log = controller.log_tail()
    assert f"agent gRPC    127.0.0.1:{controller.grpc_port}, plaintext" in log
    assert "warning: --grpc-plaintext: the agent link is not encrypted" in log and "agent CA:" not in log
    assert "warning: --controller-plaintext" in output


def test_a_vm_agent_given_another_deployments_ca_stops_and_says_which_ca_to_give_it(
        start_controller, tmp_path: Path) -> None:
    controller = start_controller()
    account = create_account_cli(controller.db_url, controller.state_dir, "tenant")
    credentials = tmp_path / "credentials.json"
    credentials.write_text(json.dumps({**account, "RegionId": "cn-hangzhou", "ClientInstanceId": "i-tlsvm0001"}))
    other = ControllerSettings(db_url="sqlite:///unused.db", state_dir=tmp_path / "other")
    load_or_create_agent_ca(other)

    done = subprocess.run([
        _script("eais-agent"), "run", "--controller", controller.grpc_target,
        "--controller-ca", str(tmp_path / "other" / "agent-ca.crt"), "--credentials-file", str(credentials),
        "--endpoint", "127.0.0.1:0", "--zone", "cn-hangzhou-a", "--vpc-id", "vpc-test", "--vswitch-id", "vsw-test",
        "--state-dir", str(tmp_path / "agent")], capture_output=True, text=True, timeout=60)

    assert done.returncode == 1, done.stdout + done.stderr
    assert "error: cannot trust the controller" in done.stdout and "another CA" in done.stdout
    assert "--controller-ca" in done.stdout


def test_a_vm_agent_told_neither_ca_nor_plaintext_refuses_to_start_and_says_where_the_ca_is(tmp_path: Path) -> None:
    done = subprocess.run([
        _script("eais-agent"), "run", "--client-instance-id", "i-tlsvm0001", "--region", "cn-hangzhou",
        "--zone", "cn-hangzhou-a", "--vpc-id", "vpc-test", "--vswitch-id", "vsw-test", "--access-key-id", "LTAIx",
        "--state-dir", str(tmp_path)], capture_output=True, text=True, timeout=60,
        env={**_clean_env(), "EAIS_AGENT_ACCESS_KEY_SECRET": "a-real-looking-secret"})

    assert done.returncode == 2, done.stderr
    assert "--controller-ca" in done.stderr and "agent-ca.crt" in done.stderr and "--controller-plaintext" in done.stderr


def test_a_node_agent_told_neither_ca_nor_plaintext_refuses_to_start_and_says_where_the_ca_is(tmp_path: Path) -> None:
    done = subprocess.run([_script("eais-node"), "run", "--backend", "cpu", "--state-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=60,
                          env={**_clean_env(), "EAIS_NODE_TOKEN": "node-token-for-this-test"})

    assert done.returncode == 1, done.stderr
    assert "--controller-ca" in done.stderr and "agent-ca.crt" in done.stderr and "--controller-plaintext" in done.stderr


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("EAIS_")}


def _run_until(command: list[str], text: str, timeout_s: float = 30.0) -> str:
    """Start ``command``, read its output until a line holds ``text``, then stop it; all it said."""
    process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**_clean_env(), "PYTHONUNBUFFERED": "1"})
    seen: list[str] = []
    give_up = threading.Timer(timeout_s, process.kill)
    give_up.start()
    try:
        for line in process.stdout:
            seen.append(line)
            if text in line:
                break
    finally:
        give_up.cancel()
        process.kill()
        process.wait(timeout=10)
    assert any(text in line for line in seen), "".join(seen)
    return "".join(seen)
