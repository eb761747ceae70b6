"""Every implemented action through the official v2 SDK (aliyun-python-sdk-eais, HMAC-SHA1 signature 1.0)."""

from __future__ import annotations

import json

import pytest
from aliyunsdkcore.acs_exception.exceptions import ServerException
from aliyunsdkeais.request.v20190624.AttachEaiRequest import AttachEaiRequest
from aliyunsdkeais.request.v20190624.ChangeResourceGroupRequest import ChangeResourceGroupRequest
from aliyunsdkeais.request.v20190624.CreateEaiRequest import CreateEaiRequest
from aliyunsdkeais.request.v20190624.DeleteEaiAllRequest import DeleteEaiAllRequest
from aliyunsdkeais.request.v20190624.DeleteEaiRequest import DeleteEaiRequest
from aliyunsdkeais.request.v20190624.DescribeEaisRequest import DescribeEaisRequest
from aliyunsdkeais.request.v20190624.DescribeRegionsRequest import DescribeRegionsRequest
from aliyunsdkeais.request.v20190624.DetachEaiRequest import DetachEaiRequest
from aliyunsdkeais.request.v20190624.ListTagResourcesRequest import ListTagResourcesRequest
from aliyunsdkeais.request.v20190624.TagResourcesRequest import TagResourcesRequest
from aliyunsdkeais.request.v20190624.UntagResourcesRequest import UntagResourcesRequest

from controller.states import Event
from tests.api.sdk_capture import v2_do
from tests.fleet_rows import add_client, add_node
from tests.rules.lifecycle_steps import status_of, step

TYPE = "eais.ei-a6.2xlarge"


@pytest.fixture
def client(live_api, account):
    add_node(live_api.ctx, slices={TYPE: 3})
    add_client(live_api.ctx, account.account_id, "i-vm1")
    return live_api.v2(account)


def create(client, **setters) -> str:
    request = CreateEaiRequest()
    request.set_InstanceType(TYPE)
    for name, value in setters.items():
        getattr(request, f"set_{name}")(value)
    return v2_do(client, request)["ElasticAcceleratedInstanceId"]


def describe(client, **setters) -> dict:
    request = DescribeEaisRequest()
    for name, value in setters.items():
        getattr(request, f"set_{name}")(value)
    return v2_do(client, request)


def test_describe_regions_answers_the_region_table(client):
    regions = v2_do(client, DescribeRegionsRequest())["Regions"]["Region"]
    assert {r["RegionId"] for r in regions} == {"cn-beijing", "cn-hangzhou", "cn-shanghai", "cn-shenzhen", "cn-chengdu"}


def test_create_describe_attach_detach_delete(client, live_api):
    instance_id = create(client, InstanceName="v2-web", ClientToken="tok-v2", Tags=[{"Key": "k", "Value": "v w"}])
    step(live_api.ctx, instance_id, Event.SLICE_READY)
    listed = describe(client, ElasticAcceleratedInstanceIds=json.dumps([instance_id]), Status="Available",
                      Tags=[{"Key": "k", "Value": "v w"}])
    assert [i["ElasticAcceleratedInstanceId"] for i in listed["Instances"]["Instance"]] == [instance_id]
    attach = AttachEaiRequest()
    attach.set_ElasticAcceleratedInstanceId(instance_id)
    attach.set_ClientInstanceId("i-vm1")
    assert v2_do(client, attach)["ClientInstanceId"] == "i-vm1"
    step(live_api.ctx, instance_id, Event.ATTACH_READY)
    detach = DetachEaiRequest()
    detach.set_ElasticAcceleratedInstanceId(instance_id)
    v2_do(client, detach)
    step(live_api.ctx, instance_id, Event.DETACH_DONE)
    delete = DeleteEaiRequest()
    delete.set_ElasticAcceleratedInstanceId(instance_id)
    delete.set_Force(False)
    v2_do(client, delete)
    assert status_of(live_api.ctx, instance_id) == "Released"


def test_same_client_token_returns_the_same_instance(client):
    assert create(client, ClientToken="same-1") == create(client, ClientToken="same-1")


def test_force_is_needed_to_release_a_starting_instance(client, live_api):
    instance_id = create(client)
    step(live_api.ctx, instance_id, Event.SLICE_PREPARING)
    delete = DeleteEaiRequest()
    delete.set_ElasticAcceleratedInstanceId(instance_id)
    with pytest.raises(ServerException) as refused:
        v2_do(client, delete)
    assert (refused.value.get_error_code(), refused.value.get_http_status()) == ("InvalidEaiStatus", 400)
    delete.set_Force(True)
    v2_do(client, delete)
    assert status_of(live_api.ctx, instance_id) == "Released"


def test_delete_eai_all_releases_the_instance(client, live_api):
    instance_id = create(client)
    request = DeleteEaiAllRequest()
    request.set_ElasticAcceleratedInstanceId(instance_id)
    v2_do(client, request)
    assert status_of(live_api.ctx, instance_id) == "Released"


def test_tag_list_untag_and_change_resource_group(client):
    instance_id = create(client)
    tag = TagResourcesRequest()
    tag.set_ResourceType("instance")
    tag.set_ResourceIds([instance_id])
    tag.set_Tags([{"Key": "owner", "Value": "ops"}])
    v2_do(client, tag)
    listing = ListTagResourcesRequest()
    listing.set_ResourceType("instance")
    listing.set_ResourceIds([instance_id])
    assert v2_do(client, listing)["TagResources"] == [
        {"ResourceId": instance_id, "ResourceType": "instance", "TagKey": "owner", "TagValue": "ops"}]
    untag = UntagResourcesRequest()
    untag.set_ResourceType("instance")
    untag.set_ResourceIds([instance_id])
    untag.set_TagKeys(["owner"])
    v2_do(client, untag)
    assert v2_do(client, listing)["TagResources"] == []
    move = ChangeResourceGroupRequest()
    move.set_ResourceId(instance_id)
    move.set_ResourceRegionId("cn-hangzhou")
    move.set_ResourceGroupId("rg-v2group")
    v2_do(client, move)
    assert describe(client, ResourceGroupId="rg-v2group")["TotalCount"] == 1
