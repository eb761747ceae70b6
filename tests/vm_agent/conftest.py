"""Fixtures: a real controller (agent gRPC with TLS on 127.0.0.1:0, SQLite), VM agents in this process,
test node gateways, and one real TensorFlow worker and client process for the whole session."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from agent.vm.agent import VmAgent
from agent.vm.settings import AgentTiming, VmAgentSettings
from agent.vm.tf_version import local_tf_version
from controller.accounts import NewAccount, create_account
from controller.agent_link import WatchTiming, create_grpc_server
from controller.clock import SystemClock
from controller.context import ControllerContext
from controller.settings import load_settings
from tests.agent_trust import agent_ca_file, trust_for
from tests.harness.waiting import eventually
from tests.vm_agent.lifecycle import Controller
from tests.vm_agent.node_gateway import TestNodeGateway
from tests.vm_agent.tf_processes import TfClient, TfWorker

NODE_TOKEN = "vm-agent-test-node-token-5d1c"
REGION, ZONE = "cn-hangzhou", "cn-hangzhou-a"
FAST = AgentTiming(peek_timeout_s=0.5, gateway_timeout_s=2.0, proof_timeout_s=5.0, retry_initial_s=0.1,
                   retry_max_s=0.3, give_up_after_s=4.0, report_repeat_s=5.0, loop_tick_s=0.1,
                   degraded_refusal_s=0.5)


@pytest.fixture(scope="session")
def tf_processes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TfWorker, TfClient]]:
    log_dir = tmp_path_factory.mktemp("tf")
    worker, client = TfWorker(log_dir), TfClient(log_dir)  # both import TensorFlow at once, in parallel
    yield worker, client
    client.stop()
    worker.stop()


@pytest.fixture
def tf_worker(tf_processes: tuple[TfWorker, TfClient]) -> TfWorker:
    tf_processes[0].wait_ready()
    return tf_processes[0]


@pytest.fixture
def tf_client(tf_processes: tuple[TfWorker, TfClient]) -> TfClient:
    tf_processes[1].wait_ready()
    return tf_processes[1]


@pytest.fixture
def controller(tmp_path: Path) -> Iterator[Controller]:
    settings = load_settings(db_url=f"sqlite:///{tmp_path / 'controller.db'}", state_dir=tmp_path / "state",
                             node_token=NODE_TOKEN)
    ctx = ControllerContext.open(settings, SystemClock())  # VM agents sign with the real clock
    server, port = create_grpc_server(ctx, watch=WatchTiming(resync_s=0.5, resend_s=5.0))
    server.start()
    yield Controller(ctx, port)
    server.stop(grace=None).wait(5)
    ctx.db.dispose()


@pytest.fixture
def account(controller: Controller) -> NewAccount:
    return create_account(controller.ctx, "vm-owner", balance=Decimal(1000), real_name_verified=True)


def agent_settings(controller: Controller, account: NewAccount, state_dir: Path, client_instance_id: str,
                   **overrides: Any) -> VmAgentSettings:
    return VmAgentSettings(
        controller=controller.target, controller_ca_file=agent_ca_file(controller.ctx.settings),
        access_key_id=account.access_key_id, access_key_secret=account.access_key_secret,
        client_instance_id=client_instance_id, region_id=REGION,
        zone_id=ZONE, vpc_id="vpc-test", vswitch_id="vsw-test", endpoint="127.0.0.1:0", state_dir=state_dir,
        timing=FAST, **overrides)


@pytest.fixture
def start_agent(controller: Controller, account: NewAccount, tmp_path: Path) -> Iterator[Callable[..., VmAgent]]:
    """Start a VM agent in this process (endpoint on a free port) and wait until it registered."""
    agents: list[VmAgent] = []

    def start(client_instance_id: str = "i-vmagent01", **overrides: Any) -> VmAgent:
        settings = agent_settings(controller, account, tmp_path / f"agent-{len(agents)}", client_instance_id, **overrides)
        agent = VmAgent(settings, say=lambda line: print(f"agent: {line}")).start()
        agents.append(agent)
        assert agent.wait_registered(10), "the VM agent did not register within 10 s"
        eventually(lambda: agent.status()["state"] == "idle" and "not registered" not in agent.status()["message"])
        return agent

    yield start
    for agent in agents:
        agent.stop()


@pytest.fixture
def start_gateway(controller: Controller, tf_worker: TfWorker) -> Iterator[Callable[..., TestNodeGateway]]:
    """Start a test node gateway (a registered CPU node relaying to the session's TF worker)."""
    gateways: list[TestNodeGateway] = []

    def start(node_id: str = "gpu-node-1", *, tf_version: str | None = None, **knobs: Any) -> TestNodeGateway:
        trust = trust_for(controller.ctx.settings)
        gateway = TestNodeGateway(controller.target, trust, NODE_TOKEN, node_id, tf_worker.port,
                                  tf_version=tf_version or local_tf_version(), region=REGION, zone=ZONE, **knobs)
        gateways.append(gateway.start())
        return gateway

    yield start
    for gateway in gateways:
        gateway.stop()
