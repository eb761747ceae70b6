"""ACS3-HMAC-SHA256 as the real v3 SDK (``alibabacloud_eais20190624``) signs it."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest
from alibabacloud_eais20190624 import models as m
from alibabacloud_tea_openapi.exceptions import ClientException

from controller.api.caller_auth import authenticate
from controller.api.rpc_request import RpcRequest, parse_query
from controller.api.signature_acs3 import parse_authorization
from controller.errors import IncompleteSignature, SignatureMismatch, UnsupportedSignature

from .sdk_capture import (
    TEST_AK,
    TEST_SECRET,
    AuthenticatingHandler,
    CaptureServer,
    acs3_request_signed_by_sdk,
    edit_query,
    resend,
    v3_client,
)

REFERENCE_AUTHORIZATION = (
    "ACS3-HMAC-SHA256 Credential=testAK,SignedHeaders=accept;host;user-agent;x-acs-action;"
    "x-acs-content-sha256;x-acs-credentials-provider;x-acs-date;x-acs-signature-nonce;x-acs-version,"
    "Signature=172d1affe79308b31bcc627d04e29ff2915fd1f14e42169b085a8e1ed54af8fc"
)
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


@pytest.fixture
def handler() -> AuthenticatingHandler:
    return AuthenticatingHandler(keys={TEST_AK: TEST_SECRET})


@pytest.fixture
def server(handler):
    with CaptureServer(handler) as running:
        yield running


def reference_describe_eais_request(**header_changes: str) -> RpcRequest:
    """The DescribeEais request the v3 SDK sent in section 12 of the reference (secret testSecret)."""
    headers = {
        "host": "127.0.0.1:18081", "x-acs-version": "2019-06-24", "x-acs-action": "DescribeEais",
        "user-agent": "AlibabaCloud (Linux; x86_64) Python/3.11.7 Core/0.4.3 TeaDSL/2",
        "x-acs-date": "2026-11-21T06:31:56Z", "x-acs-signature-nonce": "84d8311d103aeb1dc8acf51a20803620",
        "accept": "application/json", "x-acs-content-sha256": EMPTY_SHA256,
        "x-acs-credentials-provider": "static_ak", "accept-encoding": "identity",
        "authorization": REFERENCE_AUTHORIZATION, **header_changes,
    }
    query = parse_query(
        "ElasticAcceleratedInstanceIds=%5B%22eais-local0001%22%5D&PageSize=20&RegionId=cn-hangzhou"
        "&Status=Available&Tag.1.Key=k&Tag.1.Value=v+w"
    )
    return RpcRequest(method="POST", path="/", query=query, headers=headers, body=b"")


def authenticate_at_reference_time(request: RpcRequest):
    return authenticate(
        request, lookup_secret=lambda ak: TEST_SECRET, remember_nonce=lambda *args: True,
        now=datetime(2026, 11, 21, 6, 32, tzinfo=UTC),
    )


def minimal_headers(**changes: str) -> dict[str, str]:
    """The header set of Alibaba's V3 documentation example, dated now."""
    headers = {
        "host": "127.0.0.1:1", "x-acs-action": "AttachEai", "x-acs-version": "2019-06-24",
        "x-acs-date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "x-acs-signature-nonce": "f00d", "x-acs-content-sha256": EMPTY_SHA256,
    }
    headers.update(changes)
    return headers


def test_request_captured_from_the_v3_sdk_in_the_reference_is_accepted():
    request = reference_describe_eais_request()

    caller = authenticate_at_reference_time(request)

    assert (caller.access_key_id, caller.action, caller.params["Tag.1.Value"]) == ("testAK", "DescribeEais", "v w")


def test_changing_a_signed_header_of_the_reference_request_breaks_its_signature():
    request = reference_describe_eais_request(accept="text/xml")

    with pytest.raises(SignatureMismatch):
        authenticate_at_reference_time(request)


def test_changing_an_unsigned_header_of_the_reference_request_is_harmless():
    request = reference_describe_eais_request(**{"accept-encoding": "gzip"})

    caller = authenticate_at_reference_time(request)

    assert caller.nonce == "84d8311d103aeb1dc8acf51a20803620"


