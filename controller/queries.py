"""DescribeEais: filtered, paged listing of a caller's instances in one region."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, func, select
from sqlalchemy.sql.elements import ColumnElement

from controller.context import ControllerContext
from controller.errors import InvalidParameter
from controller.states import LISTED, Status
from controller.tables import ClientInstance, Instance, InstanceTag, ListedCount

@dataclass(frozen=True)
class InstanceFilter:
    region_id: str
    instance_ids: list[str] | None = None
    client_instance_id: str = ""
    name: str = ""  # '*' is a wildcard
    instance_type: str = ""
    status: str = ""
    resource_group_id: str = ""
    tags: list[tuple[str, str | None]] = field(default_factory=list)

@dataclass(frozen=True)
class InstanceView:
    instance: Any  # a row with the columns of ``instances`` (read with Core: this is the hot path)
    tags: list[tuple[str, str]]
    client_name: str
    client_type: str

@dataclass(frozen=True)
class Page:
    views: list[InstanceView]
    total: int
    page_number: int
    page_size: int

def describe_instances(
    ctx: ControllerContext, account_id: str, wanted: InstanceFilter, page_number: int, page_size: int
) -> Page:
    conditions = _conditions(account_id, wanted)
    with ctx.db.read_connection() as conn:
        total = _total(conn, account_id, wanted, conditions)
        # Page through the covering index first, then read whole rows for the page only.
        page_ids = conn.execute(
            select(Instance.id).where(*conditions).order_by(*_NEWEST_FIRST)
            .offset((page_number - 1) * page_size).limit(page_size)
        ).scalars().all()
        rows = conn.execute(
            select(*Instance.__table__.c, ClientInstance.name.label("client_name"),
                   ClientInstance.instance_type.label("client_type"))
            .outerjoin(ClientInstance, ClientInstance.id == Instance.client_instance_id)
            .where(Instance.id.in_(page_ids)).order_by(*_NEWEST_FIRST)
        ).all() if page_ids else []
        tags = _tags_of(conn, page_ids)
    views = [InstanceView(row, tags.get(row.id, []), row.client_name or "", row.client_type or "") for row in rows]
    return Page(views, total, page_number, page_size)

def _total(conn: Connection, account_id: str, wanted: InstanceFilter, conditions: list) -> int:  # noqa: ANN001
    if wanted == InstanceFilter(region_id=wanted.region_id):  # unfiltered: the kept count, no row scan
        listed = conn.execute(select(ListedCount.listed).where(
            ListedCount.account_id == account_id, ListedCount.region_id == wanted.region_id)).scalar()
        return listed or 0
    return conn.execute(select(func.count()).select_from(Instance).where(*conditions)).scalar_one()


_NEWEST_FIRST = (Instance.created_us.desc(), Instance.id.desc())


def _conditions(account_id: str, wanted: InstanceFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [Instance.account_id == account_id, Instance.region_id == wanted.region_id]
    if wanted.status:
        conditions.append(Instance.status == _listed_status(wanted.status))
    else:
        conditions.append(Instance.status != Status.RELEASED.value)
    if wanted.instance_ids is not None:
        conditions.append(Instance.id.in_(wanted.instance_ids))
    for column, value in ((Instance.client_instance_id, wanted.client_instance_id),
                          (Instance.instance_type, wanted.instance_type),
                          (Instance.resource_group_id, wanted.resource_group_id)):
        if value:
            conditions.append(column == value)
    if wanted.name:
        conditions.append(_name_condition(wanted.name))
    conditions.extend(_tag_condition(key, value) for key, value in wanted.tags)
    return conditions

def _listed_status(status: str) -> str:
    if status not in {s.value for s in LISTED}:
        known = ", ".join(s.value for s in Status if s in LISTED)
        raise InvalidParameter(f"Status {status[:32]!r} is not a status; use one of: {known}.", detail="Status")
    return status

def _name_condition(pattern: str) -> ColumnElement[bool]:
    if "*" not in pattern:
        return Instance.name == pattern
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_").replace("*", "%")
    return Instance.name.like(escaped, escape="\\")

def _tag_condition(key: str, value: str | None) -> ColumnElement[bool]:
    # IN (ids having the tag) uses the (key, value) index; a correlated EXISTS would scan every instance.
    tagged = select(InstanceTag.instance_id).where(InstanceTag.key == key)
    if value is not None:
        tagged = tagged.where(InstanceTag.value == value)
    return Instance.id.in_(tagged)

def _tags_of(conn: Connection, instance_ids: list[str]) -> dict[str, list[tuple[str, str]]]:
    if not instance_ids:
        return {}
    found: dict[str, list[tuple[str, str]]] = {}
    rows = conn.execute(
        select(InstanceTag.instance_id, InstanceTag.key, InstanceTag.value)
        .where(InstanceTag.instance_id.in_(instance_ids))
        .order_by(InstanceTag.instance_id, InstanceTag.key)
    ).all()
    for instance_id, key, value in rows:
        found.setdefault(instance_id, []).append((key, value))
    return found

