"""Every documented error, through both official SDKs, against the live API; state is left intact.

Each case names an action, its raw parameters (``{placeholders}`` filled from the world
fixture) and the EAIS code and HTTP status the caller must get.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal

import pytest
from alibabacloud_tea_openapi.exceptions import ClientException
from aliyunsdkcore.acs_exception.exceptions import ServerException
from sqlmodel import select

from controller.accounts import create_account
from controller.states import Event
from controller.tables import Instance, Transition
from tests.api.sdk_capture import v3_call
from tests.e2e.conftest import v2_call
from tests.fleet_rows import add_client, add_node
from tests.rules.lifecycle_steps import step

TYPE = "eais.ei-a6.2xlarge"
R = "cn-hangzhou"


@dataclass(frozen=True)
class Case:
    name: str
    action: str
    params: dict[str, str]
    code: str
    status: int
    as_key: str = "alice"
    v2_can_send: bool = True  # the v2 SDK always adds RegionId, so it cannot leave it out


def tags(n: int, key: str = "k{n}") -> dict[str, str]:
    out = {}
    for i in range(1, n + 1):
        out[f"Tag.{i}.Key"] = key.format(n=i)
        out[f"Tag.{i}.Value"] = "v"
    return out


CASES = [
    Case("unsupported action", "CreateEaiEcs", {"RegionId": R, "EaisType": TYPE}, "UnsupportedOperation", 400),
    Case("unsupported action needing a compute provider", "CreateEaiEci", {"RegionId": R, "EaisType": TYPE},
         "UnsupportedOperation", 400),
    Case("unknown action", "MakeCoffee", {"RegionId": R}, "InvalidAction.NotFound", 404),
    Case("missing region", "DescribeEais", {}, "MissingParameter.RegionId", 400, v2_can_send=False),
    Case("unserved region", "CreateEai", {"RegionId": "us-east-1", "InstanceType": TYPE}, "InvalidRegionId", 400),
    Case("unknown type", "CreateEai", {"RegionId": R, "InstanceType": "eais.ei-a6.huge"}, "InvalidInstanceType", 400),
    Case("missing type", "CreateEai", {"RegionId": R}, "MissingParameter.InstanceType", 400),
    Case("no capacity", "CreateEai", {"RegionId": R, "InstanceType": "eais.ei-a6.4xlarge"}, "NoResources", 403),
    Case("in debt", "CreateEai", {"RegionId": R, "InstanceType": TYPE}, "InDebt", 403, as_key="poor"),
    Case("not verified", "CreateEai", {"RegionId": R, "InstanceType": TYPE}, "NoPermission", 403, as_key="anon"),
    Case("bad name", "CreateEai", {"RegionId": R, "InstanceType": TYPE, "InstanceName": "1abc"}, "InvalidParameter.InstanceName", 400),
    Case("token mismatch", "CreateEai", {"RegionId": R, "InstanceType": TYPE, "ClientToken": "used", "InstanceName": "other"},
         "IdempotentParameterMismatch", 400),
    Case("too many tags", "CreateEai", {"RegionId": R, "InstanceType": TYPE, **tags(21)}, "NumberExceed.Tags", 400),
    Case("duplicate tag key", "CreateEai", {"RegionId": R, "InstanceType": TYPE, **tags(2, key="same")}, "Duplicate.TagKey", 400),
    Case("reserved tag key", "CreateEai", {"RegionId": R, "InstanceType": TYPE, **tags(1, key="aliyun:x")}, "InvalidParameter.TagKey", 400),
    Case("empty tag key", "CreateEai", {"RegionId": R, "InstanceType": TYPE, "Tag.1.Key": "", "Tag.1.Value": "v"},
         "OperationDenied.KeyValueNotNull", 403),
    Case("unknown instance", "AttachEai", {"RegionId": R, "ElasticAcceleratedInstanceId": "eais-nope", "ClientInstanceId": "i-vm1"},
         "InvalidParameter.InstanceId.NotFound", 404),
    Case("another account's instance", "DeleteEai", {"RegionId": R, "ElasticAcceleratedInstanceId": "{available}"},
         "InvalidParameter.InstanceId.NotFound", 404, as_key="mallory"),
    Case("another account's client", "AttachEai", {"RegionId": R, "ElasticAcceleratedInstanceId": "{available}", "ClientInstanceId": "i-mallory"},
         "InvalidClientInstanceId.Forbidden", 404),
    Case("client in other vpc", "AttachEai", {"RegionId": R, "ElasticAcceleratedInstanceId": "{networked}", "ClientInstanceId": "i-vpc2"},
         "InvalidClientInstanceId.VpcIdError", 400),
    Case("client in other vswitch", "AttachEai", {"RegionId": R, "ElasticAcceleratedInstanceId": "{networked}", "ClientInstanceId": "i-vsw2"},
         "InvalidClientInstanceId.VSwitchIdError", 400),
    Case("client not a vm", "AttachEai", {"RegionId": R, "ElasticAcceleratedInstanceId": "{available}", "ClientInstanceId": "i-bare"},
         "InvalidClientInstanceId.TypeError", 400),
    Case("client too small", "AttachEai", {"RegionId": R, "ElasticAcceleratedInstanceId": "{available}", "ClientInstanceId": "i-tiny"},
         "InvalidClientInstanceId.SpecTooSmall", 400),
    Case("client already bound", "AttachEai", {"RegionId": R, "ElasticAcceleratedInstanceId": "{available}", "ClientInstanceId": "i-busy"},
         "InvalidClientInstanceId.AlreadyBound", 400),
    Case("attach not available", "AttachEai", {"RegionId": R, "ElasticAcceleratedInstanceId": "{pending}", "ClientInstanceId": "i-vm1"},
         "InvalidEaiStatus", 400),
    Case("detach not in use", "DetachEai", {"RegionId": R, "ElasticAcceleratedInstanceId": "{available}"}, "InvalidEaiStatus", 400),
    Case("delete starting without force", "DeleteEai", {"RegionId": R, "ElasticAcceleratedInstanceId": "{pending}"}, "InvalidEaiStatus", 400),
    Case("bad force value", "DeleteEai", {"RegionId": R, "ElasticAcceleratedInstanceId": "{pending}", "Force": "maybe"},
         "InvalidParameter.Force", 400),
    Case("malformed id list", "DescribeEais", {"RegionId": R, "ElasticAcceleratedInstanceIds": "[eais-1"},
         "InvalidParameter.ElasticAcceleratedInstanceIds", 400),
    Case("id list not strings", "DescribeEais", {"RegionId": R, "ElasticAcceleratedInstanceIds": '[1, {"a": 2}]'},
         "InvalidParameter.ElasticAcceleratedInstanceIds", 400),
    Case("too many ids", "DescribeEais", {"RegionId": R, "ElasticAcceleratedInstanceIds": json.dumps([f"eais-{i}" for i in range(201)])},
         "InvalidParameter.ElasticAcceleratedInstanceIds", 400),
    Case("huge page size", "DescribeEais", {"RegionId": R, "PageSize": "1000000000000"}, "InvalidParameter.PageSize", 400),
    Case("page size not a number", "DescribeEais", {"RegionId": R, "PageSize": "twenty"}, "InvalidParameter.PageSize", 400),
    Case("unknown status filter", "DescribeEais", {"RegionId": R, "Status": "Sleeping"}, "InvalidParameter.Status", 400),
    Case("huge value", "DescribeEais", {"RegionId": R, "ClientInstanceId": "i-" + "x" * 5000}, "InvalidParameter.ClientInstanceId", 400),
    Case("bad resource type", "TagResources", {"RegionId": R, "ResourceType": "disk", "ResourceId.1": "{available}", **tags(1)},
         "InvalidParameter.ResourceType", 400),
    Case("resource type not spelt as the API spells it", "ListTagResources",
         {"RegionId": R, "ResourceType": "Instance", "ResourceId.1": "{available}"}, "InvalidParameter.ResourceType", 400),
    Case("too many resources", "TagResources", {"RegionId": R, "ResourceType": "instance", **{f"ResourceId.{i}": f"eais-{i}" for i in range(1, 52)}, **tags(1)},
         "NumberExceed.ResourceIds", 400),
    Case("duplicate resource", "TagResources", {"RegionId": R, "ResourceType": "instance", "ResourceId.1": "{available}", "ResourceId.2": "{available}", **tags(1)},
         "Duplicate.ResourceId", 400),
    Case("no resource ids", "TagResources", {"RegionId": R, "ResourceType": "instance", **tags(1)}, "MissingParameter.ResourceIds", 400),
    Case("list needs a filter", "ListTagResources", {"RegionId": R, "ResourceType": "instance"}, "MissingParameter.ResourceIds", 400),
    Case("bad next token", "ListTagResources", {"RegionId": R, "ResourceType": "instance", "ResourceId.1": "{available}", "NextToken": "@@@"},
         "InvalidParameter.NextToken", 400),
    Case("bad resource group", "ChangeResourceGroup", {"ResourceId": "{available}", "ResourceRegionId": R, "ResourceGroupId": "group one"},
         "InvalidResourceGroup", 400),
    Case("missing resource group", "ChangeResourceGroup", {"ResourceId": "{available}", "ResourceRegionId": R},
         "MissingParameter.ResourceGroupId", 400),
    Case("resource of another account", "ChangeResourceGroup", {"ResourceId": "{available}", "ResourceRegionId": R, "ResourceGroupId": "rg-x"},
         "ResourceNotFound", 400, as_key="mallory"),
    # The EI family (CreateEaisEi … DeleteEaisEi).
    Case("ei create without security group", "CreateEaisEi", {"RegionId": R, "InstanceType": TYPE, "VSwitchId": "vsw-1"},
         "MissingParameter.SecurityGroupId", 400),
    Case("ei create without vswitch", "CreateEaisEi", {"RegionId": R, "InstanceType": TYPE, "SecurityGroupId": "sg-1"},
         "MissingParameter.VSwitchId", 400),
    Case("ei create of an unknown type", "CreateEaisEi", {"RegionId": R, "InstanceType": "eais.ei-a6.huge", "SecurityGroupId": "sg-1",
         "VSwitchId": "vsw-1"}, "InvalidInstanceType", 400),
    Case("ei create in an unserved region", "CreateEaisEi", {"RegionId": "us-east-1", "InstanceType": TYPE, "SecurityGroupId": "sg-1",
         "VSwitchId": "vsw-1"}, "InvalidRegionId", 400),
    Case("ei create without capacity", "CreateEaisEi", {"RegionId": R, "InstanceType": "eais.ei-a6.4xlarge", "SecurityGroupId": "sg-1",
         "VSwitchId": "vsw-1"}, "NoResources", 403),
    Case("ei create in debt", "CreateEaisEi", {"RegionId": R, "InstanceType": TYPE, "SecurityGroupId": "sg-1", "VSwitchId": "vsw-1"},
         "InDebt", 403, as_key="poor"),
    Case("ei attach of an unknown instance", "AttachEaisEi", {"RegionId": R, "EiInstanceId": "eais-nope", "ClientInstanceId": "i-vm1"},
         "InvalidParameter.InstanceId.NotFound", 404),
    Case("ei attach of another account's instance", "AttachEaisEi",
         {"RegionId": R, "EiInstanceId": "{ei_bindable}", "ClientInstanceId": "i-mallory"},
         "InvalidParameter.InstanceId.NotFound", 404, as_key="mallory"),
    Case("ei attach with nothing bindable of the type", "AttachEaisEi",
         {"RegionId": R, "EiInstanceType": "eais.ei-a6.4xlarge", "ClientInstanceId": "i-vm1"},
         "InvalidParameter.InstanceId.NotFound", 404),
    Case("ei attach by an unknown type", "AttachEaisEi", {"RegionId": R, "EiInstanceType": "eais.ei-a6.huge", "ClientInstanceId": "i-vm1"},
         "InvalidInstanceType", 400),
    Case("ei attach to another account's client", "AttachEaisEi",
         {"RegionId": R, "EiInstanceId": "{ei_bindable}", "ClientInstanceId": "i-mallory"}, "InvalidClientInstanceId.Forbidden", 404),
    Case("ei attach to a client in another vpc", "AttachEaisEi",
         {"RegionId": R, "EiInstanceId": "{ei_bindable}", "ClientInstanceId": "i-vpc2"}, "InvalidClientInstanceId.VpcIdError", 400),
    Case("ei attach to a client in another vswitch", "AttachEaisEi",
         {"RegionId": R, "EiInstanceId": "{ei_bindable}", "ClientInstanceId": "i-vsw2"}, "InvalidClientInstanceId.VSwitchIdError", 400),
    Case("ei attach to a client not a vm", "AttachEaisEi",
         {"RegionId": R, "EiInstanceId": "{ei_bindable}", "ClientInstanceId": "i-bare"}, "InvalidClientInstanceId.TypeError", 400),
    Case("ei attach to a client already bound", "AttachEaisEi",
         {"RegionId": R, "EiInstanceId": "{ei_bindable}", "ClientInstanceId": "i-busy"}, "InvalidClientInstanceId.AlreadyBound", 400),
    Case("ei attach without a client", "AttachEaisEi", {"RegionId": R, "EiInstanceId": "{ei_bindable}"},
         "MissingParameter.ClientInstanceId", 400),
    Case("ei attach of a bound instance", "AttachEaisEi", {"RegionId": R, "EiInstanceId": "{ei_bound}", "ClientInstanceId": "i-vm1"},
         "InvalidEaiStatus", 400),
    Case("ei attach of an eai instance", "AttachEaisEi", {"RegionId": R, "EiInstanceId": "{available}", "ClientInstanceId": "i-vm1"},
         "InvalidInstanceId", 400),
    Case("eai attach of an ei instance", "AttachEai", {"RegionId": R, "ElasticAcceleratedInstanceId": "{ei_bindable}",
         "ClientInstanceId": "i-vm1"}, "InvalidInstanceId", 400),
    Case("eai delete of an ei instance", "DeleteEai", {"RegionId": R, "ElasticAcceleratedInstanceId": "{ei_bound}", "Force": "true"},
         "InvalidInstanceId", 400),
    Case("ei start of a bindable instance", "StartEaisEi", {"RegionId": R, "EiInstanceId": "{ei_bindable}"}, "InvalidEaiStatus", 400),
    Case("ei start of an eai instance", "StartEaisEi", {"RegionId": R, "EiInstanceId": "{available}"}, "InvalidInstanceId", 400),
    Case("ei start without an id", "StartEaisEi", {"RegionId": R}, "MissingParameter.EiInstanceId", 400),
    Case("ei stop of a bound instance", "StopEaisEi", {"RegionId": R, "EiInstanceId": "{ei_bound}"}, "InvalidEaiStatus", 400),
    Case("ei stop of an unknown instance", "StopEaisEi", {"RegionId": R, "EiInstanceId": "eais-nope"},
         "InvalidParameter.InstanceId.NotFound", 404),
    Case("ei detach of a bindable instance", "DetachEaisEi", {"RegionId": R, "EiInstanceId": "{ei_bindable}"}, "InvalidEaiStatus", 400),
    Case("ei detach in another region", "DetachEaisEi", {"RegionId": "cn-beijing", "EiInstanceId": "{ei_bound}"},
         "InvalidParameter.InstanceId.NotFound", 404),
    Case("ei delete of a bound instance without force", "DeleteEaisEi", {"RegionId": R, "EiInstanceId": "{ei_bound}"},
         "InvalidEaiStatus", 400),
    Case("ei delete with a bad force value", "DeleteEaisEi", {"RegionId": R, "EiInstanceId": "{ei_bound}", "Force": "yes"},
         "InvalidParameter.Force", 400),
    Case("ei delete of a malformed id", "DeleteEaisEi", {"RegionId": R, "EiInstanceId": "eais-'; --"},
         "InvalidParameter.EiInstanceId", 400),
    Case("ei delete of another account's instance", "DeleteEaisEi", {"RegionId": R, "EiInstanceId": "{ei_bindable}", "Force": "true"},
         "InvalidParameter.InstanceId.NotFound", 404, as_key="mallory"),
    Case("metrics of an unknown instance", "GetInstanceMetrics", {"InstanceId": "eais-nope", "MetricType": "GpuCoreUsage"},
         "InvalidParameter.InstanceId.NotFound", 404),
    Case("metrics of another account's instance", "GetInstanceMetrics", {"InstanceId": "{available}", "MetricType": "GpuCoreUsage"},
         "InvalidParameter.InstanceId.NotFound", 404, as_key="mallory"),
    Case("metrics in another region", "GetInstanceMetrics", {"RegionId": "cn-beijing", "InstanceId": "{available}", "MetricType": "MemoryUsage"},
         "InvalidParameter.InstanceId.NotFound", 404),
    Case("missing metric type", "GetInstanceMetrics", {"InstanceId": "{available}"}, "MissingParameter.MetricType", 400),
    Case("unknown metric type", "GetInstanceMetrics", {"InstanceId": "{available}", "MetricType": "DiskUsage"},
         "InvalidParameter.MetricType", 400),
    Case("malformed start time", "GetInstanceMetrics", {"InstanceId": "{available}", "MetricType": "GpuCoreUsage", "StartTime": "yesterday"},
         "InvalidParameter.StartTime", 400),
    Case("start after end", "GetInstanceMetrics",
         {"InstanceId": "{available}", "MetricType": "GpuCoreUsage", "StartTime": "1767229200", "EndTime": "1767225600"},
         "InvalidParameter.StartTime", 400),
    Case("malformed time step", "GetInstanceMetrics", {"InstanceId": "{available}", "MetricType": "GpuCoreUsage", "TimeStep": "5 minutes"},
         "InvalidParameter.TimeStep", 400),
    Case("too many time steps", "GetInstanceMetrics",
         {"InstanceId": "{available}", "MetricType": "GpuCoreUsage", "StartTime": "2026-01-01T00:00:00Z",
          "EndTime": "2026-01-02T00:00:00Z", "TimeStep": "1s"},
         "InvalidParameter.TimeStep", 400),
]


@pytest.fixture
def world(live_api, account):
    ctx = live_api.ctx
    keys = {
        "alice": account,
        "mallory": create_account(ctx, "mallory", balance=Decimal(500), real_name_verified=True),
        "poor": create_account(ctx, "poor", balance=Decimal(-3), real_name_verified=True),
        "anon": create_account(ctx, "anon", balance=Decimal(500), real_name_verified=False),
    }
    add_node(ctx, slices={TYPE: 8})
    alice = account.account_id
    add_client(ctx, alice, "i-vm1")
    add_client(ctx, alice, "i-eivm")
    add_client(ctx, alice, "i-busy")
    add_client(ctx, alice, "i-vpc2", vpc="vpc-2", vswitch="vsw-1")
    add_client(ctx, alice, "i-vsw2", vpc="vpc-1", vswitch="vsw-2")
    add_client(ctx, alice, "i-bare", kind="BareMetal")
    add_client(ctx, alice, "i-tiny", memory_mib=1024)
    add_client(ctx, keys["mallory"].account_id, "i-mallory")
    sdk = live_api.v3(account)
    ids = {
        "available": v3_call(sdk, "CreateEai", {"RegionId": R, "InstanceType": TYPE})["body"]["ElasticAcceleratedInstanceId"],
        "networked": v3_call(sdk, "CreateEai", {"RegionId": R, "InstanceType": TYPE, "VSwitchId": "vsw-1"})["body"]["ElasticAcceleratedInstanceId"],
        "pending": v3_call(sdk, "CreateEai", {"RegionId": R, "InstanceType": TYPE, "ClientToken": "used"})["body"]["ElasticAcceleratedInstanceId"],
        "busy": v3_call(sdk, "CreateEai", {"RegionId": R, "InstanceType": TYPE})["body"]["ElasticAcceleratedInstanceId"],
    }
    for name in ("ei_bindable", "ei_bound"):
        ids[name] = v3_call(sdk, "CreateEaisEi", {"RegionId": R, "InstanceType": TYPE, "SecurityGroupId": "sg-1",
                                                  "VSwitchId": "vsw-1"})["body"]["EiInstanceId"]
    for name in ("available", "networked", "busy", "ei_bindable", "ei_bound"):
        step(ctx, ids[name], Event.SLICE_READY)
    step(ctx, ids["pending"], Event.SLICE_PREPARING)
    v3_call(sdk, "AttachEai", {"RegionId": R, "ElasticAcceleratedInstanceId": ids["busy"], "ClientInstanceId": "i-busy"})
    v3_call(sdk, "AttachEaisEi", {"RegionId": R, "EiInstanceId": ids["ei_bound"], "ClientInstanceId": "i-eivm"})
    return keys, ids


def snapshot(ctx):
    with ctx.db.read() as session:
        instances = sorted((i.id, i.status, i.client_instance_id, i.resource_group_id) for i in session.exec(select(Instance)))
        log_size = len(session.exec(select(Transition)).all())
    return instances, log_size


def fill(params: dict[str, str], ids: dict[str, str]) -> dict[str, str]:
    return {k: v.format(**ids) if "{" in v and "}" in v and not v.startswith("[") else v for k, v in params.items()}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_v3_sdk_gets_the_documented_error_and_state_is_unchanged(live_api, world, case):
    keys, ids = world
    before = snapshot(live_api.ctx)
    with pytest.raises(ClientException) as raised:
        v3_call(live_api.v3(keys[case.as_key]), case.action, fill(case.params, ids))
    assert (raised.value.code, raised.value.status_code) == (case.code, case.status), raised.value.message
    assert raised.value.request_id
    assert snapshot(live_api.ctx) == before


@pytest.mark.sqlite_only  # the error mapping does not depend on the database; the v3 run covers PostgreSQL
@pytest.mark.parametrize("case", [c for c in CASES if c.v2_can_send], ids=[c.name for c in CASES if c.v2_can_send])
def test_v2_sdk_gets_the_documented_error_and_state_is_unchanged(live_api, world, case):
    keys, ids = world
    before = snapshot(live_api.ctx)
    with pytest.raises(ServerException) as raised:
        v2_call(live_api.v2(keys[case.as_key]), live_api.endpoint, case.action, fill(case.params, ids))
    assert (raised.value.get_error_code(), raised.value.get_http_status()) == (case.code, case.status)
    assert snapshot(live_api.ctx) == before
