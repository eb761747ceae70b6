"""TagResources, UntagResources, ListTagResources and ChangeResourceGroup."""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlmodel import Session

from controller.context import ControllerContext
from controller.errors import (
    DuplicateResourceId,
    InstanceNotFound,
    InvalidParameter,
    InvalidResourceGroup,
    InvalidResourceType,
    MissingParameter,
    ResourceNotFound,
    TooManyResourceIds,
    TooManyTags,
)
from controller.ownership import owned_instance
from controller.states import Status
from controller.tables import Instance, InstanceTag

MAX_RESOURCES = 50
MAX_TAGS_PER_RESOURCE = 20
LIST_PAGE_SIZE = 50
_RESOURCE_GROUP = re.compile(r"^rg-[A-Za-z0-9]{1,60}$")


def check_resource_type(resource_type: str) -> None:
    if resource_type != "instance":  # the one value the API documents, spelt as it spells it
        raise InvalidResourceType(f"ResourceType {resource_type[:32]!r} is not supported; use 'instance'.")


def check_resource_ids(resource_ids: list[str]) -> None:
    if not resource_ids:
        raise MissingParameter("ResourceIds")
    if len(resource_ids) > MAX_RESOURCES:
        raise TooManyResourceIds(f"At most {MAX_RESOURCES} ResourceId.N are allowed; got {len(resource_ids)}.")
    if len(set(resource_ids)) != len(resource_ids):
        raise DuplicateResourceId("A ResourceId appears twice; list each resource once.")


def check_resource_group(resource_group_id: str) -> None:
    if resource_group_id and not _RESOURCE_GROUP.match(resource_group_id):
        raise InvalidResourceGroup(f"ResourceGroupId {resource_group_id[:70]!r} is not valid; it looks like rg-xxxxxxxx.")


def tag_resources(
    ctx: ControllerContext, account_id: str, region_id: str, resource_ids: list[str], tags: list[tuple[str, str]]
) -> None:
    check_resource_ids(resource_ids)
    with ctx.db.write() as session:
        for resource_id in resource_ids:
            owned_instance(session, account_id, region_id, resource_id)
            for key, value in tags:
                _upsert_tag(session, resource_id, key, value)
            session.flush()
            _check_tag_count(session, resource_id)


def untag_resources(
    ctx: ControllerContext, account_id: str, region_id: str, resource_ids: list[str], keys: list[str], *, remove_all: bool
) -> None:
    check_resource_ids(resource_ids)
    with ctx.db.write() as session:
        for resource_id in resource_ids:
            owned_instance(session, account_id, region_id, resource_id)
            doomed = delete(InstanceTag).where(InstanceTag.instance_id == resource_id)
            if keys:
                session.execute(doomed.where(InstanceTag.key.in_(keys)))
            elif remove_all:  # All only counts when no TagKey.N is given
                session.execute(doomed)


@dataclass(frozen=True)
class TagRow:
    resource_id: str
    key: str
    value: str


def list_tag_resources(
    ctx: ControllerContext, account_id: str, region_id: str, resource_ids: list[str],
    tags: list[tuple[str, str | None]], next_token: str,
) -> tuple[list[TagRow], str]:
    if not resource_ids and not tags:
        raise MissingParameter("ResourceIds")
    offset = _decode_token(next_token)
    query = (
        select(InstanceTag.instance_id, InstanceTag.key, InstanceTag.value)
        .join(Instance, Instance.id == InstanceTag.instance_id)
        .where(Instance.account_id == account_id, Instance.region_id == region_id,
               Instance.status != Status.RELEASED.value)
    )
    if resource_ids:
        query = query.where(InstanceTag.instance_id.in_(resource_ids))
    for key, value in tags:
        query = query.where(_has_tag(key, value))
    with ctx.db.read() as session:
        rows = session.execute(
            query.order_by(InstanceTag.instance_id, InstanceTag.key).offset(offset).limit(LIST_PAGE_SIZE + 1)
        ).all()
    more = len(rows) > LIST_PAGE_SIZE
    page = [TagRow(*row) for row in rows[:LIST_PAGE_SIZE]]
    return page, _encode_token(offset + LIST_PAGE_SIZE) if more else ""


def change_resource_group(
    ctx: ControllerContext, account_id: str, region_id: str, resource_id: str, resource_group_id: str
) -> None:
    check_resource_group(resource_group_id)
    with ctx.db.write() as session:
        try:
            instance = owned_instance(session, account_id, region_id, resource_id)
        except InstanceNotFound:
            raise ResourceNotFound(f"The resource {resource_id} does not exist in {region_id}.") from None
        instance.resource_group_id = resource_group_id
        session.add(instance)


def _upsert_tag(session: Session, resource_id: str, key: str, value: str) -> None:
    existing = session.get(InstanceTag, (resource_id, key))
    if existing is None:
        session.add(InstanceTag(instance_id=resource_id, key=key, value=value))
    else:
        existing.value = value


def _check_tag_count(session: Session, resource_id: str) -> None:
    count = session.execute(
        select(func.count()).select_from(InstanceTag).where(InstanceTag.instance_id == resource_id)
    ).scalar_one()
    if count > MAX_TAGS_PER_RESOURCE:
        raise TooManyTags(f"The resource {resource_id} would have {count} tags; at most {MAX_TAGS_PER_RESOURCE} are allowed.")


def _has_tag(key: str, value: str | None):  # noqa: ANN202
    tag = InstanceTag.__table__.alias("filter_tag")
    condition = (tag.c.instance_id == InstanceTag.instance_id) & (tag.c.key == key)
    if value is not None:
        condition = condition & (tag.c.value == value)
    return select(tag.c.instance_id).where(condition).exists()


def _encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode()


def _decode_token(token: str) -> int:
    if not token:
        return 0
    try:
        text = base64.urlsafe_b64decode(token.encode()).decode()
        if not text.startswith("o:"):
            raise ValueError
        offset = int(text[2:])
        if offset < 0:
            raise ValueError
        return offset
    except (ValueError, UnicodeError):
        raise InvalidParameter("NextToken is not valid; pass the NextToken of the previous page.", detail="NextToken") from None
