"""Handlers of the notebook actions (CreateEaiJupyter, StartEaiJupyter, StopEaiJupyter): read, delegate, answer."""

from __future__ import annotations

from typing import Any

from controller.api import params as p
from controller.api.action_call import ActionCall
from controller.api.environment_param import environment
from controller.api.instance_actions import region_of
from controller.notebooks import create_notebook, start_notebook, stop_notebook
from controller.provisioning import CreateRequest
from controller.states import CATEGORY_JUPYTER
from controller.tagging import check_resource_group


def create_eai_jupyter(call: ActionCall) -> dict[str, Any]:
    params = call.params
    resource_group_id = p.optional(params, "ResourceGroupId")
    check_resource_group(resource_group_id)
    request = CreateRequest(
        region_id=region_of(call),
        instance_type=p.required(params, "EaisType"),
        name=p.instance_name(params, "EaisName"),
        resource_group_id=resource_group_id,
        security_group_id=p.identifier(params, "SecurityGroupId"),
        vswitch_id=p.identifier(params, "VSwitchId"),
        tags=tuple((k, v or "") for k, v in p.tags(params)),
        client_token=p.client_token(params),
        category=CATEGORY_JUPYTER,
        environment=environment(params),
    )
    instance_id = create_notebook(call.ctx, call.account_id, request, request_id=call.request_id)
    return {"ElasticAcceleratedInstanceId": instance_id}


def start_eai_jupyter(call: ActionCall) -> dict[str, Any]:
    region_id = region_of(call)
    instance_id = p.identifier(call.params, "InstanceId")
    start_notebook(call.ctx, call.account_id, region_id, instance_id, request_id=call.request_id)
    return {}


def stop_eai_jupyter(call: ActionCall) -> dict[str, Any]:
    region_id = region_of(call)
    instance_id = p.identifier(call.params, "InstanceId")
    stop_notebook(call.ctx, call.account_id, region_id, instance_id, request_id=call.request_id)
    return {}
