"""Node reports name slices; a report made for an earlier picture of a slice moves no instance.

The race: a node reports its idle slice READY, CreateEai assigns that slice before the report
arrives, and the report must not make the new instance Available (skipping Starting: the node
never prepared the slice for it). Only a report naming the instance moves it; a released slice
is freed only by a report made after the node acted on the release (memory free, no instance).
"""

from __future__ import annotations

from sqlmodel import select

from controller.agent_link import apply_node_report
from controller.agent_link.actual_state import SlicePhase, SliceReport, WorkerState
from controller.provisioning import CreateRequest, create_instance
from controller.reconciler import time_out_stuck_instances
from controller.release import delete_instance
from controller.tables import Slice, Transition
from tests.fleet_rows import REGION, add_node
from tests.rules.lifecycle_steps import status_of

TYPE = "eais.ei-a6.2xlarge"


def create(ctx, account_id: str) -> tuple[str, str]:
    """CreateEai on a one-slice node; returns (instance id, the slice it was given)."""
    instance_id = create_instance(ctx, account_id, CreateRequest(region_id=REGION, instance_type=TYPE), request_id="r")
    with ctx.db.read() as session:
        return instance_id, session.exec(select(Slice.id).where(Slice.instance_id == instance_id)).one()


def preparing(slice_id: str, instance_id: str) -> SliceReport:
    return SliceReport(slice_id, SlicePhase.PREPARING, WorkerState.NONE, instance_id=instance_id)


def ready_and_free(slice_id: str, instance_id: str = "") -> SliceReport:
    """What a node says of a prepared slice with no worker; ``instance_id`` empty: made while idle or releasing."""
    return SliceReport(slice_id, SlicePhase.READY, WorkerState.NONE, memory_free=True, instance_id=instance_id)


def events(ctx, instance_id: str) -> list[str]:
    with ctx.db.read() as session:
        query = select(Transition.event).where(Transition.instance_id == instance_id).order_by(Transition.id)
        return list(session.exec(query).all())


def slice_state(ctx, slice_id: str) -> tuple[str | None, bool]:
    with ctx.db.read() as session:
        row = session.get(Slice, slice_id)
        return row.instance_id, row.draining


def test_a_ready_made_for_the_idle_slice_arriving_after_create_does_not_make_the_instance_available(ctx, account):
    [slice_id] = add_node(ctx, slices={TYPE: 1})
    made_while_idle = ready_and_free(slice_id)  # the node's picture before the controller assigned the slice
    instance_id, assigned = create(ctx, account.account_id)
    assert assigned == slice_id

    outcome = apply_node_report(ctx, "node-1", [made_while_idle])

    assert status_of(ctx, instance_id) == "Pending"
    assert outcome.transitions == []
    assert any("(none)" in note and instance_id in note and "stale" in note for note in outcome.notes)


def test_after_an_ignored_idle_ready_the_reports_naming_the_instance_take_it_through_starting(ctx, account):
    [slice_id] = add_node(ctx, slices={TYPE: 1})
    instance_id, _ = create(ctx, account.account_id)
    apply_node_report(ctx, "node-1", [ready_and_free(slice_id)])

    apply_node_report(ctx, "node-1", [preparing(slice_id, instance_id)])
    assert status_of(ctx, instance_id) == "Starting"
    outcome = apply_node_report(ctx, "node-1", [ready_and_free(slice_id, instance_id)])

    assert status_of(ctx, instance_id) == "Available"
    assert outcome.notes == []
    assert events(ctx, instance_id) == ["create", "slice_preparing", "slice_ready"]


def test_a_report_naming_the_slices_previous_instance_does_not_move_the_new_one(ctx, account):
    [slice_id] = add_node(ctx, slices={TYPE: 1})
    first, _ = create(ctx, account.account_id)
    delete_instance(ctx, account.account_id, REGION, first, force=True, request_id="r")
    apply_node_report(ctx, "node-1", [ready_and_free(slice_id)])  # released and freed
    second, _ = create(ctx, account.account_id)

    outcome = apply_node_report(ctx, "node-1", [ready_and_free(slice_id, first)])

    assert status_of(ctx, second) == "Pending"
    assert any(first in note and second in note for note in outcome.notes)


def test_a_released_slice_is_freed_only_by_a_report_made_after_the_node_acted_on_the_release(ctx, account):
    [slice_id] = add_node(ctx, slices={TYPE: 1})
    instance_id, _ = create(ctx, account.account_id)
    apply_node_report(ctx, "node-1", [ready_and_free(slice_id, instance_id)])
    delete_instance(ctx, account.account_id, REGION, instance_id, force=False, request_id="r")

    made_while_serving = apply_node_report(ctx, "node-1", [ready_and_free(slice_id, instance_id)])
    assert slice_state(ctx, slice_id) == (None, True)
    assert any("being released" in note for note in made_while_serving.notes)
    apply_node_report(ctx, "node-1", [ready_and_free(slice_id)])

    assert slice_state(ctx, slice_id) == (None, False)
    assert create(ctx, account.account_id)[1] == slice_id  # handed out again


def test_an_instance_that_timed_out_pending_is_not_recovered_by_a_report_made_for_the_idle_slice(ctx, clock, account):
    [slice_id] = add_node(ctx, slices={TYPE: 1})
    instance_id, _ = create(ctx, account.account_id)
    clock.advance(ctx.settings.lifecycle.pending_deadline_s + 1)
    time_out_stuck_instances(ctx)
    assert status_of(ctx, instance_id) == "Unavailable"

    apply_node_report(ctx, "node-1", [ready_and_free(slice_id)])
    assert status_of(ctx, instance_id) == "Unavailable"
    apply_node_report(ctx, "node-1", [ready_and_free(slice_id, instance_id)])

    assert status_of(ctx, instance_id) == "Available"
    assert events(ctx, instance_id)[-1] == "node_recovered"
