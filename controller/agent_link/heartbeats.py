"""Heartbeats: the deadline the controller hands out, and what happens when one is missed.

As in Nomad, the server chooses each agent's next deadline (interval + random jitter, so that a
fleet does not beat in lock-step) and treats a missed one as an ordinary lifecycle event:
``expire_heartbeats`` (called by the reconciler) applies ``node_lost`` to the instances of a node
silent for longer than its deadline plus the grace period.
"""

from __future__ import annotations

import logging
import random

from sqlmodel import Session, select

from controller.agent_link.attachment_progress import (
    current_attachment,
    detach_done_if_both_ends_let_go,
    end_attachment,
)
from controller.clock import US_PER_S, to_datetime
from controller.context import ControllerContext
from controller.leadership import Term, fence
from controller.lifecycle import apply
from controller.settings import LifecycleSettings
from controller.states import LETTING_GO, LOST_WITH_NODE, Event, IllegalTransition
from controller.tables import ClientInstance, Instance, Node, Slice

log = logging.getLogger(__name__)


def next_heartbeat_deadline_us(timing: LifecycleSettings, now_us: int, rng: random.Random | None = None) -> int:
    """now + interval + a jitter drawn uniformly from [0, jitter]."""
    jitter_s = (rng or random).uniform(0.0, timing.heartbeat_jitter_s)
    return now_us + round((timing.heartbeat_interval_s + jitter_s) * US_PER_S)


def expire_heartbeats(ctx: ControllerContext, term: Term | None = None) -> list[str]:
    """Mark agents silent past deadline + grace offline; ids of the nodes, then the VMs, marked.

    With ``term`` (the reconciler's lease), every write first checks the term is still current.
    """
    now = ctx.clock.now_us()
    cutoff = now - round(ctx.settings.lifecycle.heartbeat_grace_s * US_PER_S)
    with ctx.db.read() as session:
        overdue = list(session.exec(select(Node.id).where(Node.online, Node.heartbeat_deadline_us < cutoff)).all())
    lost_nodes = [node_id for node_id in overdue if _lose_node(ctx, node_id, cutoff, term)]
    return lost_nodes + _mark_silent_vms_offline(ctx, cutoff, term)


def _lose_node(ctx: ControllerContext, node_id: str, cutoff_us: int, term: Term | None) -> bool:
    """One transaction per node: offline, and node_lost for every instance on its slices."""
    try:
        with ctx.db.write() as session:
            if term is not None:
                fence(session, term)
            node = session.get(Node, node_id)
            if node is None or not node.online or node.heartbeat_deadline_us >= cutoff_us:
                return False  # it beat again since we looked
            node.online = False
            session.add(node)
            now = ctx.clock.now_us()
            reason = (
                f"node {node_id} missed its heartbeat deadline {_iso(node.heartbeat_deadline_us)} by more than the "
                f"{ctx.settings.lifecycle.heartbeat_grace_s:g}s grace period (last seen {_iso(node.last_seen_us)})"
            )
            for instance in _instances_on_node(session, node_id):
                _lose_instance(session, instance, now, reason)
    except IllegalTransition as exc:  # raced with another writer; the next pass retries
        log.warning("could not mark node %s lost this pass: %s", node_id, exc)
        return False
    log.warning("%s", reason)
    return True


def _instances_on_node(session: Session, node_id: str) -> list[Instance]:
    return list(
        session.exec(
            select(Instance)
            .join(Slice, Slice.instance_id == Instance.id)
            .where(Slice.node_id == node_id, Instance.status.in_([s.value for s in LOST_WITH_NODE]))
        ).all()
    )


def _lose_instance(session: Session, instance: Instance, now_us: int, reason: str) -> None:
    attachment = current_attachment(session, instance)
    if attachment is not None:
        end_attachment(session, attachment, now_us, f"node lost: {reason}")
    apply(session, instance, Event.NODE_LOST, now_us=now_us, reason=reason)


def _mark_silent_vms_offline(ctx: ControllerContext, cutoff_us: int, term: Term | None) -> list[str]:
    try:
        silent = _take_silent_vms_offline(ctx, cutoff_us, term)
    except IllegalTransition as exc:  # raced with another writer; the next pass retries
        log.warning("could not mark silent VMs offline this pass: %s", exc)
        return []
    for vm in silent:
        log.warning("VM %s missed its heartbeat deadline; marked offline", vm.id)
    return [vm.id for vm in silent]


def _take_silent_vms_offline(ctx: ControllerContext, cutoff_us: int, term: Term | None) -> list[ClientInstance]:
    with ctx.db.write() as session:
        if term is not None:
            fence(session, term)
        silent = list(
            session.exec(
                select(ClientInstance).where(ClientInstance.online, ClientInstance.heartbeat_deadline_us < cutoff_us)
            ).all()
        )
        for vm in silent:
            vm.online = False
            session.add(vm)
            _finish_detach_of_offline_vm(session, vm, ctx.clock.now_us())
    return silent


def _finish_detach_of_offline_vm(session: Session, vm: ClientInstance, now_us: int) -> None:
    """A silent VM cannot report its channel closed; a freed node is enough then."""
    instance = session.exec(select(Instance).where(Instance.client_instance_id == vm.id)).first()
    if instance is None or instance.status not in LETTING_GO:
        return
    attachment = current_attachment(session, instance)
    if attachment is not None:
        cause = f"VM {vm.id} missed its heartbeat deadline"
        detach_done_if_both_ends_let_go(session, instance, attachment, now_us, vm_online=False, cause=cause)


def _iso(us: int) -> str:
    return to_datetime(us).strftime("%Y-%m-%dT%H:%M:%SZ")
