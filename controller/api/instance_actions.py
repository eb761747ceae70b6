"""Handlers of the instance actions: read parameters, call the rules, shape the answer."""

from __future__ import annotations

from typing import Any

from controller.api import params as p
from controller.api.action_call import ActionCall
from controller.api.render import instance_json
from controller.binding import attach_instance, detach_instance
from controller.catalogue import require_region
from controller.provisioning import CreateRequest, create_instance
from controller.queries import InstanceFilter, describe_instances
from controller.release import delete_instance, delete_instance_and_client
from controller.tagging import check_resource_group

MAX_DESCRIBE_IDS = 200


def region_of(call: ActionCall) -> str:
    return require_region(call.ctx.settings, p.required(call.params, "RegionId"))


def describe_regions(call: ActionCall) -> dict[str, Any]:
    regions = [
        {"RegionId": r.region_id, "LocalName": r.local_name, "RegionEndpoint": r.endpoint}
        for r in call.ctx.settings.regions
    ]
    return {"Regions": {"Region": regions}}


def create_eai(call: ActionCall) -> dict[str, Any]:
    params = call.params
    resource_group_id = p.optional(params, "ResourceGroupId")
    check_resource_group(resource_group_id)
    request = CreateRequest(
        region_id=region_of(call),
        instance_type=p.required(params, "InstanceType"),
        name=p.instance_name(params),
        resource_group_id=resource_group_id,
        security_group_id=p.identifier(params, "SecurityGroupId", required_=False),
        vswitch_id=p.identifier(params, "VSwitchId", required_=False),
        image=p.optional(params, "Image", max_length=512),
        tags=tuple((k, v or "") for k, v in p.tags(params)),
        client_token=p.client_token(params),
    )
    instance_id = create_instance(call.ctx, call.account_id, request, request_id=call.request_id)
    return {"ElasticAcceleratedInstanceId": instance_id}


def describe_eais(call: ActionCall) -> dict[str, Any]:
    params = call.params
    wanted = InstanceFilter(
        region_id=region_of(call),
        instance_ids=p.json_id_list(params, "ElasticAcceleratedInstanceIds", max_items=MAX_DESCRIBE_IDS),
        client_instance_id=p.optional(params, "ClientInstanceId"),
        name=p.optional(params, "InstanceName", max_length=128),
        instance_type=p.optional(params, "InstanceType"),
        status=p.optional(params, "Status", max_length=32),
        resource_group_id=p.optional(params, "ResourceGroupId"),
        tags=p.tags(params),
    )
    page_number = p.integer(params, "PageNumber", default=1, minimum=1, maximum=1_000_000)
    page_size = p.integer(params, "PageSize", default=20, minimum=1, maximum=200)
    page = describe_instances(call.ctx, call.account_id, wanted, page_number, page_size)
    return {
        "Instances": {"Instance": [instance_json(view) for view in page.views]},
        "PageNumber": page.page_number,
        "PageSize": page.page_size,
        "TotalCount": page.total,
    }


def attach_eai(call: ActionCall) -> dict[str, Any]:
    region_id = region_of(call)
    instance_id = p.identifier(call.params, "ElasticAcceleratedInstanceId")
    client_id = p.identifier(call.params, "ClientInstanceId")
    attach_instance(call.ctx, call.account_id, region_id, instance_id, client_id, request_id=call.request_id)
    return {"ClientInstanceId": client_id, "ElasticAcceleratedInstanceId": instance_id}


def detach_eai(call: ActionCall) -> dict[str, Any]:
    region_id = region_of(call)
    instance_id = p.identifier(call.params, "ElasticAcceleratedInstanceId")
    detach_instance(call.ctx, call.account_id, region_id, instance_id, request_id=call.request_id)
    return {}


def delete_eai(call: ActionCall) -> dict[str, Any]:
    region_id = region_of(call)
    instance_id = p.identifier(call.params, "ElasticAcceleratedInstanceId")
    force = p.boolean(call.params, "Force")
    delete_instance(call.ctx, call.account_id, region_id, instance_id, force=force, request_id=call.request_id)
    return {}


def delete_eai_all(call: ActionCall) -> dict[str, Any]:
    region_id = region_of(call)
    instance_id = p.identifier(call.params, "ElasticAcceleratedInstanceId")
    client_id = p.identifier(call.params, "ClientInstanceId", required_=False) or None
    delete_instance_and_client(call.ctx, call.account_id, region_id, instance_id, client_id, request_id=call.request_id)
    return {}
