from __future__ import annotations

import pytest
from sqlmodel import select

from controller.binding import attach_instance, detach_instance
from controller.provisioning import CreateRequest, create_instance
from controller.reconciler import time_out_stuck_instances
from controller.states import Event
from controller.tables import Attachment, Instance, Transition
from tests.fleet_rows import REGION, add_client, add_node
from tests.rules.lifecycle_steps import status_of, step

TYPE = "eais.ei-a6.2xlarge"


@pytest.fixture
def instance_id(ctx, account):
    add_node(ctx, slices={TYPE: 2})
    add_client(ctx, account.account_id, "i-vm1")
    return create_instance(ctx, account.account_id, CreateRequest(region_id=REGION, instance_type=TYPE), request_id="r")


def last_reason(ctx, instance_id) -> str:
    with ctx.db.read() as session:
        rows = session.exec(select(Transition).where(Transition.instance_id == instance_id).order_by(Transition.id)).all()
    return rows[-1].reason


def test_nothing_times_out_before_its_deadline(ctx, clock, instance_id):
    clock.advance(ctx.settings.lifecycle.pending_deadline_s - 1)
    assert time_out_stuck_instances(ctx) == []
    assert status_of(ctx, instance_id) == "Pending"


def test_stuck_pending_instance_becomes_unavailable_with_its_reason(ctx, clock, instance_id):
    clock.advance(ctx.settings.lifecycle.pending_deadline_s + 1)
    assert time_out_stuck_instances(ctx) == [(instance_id, "start_timeout")]
    assert status_of(ctx, instance_id) == "Unavailable"
    assert "stuck in Pending" in last_reason(ctx, instance_id)


def test_stuck_attach_falls_back_to_available_and_ends_the_attachment(ctx, clock, account, instance_id):
    step(ctx, instance_id, Event.SLICE_READY)
    attach_instance(ctx, account.account_id, REGION, instance_id, "i-vm1", request_id="r")
    clock.advance(ctx.settings.lifecycle.attaching_deadline_s + 1)
    time_out_stuck_instances(ctx)
    with ctx.db.read() as session:
        instance = session.get(Instance, instance_id)
        attachment = session.exec(select(Attachment)).one()
    assert (instance.status, instance.client_instance_id) == ("Available", None)
    assert attachment.ended_us is not None and "Attaching" in attachment.end_reason


def test_stuck_detach_becomes_unavailable_not_available(ctx, clock, account, instance_id):
    step(ctx, instance_id, Event.SLICE_READY)
    attach_instance(ctx, account.account_id, REGION, instance_id, "i-vm1", request_id="r")
    step(ctx, instance_id, Event.ATTACH_READY)
    detach_instance(ctx, account.account_id, REGION, instance_id, request_id="r")
    clock.advance(ctx.settings.lifecycle.detaching_deadline_s + 1)
    time_out_stuck_instances(ctx)
    assert status_of(ctx, instance_id) == "Unavailable"
    assert "stuck in Detaching" in last_reason(ctx, instance_id)