def test_v3_sdk_describe_eais_with_json_ids_unicode_tags_and_page_size_is_accepted(server, handler):
    client = v3_client(server.endpoint, TEST_AK, TEST_SECRET)
    tags = [m.DescribeEaisRequestTag(key="team name", value="数据 科学 ~*")]

    response = client.describe_eais(m.DescribeEaisRequest(
        region_id="cn-hangzhou", elastic_accelerated_instance_ids='["eais-a","eais-b"]', page_size=50, tag=tags,
    ))

    assert response.body.request_id
    assert handler.callers[-1].params == {
        "RegionId": "cn-hangzhou", "ElasticAcceleratedInstanceIds": '["eais-a","eais-b"]', "PageSize": "50",
        "Tag.1.Key": "team name", "Tag.1.Value": "数据 科学 ~*",
    }


def test_v3_sdk_attach_eai_is_accepted(server, handler):
    client = v3_client(server.endpoint, TEST_AK, TEST_SECRET)

    client.attach_eai(m.AttachEaiRequest(
        region_id="cn-hangzhou", elastic_accelerated_instance_id="eais-x", client_instance_id="i-x",
    ))

    assert handler.callers[-1].action == "AttachEai"
    assert handler.callers[-1].params["ClientInstanceId"] == "i-x"


def test_v3_sdk_tag_resources_with_resource_ids_is_accepted(server, handler):
    client = v3_client(server.endpoint, TEST_AK, TEST_SECRET)

    client.tag_resources(m.TagResourcesRequest(
        region_id="cn-hangzhou", resource_type="instance", resource_id=["eais-1", "eais-2"],
        tag=[m.TagResourcesRequestTag(key="env", value="prod line")],
    ))

    params = handler.callers[-1].params
    assert (params["ResourceId.1"], params["ResourceId.2"], params["Tag.1.Value"]) == ("eais-1", "eais-2", "prod line")


def test_v3_sdk_with_a_wrong_secret_gets_signature_does_not_match(server):
    client = v3_client(server.endpoint, TEST_AK, "not-the-secret")

    with pytest.raises(ClientException) as raised:
        client.describe_eais(m.DescribeEaisRequest(region_id="cn-hangzhou"))

    assert (raised.value.status_code, raised.value.code) == (400, "SignatureDoesNotMatch")


def test_signature_mismatch_message_gives_the_string_to_sign_after_its_only_colon(server):
    client = v3_client(server.endpoint, TEST_AK, "not-the-secret")

    with pytest.raises(ClientException) as raised:
        client.describe_eais(m.DescribeEaisRequest(region_id="cn-hangzhou"))

    message = raised.value.data["Message"]
    algorithm, _, digest = message.split(":")[1].partition("\n")
    assert message.count(":") == 1
    assert (algorithm, len(digest)) == ("ACS3-HMAC-SHA256", 64)


def test_v3_sdk_with_an_unknown_access_key_gets_not_found_404(server):
    client = v3_client(server.endpoint, "nobodysKey", TEST_SECRET)

    with pytest.raises(ClientException) as raised:
        client.describe_eais(m.DescribeEaisRequest(region_id="cn-hangzhou"))

    assert (raised.value.status_code, raised.value.code) == (404, "InvalidAccessKeyId.NotFound")


def test_sm3_signature_from_the_v3_sdk_is_refused_naming_the_supported_algorithms(server):
    client = v3_client(server.endpoint, TEST_AK, TEST_SECRET, signature_algorithm="ACS3-HMAC-SM3")

    with pytest.raises(ClientException) as raised:
        client.describe_eais(m.DescribeEaisRequest(region_id="cn-hangzhou"))

    assert (raised.value.status_code, raised.value.code) == (400, "InvalidSignatureMethod")
    assert "ACS3-HMAC-SHA256" in raised.value.data["Message"] and "HMAC-SHA1" in raised.value.data["Message"]


@pytest.mark.parametrize("algorithm", ["ACS3-RSA-SHA256", "ACS3-HMAC-SM3", "ACS3-HMAC-SHA1"])
def test_other_acs3_algorithms_are_unsupported(algorithm):
    header = f"{algorithm} Credential=testAK,SignedHeaders=host,Signature=00"

    with pytest.raises(UnsupportedSignature, match="Supported: ACS3-HMAC-SHA256"):
        parse_authorization(header)


def test_tampered_query_value_after_signing_is_refused(server):
    v3_client(server.endpoint, TEST_AK, TEST_SECRET).describe_eais(
        m.DescribeEaisRequest(region_id="cn-hangzhou", page_size=10)
    )
    signed = server.captured[-1]

    response = resend(server.endpoint, signed, target=edit_query(signed.target, "PageSize", "200"))

    assert (response.status_code, response.json()["Code"]) == (400, "SignatureDoesNotMatch")


