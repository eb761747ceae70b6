"""Moves an instance the way agent reports would, for rule tests that run without agents."""

from __future__ import annotations

from controller.context import ControllerContext
from controller.lifecycle import apply
from controller.states import Event
from controller.tables import Instance


def step(ctx: ControllerContext, instance_id: str, event: Event, reason: str = "test step") -> str:
    with ctx.db.write() as session:
        instance = session.get(Instance, instance_id)
        apply(session, instance, event, now_us=ctx.clock.now_us(), reason=reason)
        return instance.status


def status_of(ctx: ControllerContext, instance_id: str) -> str:
    with ctx.db.read() as session:
        return session.get(Instance, instance_id).status
