"""One reconciler among replicas: the lease on the database's clock, its fence, and the grace of a new term."""

from __future__ import annotations

import time

import pytest

from controller.agent_link.heartbeats import expire_heartbeats
from controller.leadership import LeaseLost, Term, current_lease, fence, hold_lease
from controller.reconciler import ReconcilerThread
from controller.settings import LifecycleSettings
from controller.states import Status
from tests.agent_link.builders import in_use_instance, status_of


def test_the_first_replica_to_ask_holds_the_lease_and_a_second_is_refused(ctx) -> None:
    first = hold_lease(ctx, "replica-a", ttl_s=10)
    second = hold_lease(ctx, "replica-b", ttl_s=10)

    assert (first.mine, first.holder, first.epoch) == (True, "replica-a", 1)
    assert (second.mine, second.holder, second.epoch) == (False, "replica-a", 1)


def test_renewing_keeps_the_epoch_and_pushes_the_expiry_on_the_database_clock(ctx) -> None:
    first = hold_lease(ctx, "replica-a", ttl_s=10)
    time.sleep(0.05)
    renewed = hold_lease(ctx, "replica-a", ttl_s=10)

    assert renewed.mine and renewed.epoch == first.epoch and renewed.acquired_us == first.acquired_us
    assert renewed.expires_us > first.expires_us
    assert abs(renewed.db_now_us - time.time_ns() // 1000) < 5_000_000  # the database's clock, not a fake one


def test_an_expired_lease_goes_to_the_next_replica_that_asks_with_a_new_epoch(ctx) -> None:
    hold_lease(ctx, "replica-a", ttl_s=0.05)
    time.sleep(0.1)

    taken = hold_lease(ctx, "replica-b", ttl_s=10)

    assert (taken.mine, taken.holder, taken.epoch) == (True, "replica-b", 2)


def test_a_holder_that_let_its_lease_lapse_starts_a_new_term(ctx) -> None:
    first = hold_lease(ctx, "replica-a", ttl_s=0.05)
    time.sleep(0.1)

    again = hold_lease(ctx, "replica-a", ttl_s=10)

    assert again.mine and again.epoch == first.epoch + 1 and again.acquired_us > first.acquired_us


def test_a_write_fenced_by_an_ended_term_is_refused_and_changes_nothing(ctx) -> None:
    old = hold_lease(ctx, "replica-a", ttl_s=0.05)
    time.sleep(0.1)
    hold_lease(ctx, "replica-b", ttl_s=10)

    with pytest.raises(LeaseLost), ctx.db.write() as session:
        fence(session, Term(old.name, old.holder, old.epoch))

    assert current_lease(ctx).holder == "replica-b"


def test_a_new_term_declares_no_agent_lost_before_a_full_heartbeat_period_plus_grace(ctx, clock) -> None:
    ctx.settings.lifecycle = LifecycleSettings(heartbeat_interval_s=0.2, heartbeat_jitter_s=0.0, heartbeat_grace_s=0.3)
    instance_id, _ = in_use_instance(ctx)
    clock.advance(60)  # the controller was away for a minute: every stored deadline is long past
    reconciler = ReconcilerThread(ctx, holder="replica-a")

    first_pass = reconciler.tick()

    assert first_pass is not None and first_pass.lost_nodes == [] and status_of(ctx, instance_id) == Status.IN_USE
    time.sleep(ctx.settings.lifecycle.agent_absence_s + 0.1)  # the node never came back
    later = reconciler.tick()
    assert later.lost_nodes == ["node-1", "i-vm0001"] and status_of(ctx, instance_id) == Status.UNAVAILABLE


def test_a_replica_without_the_lease_does_not_reconcile(ctx, clock) -> None:
    instance_id, _ = in_use_instance(ctx)
    hold_lease(ctx, "replica-a", ttl_s=60)
    clock.advance(600)
    standby = ReconcilerThread(ctx, holder="replica-b")

    assert standby.tick() is None
    assert standby.leader == "replica-a" and status_of(ctx, instance_id) == Status.IN_USE
    assert expire_heartbeats(ctx) == ["node-1", "i-vm0001"]  # the facts were there: only the lease held it back
