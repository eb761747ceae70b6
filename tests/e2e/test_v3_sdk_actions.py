"""Every implemented action through the official v3 SDK (alibabacloud_eais20190624, ACS3-HMAC-SHA256)."""

from __future__ import annotations

import json

import pytest
from alibabacloud_eais20190624 import models as m
from alibabacloud_tea_openapi.exceptions import ClientException

from controller.states import Event
from tests.fleet_rows import REGION, add_client, add_node
from tests.rules.lifecycle_steps import status_of, step

TYPE = "eais.ei-a6.2xlarge"


@pytest.fixture
def sdk(live_api, account):
    add_node(live_api.ctx, slices={TYPE: 3, "eais.ei-a6.large": 1})
    add_client(live_api.ctx, account.account_id, "i-vm1")
    return live_api.v3(account)


def create(sdk, **kw) -> str:
    request = m.CreateEaiRequest(region_id=REGION, instance_type=kw.pop("instance_type", TYPE), **kw)
    return sdk.create_eai(request).body.elastic_accelerated_instance_id


def describe(sdk, **kw):
    return sdk.describe_eais(m.DescribeEaisRequest(region_id=REGION, **kw)).body


def test_describe_regions_lists_the_five_default_regions(sdk):
    regions = sdk.describe_regions().body.regions.region
    assert [r.region_id for r in regions] == ["cn-beijing", "cn-hangzhou", "cn-shanghai", "cn-shenzhen", "cn-chengdu"]
    assert regions[1].region_endpoint == "eais.cn-hangzhou.aliyuncs.com"


def test_created_instance_is_described_with_all_nineteen_fields(sdk, live_api):
    instance_id = create(sdk, instance_name="web-1", client_token="t-1",
                         tag=[m.CreateEaiRequestTag(key="team", value="search ai")])
    step(live_api.ctx, instance_id, Event.SLICE_READY)
    raw = sdk.describe_eais_with_options(
        m.DescribeEaisRequest(region_id=REGION, elastic_accelerated_instance_ids=json.dumps([instance_id])),
        __import__("darabonba.runtime", fromlist=["RuntimeOptions"]).RuntimeOptions(),
    ).body.to_map()
    item = raw["Instances"]["Instance"][0]
    assert len(item) == 19
    assert (item["ElasticAcceleratedInstanceId"], item["InstanceName"], item["Status"]) == (instance_id, "web-1", "Available")
    assert item["Tags"] == {"Tag": [{"TagKey": "team", "TagValue": "search ai"}]}
    assert item["CreationTime"].isdigit() and item["StartTime"].isdigit()
    assert (raw["TotalCount"], raw["PageNumber"], raw["PageSize"]) == (1, 1, 20)


def test_attach_then_detach_then_delete_walks_the_lifecycle(sdk, live_api):
    instance_id = create(sdk)
    step(live_api.ctx, instance_id, Event.SLICE_READY)
    answer = sdk.attach_eai(m.AttachEaiRequest(region_id=REGION, elastic_accelerated_instance_id=instance_id,
                                               client_instance_id="i-vm1")).body
    assert (answer.elastic_accelerated_instance_id, answer.client_instance_id) == (instance_id, "i-vm1")
    described = describe(sdk, client_instance_id="i-vm1").instances.instance[0]
    assert (described.status, described.client_instance_id, described.client_instance_name) == ("Attaching", "i-vm1", "i-vm1-name")
    step(live_api.ctx, instance_id, Event.ATTACH_READY)
    sdk.detach_eai(m.DetachEaiRequest(region_id=REGION, elastic_accelerated_instance_id=instance_id))
    assert status_of(live_api.ctx, instance_id) == "Detaching"
    with pytest.raises(ClientException) as refused:
        sdk.delete_eai(m.DeleteEaiRequest(region_id=REGION, elastic_accelerated_instance_id=instance_id))
    assert (refused.value.code, refused.value.status_code) == ("InvalidEaiStatus", 400)
    sdk.delete_eai(m.DeleteEaiRequest(region_id=REGION, elastic_accelerated_instance_id=instance_id, force=True))
    assert describe(sdk).total_count == 0


def test_delete_eai_all_releases_a_bound_instance(sdk, live_api):
    instance_id = create(sdk)
    step(live_api.ctx, instance_id, Event.SLICE_READY)
    sdk.attach_eai(m.AttachEaiRequest(region_id=REGION, elastic_accelerated_instance_id=instance_id, client_instance_id="i-vm1"))
    sdk.delete_eai_all(m.DeleteEaiAllRequest(region_id=REGION, elastic_accelerated_instance_id=instance_id,
                                             client_instance_id="i-vm1"))
    assert status_of(live_api.ctx, instance_id) == "Released"


