"""DescribeEais: filtered, paged listing of a caller's instances in one region.

This is the hottest read path, so its statements are built once per *shape* of filter (which
filters are present) with bound parameters, and reused: building SQLAlchemy expressions per
request costs more than running them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Select, bindparam, func, select
from sqlalchemy.sql.elements import ColumnElement

from controller.context import ControllerContext
from controller.errors import InvalidParameter
from controller.notebook_urls import notebook_urls
from controller.states import LISTED, Status, shown_status, statuses_shown_as
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
    jupyter_url: str = ""  # a notebook's URL with its token, while its server answers (the caller owns it)


@dataclass(frozen=True)
class Page:
    views: list[InstanceView]
    total: int
    page_number: int
    page_size: int


@dataclass(frozen=True)
class _Shape:
    """Which filters a request uses; one set of prepared statements per shape."""

    status: bool
    ids: bool
    client: bool
    instance_type: bool
    resource_group: bool
    name: str  # "", "equal" or "like"
    tags: tuple[bool, ...]  # per tag filter: does it name a value?


@dataclass(frozen=True)
class _Statements:
    count: Select
    page: Select


def describe_instances(
    ctx: ControllerContext, account_id: str, wanted: InstanceFilter, page_number: int, page_size: int
) -> Page:
    shape, params = _shape_and_params(account_id, wanted)
    statements = _statements(shape)
    params.update(offset=(page_number - 1) * page_size, limit=page_size)
    with ctx.db.read_connection() as conn:
        if shape == _UNFILTERED:  # the count apply() keeps, no row scan
            total = conn.execute(_KEPT_COUNT, params).scalar() or 0
        else:
            total = conn.execute(statements.count, params).scalar_one()
        rows = conn.execute(statements.page, params).all()
        tags = _tags_of(conn, [row.id for row in rows])
        urls = notebook_urls(conn, ctx.box, rows)
    views = [InstanceView(row, tags.get(row.id, []), row.client_name or "", row.client_type or "", urls.get(row.id, ""))
             for row in rows]
    return Page(views, total, page_number, page_size)


def _shape_and_params(account_id: str, wanted: InstanceFilter) -> tuple[_Shape, dict[str, Any]]:
    params: dict[str, Any] = {"account_id": account_id, "region_id": wanted.region_id,
                              "status": Status.RELEASED.value,
                              "statuses": _stored_statuses(wanted.status) if wanted.status else [],
                              "ids": wanted.instance_ids or [], "client_id": wanted.client_instance_id,
                              "instance_type": wanted.instance_type, "resource_group_id": wanted.resource_group_id,
                              "name": _like_pattern(wanted.name) if "*" in wanted.name else wanted.name}
    for n, (key, value) in enumerate(wanted.tags):
        params[f"tag_key_{n}"], params[f"tag_value_{n}"] = key, value
    shape = _Shape(
        status=bool(wanted.status), ids=wanted.instance_ids is not None, client=bool(wanted.client_instance_id),
        instance_type=bool(wanted.instance_type), resource_group=bool(wanted.resource_group_id),
        name="" if not wanted.name else ("like" if "*" in wanted.name else "equal"),
        tags=tuple(value is not None for _, value in wanted.tags),
    )
    return shape, params


_UNFILTERED = _Shape(False, False, False, False, False, "", ())
_KEPT_COUNT = select(ListedCount.listed).where(
    ListedCount.account_id == bindparam("account_id"), ListedCount.region_id == bindparam("region_id"))
_NEWEST_FIRST = (Instance.created_us.desc(), Instance.id.desc())


@lru_cache(maxsize=256)
def _statements(shape: _Shape) -> _Statements:
    conditions = _conditions(shape)
    # Page through the covering index first, then read whole rows for that page only.
    page_ids = (select(Instance.id).where(*conditions).order_by(*_NEWEST_FIRST)
                .offset(bindparam("offset")).limit(bindparam("limit")))
    page = (
        select(*Instance.__table__.c, ClientInstance.name.label("client_name"),
               ClientInstance.instance_type.label("client_type"))
        .outerjoin(ClientInstance, ClientInstance.id == Instance.client_instance_id)
        .where(Instance.id.in_(page_ids.scalar_subquery()))
        .order_by(*_NEWEST_FIRST)
    )
    return _Statements(count=select(func.count()).select_from(Instance).where(*conditions), page=page)


def _conditions(shape: _Shape) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [
        Instance.account_id == bindparam("account_id"), Instance.region_id == bindparam("region_id"),
        Instance.status.in_(bindparam("statuses", expanding=True)) if shape.status else Instance.status != bindparam("status"),
    ]
    if shape.ids:
        conditions.append(Instance.id.in_(bindparam("ids", expanding=True)))
    for present, column, name in ((shape.client, Instance.client_instance_id, "client_id"),
                                  (shape.instance_type, Instance.instance_type, "instance_type"),
                                  (shape.resource_group, Instance.resource_group_id, "resource_group_id")):
        if present:
            conditions.append(column == bindparam(name))
    if shape.name == "equal":
        conditions.append(Instance.name == bindparam("name"))
    elif shape.name == "like":
        conditions.append(Instance.name.like(bindparam("name"), escape="\\"))
    for n, has_value in enumerate(shape.tags):
        # IN (ids having the tag) uses the (key, value) index; a correlated EXISTS would scan every instance.
        tagged = select(InstanceTag.instance_id).where(InstanceTag.key == bindparam(f"tag_key_{n}"))
        if has_value:
            tagged = tagged.where(InstanceTag.value == bindparam(f"tag_value_{n}"))
        conditions.append(Instance.id.in_(tagged))
    return conditions


def _stored_statuses(status: str) -> list[str]:
    """The stored statuses DescribeEais shows as ``status`` (an EI Start in flight is shown Bound, …)."""
    shown = [s for s in Status if s in LISTED and shown_status(s) is s]
    if status not in {s.value for s in shown}:
        known = ", ".join(s.value for s in shown)
        raise InvalidParameter(f"Status {status[:32]!r} is not a status; use one of: {known}.", detail="Status")
    return sorted(s.value for s in statuses_shown_as(Status(status)))


def _like_pattern(pattern: str) -> str:
    return pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_").replace("*", "%")


_TAGS_OF = (
    select(InstanceTag.instance_id, InstanceTag.key, InstanceTag.value)
    .where(InstanceTag.instance_id.in_(bindparam("ids", expanding=True)))
    .order_by(InstanceTag.instance_id, InstanceTag.key)
)


def _tags_of(conn: Connection, instance_ids: list[str]) -> dict[str, list[tuple[str, str]]]:
    if not instance_ids:
        return {}
    found: dict[str, list[tuple[str, str]]] = {}
    for instance_id, key, value in conn.execute(_TAGS_OF, {"ids": instance_ids}):
        found.setdefault(instance_id, []).append((key, value))
    return found
