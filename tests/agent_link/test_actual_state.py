"""Actual-state reports move instances only when justified, once, and never on stale news."""

from __future__ import annotations

import pytest

from controller.agent_link import apply_node_report, apply_vm_report
from controller.agent_link.actual_state import ChannelReport, ChannelState, SlicePhase, SliceReport, WorkerState
from controller.errors import NoPermission
from controller.states import Event, Status
from controller.tables import ClientInstance, Slice
from tests.agent_link.builders import (
    attachment, begin_attach, create_instance_on_slice, given_node, given_vm, move, new_account, release,
    status_of, transitions_of,
)

SLICE = "node-1/0"


def ready(instance_id: str, attachment_id: str = "") -> SliceReport:
    worker = WorkerState.READY if attachment_id else WorkerState.NONE
    return SliceReport(SLICE, SlicePhase.READY, worker, attachment_id=attachment_id, instance_id=instance_id,
                       memory_free=not attachment_id)


def free(instance_id: str = "") -> SliceReport:
    """Prepared, no worker, memory checked free; about ``instance_id`` (empty: the slice is idle or released)."""
    return SliceReport(SLICE, SlicePhase.READY, WorkerState.NONE, instance_id=instance_id, memory_free=True)


@pytest.fixture
def account(ctx):  # noqa: ANN001, ANN201
    account = new_account(ctx)
    given_node(ctx, "node-1", ("0",))
    given_vm(ctx, account, "i-vm0001")
    return account


@pytest.fixture
def available(ctx, account) -> str:  # noqa: ANN001
    instance_id = create_instance_on_slice(ctx, account, SLICE)
    move(ctx, instance_id, Event.SLICE_READY)
    return instance_id


@pytest.fixture
def attaching(ctx, available) -> tuple[str, str]:  # noqa: ANN001
    attachment_id, _ = begin_attach(ctx, available, "i-vm0001")
    return available, attachment_id


@pytest.fixture
def detaching(ctx, attaching) -> tuple[str, str]:  # noqa: ANN001
    instance_id, attachment_id = attaching
    apply_node_report(ctx, "node-1", [ready(instance_id, attachment_id)])
    apply_vm_report(ctx, "i-vm0001", ChannelReport(attachment_id, ChannelState.PROVEN))
    assert status_of(ctx, instance_id) == Status.IN_USE
    move(ctx, instance_id, Event.DETACH)
    return instance_id, attachment_id


def test_slice_ready_moves_a_pending_instance_to_available(ctx, account) -> None:
    instance_id = create_instance_on_slice(ctx, account, SLICE)

    outcome = apply_node_report(ctx, "node-1", [free(instance_id)])

    assert status_of(ctx, instance_id) == Status.AVAILABLE
    assert len(outcome.transitions) == 1
    assert "node node-1 reported slice node-1/0 ready" in transitions_of(ctx, instance_id)[-1].reason


def test_slice_preparing_moves_pending_to_starting_and_ready_then_to_available(ctx, account) -> None:
    instance_id = create_instance_on_slice(ctx, account, SLICE)

    apply_node_report(ctx, "node-1", [SliceReport(SLICE, SlicePhase.PREPARING, WorkerState.NONE,
                                                  instance_id=instance_id)])
    assert status_of(ctx, instance_id) == Status.STARTING
    apply_node_report(ctx, "node-1", [free(instance_id)])

    assert [t.event for t in transitions_of(ctx, instance_id)] == ["create", "slice_preparing", "slice_ready"]


def test_a_repeated_report_changes_nothing(ctx, account) -> None:
    instance_id = create_instance_on_slice(ctx, account, SLICE)
    apply_node_report(ctx, "node-1", [free(instance_id)])

    outcome = apply_node_report(ctx, "node-1", [free(instance_id)])

    assert outcome.transitions == []
    assert len(transitions_of(ctx, instance_id)) == 2


def test_attaching_becomes_in_use_only_after_both_node_and_vm_reported_ready(ctx, attaching) -> None:
    instance_id, attachment_id = attaching

    apply_node_report(ctx, "node-1", [ready(instance_id, attachment_id)])
    apply_node_report(ctx, "node-1", [ready(instance_id, attachment_id)])
    assert status_of(ctx, instance_id) == Status.ATTACHING
    apply_vm_report(ctx, "i-vm0001", ChannelReport(attachment_id, ChannelState.PROVEN))

    assert status_of(ctx, instance_id) == Status.IN_USE
    reason = transitions_of(ctx, instance_id)[-1].reason
    assert "node node-1" in reason and "VM i-vm0001" in reason and attachment_id in reason
    row = attachment(ctx, attachment_id)
    assert row.node_ready_us is not None and row.vm_ready_us is not None


def test_attach_completes_whichever_end_reports_first(ctx, attaching) -> None:
    instance_id, attachment_id = attaching

    apply_vm_report(ctx, "i-vm0001", ChannelReport(attachment_id, ChannelState.PROVEN))
    assert status_of(ctx, instance_id) == Status.ATTACHING
    apply_node_report(ctx, "node-1", [ready(instance_id, attachment_id)])

    assert status_of(ctx, instance_id) == Status.IN_USE


