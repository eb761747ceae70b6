"""The gRPC edge: malformed calls get clear statuses, surprises never leak details."""

from __future__ import annotations

import grpc
import pytest

from controller.agent_link import servicer as servicer_module
from protos.eais.v1 import agents_pb2 as pb
from tests.agent_link.builders import NODE_TOKEN, bearer, create_instance_on_slice, new_account, node_request, signed, vm_request


def _node_session(link) -> str:  # noqa: ANN001
    return link.stub.Register(node_request("node-1", ("0",)), metadata=bearer(NODE_TOKEN)).session_token


def test_register_naming_neither_a_node_nor_a_vm_is_refused_invalid_argument(link) -> None:
    with pytest.raises(grpc.RpcError) as refused:
        link.stub.Register(pb.RegisterRequest(), metadata=bearer(NODE_TOKEN))

    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT


def test_a_vm_session_sending_a_node_report_is_refused_invalid_argument(ctx, link) -> None:
    request = vm_request()
    session = link.stub.Register(request, metadata=signed(request, new_account(ctx))).session_token

    with pytest.raises(grpc.RpcError) as refused:
        link.stub.ReportActualState(pb.ActualStateReport(node=pb.NodeActualState()), metadata=bearer(session))

    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "vm agent" in refused.value.details()


def test_a_node_report_over_grpc_acknowledges_the_transitions_it_caused(ctx, link) -> None:
    session = _node_session(link)
    instance_id = create_instance_on_slice(ctx, new_account(ctx), "node-1/0")
    report = pb.ActualStateReport(node=pb.NodeActualState(slices=[pb.SliceActualState(
        slice_id="node-1/0", phase=pb.SLICE_PHASE_READY, worker=pb.WORKER_STATE_NONE, memory_free=True,
        instance_id=instance_id,
        usage=pb.SliceUsage(gpu_core_usage_percent=0.0, gpu_memory_usage_percent=0.0, memory_used_mib=0),
    )]))

    first = link.stub.ReportActualState(report, metadata=bearer(session))
    again = link.stub.ReportActualState(report, metadata=bearer(session))

    assert (first.transitions_applied, again.transitions_applied) == (1, 0)


def test_a_node_reporting_another_nodes_slice_over_grpc_is_refused_permission_denied(link) -> None:
    session = _node_session(link)
    report = pb.ActualStateReport(node=pb.NodeActualState(slices=[pb.SliceActualState(slice_id="node-2/0")]))

    with pytest.raises(grpc.RpcError) as refused:
        link.stub.ReportActualState(report, metadata=bearer(session))

    assert refused.value.code() is grpc.StatusCode.PERMISSION_DENIED


def test_an_unexpected_failure_is_answered_internal_without_its_details(link, monkeypatch) -> None:
    session = _node_session(link)

    def explode(*_args: object) -> None:
        raise RuntimeError("database password is hunter2")

    monkeypatch.setattr(servicer_module, "apply_node_report", explode)

    with pytest.raises(grpc.RpcError) as failed:
        link.stub.ReportActualState(pb.ActualStateReport(node=pb.NodeActualState()), metadata=bearer(session))

    assert failed.value.code() is grpc.StatusCode.INTERNAL
    assert "hunter2" not in failed.value.details()
