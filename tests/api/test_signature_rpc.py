"""RPC signature 1.0 (HMAC-SHA1) as the real v2 SDK and the v3 SDK in ``signature_algorithm='v2'`` sign it."""

from __future__ import annotations

import pytest
from alibabacloud_eais20190624 import models as m
from alibabacloud_tea_openapi.exceptions import ClientException
from aliyunsdkcore.acs_exception.exceptions import ServerException
from aliyunsdkeais.request.v20190624.AttachEaiRequest import AttachEaiRequest
from aliyunsdkeais.request.v20190624.DescribeEaisRequest import DescribeEaisRequest
from aliyunsdkeais.request.v20190624.TagResourcesRequest import TagResourcesRequest

from controller.api.rpc_request import parse_query
from controller.api.signature_rpc import sign, string_to_sign

from .sdk_capture import (
    TEST_AK,
    TEST_SECRET,
    AuthenticatingHandler,
    CaptureServer,
    edit_query,
    resend,
    v2_client,
    v2_do,
    v3_call,
    v3_client,
)

# Section 12 of the reference: what the v2 SDK sent, signed with testSecret.
REFERENCE_DESCRIBE_EAIS = (
    "ElasticAcceleratedInstanceIds=%5B%22eais-local0001%22%5D&PageSize=20&Tag.1.Value=v%20w&Tag.1.Key=k"
    "&Version=2019-06-24&Action=DescribeEais&Format=JSON&RegionId=cn-hangzhou&Timestamp=2026-11-21T06%3A31%3A57Z"
    "&SignatureMethod=HMAC-SHA1&SignatureType=&SignatureVersion=1.0&SignatureNonce=3989e6ab77f6a378e48437f300e4752c"
    "&AccessKeyId=testAK&Signature=jS1U%2FtDJCoSV26SqVd8%2BBQGKikk%3D"
)
REFERENCE_ATTACH_EAI = (
    "ElasticAcceleratedInstanceId=eais-local0001&ClientInstanceId=i-local0001&Version=2019-06-24&Action=AttachEai"
    "&Format=JSON&RegionId=cn-hangzhou&Timestamp=2026-11-21T06%3A31%3A57Z&SignatureMethod=HMAC-SHA1&SignatureType="
    "&SignatureVersion=1.0&SignatureNonce=6f429cd82961507bcde1af51d19d8d12&AccessKeyId=testAK"
    "&Signature=6W1oDZYf%2BwyeXiKRin7UDDFyND0%3D"
)


@pytest.fixture
def handler() -> AuthenticatingHandler:
    return AuthenticatingHandler(keys={TEST_AK: TEST_SECRET})


@pytest.fixture
def server(handler):
    with CaptureServer(handler) as running:
        yield running


def describe_eais_v2() -> DescribeEaisRequest:
    request = DescribeEaisRequest()
    request.set_ElasticAcceleratedInstanceIds('["eais-a","eais-b"]')
    request.set_PageSize(50)
    request.set_Tags([{"Key": "team name", "Value": "数据 科学 ~*"}])
    return request


def attach_eai_v2() -> AttachEaiRequest:
    request = AttachEaiRequest()
    request.set_ElasticAcceleratedInstanceId("eais-x")
    request.set_ClientInstanceId("i-x")
    return request


@pytest.mark.parametrize("raw_query", [REFERENCE_DESCRIBE_EAIS, REFERENCE_ATTACH_EAI])
def test_signatures_captured_from_the_v2_sdk_in_the_reference_are_reproduced(raw_query):
    params = dict(parse_query(raw_query))

    signature = sign(TEST_SECRET, string_to_sign("POST", params))

    assert signature == params["Signature"]


def test_v2_sdk_describe_eais_with_json_ids_unicode_tags_and_page_size_is_accepted(server, handler):
    client = v2_client(server.endpoint, TEST_AK, TEST_SECRET)

    body = v2_do(client, describe_eais_v2())

    assert body["RequestId"]
    assert handler.callers[-1].params == {
        "RegionId": "cn-hangzhou", "ElasticAcceleratedInstanceIds": '["eais-a","eais-b"]', "PageSize": "50",
        "Tag.1.Key": "team name", "Tag.1.Value": "数据 科学 ~*",
    }


def test_v2_sdk_attach_eai_is_accepted(server, handler):
    client = v2_client(server.endpoint, TEST_AK, TEST_SECRET)

    v2_do(client, attach_eai_v2())

    assert (handler.callers[-1].action, handler.callers[-1].params["ClientInstanceId"]) == ("AttachEai", "i-x")


def test_v2_sdk_tag_resources_with_resource_ids_is_accepted(server, handler):
    client = v2_client(server.endpoint, TEST_AK, TEST_SECRET)
    request = TagResourcesRequest()
    request.set_ResourceType("instance")
    request.set_ResourceIds(["eais-1", "eais-2"])
    request.set_Tags([{"Key": "env", "Value": "prod line"}])

    v2_do(client, request)

    params = handler.callers[-1].params
    assert (params["ResourceId.1"], params["ResourceId.2"], params["Tag.1.Value"]) == ("eais-1", "eais-2", "prod line")


def test_v2_sdk_form_body_parameters_are_signed_and_become_business_parameters(server, handler):
    client = v2_client(server.endpoint, TEST_AK, TEST_SECRET)
    request = attach_eai_v2()
    request.add_body_params("Note", "sent in the body & signed")

    v2_do(client, request)

    assert handler.callers[-1].params["Note"] == "sent in the body & signed"


