"""``Format=XML``: the v2 SDK asking for XML, and plain HTTP, get Alibaba Cloud's XML bodies for answers and errors."""

from __future__ import annotations

import json
import warnings
from xml.etree import ElementTree

import httpx
import pytest
from aliyunsdkeais.request.v20190624.AttachEaiRequest import AttachEaiRequest
from aliyunsdkeais.request.v20190624.CreateEaiRequest import CreateEaiRequest
from aliyunsdkeais.request.v20190624.DescribeEaisRequest import DescribeEaisRequest
from aliyunsdkeais.request.v20190624.ListTagResourcesRequest import ListTagResourcesRequest

from controller.states import Event
from tests.api.sdk_capture import v2_do
from tests.fleet_rows import add_node
from tests.rules.lifecycle_steps import step

pytestmark = pytest.mark.sqlite_only  # the body's format does not depend on the database
TYPE = "eais.ei-a6.2xlarge"
XML_TYPE = "text/xml;charset=utf-8"


@pytest.fixture
def client(live_api, account):
    add_node(live_api.ctx, slices={TYPE: 3})
    return live_api.v2(account)


def in_xml(client, request, fmt: str = "xml") -> tuple[int, dict, ElementTree.Element]:
    """The v2 SDK's raw answer to ``request`` asked in ``fmt`` (do_action_with_exception always asks JSON)."""
    request.set_protocol_type("http")
    request.set_accept_format(fmt)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # get_response is the SDK's way to a raw body
        status, headers, body = client.get_response(request)
    return status, {k.lower(): v for k, v in headers.items()}, ElementTree.fromstring(body)


def test_create_and_describe_answer_xml_with_the_fields_of_the_json(client, live_api):
    create = CreateEaiRequest()
    create.set_InstanceType(TYPE)
    create.set_InstanceName("xml-web")
    create.set_Tags([{"Key": "team", "Value": "a&b"}])
    status, headers, created = in_xml(client, create)
    instance_id = created.findtext("ElasticAcceleratedInstanceId")
    step(live_api.ctx, instance_id, Event.SLICE_READY)

    _, _, listed = in_xml(client, DescribeEaisRequest())
    as_json = v2_do(client, DescribeEaisRequest())

    assert (status, headers["content-type"], created.tag) == (200, XML_TYPE, "CreateEaiResponse")
    assert created.findtext("RequestId") == headers["x-acs-request-id"]
    assert listed.tag == "DescribeEaisResponse" and listed.findtext("TotalCount") == "1"
    instance = listed.find("Instances/Instance")
    assert instance.findtext("ElasticAcceleratedInstanceId") == instance_id
    assert instance.findtext("Tags/Tag/TagValue") == "a&b"
    json_instance = as_json["Instances"]["Instance"][0]
    assert {child.tag: child.text or "" for child in instance if child.tag != "Tags"} == {
        k: str(v) for k, v in json_instance.items() if k != "Tags"}


def test_a_list_without_a_wrapper_repeats_its_element(client, live_api):
    create = CreateEaiRequest()
    create.set_InstanceType(TYPE)
    create.set_Tags([{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}])
    instance_id = v2_do(client, create)["ElasticAcceleratedInstanceId"]
    listing = ListTagResourcesRequest()
    listing.set_ResourceType("instance")
    listing.set_ResourceIds([instance_id])

    _, _, answer = in_xml(client, listing)

    assert [(t.findtext("TagKey"), t.findtext("TagValue")) for t in answer.findall("TagResources")] == [("a", "1"), ("b", "2")]


def test_an_error_asked_in_xml_is_an_error_element_with_its_status(client):
    attach = AttachEaiRequest()
    attach.set_ElasticAcceleratedInstanceId("eais-nowhere")
    attach.set_ClientInstanceId("i-vm1")

    status, headers, error = in_xml(client, attach, fmt="XML")

    assert (status, headers["content-type"], error.tag) == (404, XML_TYPE, "Error")
    assert error.findtext("Code") == "InvalidParameter.InstanceId.NotFound"
    assert error.findtext("RequestId") == headers["x-acs-request-id"]
    assert {child.tag for child in error} == {"RequestId", "HostId", "Code", "Message", "Recommend"}


@pytest.mark.parametrize("spelling", ["XML", "xml", "Xml"])
def test_format_is_read_in_any_case_over_plain_http(live_api, spelling):
    answer = httpx.post(f"http://{live_api.endpoint}/?Action=DescribeEais&Format={spelling}")

    assert (answer.status_code, answer.headers["content-type"]) == (400, XML_TYPE)
    assert ElementTree.fromstring(answer.content).findtext("Code") == "IncompleteSignature"


def test_json_stays_the_default_and_answers_other_formats(live_api, client):
    plain = httpx.post(f"http://{live_api.endpoint}/?Action=DescribeEais")
    other = httpx.post(f"http://{live_api.endpoint}/?Action=DescribeEais&Format=yaml")

    assert json.loads(plain.content)["Code"] == json.loads(other.content)["Code"] == "IncompleteSignature"
    assert plain.headers["content-type"] == other.headers["content-type"] == "application/json"
    assert v2_do(client, DescribeEaisRequest())["TotalCount"] == 0  # the SDK's own JSON path is unchanged
