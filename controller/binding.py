"""AttachEai and DetachEai: the binding rules, inside one write transaction.

The EI family (``controller.ei_binding``) binds and starts with the same checks.

The database has the last word on one-to-one binding: ``instances.client_instance_id`` is
UNIQUE (one instance per client) and ``apply`` moves the status by compare-and-set (one client
per instance), so of two racing AttachEai calls exactly one commits.
"""

from __future__ import annotations

import secrets

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from controller.agent_link.registration_rules import CLIENT_KINDS
from controller.context import ControllerContext
from controller.errors import (
    ClientAlreadyBound,
    ClientForbidden,
    ClientNotFound,
    ClientTooSmall,
    ClientTypeError,
    ClientVpcMismatch,
    ClientVSwitchMismatch,
    InvalidEaiStatus,
)
from controller.ids import new_attachment_id
from controller.lifecycle import apply, status_race_refused
from controller.ownership import owned_instance
from controller.states import CATEGORY_EAI, CATEGORY_JUPYTER, Event, Status, shown_status
from controller.tables import Attachment, ClientInstance, Instance, Slice


def attach_instance(
    ctx: ControllerContext, account_id: str, region_id: str, instance_id: str, client_id: str, *, request_id: str
) -> None:
    try:
        with status_race_refused(instance_id, "attaching"), ctx.db.write() as session:
            instance = owned_instance(session, account_id, region_id, instance_id, family=CATEGORY_EAI)
            refuse_notebook(instance, "AttachEai", "StartEaiJupyter")
            client = usable_client(ctx, session, account_id, region_id, client_id)
            require_status(instance, Status.AVAILABLE, "attached", "Wait until it is Available, or detach it first.")
            bind_client(ctx, session, instance, client, reason=f"AttachEai to {client.id}", request_id=request_id)
    except IntegrityError:
        raise ClientAlreadyBound(f"The client instance {client_id} already holds an EAIS instance; detach that one first.") from None


def bind_client(
    ctx: ControllerContext, session: Session, instance: Instance, client: ClientInstance, *, reason: str,
    request_id: str | None,
) -> None:
    """Bind ``instance`` to ``client`` (network checked, client free) and move it to Attaching."""
    check_network(instance, client)
    refuse_bound_client(session, client.id)
    attachment = new_attachment(ctx, session, instance, client)
    instance.client_instance_id = client.id
    instance.attachment_id = attachment.id
    apply(session, instance, Event.ATTACH, now_us=attachment.created_us, reason=reason, request_id=request_id)


def refuse_notebook(instance: Instance, action: str, instead: str) -> None:
    """A notebook (Category jupyter) is started and stopped as a whole, never attached or detached alone."""
    if instance.category == CATEGORY_JUPYTER:
        raise InvalidEaiStatus(
            f"The instance {instance.id} is a notebook (Category jupyter); {action} does not apply to it: use {instead}."
        )


def detach_instance(ctx: ControllerContext, account_id: str, region_id: str, instance_id: str, *, request_id: str) -> None:
    with status_race_refused(instance_id, "detaching"), ctx.db.write() as session:
        instance = owned_instance(session, account_id, region_id, instance_id, family=CATEGORY_EAI)
        refuse_notebook(instance, "DetachEai", "StopEaiJupyter")
        require_status(instance, Status.IN_USE, "detached", "Only an InUse instance can be detached.")
        apply(session, instance, Event.DETACH, now_us=ctx.clock.now_us(),
              reason=f"DetachEai from {instance.client_instance_id}", request_id=request_id)


def usable_client(
    ctx: ControllerContext, session: Session, account_id: str, region_id: str, client_id: str
) -> ClientInstance:
    client = session.get(ClientInstance, client_id)
    if client is None or client.account_id != account_id:
        raise ClientForbidden(f"The client instance {client_id} does not exist or does not belong to you.")
    if client.region_id != region_id:
        raise ClientNotFound(
            f"The client instance {client_id} is in {client.region_id}, not {region_id}: "
            "an EAIS instance can only be attached to a client instance in its own region."
        )
    if not client.online:
        raise ClientNotFound(f"The client instance {client_id} is not running (its VM agent stopped reporting); start it and retry.")
    if client.kind not in CLIENT_KINDS:
        raise ClientTypeError(f"The client instance {client_id} is a {client.kind}; only ECS and ECI instances can be attached to.")
    rules = ctx.settings.accounts
    if client.vcpu < rules.client_min_vcpu or client.memory_mib < rules.client_min_memory_mib:
        raise ClientTooSmall(
            f"The client instance {client_id} has {client.vcpu} vCPU and {client.memory_mib} MiB; "
            f"at least {rules.client_min_vcpu} vCPU and {rules.client_min_memory_mib} MiB are needed."
        )
    return client


def check_network(instance: Instance, client: ClientInstance) -> None:
    if instance.vpc_id and client.vpc_id != instance.vpc_id:
        raise ClientVpcMismatch(f"The client instance is in VPC {client.vpc_id}; the EAIS instance is in {instance.vpc_id}.")
    if instance.vswitch_id and client.vswitch_id != instance.vswitch_id:
        raise ClientVSwitchMismatch(
            f"The client instance is in vSwitch {client.vswitch_id}; the EAIS instance is in {instance.vswitch_id}."
        )


def require_status(instance: Instance, wanted: Status, verb: str, hint: str) -> None:
    if instance.status != wanted:
        raise InvalidEaiStatus(
            f"The instance {instance.id} is {shown_status(Status(instance.status))}; it can be {verb} only when {wanted}. {hint}"
        )


def refuse_bound_client(session: Session, client_id: str) -> None:
    holder = session.execute(select(Instance.id).where(Instance.client_instance_id == client_id)).first()
    if holder is not None:
        raise ClientAlreadyBound(f"The client instance {client_id} already holds {holder[0]}; detach it first.")


def new_attachment(ctx: ControllerContext, session: Session, instance: Instance, client: ClientInstance) -> Attachment:
    node_id = session.execute(select(Slice.node_id).where(Slice.id == instance.slice_id)).scalar_one()
    attachment = Attachment(
        id=new_attachment_id(), instance_id=instance.id, client_instance_id=client.id, node_id=node_id,
        token_ciphertext=ctx.box.seal(secrets.token_urlsafe(32)), created_us=ctx.clock.now_us(),
    )
    session.add(attachment)
    return attachment
