"""A control plane of real processes for fault tests: controller replicas on one database, simulated agents.

* ``Cluster``: ``eais-controller serve`` replicas (``tests.controller_process.ControllerProcess``)
  sharing one database and state directory, started one after another; an account; the v3 SDK
  client of any replica; simulated nodes and VMs (the real agent link, on an event loop thread)
  dialling the replicas you name, everything they say kept with the time they said it.
* ``transitions(db_url, instance_id)``: the instance's log, read straight from the database.

Every wait is bounded and says what it waited for.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from alibabacloud_eais20190624 import models as m
from alibabacloud_eais20190624.client import Client
from sqlalchemy import create_engine, text

from agent.controller_link import AccessKey, NodeToken
from agent.controller_link_async import AsyncControllerLink
from agent.controller_trust import ControllerTrust
from agent.simulated_fleet import AgentsInThread, SimulatedNode, SimulatedVm, node_registration, vm_registration
from controller.db import normalise_url
from tests.api.sdk_capture import v3_client
from tests.controller_process import ControllerProcess, create_account_cli
from tests.harness.waiting import eventually

REGION, ZONE = "cn-hangzhou", "cn-hangzhou-a"
TYPE = "eais.ei-a6.medium"


@dataclass
class Said:
    """What simulated agents said, with the monotonic time of each line."""

    lines: list[tuple[float, str]] = field(default_factory=list)

    def __call__(self, text: str) -> None:
        self.lines.append((time.monotonic(), text))

    def first(self, fragment: str, after: float = 0.0) -> float | None:
        return next((at for at, line in list(self.lines) if fragment in line and at >= after), None)



class Cluster:
    def __init__(self, db_url: str, root: Path, replicas: int = 1, serve_args: tuple[str, ...] = ()) -> None:
        self.db_url, self.root = db_url, root
        self.state_dir = root / "state"
        self.controllers = [ControllerProcess(db_url, self.state_dir, root / f"controller-{n}.log",
                                              serve_args=("--grpc-tls-name", "127.0.0.1", *serve_args))
                            for n in range(replicas)]
        self.agents: list[AgentsInThread] = []
        self.said = Said()

    def start(self) -> None:
        for controller in self.controllers:  # one after another: the first makes the keys and the schema
            controller.start(timeout_s=90)
        self.account = create_account_cli(self.db_url, self.state_dir, "tenant")
        self.trust = ControllerTrust.from_ca_file(self.controllers[0].agent_ca_file)

    def stop(self) -> None:
        for group in self.agents:
            group.stop()
        for controller in self.controllers:
            controller.kill()

    def client(self, replica: int = 0) -> Client:
        return v3_client(self.controllers[replica].endpoint, self.account["AccessKeyId"],
                         self.account["AccessKeySecret"])

    def node(self, node_id: str, via: list[int], slices: int = 2) -> SimulatedNode:
        request = node_registration(node_id, REGION, ZONE, {TYPE: 2}, slices)
        link = AsyncControllerLink(self._targets(via), request, NodeToken(self.controllers[0].node_token),
                                   trust=self.trust)
        return SimulatedNode(link, self.said)

    def vm(self, vm_id: str, via: list[int], prove_after_s: float = 0.0) -> SimulatedVm:
        request = vm_registration(vm_id, REGION, ZONE, "vpc-test", "vsw-test", 2, 4096)
        key = AccessKey(self.account["AccessKeyId"], self.account["AccessKeySecret"])
        link = AsyncControllerLink(self._targets(via), request, key, trust=self.trust)
        return SimulatedVm(link, self.said, prove_after_s=prove_after_s)

    def run(self, *agents: SimulatedNode | SimulatedVm, timeout_s: float = 30.0) -> AgentsInThread:
        """Start the agents and wait until every one has registered."""
        group = AgentsInThread(list(agents))
        self.agents.append(group)
        eventually(lambda: all(agent.registered.is_set() for agent in agents), timeout_s, "the agents registered")
        return group

    def create(self, replica: int = 0, timeout_s: float = 20.0) -> str:
        client = self.client(replica)
        instance_id = client.create_eai(m.CreateEaiRequest(region_id=REGION, instance_type=TYPE)).body \
            .elastic_accelerated_instance_id
        eventually(lambda: status(client, instance_id) == "Available", timeout_s, f"{instance_id} Available")
        return instance_id

    def _targets(self, via: list[int]) -> list[str]:
        return [self.controllers[n].grpc_target for n in via]


def status(client: Client, instance_id: str) -> str:
    found = client.describe_eais(m.DescribeEaisRequest(
        region_id=REGION, elastic_accelerated_instance_ids=f'["{instance_id}"]')).body.instances.instance
    return found[0].status if found else ""


def transitions(db_url: str, instance_id: str) -> list[tuple[str | None, str, str]]:
    """(from, to, event) of every logged transition of the instance, in order."""
    engine = create_engine(normalise_url(db_url))
    try:
        with engine.connect() as connection:
            rows = connection.execute(text(
                "SELECT from_status, to_status, event FROM transitions WHERE instance_id = :id ORDER BY at_us, id"),
                {"id": instance_id}).all()
    finally:
        engine.dispose()
    return [tuple(row) for row in rows]


def assert_chain(log: list[tuple[str | None, str, str]]) -> None:
    """Each transition starts where the one before ended: nothing lost, nothing applied twice."""
    for before, after in zip(log, log[1:]):
        assert after[0] == before[1], f"the log breaks between {before} and {after}: {log}"
