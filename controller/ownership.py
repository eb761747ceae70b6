"""Looking up what a caller owns. Another account's instance is reported exactly like a missing one."""

from __future__ import annotations

from sqlmodel import Session

from controller.errors import InstanceNotFound
from controller.states import Status
from controller.tables import Instance


def owned_instance(session: Session, account_id: str, region_id: str, instance_id: str) -> Instance:
    """The caller's instance, locked for this write transaction (``FOR UPDATE`` on PostgreSQL).

    The lock makes check-then-change atomic against agent reports; SQLite's single writer
    already gives that.
    """
    instance = session.get(Instance, instance_id, with_for_update=True)
    if (
        instance is None
        or instance.account_id != account_id
        or instance.region_id != region_id
        or instance.status == Status.RELEASED
    ):
        raise InstanceNotFound(
            f"The instance {instance_id!r} does not exist in region {region_id}; "
            "check the ID and RegionId (DescribeEais lists your instances)."
        )
    return instance
