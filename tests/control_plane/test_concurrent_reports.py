"""The two ends of an attachment report at the same moment, to different replicas: the attach and the detach still complete."""

from __future__ import annotations

import threading

from controller.agent_link import apply_node_report, apply_vm_report
from controller.agent_link.actual_state import ChannelReport, ChannelState, SlicePhase, SliceReport, WorkerState
from controller.states import Event, Status
from tests.agent_link.builders import available_instance, begin_attach, move, status_of

ROUNDS = 12


def _at_once(*calls) -> None:  # noqa: ANN002
    """Run the calls in threads released together, as two replicas would take two reports."""
    start, failures = threading.Barrier(len(calls)), []

    def run(call) -> None:  # noqa: ANN001
        start.wait()
        try:
            call()
        except Exception as error:  # noqa: BLE001 - reported below
            failures.append(error)

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not failures, failures


def test_concurrent_reports_of_both_ends_complete_every_attach_and_detach(ctx) -> None:
    instance_id = available_instance(ctx)

    for _ in range(ROUNDS):
        attachment_id, _ = begin_attach(ctx, instance_id, "i-vm0001")
        worker_ready = SliceReport("node-1/0", SlicePhase.READY, WorkerState.READY, attachment_id=attachment_id,
                                   instance_id=instance_id)
        _at_once(lambda: apply_node_report(ctx, "node-1", [worker_ready]),
                 lambda: apply_vm_report(ctx, "i-vm0001", ChannelReport(attachment_id, ChannelState.PROVEN)))
        assert status_of(ctx, instance_id) == Status.IN_USE

        move(ctx, instance_id, Event.DETACH)
        memory_free = SliceReport("node-1/0", SlicePhase.READY, WorkerState.NONE, instance_id=instance_id,
                                  memory_free=True)
        _at_once(lambda: apply_node_report(ctx, "node-1", [memory_free]),
                 lambda: apply_vm_report(ctx, "i-vm0001", ChannelReport(attachment_id, ChannelState.CLOSED)))
        assert status_of(ctx, instance_id) == Status.AVAILABLE