def test_body_added_after_signing_is_refused(server):
    v3_client(server.endpoint, TEST_AK, TEST_SECRET).describe_eais(m.DescribeEaisRequest(region_id="cn-hangzhou"))
    signed = server.captured[-1]

    response = resend(server.endpoint, signed, body=b"PageSize=200",
                      headers={"content-type": "application/x-www-form-urlencoded"})

    assert (response.status_code, response.json()["Code"]) == (400, "SignatureDoesNotMatch")
    assert "x-acs-content-sha256" in response.json()["Message"]


def test_tampered_body_with_a_recomputed_content_hash_is_refused(server):
    v3_client(server.endpoint, TEST_AK, TEST_SECRET).describe_eais(m.DescribeEaisRequest(region_id="cn-hangzhou"))
    signed = server.captured[-1]
    body = b"PageSize=200"

    response = resend(server.endpoint, signed, body=body, headers={
        "content-type": "application/x-www-form-urlencoded",
        "x-acs-content-sha256": hashlib.sha256(body).hexdigest(),
    })

    assert (response.status_code, response.json()["Code"]) == (400, "SignatureDoesNotMatch")


def test_headers_signed_as_in_the_alibaba_documentation_example_are_accepted():
    request = acs3_request_signed_by_sdk(minimal_headers(), {"RegionId": "cn-hangzhou", "Blank": ""})

    caller = authenticate(request, lookup_secret=lambda ak: TEST_SECRET, remember_nonce=lambda *a: True,
                          now=datetime.now(UTC))

    assert caller.params == {"RegionId": "cn-hangzhou", "Blank": ""}


@pytest.mark.parametrize("left_out", ["host", "x-acs-action", "x-acs-version", "x-acs-date",
                                      "x-acs-signature-nonce", "x-acs-content-sha256"])
def test_leaving_a_required_header_unsigned_is_an_incomplete_signature(left_out):
    headers = minimal_headers()
    value = headers.pop(left_out)
    request = acs3_request_signed_by_sdk(headers, {})
    request = RpcRequest(request.method, request.path, request.query, {**request.headers, left_out: value}, b"")

    with pytest.raises(IncompleteSignature, match=left_out):
        authenticate(request, lookup_secret=lambda ak: TEST_SECRET, remember_nonce=lambda *a: True,
                     now=datetime.now(UTC))


def test_a_signed_header_missing_from_the_request_is_an_incomplete_signature():
    request = acs3_request_signed_by_sdk(minimal_headers(**{"x-custom": "1"}), {})
    headers = {name: value for name, value in request.headers.items() if name != "x-custom"}

    with pytest.raises(IncompleteSignature, match="x-custom"):
        authenticate(RpcRequest("POST", "/", [], headers, b""), lookup_secret=lambda ak: TEST_SECRET,
                     remember_nonce=lambda *a: True, now=datetime.now(UTC))


@pytest.mark.parametrize("header", [
    "ACS3-HMAC-SHA256 Credential=a,Credential=b,SignedHeaders=host,Signature=00",
    "ACS3-HMAC-SHA256 Credential=a,SignedHeaders=host;host,Signature=00",
    "ACS3-HMAC-SHA256 Credential=a,SignedHeaders=host",
    "ACS3-HMAC-SHA256 Credential=a,SignedHeaders=ho st,Signature=00",
    "ACS3-HMAC-SHA256 Credential=,SignedHeaders=host,Signature=00",
    "ACS3-HMAC-SHA256",
    "ACS3-HMAC-SHA256 Credential=a,SignedHeaders=host,Signature=" + "0" * 5000,
])
def test_malformed_authorization_headers_are_incomplete_signatures(header):
    with pytest.raises(IncompleteSignature):
        parse_authorization(header)


def test_an_absurdly_long_signed_header_is_refused_before_hashing():
    request = acs3_request_signed_by_sdk(minimal_headers(**{"x-acs-pad": "p" * 10_000}), {})

    with pytest.raises(IncompleteSignature, match="x-acs-pad"):
        authenticate(request, lookup_secret=lambda ak: TEST_SECRET, remember_nonce=lambda *a: True,
                     now=datetime.now(UTC))


def test_authorization_with_spaces_after_commas_is_parsed():
    header = "ACS3-HMAC-SHA256 Credential=ak, SignedHeaders=x-acs-date;host, Signature=ABCDEF"

    auth = parse_authorization(header)

    assert (auth.access_key_id, auth.signed_headers, auth.signature) == ("ak", ("host", "x-acs-date"), "abcdef")
