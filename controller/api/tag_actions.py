"""Handlers of the tag and resource-group actions."""

from __future__ import annotations

from typing import Any

from controller.api import params as p
from controller.api.action_call import ActionCall
from controller.api.instance_actions import region_of
from controller.errors import MissingParameter
from controller.tagging import (
    MAX_RESOURCES,
    change_resource_group,
    check_resource_type,
    list_tag_resources,
    tag_resources,
    untag_resources,
)


def _resource_ids(call: ActionCall) -> list[str]:
    check_resource_type(p.required(call.params, "ResourceType"))
    return p.indexed_values(call.params, "ResourceId", max_items=MAX_RESOURCES + 1)  # +1: the rule names the excess


def tag_resources_action(call: ActionCall) -> dict[str, Any]:
    region_id = region_of(call)
    resource_ids = _resource_ids(call)
    tags = [(k, v or "") for k, v in p.tags(call.params)]
    if not tags:
        raise MissingParameter("Tags")
    tag_resources(call.ctx, call.account_id, region_id, resource_ids, tags)
    return {}


def untag_resources_action(call: ActionCall) -> dict[str, Any]:
    region_id = region_of(call)
    resource_ids = _resource_ids(call)
    keys = p.indexed_values(call.params, "TagKey", max_items=20)
    remove_all = p.boolean(call.params, "All")
    untag_resources(call.ctx, call.account_id, region_id, resource_ids, keys, remove_all=remove_all)
    return {}


def list_tag_resources_action(call: ActionCall) -> dict[str, Any]:
    region_id = region_of(call)
    resource_ids = _resource_ids(call)
    rows, next_token = list_tag_resources(
        call.ctx, call.account_id, region_id, resource_ids, p.tags(call.params), p.optional(call.params, "NextToken", max_length=256)
    )
    return {
        "NextToken": next_token,
        "TagResources": [
            {"ResourceId": r.resource_id, "ResourceType": "instance", "TagKey": r.key, "TagValue": r.value} for r in rows
        ],
    }


def change_resource_group_action(call: ActionCall) -> dict[str, Any]:
    resource_id = p.required(call.params, "ResourceId")
    region_id = p.required(call.params, "ResourceRegionId")
    group_id = p.required(call.params, "ResourceGroupId")
    change_resource_group(call.ctx, call.account_id, region_id, resource_id, group_id)
    return {}
