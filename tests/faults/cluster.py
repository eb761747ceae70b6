"""A whole eais made of real processes that a fault test may kill: controller, node agent, VM agent.

``eais-controller serve`` (SQLite), ``eais-node run`` (CPU backend, workers forked into network
namespaces) and ``eais-agent run`` each run as a child process, exactly as an operator starts them;
the test drives the EAIS API with the official SDK and reads the transition log from the database
file. The node agent gets a private ``TMPDIR`` so that the scratch directories of its workers can be
counted.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from sqlmodel import Session, create_engine, select

from controller.billing import billed_intervals
from controller.tables import Transition
from tests.controller_process import ControllerProcess, create_account_cli, free_port
from tests.harness.daemons import DaemonProcess, node_agent_args, vm_agent_args
from tests.harness.eais_user import Eais

VM_ID = "i-faultvm0001"
REGION, VSWITCH = "cn-hangzhou", "vsw-local"
READY_TIMEOUT_S = 120.0  # the node's fork server imports TensorFlow once, on a busy machine


@dataclass
class FaultCluster:
    root: Path
    node_extra: tuple[str, ...] = ()
    node_prefix: tuple[str, ...] = ()  # e.g. ip netns exec NS: the node on a host of its own
    node_controller_host: str = "127.0.0.1"  # the controller's address as the node dials it
    node_advertise: str = "127.0.0.1"
    controller_args: tuple[str, ...] = ()
    grpc_port: int = field(default_factory=free_port)
    controller: ControllerProcess = field(init=False)
    node: DaemonProcess = field(init=False)
    vm: DaemonProcess = field(init=False)
    eais: Eais = field(init=False)
    tf_endpoint: str = field(init=False)

    def start(self) -> FaultCluster:
        (self.root / "logs").mkdir(parents=True, exist_ok=True)
        self.node_tmp.mkdir(exist_ok=True)
        self.controller = ControllerProcess(f"sqlite:///{self.db_path}", self.root / "state",
                                            self.root / "logs" / "controller.log", grpc_port=self.grpc_port,
                                            serve_args=self.controller_args)
        self.controller.start(timeout_s=60)
        account = create_account_cli(self.controller.db_url, self.controller.state_dir, "faults")
        credentials = {**account, "RegionId": REGION, "ClientInstanceId": VM_ID, "VSwitchId": VSWITCH,
                       "Endpoint": self.controller.endpoint}
        credentials_file = self.root / "credentials.json"
        credentials_file.write_text(json.dumps(credentials))
        self.eais = Eais(credentials)
        self.tf_endpoint = f"127.0.0.1:{free_port()}"
        grpc, ca = self.controller.grpc_target, self.controller.agent_ca_file
        node_controller = f"{self.node_controller_host}:{self.grpc_port}"
        self.node = DaemonProcess("node", node_agent_args(node_controller, ca, self.controller.state_dir / "node.token",
                                                          self.root / "node", *self.node_extra,
                                                          advertise=self.node_advertise),
                                  self.root / "logs" / "node.log", env={"TMPDIR": str(self.node_tmp)},
                                  prefix=self.node_prefix).start()
        self.vm = DaemonProcess("vm", vm_agent_args(grpc, ca, credentials_file, self.tf_endpoint, self.root / "vm"),
                                self.root / "logs" / "vm.log").start()
        self.node.wait_for("warm pool:", READY_TIMEOUT_S)
        self.vm.wait_for("registered i-", 60)
        return self

    def stop(self) -> None:
        for daemon in (getattr(self, "vm", None), getattr(self, "node", None)):
            if daemon is not None:
                daemon.stop()
        if getattr(self, "controller", None) is not None:
            self.controller.kill()

    @property
    def db_path(self) -> Path:
        return self.root / "controller.db"

    @property
    def node_tmp(self) -> Path:
        return self.root / "node-tmp"

    def attached_instance(self) -> str:
        """An instance created and attached to the VM, InUse."""
        instance = self.eais.create()
        self.eais.attach(instance, VM_ID)
        return instance

    def transitions(self, instance_id: str) -> list[Transition]:
        """The transition log of an instance, read from the controller's database file."""
        engine = create_engine(f"sqlite:///{self.db_path}")
        try:
            with Session(engine) as session:
                query = select(Transition).where(Transition.instance_id == instance_id).order_by(Transition.id)
                return list(session.exec(query).all())
        finally:
            engine.dispose()

    def first_transition(self, instance_id: str, event: str, timeout_s: float) -> Transition:
        deadline = time.monotonic() + timeout_s
        while True:
            found = next((row for row in self.transitions(instance_id) if row.event == event), None)
            if found is not None:
                return found
            assert time.monotonic() < deadline, (f"no {event} for {instance_id} within {timeout_s}s: "
                                                 f"{[(t.event, t.reason) for t in self.transitions(instance_id)]}")
            time.sleep(0.05)

    def billed_spans(self, instance_id: str) -> list[tuple[int, int]]:
        """The instance's billed intervals (epoch microseconds), per the billing function of its log, until now."""
        until_us = time.time_ns() // 1000
        return billed_intervals(self.transitions(instance_id), until_us=until_us).get(instance_id, [])

    def assert_unbilled_from(self, instance_id: str, lost: Transition) -> None:
        """Billing ends at ``lost`` and resumes, if at all, only when the instance is Available again."""
        spans = self.billed_spans(instance_id)
        assert lost.at_us in {end for _, end in spans}, (lost, spans)
        back = [row.at_us for row in self.transitions(instance_id) if row.event == "node_recovered"]
        assert all(start >= min(back, default=start) for start, _ in spans if start >= lost.at_us), (spans, back)

    def scratch_dirs(self) -> list[str]:
        return sorted(name for name in os.listdir(self.node_tmp) if name.startswith("eais-worker-"))
