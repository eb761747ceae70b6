"""Heartbeats: server-chosen deadlines with jitter, and expiry as an ordinary lifecycle event."""

from __future__ import annotations

from controller.agent_link import apply_node_report, expire_heartbeats
from controller.agent_link.actual_state import SlicePhase, SliceReport, WorkerState
from controller.clock import US_PER_S
from controller.states import Event, Status
from controller.tables import Attachment, ClientInstance, Node
from protos.eais.v1 import agents_pb2 as pb
from tests.agent_link.builders import (
    NODE_TOKEN, attachment, bearer, create_instance_on_slice, given_vm, in_use_instance,
    move, new_account, node_request, status_of, transitions_of,
)


def test_heartbeat_returns_a_deadline_between_interval_and_interval_plus_jitter(ctx, link, clock) -> None:
    session = link.stub.Register(node_request(), metadata=bearer(NODE_TOKEN)).session_token
    clock.advance(5)

    deadlines = [link.stub.Heartbeat(pb.HeartbeatRequest(), metadata=bearer(session)).heartbeat for _ in range(20)]

    now = clock.now_us()
    for deadline in deadlines:
        assert now + 10 * US_PER_S <= deadline.deadline_us <= now + 12 * US_PER_S
        assert 10_000 <= deadline.beat_within_ms <= 12_000
    assert len({d.deadline_us for d in deadlines}) > 1, "the jitter should spread deadlines"
    assert link.server.flush_heartbeats() == 1  # twenty beats of one agent: its newest is written
    with ctx.db.read() as db:
        node = db.get(Node, "node-1")
    assert node.last_seen_us == now and node.heartbeat_deadline_us == deadlines[-1].deadline_us


def test_expire_heartbeats_after_deadline_and_grace_moves_an_in_use_instance_to_unavailable(ctx, clock) -> None:
    instance_id, attachment_id = in_use_instance(ctx)
    clock.advance(12 + 30 + 1)

    expired = expire_heartbeats(ctx)

    assert "node-1" in expired
    assert status_of(ctx, instance_id) == Status.UNAVAILABLE
    last = transitions_of(ctx, instance_id)[-1]
    assert (last.from_status, last.to_status, last.event) == ("InUse", "Unavailable", "node_lost")
    assert "node node-1 missed its heartbeat deadline" in last.reason
    assert attachment(ctx, attachment_id).ended_us == clock.now_us()
    with ctx.db.read() as db:
        assert db.get(Node, "node-1").online is False


def test_expire_heartbeats_within_the_grace_period_changes_nothing(ctx, clock) -> None:
    instance_id, _ = in_use_instance(ctx)
    clock.advance(10 + 29)  # past the earliest deadline, not past deadline + grace

    expired = expire_heartbeats(ctx)

    assert expired == []
    assert status_of(ctx, instance_id) == Status.IN_USE


def test_expiring_twice_loses_the_node_once(ctx, clock) -> None:
    instance_id, _ = in_use_instance(ctx)
    clock.advance(60)

    expire_heartbeats(ctx)
    again = expire_heartbeats(ctx)

    assert again == []
    assert [t.event for t in transitions_of(ctx, instance_id)].count("node_lost") == 1


def test_a_lost_node_that_beats_again_recovers_its_instances_only_once_it_reports_the_slice_free(ctx, link, clock) -> None:
    session = link.stub.Register(node_request("node-1", ("0",)), metadata=bearer(NODE_TOKEN)).session_token
    instance_id = create_instance_on_slice(ctx, new_account(ctx), "node-1/0")
    move(ctx, instance_id, Event.SLICE_READY)
    clock.advance(60)
    expire_heartbeats(ctx)

    link.stub.Heartbeat(pb.HeartbeatRequest(), metadata=bearer(session))
    link.server.flush_heartbeats()
    with ctx.db.read() as db:
        assert db.get(Node, "node-1").online
    assert status_of(ctx, instance_id) == Status.UNAVAILABLE
    busy = SliceReport("node-1/0", SlicePhase.READY, WorkerState.STOPPING, attachment_id="att-old",
                       instance_id=instance_id)
    apply_node_report(ctx, "node-1", [busy])
    assert status_of(ctx, instance_id) == Status.UNAVAILABLE

    apply_node_report(ctx, "node-1", [SliceReport("node-1/0", SlicePhase.READY, WorkerState.NONE, memory_free=True,
                                                  instance_id=instance_id)])

    assert status_of(ctx, instance_id) == Status.AVAILABLE
    assert transitions_of(ctx, instance_id)[-1].event == "node_recovered"


def test_a_silent_vm_is_marked_offline(ctx, clock) -> None:
    given_vm(ctx, new_account(ctx), "i-vm0001")
    clock.advance(60)

    expired = expire_heartbeats(ctx)

    assert expired == ["i-vm0001"]
    with ctx.db.read() as db:
        assert db.get(ClientInstance, "i-vm0001").online is False


def test_a_detach_waiting_only_for_a_vm_that_went_silent_completes_when_the_vm_is_marked_offline(ctx, clock) -> None:
    instance_id, attachment_id = in_use_instance(ctx)
    with ctx.db.write() as db:  # as if both ends had reported ready (the protocol's way to InUse)
        row = db.get(Attachment, attachment_id)
        row.node_ready_us = row.vm_ready_us = clock.now_us()
    move(ctx, instance_id, Event.DETACH)
    free = SliceReport("node-1/0", SlicePhase.READY, WorkerState.NONE, memory_free=True, instance_id=instance_id)
    apply_node_report(ctx, "node-1", [free])
    assert status_of(ctx, instance_id) == Status.DETACHING
    with ctx.db.write() as db:  # the node keeps beating; only the VM is silent
        db.get(Node, "node-1").heartbeat_deadline_us = clock.now_us() + 3600 * US_PER_S

    clock.advance(60)
    expire_heartbeats(ctx)

    assert status_of(ctx, instance_id) == Status.AVAILABLE
    assert "VM i-vm0001 missed its heartbeat deadline" in transitions_of(ctx, instance_id)[-1].reason
