"""DeleteEai, DeleteEaiAll and DeleteEaisEi: releasing an instance under the Force rules.

DeleteEai: product-rules.md §3. DeleteEaisEi: without Force only from Bindable; with Force from any
status (reference §3); a Bound or InUse instance's binding and worker go with it, as DeleteEai Force.
"""

from __future__ import annotations

from sqlalchemy import update
from sqlmodel import Session

from controller.changes import touch_vm
from controller.context import ControllerContext
from controller.errors import ClientForbidden, InvalidEaiStatus
from controller.lifecycle import apply, status_race_refused
from controller.ownership import owned_instance
from controller.states import (
    CATEGORY_EAI,
    CATEGORY_EI,
    EI_FORCE_TO_RELEASE,
    EI_RELEASABLE_WITHOUT_FORCE,
    FORCE_TO_RELEASE,
    RELEASABLE_WITHOUT_FORCE,
    Event,
    Status,
    shown_status,
)
from controller.tables import Attachment, Instance, Notebook, Slice


def delete_instance(
    ctx: ControllerContext, account_id: str, region_id: str, instance_id: str, *, force: bool, request_id: str
) -> None:
    with status_race_refused(instance_id, "releasing"), ctx.db.write() as session:
        instance = owned_instance(session, account_id, region_id, instance_id, family=CATEGORY_EAI)
        _check_releasable(instance, force)
        _release(ctx, session, instance, reason=f"DeleteEai{' with Force' if force else ''}", request_id=request_id)


def delete_ei_instance(
    ctx: ControllerContext, account_id: str, region_id: str, instance_id: str, *, force: bool, request_id: str
) -> None:
    with status_race_refused(instance_id, "releasing"), ctx.db.write() as session:
        instance = owned_instance(session, account_id, region_id, instance_id, family=CATEGORY_EI)
        status = Status(instance.status)
        if status not in EI_RELEASABLE_WITHOUT_FORCE and not (force and status in EI_FORCE_TO_RELEASE):
            raise InvalidEaiStatus(
                f"The instance {instance.id} is {shown_status(status)}; without Force=true an EI instance can be "
                "released only when Bindable (DetachEaisEi first, or pass Force=true)."
            )
        _release(ctx, session, instance, reason=f"DeleteEaisEi{' with Force' if force else ''}", request_id=request_id)


def delete_instance_and_client(
    ctx: ControllerContext, account_id: str, region_id: str, instance_id: str, client_id: str | None, *, request_id: str
) -> None:
    """DeleteEaiAll: release the instance whatever its status. Client VMs are not ours to delete."""
    with status_race_refused(instance_id, "releasing"), ctx.db.write() as session:
        instance = owned_instance(session, account_id, region_id, instance_id, family=CATEGORY_EAI)
        if client_id and instance.client_instance_id not in (None, client_id):
            raise ClientForbidden(f"The instance {instance_id} is not bound to {client_id}.")
        _release(ctx, session, instance, reason="DeleteEaiAll", request_id=request_id)


def _check_releasable(instance: Instance, force: bool) -> None:
    status = Status(instance.status)
    if status in RELEASABLE_WITHOUT_FORCE or (force and status in FORCE_TO_RELEASE):
        return
    if status in FORCE_TO_RELEASE:
        raise InvalidEaiStatus(
            f"The instance {instance.id} is {status}; releasing it in this status needs Force=true."
        )
    raise InvalidEaiStatus(f"The instance {instance.id} is {status} and cannot be released.")


def _release(ctx: ControllerContext, session: Session, instance: Instance, *, reason: str, request_id: str) -> None:
    now = ctx.clock.now_us()
    if instance.attachment_id:
        session.execute(
            update(Attachment).where(Attachment.id == instance.attachment_id, Attachment.ended_us.is_(None))
            .values(ended_us=now, end_reason="instance released")
        )
    notebook = session.get(Notebook, instance.id)
    if notebook is not None:  # its server stops and its files go (the VM no longer sees it); so does its token
        touch_vm(session, notebook.client_instance_id)
        session.delete(notebook)
    # The slice stays out of use until its node confirms the memory is free.
    session.execute(update(Slice).where(Slice.instance_id == instance.id).values(instance_id=None, draining=True))
    apply(session, instance, Event.RELEASE, now_us=now, reason=reason, request_id=request_id)
