"""WatchDesiredState over real gRPC: each agent sees its own part, sent now and again on change."""

from __future__ import annotations

from collections.abc import Callable

import grpc
import pytest

from controller.states import Event
from protos.eais.v1 import agents_pb2 as pb
from tests.agent_link.builders import (
    NODE_TOKEN, begin_attach, bearer, create_instance_on_slice, move, new_account, node_request, release, signed,
    vm_request,
)


def _first_state(link, token: str, matching: Callable[[pb.DesiredState], bool] = lambda _: True) -> pb.DesiredState:  # noqa: ANN001
    """Read the stream until a state matches (the stream sends on every change)."""
    call = link.stub.WatchDesiredState(pb.WatchRequest(), metadata=bearer(token), timeout=5)
    try:
        return next(state for state in call if matching(state))
    finally:
        call.cancel()


@pytest.fixture
def fleet(ctx, link):  # noqa: ANN001, ANN201
    """A node with two slices and two VMs of one account, all registered over gRPC."""
    account = new_account(ctx)
    node = link.stub.Register(node_request("node-1", ("0", "1")), metadata=bearer(NODE_TOKEN)).session_token
    vms = {}
    for vm_id in ("i-vm0001", "i-vm0002"):
        request = vm_request(vm_id)
        vms[vm_id] = link.stub.Register(request, metadata=signed(request, account)).session_token
    return account, node, vms


def test_a_node_sees_each_slice_with_its_assigned_instance(ctx, link, fleet) -> None:
    account, node_token, _ = fleet
    instance_id = create_instance_on_slice(ctx, account, "node-1/1")

    state = _first_state(link, node_token)

    assert state.node.node_id == "node-1"
    idle, serving = state.node.slices
    assert (idle.slice_id, idle.role, idle.HasField("instance")) == ("node-1/0", pb.SLICE_ROLE_IDLE, False)
    assert (serving.slice_id, serving.local_id, serving.role) == ("node-1/1", "1", pb.SLICE_ROLE_SERVE)
    assert (serving.instance.instance_id, serving.instance.status) == (instance_id, pb.INSTANCE_STATUS_PENDING)
    assert not serving.HasField("attachment")


def test_a_node_sees_the_attachment_with_its_token_while_attaching(ctx, link, fleet) -> None:
    account, node_token, _ = fleet
    instance_id = create_instance_on_slice(ctx, account, "node-1/0")
    move(ctx, instance_id, Event.SLICE_READY)
    attachment_id, token = begin_attach(ctx, instance_id, "i-vm0001")

    state = _first_state(link, node_token)

    grant = state.node.slices[0].attachment
    assert (grant.attachment_id, grant.attachment_token, grant.client_instance_id) == (attachment_id, token, "i-vm0001")


def test_a_vm_sees_only_its_own_attachment_with_its_token(ctx, link, fleet) -> None:
    account, _, vm_tokens = fleet
    instance_id = create_instance_on_slice(ctx, account, "node-1/0")
    move(ctx, instance_id, Event.SLICE_READY)
    attachment_id, token = begin_attach(ctx, instance_id, "i-vm0001")

    mine = _first_state(link, vm_tokens["i-vm0001"])
    other = _first_state(link, vm_tokens["i-vm0002"])

    grant = mine.vm.attachment
    assert (grant.instance_id, grant.status, grant.attachment_id, grant.attachment_token) == (
        instance_id, pb.INSTANCE_STATUS_ATTACHING, attachment_id, token)
    assert (grant.node_gateway_address, grant.node_tf_version) == ("node-1.test:7000", "2.16.1")
    assert other.vm.client_instance_id == "i-vm0002" and not other.vm.HasField("attachment")


def test_the_stream_sends_again_when_the_desired_state_changes(ctx, link, fleet) -> None:
    account, _, vm_tokens = fleet
    instance_id = create_instance_on_slice(ctx, account, "node-1/0")
    move(ctx, instance_id, Event.SLICE_READY)
    call = link.stub.WatchDesiredState(pb.WatchRequest(), metadata=bearer(vm_tokens["i-vm0001"]), timeout=5)
    try:
        assert not next(call).vm.HasField("attachment")

        begin_attach(ctx, instance_id, "i-vm0001")

        assert next(call).vm.attachment.status == pb.INSTANCE_STATUS_ATTACHING
    finally:
        call.cancel()


def test_the_token_is_withdrawn_while_detaching(ctx, link, fleet) -> None:
    account, node_token, vm_tokens = fleet
    instance_id = create_instance_on_slice(ctx, account, "node-1/0")
    move(ctx, instance_id, Event.SLICE_READY)
    begin_attach(ctx, instance_id, "i-vm0001")
    move(ctx, instance_id, Event.ATTACH_READY, Event.DETACH)

    vm_state = _first_state(link, vm_tokens["i-vm0001"])
    node_state = _first_state(link, node_token)

    assert (vm_state.vm.attachment.status, vm_state.vm.attachment.attachment_token) == (pb.INSTANCE_STATUS_DETACHING, "")
    assert node_state.node.slices[0].instance.status == pb.INSTANCE_STATUS_DETACHING
    assert not node_state.node.slices[0].HasField("attachment")


def test_a_released_instance_shows_its_slice_as_release(ctx, link, fleet) -> None:
    account, node_token, _ = fleet
    instance_id = create_instance_on_slice(ctx, account, "node-1/0")
    release(ctx, instance_id)

    state = _first_state(link, node_token)

    assert state.node.slices[0].role == pb.SLICE_ROLE_RELEASE


def test_a_replaced_session_ends_the_stream_unauthenticated(link, fleet) -> None:
    _, node_token, _ = fleet
    call = link.stub.WatchDesiredState(pb.WatchRequest(), metadata=bearer(node_token), timeout=5)
    next(call)

    link.stub.Register(node_request("node-1", ("0", "1")), metadata=bearer(NODE_TOKEN))

    with pytest.raises(grpc.RpcError) as ended:
        for _ in call:
            pass
    assert ended.value.code() is grpc.StatusCode.UNAUTHENTICATED
