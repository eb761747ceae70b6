"""A VM that sees the data path of an instance in use break takes it out of InUse: Unavailable, not billed.

The VM agent reports the channel BROKEN (the node's gateway stopped answering or refuses the
attachment) with what failed; the controller ends the attachment and applies ``channel_lost``, and
billing stops at that transition. The node frees the slice, and the instance comes back Available,
unbound, like after a node loss. Reports about anything but an instance in use change nothing.
"""

from __future__ import annotations

from controller.agent_link import apply_node_report, apply_vm_report
from controller.agent_link.actual_state import ChannelReport, ChannelState, SlicePhase, SliceReport, WorkerState
from controller.billing import billed_intervals
from controller.states import Event, Status
from tests.agent_link.builders import (
    attachment,
    begin_attach,
    create_instance_on_slice,
    given_node,
    given_vm,
    move,
    new_account,
    status_of,
    transitions_of,
)

SLICE, VM = "node-1/0", "i-vm0001"
GATEWAY_DOWN = "cannot reach node gateway node-1.test:7000: Connection refused (twice in 0.3s)"


def in_use(ctx) -> tuple[str, str]:  # noqa: ANN001
    account = new_account(ctx)
    given_node(ctx, "node-1", ("0",))
    given_vm(ctx, account, VM)
    instance_id = create_instance_on_slice(ctx, account, SLICE)
    move(ctx, instance_id, Event.SLICE_READY)
    attachment_id, _ = begin_attach(ctx, instance_id, VM)
    apply_node_report(ctx, "node-1", [SliceReport(SLICE, SlicePhase.READY, WorkerState.READY,
                                                  attachment_id=attachment_id, instance_id=instance_id)])
    apply_vm_report(ctx, VM, ChannelReport(attachment_id, ChannelState.PROVEN))
    assert status_of(ctx, instance_id) == Status.IN_USE
    return instance_id, attachment_id


def test_a_broken_channel_makes_an_instance_in_use_unavailable_naming_what_failed(ctx, clock) -> None:
    instance_id, attachment_id = in_use(ctx)
    clock.advance(60)

    outcome = apply_vm_report(ctx, VM, ChannelReport(attachment_id, ChannelState.BROKEN, GATEWAY_DOWN))

    lost = transitions_of(ctx, instance_id)[-1]
    assert len(outcome.transitions) == 1 and status_of(ctx, instance_id) == Status.UNAVAILABLE
    assert (lost.event, lost.from_status) == (Event.CHANNEL_LOST, Status.IN_USE)
    assert f"VM {VM} reported the channel for attachment {attachment_id} broken" in lost.reason
    assert GATEWAY_DOWN in lost.reason
    ended = attachment(ctx, attachment_id)
    assert ended.ended_us == lost.at_us and "channel lost" in ended.end_reason


def test_billing_stops_when_the_channel_is_lost(ctx, clock) -> None:
    instance_id, attachment_id = in_use(ctx)
    clock.advance(60)
    apply_vm_report(ctx, VM, ChannelReport(attachment_id, ChannelState.BROKEN, GATEWAY_DOWN))
    lost_at = transitions_of(ctx, instance_id)[-1].at_us
    clock.advance(3600)

    spans = billed_intervals(transitions_of(ctx, instance_id), until_us=clock.now_us())[instance_id]

    assert spans[-1][1] == lost_at


def test_a_repeated_broken_report_changes_nothing_more(ctx) -> None:
    instance_id, attachment_id = in_use(ctx)
    report = ChannelReport(attachment_id, ChannelState.BROKEN, GATEWAY_DOWN)
    apply_vm_report(ctx, VM, report)

    again = apply_vm_report(ctx, VM, report)

    assert again.transitions == [] and status_of(ctx, instance_id) == Status.UNAVAILABLE
    assert any("stale report ignored" in note for note in again.notes)


def test_a_broken_report_while_detaching_leaves_the_detach_to_finish(ctx) -> None:
    instance_id, attachment_id = in_use(ctx)
    move(ctx, instance_id, Event.DETACH)

    apply_vm_report(ctx, VM, ChannelReport(attachment_id, ChannelState.BROKEN, GATEWAY_DOWN))

    assert status_of(ctx, instance_id) == Status.DETACHING


def test_the_node_freeing_the_slice_brings_the_lost_instance_back_available_and_unbound(ctx) -> None:
    instance_id, attachment_id = in_use(ctx)
    apply_vm_report(ctx, VM, ChannelReport(attachment_id, ChannelState.BROKEN, GATEWAY_DOWN))

    apply_node_report(ctx, "node-1", [SliceReport(SLICE, SlicePhase.READY, WorkerState.NONE, instance_id=instance_id,
                                                  memory_free=True)])

    assert status_of(ctx, instance_id) == Status.AVAILABLE
    assert transitions_of(ctx, instance_id)[-1].event == Event.NODE_RECOVERED
