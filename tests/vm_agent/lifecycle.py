"""Moving instances as the API would (through controller.lifecycle.apply), for the VM agent's tests."""

from __future__ import annotations

from dataclasses import dataclass

from controller.accounts import NewAccount
from controller.context import ControllerContext
from controller.states import Event, Status
from controller.tables import Transition
from tests.agent_link.builders import begin_attach, create_instance_on_slice, move, status_of, transitions_of
from tests.harness.waiting import eventually
from tests.vm_agent.node_gateway import TestNodeGateway


@dataclass
class Controller:
    """The in-process controller the tests drive: its database and its agent gRPC port."""

    ctx: ControllerContext
    port: int

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"


def available_instance(controller: Controller, account: NewAccount, gateway: TestNodeGateway) -> str:
    """An instance on the gateway's slice, Available once the node reported the slice ready."""
    instance_id = create_instance_on_slice(controller.ctx, account, gateway.slice_id)
    wait_for_status(controller, instance_id, Status.AVAILABLE)
    return instance_id


def attach(controller: Controller, instance_id: str, client_instance_id: str) -> str:
    """AttachEai's effect: the instance is Attaching to the VM; returns the attachment id."""
    attachment_id, _token = begin_attach(controller.ctx, instance_id, client_instance_id)
    return attachment_id


def detach(controller: Controller, instance_id: str) -> None:
    move(controller.ctx, instance_id, Event.DETACH)


def wait_for_status(controller: Controller, instance_id: str, status: Status, timeout_s: float = 10.0) -> None:
    eventually(lambda: status_of(controller.ctx, instance_id) == status, timeout_s, f"{instance_id} {status}")


def status_now(controller: Controller, instance_id: str) -> str:
    return status_of(controller.ctx, instance_id)


def last_transition(controller: Controller, instance_id: str) -> Transition:
    return transitions_of(controller.ctx, instance_id)[-1]