def test_reports_about_a_stale_attachment_are_ignored(ctx, attaching) -> None:
    instance_id, _ = attaching

    node_outcome = apply_node_report(ctx, "node-1", [ready(instance_id, "att-from-an-earlier-binding")])
    vm_outcome = apply_vm_report(ctx, "i-vm0001", ChannelReport("att-from-an-earlier-binding", ChannelState.FAILED, "old"))

    assert status_of(ctx, instance_id) == Status.ATTACHING
    assert node_outcome.transitions == [] and vm_outcome.transitions == []
    assert "stale" in node_outcome.notes[0]


def test_a_worker_report_naming_another_instance_is_ignored_even_with_the_current_attachment(ctx, attaching) -> None:
    instance_id, attachment_id = attaching

    outcome = apply_node_report(ctx, "node-1", [ready("eais-someoneelse", attachment_id)])

    assert status_of(ctx, instance_id) == Status.ATTACHING
    assert attachment(ctx, attachment_id).node_ready_us is None
    assert "eais-someoneelse" in outcome.notes[0] and "stale" in outcome.notes[0]


def test_a_node_worker_failure_while_attaching_returns_the_instance_to_available_with_the_reason(ctx, attaching) -> None:
    instance_id, attachment_id = attaching
    failed = SliceReport(SLICE, SlicePhase.READY, WorkerState.FAILED, attachment_id=attachment_id,
                         instance_id=instance_id, failure_reason="TF worker exited with code 1")

    apply_node_report(ctx, "node-1", [failed])

    assert status_of(ctx, instance_id) == Status.AVAILABLE
    last = transitions_of(ctx, instance_id)[-1]
    assert last.event == "attach_failed" and "TF worker exited with code 1" in last.reason
    row = attachment(ctx, attachment_id)
    assert row.ended_us is not None and "TF worker exited with code 1" in row.end_reason


def test_a_vm_channel_failure_while_attaching_fails_the_attach(ctx, attaching) -> None:
    instance_id, attachment_id = attaching

    apply_vm_report(ctx, "i-vm0001", ChannelReport(attachment_id, ChannelState.FAILED, "gateway refused the token"))

    assert status_of(ctx, instance_id) == Status.AVAILABLE
    assert "gateway refused the token" in transitions_of(ctx, instance_id)[-1].reason


def test_detaching_completes_only_after_the_node_confirms_the_memory_free(ctx, detaching) -> None:
    instance_id, attachment_id = detaching

    apply_vm_report(ctx, "i-vm0001", ChannelReport(attachment_id, ChannelState.CLOSED))
    apply_node_report(ctx, "node-1", [SliceReport(SLICE, SlicePhase.READY, WorkerState.STOPPING,
                                                  attachment_id=attachment_id, instance_id=instance_id)])
    apply_node_report(ctx, "node-1", [SliceReport(SLICE, SlicePhase.READY, WorkerState.NONE, instance_id=instance_id)])
    assert status_of(ctx, instance_id) == Status.DETACHING

    apply_node_report(ctx, "node-1", [free(instance_id)])

    assert status_of(ctx, instance_id) == Status.AVAILABLE
    last = transitions_of(ctx, instance_id)[-1]
    assert last.event == "detach_done" and "memory free" in last.reason
    assert attachment(ctx, attachment_id).ended_us is not None


def test_a_free_report_naming_no_instance_does_not_complete_a_detach(ctx, detaching) -> None:
    instance_id, attachment_id = detaching
    apply_vm_report(ctx, "i-vm0001", ChannelReport(attachment_id, ChannelState.CLOSED))

    apply_node_report(ctx, "node-1", [free()])

    assert status_of(ctx, instance_id) == Status.DETACHING
    assert attachment(ctx, attachment_id).node_ready_us is not None


def test_detaching_waits_for_the_vm_to_close_when_the_node_frees_first(ctx, detaching) -> None:
    instance_id, attachment_id = detaching

    apply_node_report(ctx, "node-1", [free(instance_id)])
    assert status_of(ctx, instance_id) == Status.DETACHING
    apply_vm_report(ctx, "i-vm0001", ChannelReport(attachment_id, ChannelState.CLOSED))

    assert status_of(ctx, instance_id) == Status.AVAILABLE


def test_detaching_completes_without_the_vm_when_it_is_offline(ctx, detaching) -> None:
    instance_id, _ = detaching
    with ctx.db.write() as session:
        session.get(ClientInstance, "i-vm0001").online = False

    apply_node_report(ctx, "node-1", [free(instance_id)])

    assert status_of(ctx, instance_id) == Status.AVAILABLE
    assert "offline" in transitions_of(ctx, instance_id)[-1].reason


def test_a_draining_slice_reported_free_is_no_longer_draining(ctx, available) -> None:
    release(ctx, available)
    apply_node_report(ctx, "node-1", [SliceReport(SLICE, SlicePhase.READY, WorkerState.STOPPING)])
    with ctx.db.read() as session:
        assert session.get(Slice, SLICE).draining

    apply_node_report(ctx, "node-1", [free()])

    with ctx.db.read() as session:
        assert session.get(Slice, SLICE).draining is False


def test_a_node_reporting_another_nodes_slice_is_refused(ctx, account) -> None:
    given_node(ctx, "node-2", ("0",))

    with pytest.raises(NoPermission):
        apply_node_report(ctx, "node-2", [free()])


def test_a_vm_reporting_another_vms_attachment_is_refused(ctx, account, attaching) -> None:
    _, attachment_id = attaching
    given_vm(ctx, account, "i-vm0002")

    with pytest.raises(NoPermission):
        apply_vm_report(ctx, "i-vm0002", ChannelReport(attachment_id, ChannelState.PROVEN))
