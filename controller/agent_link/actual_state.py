"""Actual state: what agents report, and the lifecycle events it justifies.

Level-triggered and idempotent: every rule looks at the instance's status now and acts only when
the report moves it forward, so a repeated report changes nothing. A report about an attachment
that is not the instance's current one is stale and ignored, and so is a slice report that does
not name the slice's current instance: a node reports slices, and a report it made for an earlier
picture of the slice (idle, or serving another instance) must not move a new instance, e.g. a
READY made for the idle slice must not skip Starting. A released slice is freed only by a report
naming no instance, one the node made after it acted on the release. Statuses change only through
``controller.lifecycle.apply``. Most reports change nothing and a fleet sends many, so each is
first worked out in a read transaction (``Database.write_if_needed``) and done again in a write
transaction only when it changes something. A node's report loads the node's slices, instances
and attachments in a few queries; each slice is a savepoint of its own, so a lost race on one
slice rolls back only that slice and the next report retries it. A VM's report is one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from enum import StrEnum

from sqlmodel import Session, select

from controller.agent_link import attachment_progress as progress
from controller.changes import touch_node
from controller.clock import US_PER_S
from controller.context import ControllerContext
from controller.db import DRY_RUN, in_chunks
from controller.errors import InvalidParameter, NoPermission
from controller.lifecycle import apply
from controller.states import PREPARING, WORKER_STARTING, WORKER_STOPPING, Event, IllegalTransition, Status, recovery_event
from controller.tables import Attachment, ClientInstance, Instance, Node, Slice, Transition
from controller.usage_samples import UsageFigures, record_usage_sample


class SlicePhase(StrEnum):
    UNKNOWN = "unknown"
    PREPARING = "preparing"
    READY = "ready"


class WorkerState(StrEnum):
    UNKNOWN = "unknown"
    NONE = "none"
    STARTING = "starting"
    READY = "ready"
    FAILED = "failed"
    STOPPING = "stopping"


class ChannelState(StrEnum):
    UNKNOWN = "unknown"
    IDLE = "idle"
    OPENING = "opening"
    PROVEN = "proven"
    CLOSED = "closed"
    FAILED = "failed"
    BROKEN = "broken"


@dataclass(frozen=True, slots=True)
class SliceReport:
    slice_id: str
    phase: SlicePhase
    worker: WorkerState
    attachment_id: str = ""
    instance_id: str = ""  # the instance the node prepared the slice for; empty while idle or releasing
    memory_free: bool = False
    failure_reason: str = ""
    usage: UsageFigures | None = None

    @property
    def free(self) -> bool:
        """No worker, and the node checked that the memory came back."""
        return self.worker is WorkerState.NONE and self.memory_free


@dataclass(frozen=True, slots=True)
class ChannelReport:
    attachment_id: str
    channel: ChannelState
    failure_reason: str = ""


@dataclass
class ReportOutcome:
    transitions: list[Transition] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def apply_node_report(ctx: ControllerContext, node_id: str, reports: Sequence[SliceReport]) -> ReportOutcome:
    """Act on a node's per-slice report; refuses slices of other nodes (PERMISSION_DENIED)."""
    _check_slice_ids(node_id, reports)
    sample_gap_us = round(ctx.settings.lifecycle.usage_sample_interval_s * US_PER_S)

    def act(session: Session) -> ReportOutcome:
        outcome, now = ReportOutcome(), ctx.clock.now_us()
        picture = _load_node_picture(session, node_id)  # held: the session's identity map only refers weakly
        dry_run = session.info.get(DRY_RUN, False)  # nothing to roll back: no savepoints
        for report in sorted(reports, key=lambda r: r.slice_id):  # rows locked in one order: no deadlock
            try:
                with nullcontext() if dry_run else session.begin_nested():
                    transitions = _act_on_slice(ctx, session, node_id, report, now, outcome.notes, sample_gap_us)
            except IllegalTransition as exc:  # another writer moved the instance first; the next report retries
                outcome.notes.append(f"slice {report.slice_id}: not applied, the instance changed meanwhile ({exc}); "
                                     "report again")
                continue
            outcome.transitions.extend(transitions)
        del picture
        return outcome

    return ctx.db.write_if_needed(act)


def _load_node_picture(session: Session, node_id: str) -> list[object]:
    """The node, its slices, their instances and current attachments into the session, in four queries:
    the rules' ``session.get`` calls then find them without a query of their own, as long as the
    caller holds the returned rows."""
    rows: list[object] = [session.get(Node, node_id)]
    slices = session.exec(select(Slice).where(Slice.node_id == node_id)).all()
    rows += slices
    for chunk in in_chunks(row.instance_id for row in slices if row.instance_id):
        instances = session.exec(select(Instance).where(Instance.id.in_(chunk))).all()
        rows += instances
        attachment_ids = [instance.attachment_id for instance in instances if instance.attachment_id]
        if attachment_ids:
            rows += session.exec(select(Attachment).where(Attachment.id.in_(attachment_ids))).all()
    return rows


