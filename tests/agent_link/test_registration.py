"""Register over real gRPC: node token, AccessKey-signed VMs, sessions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import grpc
import pytest
from sqlmodel import select

from controller.tables import ClientInstance, Node, Slice
from protos.eais.v1 import agents_pb2 as pb
from tests.agent_link.builders import (
    NODE_TOKEN, bearer, create_instance_on_slice, new_account, node_request, signed, vm_request,
)


def _slices(ctx, node_id: str = "node-1") -> dict[str, Slice]:  # noqa: ANN001
    with ctx.db.read() as session:
        return {row.id: row for row in session.exec(select(Slice).where(Slice.node_id == node_id)).all()}


def test_node_registering_with_the_node_token_creates_the_node_and_its_slices(ctx, link) -> None:
    response = link.stub.Register(node_request("node-1", ("0", "1")), metadata=bearer(NODE_TOKEN))

    assert response.agent_id == "node-1" and response.agent_kind == pb.AGENT_KIND_NODE
    assert response.session_token and response.heartbeat.deadline_us > response.server_time_us
    with ctx.db.read() as session:
        node = session.get(Node, "node-1")
    assert node.online and node.backend == "simulated" and node.gateway_address == "node-1.test:7000"
    assert node.session_token_hash and response.session_token not in node.session_token_hash
    assert set(_slices(ctx)) == {"node-1/0", "node-1/1"}


@pytest.mark.parametrize("metadata", [[], bearer("not-the-node-token"), [("authorization", "Basic abc")]])
def test_node_registration_without_the_right_token_is_refused_unauthenticated(ctx, link, metadata) -> None:
    with pytest.raises(grpc.RpcError) as refused:
        link.stub.Register(node_request(), metadata=metadata)

    assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED
    assert "token" in refused.value.details().lower() or "credentials" in refused.value.details().lower()
    with ctx.db.read() as session:
        assert session.get(Node, "node-1") is None


def test_node_offering_an_unknown_instance_type_is_refused_naming_the_configured_types(link) -> None:
    with pytest.raises(grpc.RpcError) as refused:
        link.stub.Register(node_request(instance_type="eais.ei-a9.huge"), metadata=bearer(NODE_TOKEN))

    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "eais.ei-a6.xlarge" in refused.value.details() and "eais.ei-a9.huge" in refused.value.details()
    assert ("x-eais-error-code", "InvalidInstanceType") in refused.value.trailing_metadata()


def test_node_reregistering_keeps_assigned_slices_and_drops_unassigned_missing_ones(ctx, link) -> None:
    link.stub.Register(node_request("node-1", ("0", "1", "2")), metadata=bearer(NODE_TOKEN))
    instance_id = create_instance_on_slice(ctx, new_account(ctx), "node-1/1")

    link.stub.Register(node_request("node-1", ("0", "3")), metadata=bearer(NODE_TOKEN))

    slices = _slices(ctx)
    assert set(slices) == {"node-1/0", "node-1/1", "node-1/3"}
    assert slices["node-1/1"].instance_id == instance_id


def test_reregistering_replaces_the_session_token(link) -> None:
    first = link.stub.Register(node_request(), metadata=bearer(NODE_TOKEN))
    second = link.stub.Register(node_request(), metadata=bearer(NODE_TOKEN))

    link.stub.Heartbeat(pb.HeartbeatRequest(), metadata=bearer(second.session_token))
    with pytest.raises(grpc.RpcError) as refused:
        link.stub.Heartbeat(pb.HeartbeatRequest(), metadata=bearer(first.session_token))
    assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED
    assert "register again" in refused.value.details().lower()


def test_vm_registering_signed_with_an_access_key_becomes_a_client_instance_of_that_account(ctx, link) -> None:
    account = new_account(ctx)
    request = vm_request("i-vm0001")

    response = link.stub.Register(request, metadata=signed(request, account))

    assert response.agent_id == "i-vm0001" and response.agent_kind == pb.AGENT_KIND_VM
    with ctx.db.read() as session:
        vm = session.get(ClientInstance, "i-vm0001")
    assert vm.account_id == account.account_id
    assert (vm.vpc_id, vm.vswitch_id, vm.vcpu, vm.memory_mib, vm.kind) == ("vpc-test", "vsw-test", 2, 8192, "ECS")


def test_vm_registration_with_a_wrong_signature_is_refused_unauthenticated(ctx, link) -> None:
    account = new_account(ctx)
    request = vm_request()
    metadata = [(k, "0" * 64 if k == "x-eais-signature" else v) for k, v in signed(request, account)]

    with pytest.raises(grpc.RpcError) as refused:
        link.stub.Register(request, metadata=metadata)

    assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED
    assert "signature" in refused.value.details()


def test_vm_registration_signed_for_another_request_body_is_refused(ctx, link) -> None:
    account = new_account(ctx)
    metadata = signed(vm_request("i-vm0001"), account)

    with pytest.raises(grpc.RpcError) as refused:
        link.stub.Register(vm_request("i-vm0002"), metadata=metadata)

    assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED


def test_vm_registration_with_a_replayed_nonce_is_refused(ctx, link) -> None:
    account = new_account(ctx)
    request = vm_request()
    metadata = signed(request, account, nonce="nonce-used-once")
    link.stub.Register(request, metadata=metadata)

    with pytest.raises(grpc.RpcError) as refused:
        link.stub.Register(request, metadata=metadata)

    assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED
    assert ("x-eais-error-code", "SignatureNonceUsed") in refused.value.trailing_metadata()


def test_vm_registration_signed_outside_the_window_is_refused(ctx, link) -> None:
    account = new_account(ctx)
    request = vm_request()
    stale = datetime.now(UTC) - timedelta(minutes=16)

    with pytest.raises(grpc.RpcError) as refused:
        link.stub.Register(request, metadata=signed(request, account, now=stale))

    assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED
    assert "clock" in refused.value.details()


def test_vm_registration_without_a_signature_is_refused_naming_what_is_missing(link) -> None:
    with pytest.raises(grpc.RpcError) as refused:
        link.stub.Register(vm_request(), metadata=bearer(NODE_TOKEN))

    assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED
    assert "x-eais-signature" in refused.value.details()


def test_vm_registered_by_one_account_cannot_be_registered_by_another(ctx, link) -> None:
    owner, intruder = new_account(ctx, "owner"), new_account(ctx, "intruder")
    request = vm_request("i-vm0001")
    link.stub.Register(request, metadata=signed(request, owner))

    with pytest.raises(grpc.RpcError) as refused:
        link.stub.Register(request, metadata=signed(request, intruder))

    assert refused.value.code() is grpc.StatusCode.PERMISSION_DENIED
    with ctx.db.read() as session:
        assert session.get(ClientInstance, "i-vm0001").account_id == owner.account_id


def test_vm_reregistering_from_the_same_account_updates_it_in_place(ctx, link) -> None:
    account = new_account(ctx)
    first = vm_request("i-vm0001")
    link.stub.Register(first, metadata=signed(first, account))
    bigger = vm_request("i-vm0001")
    bigger.vm.vcpu, bigger.vm.memory_mib = 8, 32768

    link.stub.Register(bigger, metadata=signed(bigger, account))

    with ctx.db.read() as session:
        vms = session.exec(select(ClientInstance)).all()
    assert [(vm.id, vm.vcpu, vm.memory_mib) for vm in vms] == [("i-vm0001", 8, 32768)]


def test_a_call_with_an_unknown_session_token_is_refused_unauthenticated(link) -> None:
    with pytest.raises(grpc.RpcError) as refused:
        link.stub.Heartbeat(pb.HeartbeatRequest(), metadata=bearer("eais-node-session-forged"))

    assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED
