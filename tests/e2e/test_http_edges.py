"""The HTTP port from outside: oversized heads, bytes that are not HTTP, unknown paths and methods, on a real uvicorn
with each of its HTTP parsers. Every answer is the documented error body with its code, never uvicorn's bare text."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from aliyunsdkcore.acs_exception.exceptions import ServerException
from aliyunsdkeais.request.v20190624.DescribeRegionsRequest import DescribeRegionsRequest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from controller.api.dispatch import HANDLERS
from controller.api.http_server import MAX_HEAD_BYTES, MAX_TARGET_BYTES
from controller.errors import ERROR_TABLE
from controller.key_store import admin_token
from tests.api.sdk_capture import v2_do
from tests.e2e.conftest import running_api
from tests.e2e.raw_http import RawAnswer, exchange

pytestmark = pytest.mark.sqlite_only  # nothing here reaches the database
EAIS_ERROR_FIELDS = {"RequestId", "HostId", "Code", "Message", "Recommend"}
KNOWN_CODES = {spec.code for spec in ERROR_TABLE.values()}


@pytest.fixture(params=["h11", "httptools"])
def endpoint(request: pytest.FixtureRequest, live_ctx) -> Iterator[str]:
    with running_api(live_ctx, http=request.param) as address:
        yield address


def assert_eais_error(answer: RawAnswer | httpx.Response, status: int, code: str) -> dict:
    body = answer.json()
    assert (answer.status_code, body["Code"]) == (status, code)
    assert set(body) == EAIS_ERROR_FIELDS and body["RequestId"] == answer.headers["x-acs-request-id"]
    return body


@pytest.mark.parametrize("query_bytes", [MAX_TARGET_BYTES, 200_000, 3_000_000])
def test_a_query_string_over_the_limit_gets_413_in_the_eais_error_body(endpoint, query_bytes):
    answer = exchange(endpoint, b"POST /?Action=DescribeEais&X=" + b"x" * query_bytes + b" HTTP/1.1\r\nHost: e\r\n\r\n")

    body = assert_eais_error(answer, 413, "RequestEntityTooLarge")
    assert str(MAX_TARGET_BYTES) in body["Message"] and answer.headers["connection"] == "close"


@pytest.mark.parametrize("shape", ["one huge header", "many headers"])
def test_headers_over_the_limit_get_413_in_the_eais_error_body(endpoint, shape):
    headers = (b"X-Big: " + b"y" * (2 * MAX_HEAD_BYTES) + b"\r\n" if shape == "one huge header"
               else b"".join(b"X-%05d: %s\r\n" % (i, b"z" * 60) for i in range(MAX_HEAD_BYTES // 50)))

    answer = exchange(endpoint, b"GET /?Action=DescribeEais HTTP/1.1\r\nHost: e\r\n" + headers + b"\r\n")

    assert_eais_error(answer, 413, "RequestEntityTooLarge")


def test_a_request_just_under_the_limits_reaches_the_api(endpoint):
    target = b"/?Action=DescribeEais&X=" + b"x" * (MAX_TARGET_BYTES - 200)
    headers = b"".join(b"X-%05d: %s\r\n" % (i, b"z" * 60) for i in range((MAX_HEAD_BYTES - MAX_TARGET_BYTES) // 80))

    answer = exchange(endpoint, b"POST " + target + b" HTTP/1.1\r\nHost: e\r\nContent-Length: 0\r\n" + headers + b"\r\n")

    assert_eais_error(answer, 400, "IncompleteSignature")  # the API itself answered: unsigned


def test_bytes_that_are_not_http_get_malformed_request(endpoint):
    answer = exchange(endpoint, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http at all\r\n\r\n")

    assert_eais_error(answer, 400, "MalformedRequest")


def test_an_unknown_path_gets_invalid_action_not_found(endpoint):
    answer = httpx.post(f"http://{endpoint}/v2/instances?Action=DescribeEais")

    body = assert_eais_error(answer, 404, "InvalidAction.NotFound")
    assert "/v2/instances" in body["Message"]


def test_a_method_the_api_does_not_take_gets_405_with_the_methods_it_does(endpoint):
    answer = httpx.request("DELETE", f"http://{endpoint}/?Action=DeleteEai")

    assert_eais_error(answer, 405, "UnsupportedHTTPMethod")
    assert answer.headers["allow"] == "GET, POST"


def test_an_unknown_path_asked_in_xml_is_answered_in_xml(endpoint):
    answer = httpx.get(f"http://{endpoint}/nowhere?Format=XML")

    assert (answer.status_code, answer.headers["content-type"]) == (404, "text/xml;charset=utf-8")
    assert b"<Code>InvalidAction.NotFound</Code>" in answer.content


def test_the_admin_api_answers_unknown_paths_and_methods_in_its_own_shape(live_api):
    headers = {"Authorization": f"Bearer {admin_token(live_api.ctx.settings)}"}

    missing = httpx.get(f"http://{live_api.endpoint}/admin/v1/nothing", headers=headers)
    wrong = httpx.delete(f"http://{live_api.endpoint}/admin/v1/accounts", headers=headers)

    assert (missing.status_code, missing.json()["code"]) == (404, "InvalidAction.NotFound")
    assert (wrong.status_code, wrong.json()["code"], wrong.headers["allow"]) == (405, "UnsupportedHTTPMethod", "GET, POST")
    assert set(wrong.json()) == {"code", "message", "request_id"}


methods = st.one_of(st.sampled_from(["GET", "POST", "PUT", "HEAD", "OPTIONS", "PATCH", "TRACE"]),
                    st.from_regex(r"[A-Z!#$%&'*+.^_`|~-]{1,12}", fullmatch=True)).map(str.encode) | st.binary(min_size=1, max_size=8)
targets = st.one_of(st.sampled_from([b"/", b"/admin/v1/accounts", b"/healthz", b"/?Format=XML", b"*"]),
                    st.binary(max_size=80).map(lambda raw: b"/" + raw))
header_lines = st.lists(st.tuples(st.binary(max_size=20), st.binary(max_size=40)), max_size=6)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(method=methods, target=targets, headers=header_lines, version=st.sampled_from([b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2", b""]))
def test_any_request_head_gets_a_documented_answer(endpoint, method, target, headers, version):
    head = method + b" " + target + b" " + version + b"\r\nHost: e\r\n"
    head += b"".join(name + b": " + value + b"\r\n" for name, value in headers) + b"Connection: close\r\n\r\n"
    lowered = head.lower()
    # a body the server would wait for is not a head's problem; nor is "\r\n\r\n" ending the head early
    assume(b"content-length" not in lowered and b"transfer-encoding" not in lowered and b"expect" not in lowered)
    assume(head.count(b"\r\n\r\n") == 1 and not method.startswith(b"HEAD"))

    answer = exchange(endpoint, head)

    assert answer.status_code < 500
    if answer.status_code >= 400:
        code = answer.error_code()
        assert any(code == known or code.startswith(known + ".") for known in KNOWN_CODES), answer.body


def test_a_bug_is_answered_internal_error_and_its_traceback_names_the_request(live_api, account, log, monkeypatch):
    def broken(call):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setitem(HANDLERS, "DescribeRegions", broken)
    with pytest.raises(ServerException) as raised:
        v2_do(live_api.v2(account), DescribeRegionsRequest())

    assert (raised.value.get_http_status(), raised.value.get_error_code()) == (500, "InternalError")
    tracebacks = [r for r in log.records if r.exc_info and r.exc_info[0] is ZeroDivisionError]
    assert tracebacks and f"request id {raised.value.get_request_id()}" in tracebacks[0].exc_info[1].__notes__
