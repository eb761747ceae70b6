"""A whole eais on loopback, as `eais up` starts it (controller, `eais-node run` on the CPU backend with
netns-isolated workers, `eais-agent run` for this host), plus a second VM agent, and ordinary
TensorFlow apps run as separate processes against the agents' endpoints."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from eais_cli.local_cluster import REGION, VPC, VSWITCH, ZONE, ClusterOptions, LocalCluster
from tests.harness.eais_user import Eais

APP = Path(__file__).with_name("tf_app.py")
SECOND_VM = "i-dataplanesecond01"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_app(mode: str, *args: str, endpoint: str, prefix: tuple[str, ...] = (), timeout_s: float = 120) -> dict:
    """Run tests/dataplane/tf_app.py MODE as an app would run: its own process, EAIS_TF_ENDPOINT set."""
    env = {**os.environ, "EAIS_TF_ENDPOINT": endpoint, "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run([*prefix, sys.executable, str(APP), mode, *args], env=env, capture_output=True,
                          text=True, timeout=timeout_s)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert done.returncode == 0 and lines, f"tf_app {mode} failed ({done.returncode}):\n{done.stderr[-4000:]}"
    return json.loads(lines[-1])


@pytest.fixture(scope="package")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    options = ClusterOptions(tmp_path_factory.mktemp("eais-up"), free_port(), free_port(), free_port(), free_port(),
                             backend="cpu", node_metrics_port=free_port())
    running = LocalCluster(options)
    try:
        running.start()
        running.wait_until_ready()
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="package")
def eais(cluster: LocalCluster) -> Eais:
    return Eais(cluster.credentials)


@pytest.fixture(scope="package")
def second_vm_endpoint(cluster: LocalCluster) -> Iterator[str]:
    """A second VM agent of the same account (another client instance, its own endpoint)."""
    endpoint = f"127.0.0.1:{free_port()}"
    data = cluster.options.data_dir
    command = [str(Path(sys.executable).with_name("eais-agent")), "run",
               "--controller", f"127.0.0.1:{cluster.controller.grpc_port}",
               "--controller-ca", str(cluster.agent_ca_file),
               "--credentials-file", str(data / "credentials.json"), "--client-instance-id", SECOND_VM,
               "--endpoint", endpoint, "--region", REGION, "--zone", ZONE, "--vpc-id", VPC, "--vswitch-id", VSWITCH,
               "--state-dir", str(data / "second-agent")]
    with open(data / "logs" / "second-agent.log", "ab") as log:
        agent = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while not (data / "logs" / "second-agent.log").read_text().count("registered"):
            assert agent.poll() is None and time.monotonic() < deadline, "the second VM agent did not register"
            time.sleep(0.1)
        yield endpoint
    finally:
        agent.terminate()
        agent.wait(15)