def test_v3_sdk_in_v2_signature_mode_is_accepted(server, handler):
    client = v3_client(server.endpoint, TEST_AK, TEST_SECRET, signature_algorithm="v2")

    client.describe_eais(m.DescribeEaisRequest(
        region_id="cn-hangzhou", page_size=50, tag=[m.DescribeEaisRequestTag(key="k", value="数据 科学")],
    ))

    assert handler.callers[-1].params == {
        "RegionId": "cn-hangzhou", "PageSize": "50", "Tag.1.Key": "k", "Tag.1.Value": "数据 科学",
    }


def test_v3_sdk_in_v2_signature_mode_signs_a_form_body(server, handler):
    client = v3_client(server.endpoint, TEST_AK, TEST_SECRET, signature_algorithm="v2")

    v3_call(client, "AttachEai", {"RegionId": "cn-hangzhou"}, body={"ClientInstanceId": "i-x y"})

    assert handler.callers[-1].params == {"RegionId": "cn-hangzhou", "ClientInstanceId": "i-x y"}


def test_v2_sdk_with_a_wrong_secret_gets_its_normal_server_exception(server, handler):
    client = v2_client(server.endpoint, TEST_AK, "not-the-secret")

    with pytest.raises(ServerException) as raised:
        v2_do(client, attach_eai_v2())

    # The SDK renames SignatureDoesNotMatch when the server's string to sign equals its own.
    assert (raised.value.get_http_status(), raised.value.get_error_code()) == (400, "InvalidAccessKeySecret")
    assert handler.errors[-1].code == "SignatureDoesNotMatch"


def test_v2_sdk_sees_signature_does_not_match_when_the_request_was_changed_in_transit(server, handler):
    client = v2_client(server.endpoint, TEST_AK, TEST_SECRET)
    handler.tamper = lambda captured: type(captured)(
        captured.method, edit_query(captured.target, "PageSize", "200"), captured.headers, captured.body
    )

    with pytest.raises(ServerException) as raised:
        v2_do(client, describe_eais_v2())

    assert (raised.value.get_http_status(), raised.value.get_error_code()) == (400, "SignatureDoesNotMatch")
    assert "server string to sign is:POST&%2F&" in raised.value.get_error_msg()


def test_v3_sdk_in_v2_signature_mode_with_a_wrong_secret_gets_signature_does_not_match(server):
    client = v3_client(server.endpoint, TEST_AK, "not-the-secret", signature_algorithm="v2")

    with pytest.raises(ClientException) as raised:
        client.describe_eais(m.DescribeEaisRequest(region_id="cn-hangzhou"))

    assert (raised.value.status_code, raised.value.code) == (400, "SignatureDoesNotMatch")


def test_v2_sdk_with_an_unknown_access_key_gets_not_found_404(server):
    client = v2_client(server.endpoint, "nobodysKey", TEST_SECRET)

    with pytest.raises(ServerException) as raised:
        v2_do(client, attach_eai_v2())

    assert (raised.value.get_http_status(), raised.value.get_error_code()) == (404, "InvalidAccessKeyId.NotFound")


def test_tampered_query_value_after_signing_is_refused(server):
    v2_do(v2_client(server.endpoint, TEST_AK, TEST_SECRET), describe_eais_v2())
    signed = server.captured[-1]

    response = resend(server.endpoint, signed, target=edit_query(signed.target, "PageSize", "200"))

    assert (response.status_code, response.json()["Code"]) == (400, "SignatureDoesNotMatch")


def test_tampered_form_body_after_signing_is_refused(server):
    client = v3_client(server.endpoint, TEST_AK, TEST_SECRET, signature_algorithm="v2")
    v3_call(client, "AttachEai", {"RegionId": "cn-hangzhou"}, body={"ClientInstanceId": "i-mine"})
    signed = server.captured[-1]

    response = resend(server.endpoint, signed, body=b"ClientInstanceId=i-yours")

    assert (response.status_code, response.json()["Code"]) == (400, "SignatureDoesNotMatch")


@pytest.mark.parametrize(("name", "value"), [
    ("SignatureMethod", "HMAC-SHA256"), ("SignatureVersion", "2.0"), ("SignatureType", "BEARERTOKEN"),
])
def test_other_rpc_signature_methods_are_refused_naming_the_supported_one(server, name, value):
    v2_do(v2_client(server.endpoint, TEST_AK, TEST_SECRET), attach_eai_v2())
    signed = server.captured[-1]

    response = resend(server.endpoint, signed, target=edit_query(signed.target, name, value))

    assert (response.status_code, response.json()["Code"]) == (400, "InvalidSignatureMethod")
    assert "HMAC-SHA1" in response.json()["Message"]


@pytest.mark.parametrize("name", ["AccessKeyId", "SignatureMethod", "SignatureVersion", "Timestamp"])
def test_a_missing_signature_parameter_is_named(server, name):
    v2_do(v2_client(server.endpoint, TEST_AK, TEST_SECRET), attach_eai_v2())
    signed = server.captured[-1]

    response = resend(server.endpoint, signed, target=edit_query(signed.target, name, None))

    assert (response.status_code, response.json()["Code"]) == (400, f"MissingParameter.{name}")
