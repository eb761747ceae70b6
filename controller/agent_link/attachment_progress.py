"""How an attachment moves forward, shared by the report handlers and heartbeat expiry.

The two ends of an attachment leave their marks on its row:
- ``node_ready_us`` / ``vm_ready_us``: set when that end reports ready (worker ready, channel
  proven). While Detaching, each is cleared again when that end reports it has let go (memory
  free, channel closed); only ``attach_ready`` can reach InUse, and it needs both set, so a
  cleared mark during Detaching always means "this end is done".
- a notebook's ``server_attachment_id`` (``notebooks``): set when its VM reports the Jupyter server
  answering for this attachment; a notebook needs it too before InUse.
- ``ended_us`` / ``end_reason``: set once, when the binding ends (failed, detached, node lost).
Instances move only through ``controller.lifecycle.apply``.

The two ends report to any replica, in transactions of their own that may run at the same time:
each end marks the row only once it holds the row's lock (:func:`locked`), so the second to
commit always sees the first's mark (without it, two concurrent reports could each see the other
end not ready, and the attach would wait for the next periodic report).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlmodel import Session

from controller.agent_link.link_metrics import ATTACH_SECONDS, DETACH_SECONDS
from controller.clock import US_PER_S
from controller.db import DRY_RUN, after_commit
from controller.lifecycle import apply
from controller.states import WORKER_STARTING, WORKER_STOPPING, Event
from controller.tables import Attachment, Instance, Notebook, Transition


def current_attachment(session: Session, instance: Instance) -> Attachment | None:
    """The attachment the instance is bound by now, or None."""
    if not instance.attachment_id:
        return None
    attachment = session.get(Attachment, instance.attachment_id)
    if attachment is None or attachment.instance_id != instance.id or attachment.ended_us is not None:
        return None
    return attachment


def locked(session: Session, attachment: Attachment) -> Attachment:
    """The attachment re-read under a row lock (SELECT ... FOR UPDATE; SQLite's one writer is lock enough)."""
    if session.info.get(DRY_RUN):  # a read-only first run: nothing is marked in it, so nothing to lock
        return attachment
    statement = select(Attachment).where(Attachment.id == attachment.id).with_for_update()
    return session.execute(statement.execution_options(populate_existing=True)).scalar_one()


def end_attachment(session: Session, attachment: Attachment, now_us: int, reason: str) -> None:
    if attachment.ended_us is None:
        attachment.ended_us = now_us
        attachment.end_reason = reason[:256]
        session.add(attachment)


def attach_ready_if_both_ends_ready(
    session: Session, instance: Instance, attachment: Attachment, now_us: int
) -> list[Transition]:
    """Attaching (or StartingWorker) -> InUse once the node's worker and the VM's channel are both ready."""
    if instance.status not in WORKER_STARTING or instance.attachment_id != attachment.id:
        return []
    if attachment.node_ready_us is None or attachment.vm_ready_us is None:
        return []
    notebook = session.get(Notebook, instance.id)
    if notebook is not None and notebook.server_attachment_id != attachment.id:
        return []  # a notebook is InUse only once its Jupyter server answers too
    reason = (
        f"node {attachment.node_id} reported the worker ready and VM {attachment.client_instance_id} "
        f"proved the channel for attachment {attachment.id}"
        + (f" and serves the notebook at {notebook.server_url}" if notebook is not None else "")
    )
    took_s = (now_us - attachment.created_us) / US_PER_S
    after_commit(session, lambda: ATTACH_SECONDS.observe(took_s))
    return [apply(session, instance, Event.ATTACH_READY, now_us=now_us, reason=reason)]


def fail_attach(
    session: Session, instance: Instance, attachment: Attachment, now_us: int, reason: str
) -> list[Transition]:
    """Attaching -> Available (StartingWorker -> Bound), ending the attachment with ``reason``."""
    if instance.status not in WORKER_STARTING or instance.attachment_id != attachment.id:
        return []
    end_attachment(session, attachment, now_us, reason)
    return [apply(session, instance, Event.ATTACH_FAILED, now_us=now_us, reason=reason)]


def detach_done_if_both_ends_let_go(
    session: Session, instance: Instance, attachment: Attachment, now_us: int, *, vm_online: bool, cause: str
) -> list[Transition]:
    """Detaching -> Available (StoppingWorker -> Bound, Stopping -> Stopped) once the node freed the memory and the VM closed (or is offline)."""
    if instance.status not in WORKER_STOPPING or instance.attachment_id != attachment.id:
        return []
    if attachment.node_ready_us is not None:
        return []  # the node has not confirmed the memory free: never hand the slice out before
    if attachment.vm_ready_us is not None and vm_online:
        return []
    vm_part = "the VM closed its channel" if attachment.vm_ready_us is None else "the VM is offline"
    reason = f"{cause}; node {attachment.node_id} confirmed the memory free and {vm_part} (attachment {attachment.id})"
    end_attachment(session, attachment, now_us, f"detached: {reason}")
    took_s = (now_us - instance.status_since_us) / US_PER_S  # since DetachEai made it Detaching
    after_commit(session, lambda: DETACH_SECONDS.observe(took_s))
    return [apply(session, instance, Event.DETACH_DONE, now_us=now_us, reason=reason)]
