"""``apply``: the only code that changes an instance's status, and the transition log's only writer.

The status update is conditional on the status the caller read (compare-and-set), so two
racing transactions cannot both move the same instance: the loser gets
:class:`~controller.states.IllegalTransition` and its transaction rolls back. Every move marks
the agents whose desired state it changes (the node of the instance's slice, its client VM
before and after) for ``controller.changes``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session

from controller.changes import touch_node, touch_vm
from controller.errors import InvalidEaiStatus
from controller.states import BOUND, Event, IllegalTransition, Status, next_status
from controller.tables import Instance, ListedCount, Transition, node_id_of_slice


def apply(
    session: Session,
    instance: Instance,
    event: Event,
    *,
    now_us: int,
    reason: str = "",
    request_id: str | None = None,
) -> Transition:
    """Move ``instance`` by ``event`` per the table, write the row, append the log entry."""
    current = Status(instance.status) if instance.status else None
    target = next_status(current, event)
    _touch_agents(session, instance)
    values = _row_values(instance, target, now_us)
    if current is None:
        for key, value in values.items():
            setattr(instance, key, value)
        session.add(instance)
    else:
        _compare_and_set(session, instance, current, event, values)
    row = Transition(
        instance_id=instance.id,
        account_id=instance.account_id,
        instance_type=instance.instance_type,
        from_status=current.value if current else None,
        to_status=target.value,
        event=event.value,
        reason=reason[:512],
        at_us=now_us,
        request_id=request_id,
    )
    session.add(row)
    if current is None or target is Status.RELEASED:
        _count_listed(session, instance, +1 if current is None else -1)
    session.flush()
    return row


def _touch_agents(session: Session, instance: Instance) -> None:
    """Before the move: the slice and the binding it may end are still on the instance."""
    if instance.slice_id:
        touch_node(session, node_id_of_slice(instance.slice_id))
    if instance.client_instance_id:
        touch_vm(session, instance.client_instance_id)


def _count_listed(session: Session, instance: Instance, delta: int) -> None:
    dialect = session.get_bind().dialect.name
    insert = sqlite_insert if dialect == "sqlite" else postgresql_insert
    statement = insert(ListedCount).values(account_id=instance.account_id, region_id=instance.region_id, listed=delta)
    session.execute(statement.on_conflict_do_update(
        index_elements=["account_id", "region_id"], set_={"listed": ListedCount.listed + delta}))


@contextmanager
def status_race_refused(instance_id: str, doing: str) -> Iterator[None]:
    """A compare-and-set lost to a concurrent change becomes the caller's ``InvalidEaiStatus``."""
    try:
        yield
    except IllegalTransition:
        raise InvalidEaiStatus(f"The instance {instance_id} changed status while {doing}; describe it and retry.") from None


def _row_values(instance: Instance, target: Status, now_us: int) -> dict[str, object]:
    values: dict[str, object] = {"status": target.value, "status_since_us": now_us}
    if target not in BOUND:  # a binding exists only while Attaching, InUse or Detaching (EI: Bound … StoppingWorker)
        values["client_instance_id"] = None
        values["attachment_id"] = None
    if target is Status.BOUND:  # bound to the VM, no worker: no attachment until StartEaisEi
        values["attachment_id"] = None
    if target in (Status.AVAILABLE, Status.BINDABLE) and instance.started_us is None:
        values["started_us"] = now_us
    if target is Status.RELEASED:
        values.update(released_us=now_us, slice_id=None)
    return values


def _compare_and_set(
    session: Session, instance: Instance, current: Status, event: Event, values: dict[str, object]
) -> None:
    result = session.execute(
        update(Instance)
        .where(Instance.id == instance.id, Instance.status == current.value)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        raise IllegalTransition(current, event)
    for key, value in values.items():  # the row is written; keep the ORM from writing it again
        set_committed_value(instance, key, value)
