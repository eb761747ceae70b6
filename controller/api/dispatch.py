"""Which action runs which handler; actions of the API this server does not implement yet."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from controller.api import ei_actions as ei
from controller.api import instance_actions as inst
from controller.api import metrics_actions as metrics
from controller.api import notebook_actions as notebooks
from controller.api import tag_actions as tags
from controller.api.action_call import ActionCall
from controller.api.request_outcome import UNKNOWN_ACTION
from controller.api.rpc_request import RpcRequest
from controller.errors import UnknownAction, UnsupportedAction

Handler = Callable[[ActionCall], dict[str, Any]]

HANDLERS: dict[str, Handler] = {
    "DescribeRegions": inst.describe_regions,
    "CreateEai": inst.create_eai,
    "DescribeEais": inst.describe_eais,
    "AttachEai": inst.attach_eai,
    "DetachEai": inst.detach_eai,
    "DeleteEai": inst.delete_eai,
    "DeleteEaiAll": inst.delete_eai_all,
    "TagResources": tags.tag_resources_action,
    "UntagResources": tags.untag_resources_action,
    "ListTagResources": tags.list_tag_resources_action,
    "ChangeResourceGroup": tags.change_resource_group_action,
    "GetInstanceMetrics": metrics.get_instance_metrics,
    "CreateEaisEi": ei.create_eais_ei,
    "AttachEaisEi": ei.attach_eais_ei,
    "StartEaisEi": ei.start_eais_ei,
    "StopEaisEi": ei.stop_eais_ei,
    "DetachEaisEi": ei.detach_eais_ei,
    "DeleteEaisEi": ei.delete_eais_ei,
    "CreateEaiJupyter": notebooks.create_eai_jupyter,
    "StartEaiJupyter": notebooks.start_eai_jupyter,
    "StopEaiJupyter": notebooks.stop_eai_jupyter,
}

_NO_COMPUTE = (
    "{action} creates an ECS or ECI client instance together with the accelerator, and eais has no ECS or ECI "
    "compute provider to create one. Instead, run eais-agent on an existing VM and use CreateEai then AttachEai "
    "(ClientInstanceId = that VM), or CreateEaisEi, AttachEaisEi and StartEaisEi."
)
# Part of EAIS 2019-06-24, answered with UnsupportedOperation (listed in the README), and why.
NOT_YET_SUPPORTED: dict[str, str] = {
    "CreateEaiEcs": _NO_COMPUTE, "CreateEaiEci": _NO_COMPUTE, "CreateEaiAll": _NO_COMPUTE,
}


# Replaying one of these changes nothing, so their nonces need not wait for the disk.
READ_ONLY_ACTIONS: frozenset[str] = frozenset({
    "DescribeRegions", "DescribeEais", "ListTagResources", "GetInstanceMetrics",
})


def claimed_action(request: RpcRequest) -> str:
    """The action a request names (ACS3 header, else the Action parameter); not yet verified."""
    header = request.headers.get("x-acs-action", "")
    if header:
        return header
    return next((value for name, value in request.query if name == "Action"), "")


def action_label(action: str) -> str:
    """``action`` when it is one of the API's, else "unknown": metrics labels stay few whatever callers send."""
    return action if action in HANDLERS or action in NOT_YET_SUPPORTED else UNKNOWN_ACTION


def handler_for(action: str) -> Handler:
    handler = HANDLERS.get(action)
    if handler is not None:
        return handler
    if action in NOT_YET_SUPPORTED:
        why = NOT_YET_SUPPORTED[action].format(action=action)
        raise UnsupportedAction(why or (
            f"{action} is part of the EAIS 2019-06-24 API but this server does not support it yet; "
            f"supported actions: {', '.join(sorted(HANDLERS))}."
        ))
    raise UnknownAction(f"Specified api {action[:64]!r} is not found; check the Action name (EAIS 2019-06-24).")
