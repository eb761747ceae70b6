"""``authenticate``: order of checks, freshness, replay, versions and hostile input, driven by the real SDKs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from alibabacloud_eais20190624 import models as m
from alibabacloud_tea_openapi.exceptions import ClientException
from aliyunsdkcore.acs_exception.exceptions import ServerException
from aliyunsdkcore.request import CommonRequest
from aliyunsdkeais.request.v20190624.AttachEaiRequest import AttachEaiRequest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.api.caller_auth import authenticate, parse_timestamp
from controller.api.rpc_request import RpcRequest, form_params, parse_query
from controller.errors import (
    AccessKeyNotFound,
    EaisError,
    IncompleteSignature,
    InvalidParameter,
    MissingParameter,
    RequestTooLarge,
    TimestampExpired,
    TimestampMalformed,
)

from .sdk_capture import (
    TEST_AK,
    TEST_SECRET,
    AuthenticatingHandler,
    CaptureServer,
    acs3_request_signed_by_sdk,
    resend,
    rpc_request_signed_by_sdk,
    v2_client,
    v2_do,
    v3_call,
    v3_client,
)


@pytest.fixture
def handler() -> AuthenticatingHandler:
    return AuthenticatingHandler(keys={TEST_AK: TEST_SECRET, "retiredAK": "retiredSecret"},
                                 inactive=frozenset({"retiredAK"}))


@pytest.fixture
def server(handler):
    with CaptureServer(handler) as running:
        yield running


def attach_eai_v2() -> AttachEaiRequest:
    request = AttachEaiRequest()
    request.set_ElasticAcceleratedInstanceId("eais-x")
    request.set_ClientInstanceId("i-x")
    return request


def call_with_v3(endpoint: str, secret: str = TEST_SECRET, ak: str = TEST_AK) -> None:
    v3_client(endpoint, ak, secret).attach_eai(
        m.AttachEaiRequest(region_id="cn-hangzhou", elastic_accelerated_instance_id="eais-x", client_instance_id="i-x")
    )


def call_with_v2(endpoint: str, secret: str = TEST_SECRET, ak: str = TEST_AK) -> None:
    v2_do(v2_client(endpoint, ak, secret), attach_eai_v2())


def authenticate_now(request: RpcRequest, seen: set | None = None, now: datetime | None = None):
    seen = set() if seen is None else seen

    def remember(ak: str, nonce: str, signed_at: datetime) -> bool:
        fresh = (ak, nonce) not in seen
        seen.add((ak, nonce))
        return fresh

    return authenticate(request, lookup_secret=lambda ak: TEST_SECRET, remember_nonce=remember,
                        now=now or datetime.now(UTC))


def error_code_of(sdk_error: Exception) -> tuple[int, str]:
    if isinstance(sdk_error, ClientException):
        return sdk_error.status_code, sdk_error.code
    return sdk_error.get_http_status(), sdk_error.get_error_code()


SDK_CALLS = pytest.mark.parametrize("call", [call_with_v3, call_with_v2], ids=["v3-acs3", "v2-hmac-sha1"])


@SDK_CALLS
def test_replayed_request_is_refused(server, call):
    call(server.endpoint)

    response = resend(server.endpoint, server.captured[-1])

    assert (response.status_code, response.json()["Code"]) == (400, "SignatureNonceUsed")
    assert "new random nonce" in response.json()["Message"]


@SDK_CALLS
def test_request_signed_sixteen_minutes_ago_is_expired(server, handler, call):
    handler.shift = timedelta(minutes=16)

    with pytest.raises((ClientException, ServerException)) as raised:
        call(server.endpoint)

    assert error_code_of(raised.value) == (400, "InvalidTimeStamp.Expired")
    assert "±15 minutes" in handler.errors[-1].message


def test_request_dated_sixteen_minutes_ahead_of_the_server_is_expired():
    request = rpc_request_signed_by_sdk({"Action": "AttachEai", "Version": "2019-06-24"})

    with pytest.raises(TimestampExpired, match="Synchronise the client clock"):
        authenticate_now(request, now=datetime.now(UTC) - timedelta(minutes=16))


@SDK_CALLS
def test_request_signed_fourteen_minutes_ago_is_still_accepted(server, handler, call):
    handler.shift = timedelta(minutes=14)

    call(server.endpoint)

    assert handler.callers[-1].action == "AttachEai"


@SDK_CALLS
def test_inactive_access_key_is_refused_with_403(server, call):
    with pytest.raises((ClientException, ServerException)) as raised:
        call(server.endpoint, ak="retiredAK", secret="retiredSecret")

    assert error_code_of(raised.value) == (403, "InvalidAccessKeyId.Inactive")


def test_v3_sdk_asking_for_another_api_version_gets_invalid_version(server):
    client = v3_client(server.endpoint, TEST_AK, TEST_SECRET)

    with pytest.raises(ClientException) as raised:
        v3_call(client, "DescribeEais", {"RegionId": "cn-hangzhou"}, version="2099-01-01")

    assert (raised.value.status_code, raised.value.code) == (400, "InvalidVersion")
    assert "2019-06-24" in raised.value.data["Message"]


def test_v2_sdk_asking_for_another_api_version_gets_invalid_version(server):
    client = v2_client(server.endpoint, TEST_AK, TEST_SECRET)
    request = CommonRequest(domain=server.endpoint, version="2099-01-01", action_name="DescribeEais")
    request.set_method("POST")

    with pytest.raises(ServerException) as raised:
        v2_do(client, request)

    assert (raised.value.get_http_status(), raised.value.get_error_code()) == (400, "InvalidVersion")


def test_a_forged_copy_does_not_burn_the_nonce_of_the_genuine_request(server, handler):
    server.handler = lambda captured: (200, {"RequestId": "intercepted"})
    call_with_v3(server.endpoint)
    genuine = server.captured[-1]
    server.handler = handler

    forged = resend(server.endpoint, genuine, headers={"x-acs-action": "DeleteEai"})
    accepted = resend(server.endpoint, genuine)

    assert forged.json()["Code"] == "SignatureDoesNotMatch"
    assert accepted.status_code == 200


def test_unsigned_request_is_told_how_to_sign(server):
    response = httpx.post(f"http://{server.endpoint}/?Action=DescribeEais&Version=2019-06-24")

    assert (response.status_code, response.json()["Code"]) == (400, "IncompleteSignature")
    assert "ACS3-HMAC-SHA256" in response.json()["Message"] and "HMAC-SHA1" in response.json()["Message"]


def test_unsigned_action_header_contradicting_the_signed_action_is_refused(server, handler):
    server.handler = lambda captured: (200, {"RequestId": "intercepted"})
    call_with_v2(server.endpoint)
    server.handler = handler

    response = resend(server.endpoint, server.captured[-1], headers={"x-acs-action": "DeleteEai"})

    assert (response.status_code, response.json()["Code"]) == (400, "InvalidParameter")


def test_a_stale_request_is_refused_before_its_access_key_is_looked_up():
    request = rpc_request_signed_by_sdk({"Action": "AttachEai", "Version": "2019-06-24"}, ak="unknownAK")

    with pytest.raises(TimestampExpired):
        authenticate(request, lookup_secret=lambda ak: pytest.fail("looked up a key of a stale request"),
                     remember_nonce=lambda *a: True, now=datetime.now(UTC) + timedelta(hours=1))


def test_protocol_parameters_are_not_business_parameters():
    request = rpc_request_signed_by_sdk({"Action": "AttachEai", "Version": "2019-06-24", "RegionId": "cn-hangzhou"})

    caller = authenticate_now(request)

    assert caller.params == {"RegionId": "cn-hangzhou"}
    assert caller.signed_at.tzinfo is UTC


@pytest.mark.parametrize("missing", ["Action", "Version"])
def test_a_signed_request_without_action_or_version_names_what_is_missing(missing):
    params = {"Action": "AttachEai", "Version": "2019-06-24"}
    del params[missing]
    request = rpc_request_signed_by_sdk(params)

    with pytest.raises(MissingParameter) as raised:
        authenticate_now(request)

    assert raised.value.code == f"MissingParameter.{missing}"


def test_a_request_without_a_signature_nonce_is_incomplete():
    request = rpc_request_signed_by_sdk({"Action": "AttachEai", "Version": "2019-06-24"})
    query = [(name, value) for name, value in request.query if name != "SignatureNonce"]

    with pytest.raises(IncompleteSignature, match="nonce"):
        authenticate_now(RpcRequest("POST", "/", query, {}, b""))


def test_a_business_parameter_given_twice_is_refused():
    request = rpc_request_signed_by_sdk({"Action": "AttachEai", "Version": "2019-06-24", "RegionId": "a"})

    with pytest.raises(InvalidParameter, match="RegionId"):
        authenticate_now(RpcRequest("POST", "/", [*request.query, ("RegionId", "b")], {}, b""))


def test_a_parameter_in_both_query_and_form_body_is_refused():
    request = rpc_request_signed_by_sdk({"Action": "AttachEai", "Version": "2019-06-24", "RegionId": "a"},
                                        body_params={"RegionId": "b"})

    with pytest.raises(InvalidParameter, match="both"):
        authenticate_now(request)


def test_acs3_form_body_params_are_business_parameters(server, handler):
    client = v3_client(server.endpoint, TEST_AK, TEST_SECRET)

    v3_call(client, "AttachEai", {"RegionId": "cn-hangzhou"}, body={"ClientInstanceId": "i-x y"})

    assert handler.callers[-1].params == {"RegionId": "cn-hangzhou", "ClientInstanceId": "i-x y"}


@pytest.mark.parametrize("text", ["2026-11-21 06:31:56Z", "2026-11-21T06:31:56", "2026-13-01T00:00:00Z",
                                  "2026-11-21T06:31:56.123Z", "１２３４-11-21T06:31:56Z", ""])
def test_malformed_timestamps_are_refused_with_the_expected_format(text):
    with pytest.raises(TimestampMalformed, match="YYYY-MM-DDThh:mm:ssZ"):
        parse_timestamp(text)


def test_acs3_date_header_in_another_format_is_malformed():
    headers = {"host": "h", "x-acs-action": "AttachEai", "x-acs-version": "2019-06-24", "x-acs-date": "yesterday",
               "x-acs-signature-nonce": "n", "x-acs-content-sha256": "e3b0c44298fc1c149afbf4c8996fb924"
               "27ae41e4649b934ca495991b7852b855"}

    with pytest.raises(TimestampMalformed):
        authenticate_now(acs3_request_signed_by_sdk(headers, {}))


def test_query_decoding_keeps_order_blanks_and_reads_plus_as_space():
    pairs = parse_query(b"B=x+y&A=&C=%E6%95%B0%2B&D")

    assert pairs == [("B", "x y"), ("A", ""), ("C", "数+"), ("D", "")]


@pytest.mark.parametrize("raw", [b"A=%zz", b"A=%4", b"A=%FF%FE", b"A=\xff", b"=x", b"A=%00"])
def test_undecodable_query_text_is_an_invalid_parameter(raw):
    with pytest.raises(InvalidParameter):
        parse_query(raw)


def test_oversized_query_is_too_large():
    with pytest.raises(RequestTooLarge):
        parse_query(b"A=" + b"x" * 70_000)


def test_oversized_form_body_is_too_large():
    request = RpcRequest("POST", "/", [], {"content-type": "application/x-www-form-urlencoded"}, b"A=" + b"x" * 2_000_000)

    with pytest.raises(RequestTooLarge):
        form_params(request)


def test_form_params_are_read_only_from_form_bodies():
    form = RpcRequest("POST", "/", [], {"content-type": "application/x-www-form-urlencoded; charset=UTF-8"}, b"A=1")
    json_body = RpcRequest("POST", "/", [], {"content-type": "application/json"}, b'{"A": 1}')

    assert (form_params(form), form_params(json_body)) == ([("A", "1")], [])


hostile_text = (st.text(st.characters(codec="utf-8"), max_size=300) | st.text(max_size=40)
                | st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), max_size=3))
header_names = st.sampled_from(["authorization", "x-acs-date", "x-acs-action", "x-acs-version", "host",
                                "x-acs-signature-nonce", "x-acs-content-sha256", "content-type", "accept"])
query_names = st.sampled_from(["Signature", "Action", "Version", "Timestamp", "AccessKeyId", "SignatureNonce",
                               "SignatureMethod", "SignatureVersion", "SignatureType", "RegionId"]) | hostile_text
authorization_values = st.one_of(
    hostile_text,
    st.builds(lambda rest: "ACS3-HMAC-SHA256 " + rest, hostile_text),
    st.builds(lambda cred, names, sig: f"ACS3-HMAC-SHA256 Credential={cred},SignedHeaders={names},Signature={sig}",
              hostile_text, st.lists(header_names, unique=True).map(";".join), hostile_text),
)
garbage_requests = st.builds(
    RpcRequest,
    method=st.sampled_from(["POST", "GET"]),
    path=st.just("/"),
    query=st.dictionaries(query_names, hostile_text, max_size=12).map(lambda params: list(params.items())),
    headers=st.dictionaries(header_names, hostile_text).flatmap(
        lambda headers: st.builds(lambda auth: {**headers, "authorization": auth}, authorization_values)
        | st.just(headers)),
    body=st.binary(max_size=200) | st.just(b"Signature=x&AccessKeyId=testAK"),
)


def signed_acs3_base() -> RpcRequest:
    headers = {"host": "127.0.0.1:1", "x-acs-action": "AttachEai", "x-acs-version": "2019-06-24",
               "x-acs-date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "x-acs-signature-nonce": "n0nce",
               "x-acs-content-sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
               "accept": "application/json"}
    return acs3_request_signed_by_sdk(headers, {"RegionId": "cn-hangzhou", "ClientInstanceId": "i-x"})


def signed_rpc_base() -> RpcRequest:
    return rpc_request_signed_by_sdk({"Action": "AttachEai", "Version": "2019-06-24", "RegionId": "cn-hangzhou"})


SIGNED_BASES = {"acs3": signed_acs3_base, "rpc": signed_rpc_base}


@st.composite
def hostile_mutations(draw) -> Callable[[RpcRequest], RpcRequest]:
    """Replace one part of a correctly signed request with hostile input (applied outside the strategy)."""
    part = draw(st.sampled_from(["header", "query_value", "query_extra", "body", "auth_field"]))
    name, text, index = draw(header_names), draw(hostile_text), draw(st.integers(0, 2))
    extra_name, body = draw(hostile_text), draw(st.binary(max_size=200))
    field = draw(st.sampled_from(["Credential", "SignedHeaders", "Signature"]))

    def mutate(base: RpcRequest) -> RpcRequest:
        headers, query = dict(base.headers), list(base.query)
        if part == "header":
            headers[name] = text
        elif part == "query_value":
            slot = index % len(query)
            query[slot] = (query[slot][0], text)
        elif part == "query_extra":
            query.append((extra_name, text))
        elif part == "body":
            headers["content-type"] = "application/x-www-form-urlencoded"
            return RpcRequest(base.method, base.path, query, headers, body)
        elif "authorization" in headers:
            prefix, _, rest = headers["authorization"].partition(f"{field}=")
            headers["authorization"] = f"{prefix}{field}={text},{rest.partition(',')[2]}".rstrip(",")
        return RpcRequest(base.method, base.path, query, headers, base.body)

    return mutate


def lookup_test_key(access_key_id: str) -> str:
    if access_key_id != TEST_AK:
        raise AccessKeyNotFound("not found")
    return TEST_SECRET


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(request=garbage_requests)
def test_garbage_requests_only_ever_raise_eais_errors(request):
    with pytest.raises(EaisError):
        authenticate_now(request)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scheme=st.sampled_from(sorted(SIGNED_BASES)), mutate=hostile_mutations())
def test_hostile_changes_to_signed_requests_pass_or_raise_eais_errors_only(scheme, mutate):
    request = mutate(SIGNED_BASES[scheme]())
    try:
        caller = authenticate(request, lookup_secret=lookup_test_key, remember_nonce=lambda *a: True,
                              now=datetime.now(UTC))
    except EaisError:
        return
    assert caller.access_key_id == TEST_AK


query_like_bytes = st.lists(
    st.sampled_from([b"&", b"=", b"+", b"%", b"%2", b"%41", b"%E6%95", b"%B0", b"%FF", b"%00", b"A", b"\xc3\xa9", b"\xff"]),
    max_size=40,
).map(b"".join)


@settings(max_examples=400, deadline=None)
@given(raw=query_like_bytes | st.binary(max_size=400) | st.text(max_size=200))
def test_hostile_query_strings_decode_or_raise_eais_errors(raw):
    try:
        pairs = parse_query(raw)
    except EaisError:
        return
    assert all(isinstance(name, str) and isinstance(value, str) for name, value in pairs)
