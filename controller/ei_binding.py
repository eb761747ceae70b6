"""AttachEaisEi, StartEaisEi, StopEaisEi and DetachEaisEi: the EI family's rules, each in one write transaction.

An EI instance is *bound* to a VM (AttachEaisEi: the one-to-one, region and network rules of
AttachEai) before anything runs for it; StartEaisEi then runs the attach machinery (the node starts
a worker, the VM proves the channel: Bound -> StartingWorker -> InUse) and StopEaisEi the detach
machinery (worker killed, memory confirmed free: InUse -> StoppingWorker -> Bound), keeping the
binding. DetachEaisEi unbinds a Bound instance at once: no worker runs for it, nothing to wait for.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from controller.binding import check_network, new_attachment, refuse_bound_client, usable_client
from controller.catalogue import require_instance_type
from controller.context import ControllerContext
from controller.errors import ClientAlreadyBound, ClientNotFound, InstanceNotFound, InvalidEaiStatus
from controller.lifecycle import apply, status_race_refused
from controller.ownership import owned_instance
from controller.states import CATEGORY_EI, Event, Status, shown_status
from controller.tables import ClientInstance, Instance

# Why an EI instance in an internal status refuses an action, in the user's words.
_IN_FLIGHT = {
    Status.STARTING_WORKER: "a StartEaisEi is in progress (it is InUse once the worker runs)",
    Status.STOPPING_WORKER: "a StopEaisEi is in progress (it is Bound once the worker has stopped)",
}


def bind_ei_instance(
    ctx: ControllerContext, account_id: str, region_id: str, client_id: str, *,
    instance_id: str | None, instance_type: str | None, request_id: str,
) -> str:
    """AttachEaisEi: bind the named instance, or the oldest Bindable one (of ``instance_type``); its ID."""
    if instance_id is None and instance_type:
        require_instance_type(ctx.settings, instance_type)
    wanted = instance_id or "(first Bindable)"
    try:
        with status_race_refused(wanted, "binding"), ctx.db.write() as session:
            named = owned_instance(session, account_id, region_id, instance_id, family=CATEGORY_EI) if instance_id else None
            client = usable_client(ctx, session, account_id, region_id, client_id)
            instance = named or _first_bindable(session, account_id, region_id, instance_type, client)
            check_network(instance, client)
            require_ei_status(instance, Status.BINDABLE, "attached", "DetachEaisEi it from its VM first.")
            refuse_bound_client(session, client.id)
            instance.client_instance_id = client.id
            apply(session, instance, Event.BIND, now_us=ctx.clock.now_us(),
                  reason=f"AttachEaisEi to {client.id}", request_id=request_id)
            return instance.id
    except IntegrityError:
        raise ClientAlreadyBound(f"The client instance {client_id} already holds an EAIS instance; detach that one first.") from None


def start_ei_instance(ctx: ControllerContext, account_id: str, region_id: str, instance_id: str, *, request_id: str) -> None:
    """StartEaisEi: Bound -> StartingWorker with a fresh attachment; InUse when both agents confirm."""
    with status_race_refused(instance_id, "starting"), ctx.db.write() as session:
        instance = owned_instance(session, account_id, region_id, instance_id, family=CATEGORY_EI)
        require_ei_status(instance, Status.BOUND, "started", "AttachEaisEi binds it to a VM first.")
        client = session.get(ClientInstance, instance.client_instance_id)
        if client is None or not client.online:
            raise ClientNotFound(
                f"The client instance {instance.client_instance_id} is not running (its VM agent stopped reporting); "
                "start it and retry, or DetachEaisEi and attach the instance to another VM."
            )
        attachment = new_attachment(ctx, session, instance, client)
        instance.attachment_id = attachment.id
        apply(session, instance, Event.START, now_us=attachment.created_us,
              reason=f"StartEaisEi on {client.id}", request_id=request_id)


def stop_ei_instance(ctx: ControllerContext, account_id: str, region_id: str, instance_id: str, *, request_id: str) -> None:
    """StopEaisEi: InUse -> StoppingWorker; Bound once the node freed the memory and the VM closed its channel."""
    with status_race_refused(instance_id, "stopping"), ctx.db.write() as session:
        instance = owned_instance(session, account_id, region_id, instance_id, family=CATEGORY_EI)
        require_ei_status(instance, Status.IN_USE, "stopped", "Only a started (InUse) instance can be stopped.")
        apply(session, instance, Event.STOP, now_us=ctx.clock.now_us(),
              reason=f"StopEaisEi on {instance.client_instance_id}", request_id=request_id)


def unbind_ei_instance(ctx: ControllerContext, account_id: str, region_id: str, instance_id: str, *, request_id: str) -> None:
    """DetachEaisEi: Bound -> Bindable, at once (no worker runs for a Bound instance)."""
    with status_race_refused(instance_id, "detaching"), ctx.db.write() as session:
        instance = owned_instance(session, account_id, region_id, instance_id, family=CATEGORY_EI)
        require_ei_status(instance, Status.BOUND, "detached", "StopEaisEi it first if it is InUse.")
        apply(session, instance, Event.UNBIND, now_us=ctx.clock.now_us(),
              reason=f"DetachEaisEi from {instance.client_instance_id}", request_id=request_id)


def require_ei_status(instance: Instance, wanted: Status, verb: str, hint: str) -> None:
    status = Status(instance.status)
    if status is wanted:
        return
    why = _IN_FLIGHT.get(status, hint)
    raise InvalidEaiStatus(f"The EI instance {instance.id} is {shown_status(status)}; it can be {verb} only when {wanted}: {why}")


def _first_bindable(
    session: Session, account_id: str, region_id: str, instance_type: str | None, client: ClientInstance
) -> Instance:
    """The oldest Bindable EI instance the client can be bound to (its type, and the client's VPC and vSwitch)."""
    statement = select(Instance).where(
        Instance.account_id == account_id, Instance.region_id == region_id,
        Instance.category == CATEGORY_EI, Instance.status == Status.BINDABLE.value,
        Instance.vpc_id.in_(["", client.vpc_id]), Instance.vswitch_id.in_(["", client.vswitch_id]),
    )
    if instance_type:
        statement = statement.where(Instance.instance_type == instance_type)
    # Oldest first; a row another AttachEaisEi holds is skipped, not waited for (PostgreSQL; SQLite has one writer).
    statement = statement.order_by(Instance.created_us, Instance.id).limit(1).with_for_update(skip_locked=True)
    instance = session.execute(statement).scalars().first()
    if instance is None:
        of_type = f" of type {instance_type}" if instance_type else ""
        raise InstanceNotFound(
            f"You have no Bindable EI instance{of_type} in {region_id} in the VPC and vSwitch of {client.id} "
            f"({client.vpc_id}, {client.vswitch_id}); create one with CreateEaisEi, or name one with EiInstanceId."
        )
    return instance