def apply_vm_report(ctx: ControllerContext, client_instance_id: str, report: ChannelReport) -> ReportOutcome:
    """Act on a VM's channel report; refuses another VM's attachment (PERMISSION_DENIED)."""
    if report.channel not in (ChannelState.PROVEN, ChannelState.FAILED, ChannelState.CLOSED, ChannelState.BROKEN):
        return ReportOutcome()  # idle / opening / unknown justify nothing
    if not report.attachment_id:
        raise InvalidParameter(f"A channel reported {report.channel} must name its attachment_id.")

    def act(session: Session) -> ReportOutcome:
        outcome = ReportOutcome()
        transitions = _act_on_channel(session, client_instance_id, report, ctx.clock.now_us(), outcome.notes)
        outcome.transitions.extend(transitions)
        return outcome

    try:
        return ctx.db.write_if_needed(act)
    except IllegalTransition as exc:  # another writer moved the instance first; the next report retries
        return ReportOutcome(notes=[f"attachment {report.attachment_id}: not applied, the instance changed meanwhile "
                                    f"({exc}); report again"])


def _check_slice_ids(node_id: str, reports: Sequence[SliceReport]) -> None:
    seen: set[str] = set()
    for report in reports:
        if not report.slice_id.startswith(f"{node_id}/"):
            raise NoPermission(
                f"Slice {report.slice_id[:128]!r} does not belong to node {node_id}; report only your own slices."
            )
        if report.slice_id in seen:
            raise InvalidParameter(f"Slice {report.slice_id!r} appears twice in one report; send one entry per slice.")
        seen.add(report.slice_id)


def _act_on_slice(
    ctx: ControllerContext, session: Session, node_id: str, report: SliceReport, now: int, notes: list[str],
    sample_gap_us: int,
) -> list[Transition]:
    row = session.get(Slice, report.slice_id)
    if row is None or row.node_id != node_id:
        notes.append(f"slice {report.slice_id}: unknown to the controller; register it first")
        return []
    instance = session.get(Instance, row.instance_id) if row.instance_id else None
    if row.draining or instance is None or instance.status == Status.RELEASED:
        _settle_released_slice(session, row, report, notes)  # a slice serving no instance: its usage is nobody's
        return []
    if report.instance_id != instance.id:
        notes.append(f"slice {report.slice_id}: report about instance {_named(report)}, not the slice's current "
                     f"instance {instance.id}; stale report ignored")
        return []
    node = session.get(Node, node_id)
    transitions = _slice_rules(ctx, session, node, instance, report, now, notes) if node else []
    _keep_usage(session, instance, report, now, sample_gap_us, notes)
    return transitions


def _keep_usage(
    session: Session, instance: Instance, report: SliceReport, now: int, sample_gap_us: int, notes: list[str]
) -> None:
    """Sample the figures when they come from the worker of the instance's current attachment."""
    if report.usage is None or not report.attachment_id:
        return
    current = progress.current_attachment(session, instance)
    if current is None or current.id != report.attachment_id:
        return  # a worker of an earlier attachment: its figures say nothing about the instance now
    figures = report.usage.sanitised()
    if figures is None:
        notes.append(f"slice {report.slice_id}: usage figures are not numbers; sample dropped")
        return
    record_usage_sample(session, instance_id=instance.id, attachment_id=current.id, slice_id=report.slice_id,
                        figures=figures, now_us=now, min_gap_us=sample_gap_us)


def _settle_released_slice(session: Session, row: Slice, report: SliceReport, notes: list[str]) -> None:
    """A released slice whose memory the node confirmed free after acting on the release can be handed out again."""
    if not report.free or not (row.draining or row.instance_id is not None):
        return
    if report.instance_id:  # made while the node still served that instance: it says nothing about the release
        notes.append(f"slice {report.slice_id}: report about instance {_named(report)}, but the slice is being "
                     "released; stale report ignored (report it free with no instance once released)")
        return
    row.draining = False
    row.instance_id = None
    session.add(row)
    touch_node(session, row.node_id)  # its desired state goes from "release" to "idle"


def _slice_rules(
    ctx: ControllerContext, session: Session, node: Node, instance: Instance, report: SliceReport, now: int,
    notes: list[str],
) -> list[Transition]:
    status, said = Status(instance.status), _node_said(node.id, report)
    if status is Status.PENDING and report.phase is SlicePhase.PREPARING:
        return [apply(session, instance, Event.SLICE_PREPARING, now_us=now, reason=said)]
    if status in PREPARING and report.phase is SlicePhase.READY:
        ready = [apply(session, instance, Event.SLICE_READY, now_us=now, reason=said)]
        from controller.notebooks import bind_new_notebook  # here: notebooks -> binding -> agent_link is a cycle

        bind_new_notebook(ctx, session, instance, notes)  # a notebook goes on to Attaching at once
        return ready
    if status is Status.UNAVAILABLE and node.online and report.phase is SlicePhase.READY and report.free:
        return [apply(session, instance, recovery_event(instance.category), now_us=now, reason=said)]
    if status in WORKER_STARTING:
        return _node_attaching_rules(session, node, instance, report, now, notes)
    if status in WORKER_STOPPING and report.free:
        return _node_let_go(session, node, instance, now, said)
    return []


