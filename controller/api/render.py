"""Response bodies exactly as the official SDKs' ``from_map`` read them."""

from __future__ import annotations

from typing import Any

from controller.clock import to_millis_text
from controller.errors import EaisError
from controller.queries import InstanceView
from controller.states import Status, shown_status

TROUBLESHOOT = "https://api.alibabacloud.com/troubleshoot?intl_lang=EN_US&q={code}&product=eais&requestId={request_id}"


def instance_json(view: InstanceView) -> dict[str, Any]:
    """The 19 fields of DescribeEais ``Instances.Instance[]``."""
    inst = view.instance
    return {
        "Category": inst.category,
        "ClientInstanceId": inst.client_instance_id or "",
        "ClientInstanceName": view.client_name,
        "ClientInstanceType": view.client_type,
        "CreationTime": to_millis_text(inst.created_us),
        "Description": inst.description,
        "ElasticAcceleratedInstanceId": inst.id,
        "InstanceName": inst.name,
        "InstanceType": inst.instance_type,
        "JupyterUrl": view.jupyter_url,
        "PaymentType": inst.payment_type,
        "RegionId": inst.region_id,
        "ResourceGroupId": inst.resource_group_id,
        "SecurityGroupId": inst.security_group_id,
        "StartTime": to_millis_text(inst.started_us),
        "Status": shown_status(Status(inst.status)).value,
        "Tags": {"Tag": [{"TagKey": k, "TagValue": v} for k, v in view.tags]},
        "VSwitchId": inst.vswitch_id,
        "ZoneId": inst.zone_id,
    }


def error_json(error: EaisError, *, request_id: str, host_id: str) -> dict[str, Any]:
    return {
        "RequestId": request_id,
        "HostId": host_id,
        "Code": error.code,
        "Message": error.message,
        "Recommend": TROUBLESHOOT.format(code=error.code, request_id=request_id),
    }
