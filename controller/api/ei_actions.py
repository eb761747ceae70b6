"""Handlers of the EI family (CreateEaisEi … DeleteEaisEi): read parameters, call the rules, shape the answer."""

from __future__ import annotations

from typing import Any

from controller.api import params as p
from controller.api.action_call import ActionCall
from controller.api.instance_actions import region_of
from controller.ei_binding import bind_ei_instance, start_ei_instance, stop_ei_instance, unbind_ei_instance
from controller.provisioning import CreateRequest, create_instance
from controller.release import delete_ei_instance
from controller.states import CATEGORY_EI
from controller.tagging import check_resource_group


def create_eais_ei(call: ActionCall) -> dict[str, Any]:
    params = call.params
    resource_group_id = p.optional(params, "ResourceGroupId")
    check_resource_group(resource_group_id)
    request = CreateRequest(
        region_id=region_of(call),
        instance_type=p.required(params, "InstanceType"),
        name=p.instance_name(params),
        resource_group_id=resource_group_id,
        security_group_id=p.identifier(params, "SecurityGroupId"),
        vswitch_id=p.identifier(params, "VSwitchId"),
        tags=tuple((k, v or "") for k, v in p.tags(params)),
        client_token=p.client_token(params),
        category=CATEGORY_EI,
    )
    return {"EiInstanceId": create_instance(call.ctx, call.account_id, request, request_id=call.request_id)}


def attach_eais_ei(call: ActionCall) -> dict[str, Any]:
    region_id = region_of(call)
    client_id = p.identifier(call.params, "ClientInstanceId")
    instance_id = p.identifier(call.params, "EiInstanceId", required_=False) or None
    instance_type = p.optional(call.params, "EiInstanceType") or None  # ignored when EiInstanceId is given
    bound = bind_ei_instance(call.ctx, call.account_id, region_id, client_id, instance_id=instance_id,
                             instance_type=instance_type, request_id=call.request_id)
    return {"ClientInstanceId": client_id, "EiInstanceId": bound}


def start_eais_ei(call: ActionCall) -> dict[str, Any]:
    region_id = region_of(call)
    start_ei_instance(call.ctx, call.account_id, region_id, _ei_id(call), request_id=call.request_id)
    return {}


def stop_eais_ei(call: ActionCall) -> dict[str, Any]:
    region_id = region_of(call)
    stop_ei_instance(call.ctx, call.account_id, region_id, _ei_id(call), request_id=call.request_id)
    return {}


def detach_eais_ei(call: ActionCall) -> dict[str, Any]:
    region_id = region_of(call)
    unbind_ei_instance(call.ctx, call.account_id, region_id, _ei_id(call), request_id=call.request_id)
    return {}


def delete_eais_ei(call: ActionCall) -> dict[str, Any]:
    region_id = region_of(call)
    instance_id = _ei_id(call)
    force = p.boolean(call.params, "Force")
    delete_ei_instance(call.ctx, call.account_id, region_id, instance_id, force=force, request_id=call.request_id)
    return {}


def _ei_id(call: ActionCall) -> str:
    return p.identifier(call.params, "EiInstanceId")
