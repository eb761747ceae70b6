"""A real controller (agent gRPC with TLS on 127.0.0.1:0), a real node agent on the CPU backend with netns
isolation, and a VM registered with a signed AccessKey that stands in for the VM agent.

The node agent is started once per module: its warm worker (a TensorFlow import, ~5-10 s on two
busy cores) is the expensive part, and reusing it is what the pool is for.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pytest
from sqlmodel import select

from agent.controller_link import AccessKey, ControllerLink
from agent.node.agent import NodeAgent
from agent.node.settings import NodeSettings, NodeTimings
from agent.simulated_fleet import vm_registration
from controller.accounts import NewAccount, create_account
from controller.agent_link import WatchTiming, create_grpc_server
from controller.clock import SystemClock
from controller.context import ControllerContext
from controller.settings import ControllerSettings
from controller.tables import Attachment, Instance, Transition
from tests.agent_trust import agent_ca_file, trust_for
from tests.harness.waiting import eventually

NODE_TOKEN = "node-agent-test-token-4d1e9a7c"
REGION, ZONE = "cn-hangzhou", "cn-hangzhou-a"
XLARGE = "eais.ei-a6.xlarge"
VM_ID = "i-nodeagenttest01"


@dataclass
class Controller:
    ctx: ControllerContext
    target: str

    @property
    def ca_file(self) -> Path:
        return agent_ca_file(self.ctx.settings)

    def status_of(self, instance_id: str) -> str:
        with self.ctx.db.read() as session:
            return session.get(Instance, instance_id).status

    def attachment(self, attachment_id: str) -> Attachment:
        with self.ctx.db.read() as session:
            return session.get(Attachment, attachment_id)

    def transitions(self, instance_id: str) -> list[Transition]:
        with self.ctx.db.read() as session:
            query = select(Transition).where(Transition.instance_id == instance_id).order_by(Transition.id)
            return list(session.exec(query).all())


@dataclass
class Tenant:
    account: NewAccount
    vm: ControllerLink  # stands in for the VM agent: registers, reports the channel

    @property
    def ca_pem(self) -> str:
        return self.vm.last_registration.ca_certificate_pem


@dataclass
class RunningNode:
    agent: NodeAgent
    lines: list[str] = field(default_factory=list)

    def said(self, text: str) -> bool:
        return any(text in line for line in self.lines)


@pytest.fixture(scope="module")
def controller(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Controller]:
    directory = tmp_path_factory.mktemp("controller")
    settings = ControllerSettings(db_url=f"sqlite:///{directory}/controller.db", state_dir=directory / "state",
                                  node_token=NODE_TOKEN)
    ctx = ControllerContext.open(settings, SystemClock())
    # Frequent resends and reports (node_settings): one made for the idle slice just before a create
    # must not skip Starting, since reports name the instance they are about.
    server, port = create_grpc_server(ctx, watch=WatchTiming(resync_s=0.5, resend_s=0.5))
    server.start()
    yield Controller(ctx, f"127.0.0.1:{port}")
    server.stop(grace=None).wait(5)
    ctx.db.dispose()


def free_host_port() -> int:
    """A port nothing on the host listens on now, so that "refused on the host" means isolation."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def node_settings(controller: Controller, state_dir: Path, **overrides: object) -> NodeSettings:
    values: dict[str, object] = dict(
        worker_port=free_host_port(), controller=controller.target, controller_ca_file=controller.ca_file,
        token=NODE_TOKEN, backend="cpu", gateway_host="127.0.0.1", gateway_port=0,
        advertise="127.0.0.1", node_id="test-node", region=REGION, zone=ZONE, state_dir=state_dir,
        cpu_slice_plan=[XLARGE, XLARGE], worker_isolation="netns", metrics_port=free_host_port(),
        timing=NodeTimings(handshake_timeout_s=1.0, report_interval_s=0.5, probe_timeout_s=20.0,
                           failed_worker_retry_s=0.5),
    )
    return NodeSettings(**{**values, **overrides})


@pytest.fixture(scope="module")
def node(controller: Controller, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNode]:
    running = RunningNode(agent=None)  # type: ignore[arg-type]

    def say(text: str) -> None:
        running.lines.append(text)
        print(f"node: {text}", flush=True)

    running.agent = NodeAgent(node_settings(controller, tmp_path_factory.mktemp("node")), say=say).start()
    assert running.agent.wait_ready(30), f"node agent not ready: {running.lines}"
    eventually(lambda: running.agent.reporter.reports_sent, 10, "the first report")
    yield running
    running.agent.stop()


@pytest.fixture(scope="module")
def tenant(controller: Controller) -> Iterator[Tenant]:
    account = create_account(controller.ctx, "tenant", balance=Decimal(1000), real_name_verified=True)
    request = vm_registration(VM_ID, REGION, ZONE, "vpc-test", "vsw-test", 2, 4096)
    link = ControllerLink(controller.target, request, AccessKey(account.access_key_id, account.access_key_secret),
                          trust=trust_for(controller.ctx.settings))
    link.register()
    yield Tenant(account, link)
    link.close()