def test_every_describe_filter_narrows_the_list(sdk, live_api):
    first = create(sdk, instance_name="alpha-1", resource_group_id="rg-aaa", tag=[m.CreateEaiRequestTag(key="env", value="prod")])
    second = create(sdk, instance_name="beta-1", instance_type="eais.ei-a6.large")
    step(live_api.ctx, first, Event.SLICE_READY)

    def ids(**kw):
        return [i.elastic_accelerated_instance_id for i in describe(sdk, **kw).instances.instance]

    assert sorted(ids()) == sorted([first, second])
    assert ids(elastic_accelerated_instance_ids=json.dumps([second])) == [second]
    assert ids(instance_name="alpha*") == [first]
    assert ids(instance_name="alpha-1") == [first]
    assert ids(instance_type="eais.ei-a6.large") == [second]
    assert ids(status="Available") == [first]
    assert ids(resource_group_id="rg-aaa") == [first]
    assert ids(tag=[m.DescribeEaisRequestTag(key="env", value="prod")]) == [first]
    assert ids(tag=[m.DescribeEaisRequestTag(key="env", value="dev")]) == []
    assert ids(client_instance_id="i-vm1") == []


def test_paging_walks_every_instance_once(sdk, live_api):
    made = {create(sdk) for _ in range(3)}
    page1 = describe(sdk, page_size=2, page_number=1)
    page2 = describe(sdk, page_size=2, page_number=2)
    seen = [i.elastic_accelerated_instance_id for i in page1.instances.instance + page2.instances.instance]
    assert page1.total_count == 3 and sorted(seen) == sorted(made)


def test_tags_are_added_listed_and_removed(sdk):
    instance_id = create(sdk)
    sdk.tag_resources(m.TagResourcesRequest(region_id=REGION, resource_type="instance", resource_id=[instance_id],
                                            tag=[m.TagResourcesRequestTag(key="a", value="1"),
                                                 m.TagResourcesRequestTag(key="b", value="2")]))
    listed = sdk.list_tag_resources(m.ListTagResourcesRequest(region_id=REGION, resource_type="instance",
                                                              resource_id=[instance_id])).body
    assert [(t.resource_id, t.tag_key, t.tag_value, t.resource_type) for t in listed.tag_resources] == [
        (instance_id, "a", "1", "instance"), (instance_id, "b", "2", "instance")]
    sdk.untag_resources(m.UntagResourcesRequest(region_id=REGION, resource_type="instance", resource_id=[instance_id],
                                                tag_key=["a"]))
    by_tag = sdk.list_tag_resources(m.ListTagResourcesRequest(
        region_id=REGION, resource_type="instance", tag=[m.ListTagResourcesRequestTag(key="b", value="2")])).body
    assert [(t.resource_id, t.tag_key) for t in by_tag.tag_resources] == [(instance_id, "b")]
    sdk.untag_resources(m.UntagResourcesRequest(region_id=REGION, resource_type="instance", resource_id=[instance_id], all=True))
    left = sdk.list_tag_resources(m.ListTagResourcesRequest(region_id=REGION, resource_type="instance",
                                                            resource_id=[instance_id])).body
    assert left.tag_resources == []


def test_change_resource_group_moves_the_instance(sdk):
    instance_id = create(sdk)
    sdk.change_resource_group(m.ChangeResourceGroupRequest(resource_id=instance_id, resource_region_id=REGION,
                                                           resource_group_id="rg-new1"))
    assert describe(sdk, resource_group_id="rg-new1").instances.instance[0].elastic_accelerated_instance_id == instance_id


def test_list_tag_resources_pages_with_next_token(sdk):
    ids = [create(sdk) for _ in range(3)]
    tags = [m.TagResourcesRequestTag(key=f"k{n:02d}", value="v") for n in range(20)]
    sdk.tag_resources(m.TagResourcesRequest(region_id=REGION, resource_type="instance", resource_id=ids, tag=tags))
    seen, token = [], None
    for _ in range(5):
        page = sdk.list_tag_resources(m.ListTagResourcesRequest(region_id=REGION, resource_type="instance",
                                                                resource_id=ids, next_token=token)).body
        seen += [(t.resource_id, t.tag_key) for t in page.tag_resources]
        token = page.next_token
        if not token:
            break
    assert len(seen) == 60 and len(set(seen)) == 60
