"""Looking up what a caller owns. Another account's instance is reported exactly like a missing one."""

from __future__ import annotations

from typing import TypeGuard

from sqlmodel import Session

from controller.errors import InstanceNotFound, WrongInstanceFamily
from controller.states import CATEGORY_EI, Status
from controller.tables import Instance


def owned_instance(
    session: Session, account_id: str, region_id: str, instance_id: str, *, family: str | None = None
) -> Instance:
    """The caller's instance, locked for this write transaction (``FOR UPDATE`` on PostgreSQL).

    The lock makes check-then-change atomic against agent reports; SQLite's single writer
    already gives that. ``family`` (a category) refuses an instance of the other family.
    """
    instance = session.get(Instance, instance_id, with_for_update=True)
    if not _callers(instance, account_id, region_id):
        raise InstanceNotFound(
            f"The instance {instance_id!r} does not exist in region {region_id}; "
            "check the ID and RegionId (DescribeEais lists your instances)."
        )
    if family is not None:
        require_family(instance, family)
    return instance


def require_family(instance: Instance, family: str) -> None:
    """EAI-family actions take ``eais`` instances and notebooks (``jupyter``), EI-family actions only ``ei`` ones."""
    if (instance.category == CATEGORY_EI) == (family == CATEGORY_EI):
        return
    if instance.category == CATEGORY_EI:
        raise WrongInstanceFamily(
            f"The instance {instance.id} is an EI instance (Category ei, made by CreateEaisEi): use AttachEaisEi, "
            "StartEaisEi, StopEaisEi, DetachEaisEi and DeleteEaisEi with EiInstanceId for it."
        )
    raise WrongInstanceFamily(
        f"The instance {instance.id} is an EAI instance (Category {instance.category}, made by CreateEai): use AttachEai, "
        "DetachEai and DeleteEai with ElasticAcceleratedInstanceId for it."
    )


def visible_instance(session: Session, account_id: str, region_id: str | None, instance_id: str) -> Instance:
    """The caller's instance for reading (no lock); ``region_id`` None accepts any region."""
    instance = session.get(Instance, instance_id)
    if not _callers(instance, account_id, region_id):
        where = f" in region {region_id}" if region_id else ""
        raise InstanceNotFound(
            f"The instance {instance_id!r} does not exist{where}; check the ID (DescribeEais lists your instances)."
        )
    return instance


def _callers(instance: Instance | None, account_id: str, region_id: str | None) -> TypeGuard[Instance]:
    return (
        instance is not None
        and instance.account_id == account_id
        and (region_id is None or instance.region_id == region_id)
        and instance.status != Status.RELEASED
    )
