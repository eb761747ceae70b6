"""The node agent and the VM agent on different hosts: each in its own network namespace, joined by a
veth link, the controller reachable from both over links of their own. No localhost shortcut survives:
the VM reaches the accelerator only through the node's advertised gateway address, and the worker's
port cannot be reached from the VM, from the node's own namespace, or from anywhere else."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import psutil
import pytest
from sqlmodel import select

from controller.accounts import create_account
from controller.agent_ca import agent_ca_certificate_path
from controller.context import ControllerContext
from controller.key_store import node_token
from controller.server import start_controller
from controller.settings import load_settings
from controller.tables import ClientInstance, Node
from eais_cli.local_cluster import REGION, VPC, VSWITCH, ZONE
from remote_tf.worker_fork_server import WORKER_NAME
from tests.dataplane.conftest import Eais, free_port, run_app
from tests.harness.netns import TestHosts

VM_ID = "i-netnsvm0001"
GATEWAY_PORT, TF_PORT = 50052, 8470
WORKER_PROCESS_NAME = WORKER_NAME.decode()


@pytest.fixture
def hosts() -> Iterator[TestHosts]:
    made = TestHosts.make("node", "vm")
    node, vm = made.namespace("node"), made.namespace("vm")
    try:
        # link 0: node <-> vm (the data path); link 1: controller <-> node; link 2: controller <-> vm
        made.link(0, node, vm)
        made.link(1, None, node)
        made.link(2, None, vm)
        yield made
    finally:
        made.close()


def _connectable(prefix: tuple[str, ...], host: str, port: int) -> bool:
    probe = f"import socket; socket.create_connection(({host!r}, {port}), timeout=2)"
    return subprocess.run([*prefix, sys.executable, "-c", probe], capture_output=True).returncode == 0


def _spawn(prefix: tuple[str, ...], command: list[str], log: Path) -> subprocess.Popen:
    with open(log, "ab") as out:
        return subprocess.Popen([*prefix, *command], stdout=out, stderr=subprocess.STDOUT)


def _script(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


def test_vm_and_node_in_separate_namespaces_serve_tensorflow_only_through_the_gateway(
    hosts: TestHosts, tmp_path: Path
) -> None:
    # Each agent dials the controller at its own end of its link: the certificate must name both addresses.
    settings = load_settings(db_url=f"sqlite:///{tmp_path}/c.db", state_dir=tmp_path / "state", api_port=free_port(),
                             grpc_port=free_port(), grpc_host="0.0.0.0",
                             grpc_tls_names=[hosts.address(1, 1), hosts.address(2, 1)])
    ctx = ControllerContext.open(settings)
    controller = start_controller(ctx)
    controller.start_api_in_thread()
    account = create_account(ctx, "netns", balance=Decimal("100"), real_name_verified=True).as_json()
    credentials = {**account, "RegionId": REGION, "ClientInstanceId": VM_ID, "VSwitchId": VSWITCH,
                   "Endpoint": f"127.0.0.1:{controller.api_port}"}
    (tmp_path / "credentials.json").write_text(json.dumps(credentials))
    node_gateway = hosts.address(0, 1)
    node = _spawn(hosts.exec_in(hosts.namespace("node")), [
        _script("eais-node"), "run", "--controller", f"{hosts.address(1, 1)}:{controller.grpc_port}",
        "--controller-ca", str(agent_ca_certificate_path(settings)),
        "--node-token-file", str(tmp_path / "node.token"), "--backend", "cpu", "--gateway-port", str(GATEWAY_PORT),
        "--advertise", node_gateway, "--worker-isolation", "netns", "--region", REGION, "--zone", ZONE,
        "--node-id", "netns-node", "--state-dir", str(tmp_path / "node")], tmp_path / "node.log")
    (tmp_path / "node.token").write_text(node_token(settings))
    vm = _spawn(hosts.exec_in(hosts.namespace("vm")), [
        _script("eais-agent"), "run", "--controller", f"{hosts.address(2, 1)}:{controller.grpc_port}",
        "--controller-ca", str(agent_ca_certificate_path(settings)),
        "--credentials-file", str(tmp_path / "credentials.json"), "--endpoint", f"127.0.0.1:{TF_PORT}",
        "--region", REGION, "--zone", ZONE, "--vpc-id", VPC, "--vswitch-id", VSWITCH,
        "--state-dir", str(tmp_path / "vm")], tmp_path / "vm.log")
    try:
        _wait_registered(ctx, node, vm, tmp_path)
        eais = Eais(credentials)
        instance = eais.create()
        eais.attach(instance, VM_ID)

        result = run_app("tf1", endpoint=f"127.0.0.1:{TF_PORT}", prefix=hosts.exec_in(hosts.namespace("vm")))
        assert result["max_diff"] == 0.0

        vm_side = hosts.exec_in(hosts.namespace("vm"))
        assert _connectable(vm_side, node_gateway, GATEWAY_PORT)  # the one way in
        assert not _connectable(vm_side, "127.0.0.1", GATEWAY_PORT)  # no gateway on the VM's own loopback
        worker_port = _serving_worker_port(node.pid)
        for prefix, host in ((vm_side, node_gateway), (hosts.exec_in(hosts.namespace("node")), node_gateway),
                             (hosts.exec_in(hosts.namespace("node")), "127.0.0.1"), ((), "127.0.0.1")):
            assert not _connectable(prefix, host, worker_port), f"worker port reachable at {host} from {prefix}"

        eais.detach(instance)
        after = run_app("refused", endpoint=f"127.0.0.1:{TF_PORT}", prefix=vm_side)
        assert after["refused"] and VM_ID in after["message"]
    finally:
        for agent in (vm, node):
            agent.terminate()
        for agent in (vm, node):
            agent.wait(20)
        controller.stop()


def _wait_registered(ctx: ControllerContext, node: subprocess.Popen, vm: subprocess.Popen, logs: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert node.poll() is None, (logs / "node.log").read_text()[-3000:]
        assert vm.poll() is None, (logs / "vm.log").read_text()[-3000:]
        with ctx.db.read() as session:
            if session.exec(select(Node)).first() and session.get(ClientInstance, VM_ID):
                return
        time.sleep(0.2)
    raise AssertionError("agents did not register:\n" + (logs / "node.log").read_text()[-2000:]
                         + (logs / "vm.log").read_text()[-2000:])


def _serving_worker_port(node_pid: int) -> int:
    """The TCP port the serving worker listens on, read inside the worker's own namespace."""
    for child in psutil.Process(node_pid).children(recursive=True):
        if child.name() != WORKER_PROCESS_NAME:  # the fork server runs the same command line
            continue
        listing = subprocess.run(["nsenter", "-t", str(child.pid), "-n", "ss", "-ltnH"], capture_output=True,
                                 text=True).stdout
        ports = [int(line.split()[3].rsplit(":", 1)[1]) for line in listing.splitlines() if line.strip()]
        if ports:
            return ports[0]
    raise AssertionError("no serving worker found under the node agent")