def _node_attaching_rules(
    session: Session, node: Node, instance: Instance, report: SliceReport, now: int, notes: list[str]
) -> list[Transition]:
    if report.worker not in (WorkerState.READY, WorkerState.FAILED):
        return []
    attachment = _current_or_note_stale(session, instance, report.attachment_id, notes)
    if attachment is None:
        return []
    if report.worker is WorkerState.FAILED:
        reason = f"{_node_said(node.id, report)}: {report.failure_reason or 'no reason given'}"
        return progress.fail_attach(session, instance, attachment, now, reason)
    attachment = progress.locked(session, attachment)
    if attachment.node_ready_us is None:
        attachment.node_ready_us = now
        session.add(attachment)
    return progress.attach_ready_if_both_ends_ready(session, instance, attachment, now)


def _node_let_go(session: Session, node: Node, instance: Instance, now: int, said: str) -> list[Transition]:
    attachment = progress.current_attachment(session, instance)
    if attachment is None:
        return []
    attachment = progress.locked(session, attachment)
    if attachment.node_ready_us is not None:
        attachment.node_ready_us = None  # the node's end is done (see attachment_progress)
        session.add(attachment)
    vm = session.get(ClientInstance, attachment.client_instance_id)
    return progress.detach_done_if_both_ends_let_go(
        session, instance, attachment, now, vm_online=vm is not None and vm.online, cause=said
    )


def _act_on_channel(
    session: Session, client_instance_id: str, report: ChannelReport, now: int, notes: list[str]
) -> list[Transition]:
    attachment = session.get(Attachment, report.attachment_id)
    if attachment is not None and attachment.client_instance_id != client_instance_id:
        raise NoPermission(f"Attachment {report.attachment_id} does not bind this VM; report only your own attachment.")
    instance = session.get(Instance, attachment.instance_id) if attachment else None
    if instance is None or _current_or_note_stale(session, instance, report.attachment_id, notes) is None:
        if instance is None:
            notes.append(f"attachment {report.attachment_id}: unknown to the controller; ignored")
        return []
    said = _vm_said(client_instance_id, report)
    if report.channel is ChannelState.FAILED:
        reason = f"{said}: {report.failure_reason or 'no reason given'}"
        return progress.fail_attach(session, instance, attachment, now, reason)
    if report.channel is ChannelState.PROVEN and instance.status in WORKER_STARTING:
        attachment = progress.locked(session, attachment)
        if attachment.vm_ready_us is None:
            attachment.vm_ready_us = now
            session.add(attachment)
        return progress.attach_ready_if_both_ends_ready(session, instance, attachment, now)
    if report.channel is ChannelState.BROKEN and instance.status == Status.IN_USE:
        reason = f"{said}: {report.failure_reason or 'no reason given'}"
        progress.end_attachment(session, attachment, now, f"channel lost: {reason}")
        return [apply(session, instance, Event.CHANNEL_LOST, now_us=now, reason=reason)]
    if report.channel is ChannelState.CLOSED and instance.status in WORKER_STOPPING:
        attachment = progress.locked(session, attachment)
        if attachment.vm_ready_us is not None:
            attachment.vm_ready_us = None  # the VM's end is done (see attachment_progress)
            session.add(attachment)
        return progress.detach_done_if_both_ends_let_go(session, instance, attachment, now, vm_online=True, cause=said)
    return []


def _current_or_note_stale(
    session: Session, instance: Instance, attachment_id: str, notes: list[str]
) -> Attachment | None:
    current = progress.current_attachment(session, instance)
    if current is None or current.id != attachment_id:
        named = attachment_id or "(none)"
        notes.append(f"attachment {named}: not the current attachment of {instance.id}; stale report ignored")
        return None
    return current


def _named(report: SliceReport) -> str:
    return report.instance_id[:64] or "(none)"


def _node_said(node_id: str, report: SliceReport) -> str:
    worker = f"worker {report.worker}" + (f" for attachment {report.attachment_id}" if report.attachment_id else "")
    memory = ", memory free" if report.memory_free else ""
    return f"node {node_id} reported slice {report.slice_id} {report.phase}, {worker}{memory}"


def _vm_said(client_instance_id: str, report: ChannelReport) -> str:
    return f"VM {client_instance_id} reported the channel for attachment {report.attachment_id} {report.channel}"
