"""Authentication failures against the live API, through the official SDKs and raw resends."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from alibabacloud_tea_openapi.exceptions import ClientException
from aliyunsdkcore.acs_exception.exceptions import ServerException
from aliyunsdkcore.client import AcsClient
from aliyunsdkeais.request.v20190624.DescribeEaisRequest import DescribeEaisRequest

from tests.api.sdk_capture import acs3_request_signed_by_sdk, v2_do, v3_call, v3_client

pytestmark = pytest.mark.sqlite_only


def acs3_headers(endpoint: str, *, date: datetime | None = None, nonce: str = "n-0001") -> dict[str, str]:
    return {
        "host": endpoint,
        "x-acs-action": "DescribeEais",
        "x-acs-version": "2019-06-24",
        "x-acs-date": (date or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "x-acs-signature-nonce": nonce,
        "x-acs-content-sha256": hashlib.sha256(b"").hexdigest(),
    }


def send(endpoint: str, request) -> httpx.Response:  # noqa: ANN001
    query = "&".join(f"{k}={v}" for k, v in request.query)
    return httpx.post(f"http://{endpoint}/?{query}", headers=dict(request.headers), content=request.body)


def test_unknown_access_key_is_refused_with_404(live_api):
    with pytest.raises(ClientException) as raised:
        v3_call(v3_client(live_api.endpoint, "LTAInobody", "x"), "DescribeEais", {"RegionId": "cn-hangzhou"})
    assert (raised.value.code, raised.value.status_code) == ("InvalidAccessKeyId.NotFound", 404)


def test_wrong_secret_is_refused_by_both_sdks(live_api, account):
    with pytest.raises(ClientException) as v3_raised:
        v3_call(v3_client(live_api.endpoint, account.access_key_id, "wrong"), "DescribeEais", {"RegionId": "cn-hangzhou"})
    assert (v3_raised.value.code, v3_raised.value.status_code) == ("SignatureDoesNotMatch", 400)
    wrong = AcsClient(account.access_key_id, "wrong", "cn-hangzhou", auto_retry=False)
    wrong.add_endpoint("cn-hangzhou", "eais", live_api.endpoint)
    with pytest.raises(ServerException) as v2_raised:
        v2_do(wrong, DescribeEaisRequest())
    # The v2 SDK renames SignatureDoesNotMatch when its own string to sign matches ours.
    assert v2_raised.value.get_error_code() in ("SignatureDoesNotMatch", "InvalidAccessKeySecret")
    assert v2_raised.value.get_http_status() == 400


def test_replayed_request_is_refused(live_api, account):
    request = acs3_request_signed_by_sdk(acs3_headers(live_api.endpoint), {"RegionId": "cn-hangzhou"},
                                         ak=account.access_key_id, secret=account.access_key_secret)
    first, second = send(live_api.endpoint, request), send(live_api.endpoint, request)
    assert first.status_code == 200
    assert (second.status_code, second.json()["Code"]) == (400, "SignatureNonceUsed")


def test_request_signed_twenty_minutes_ago_is_refused(live_api, account):
    old = datetime.now(UTC) - timedelta(minutes=20)
    request = acs3_request_signed_by_sdk(acs3_headers(live_api.endpoint, date=old), {"RegionId": "cn-hangzhou"},
                                         ak=account.access_key_id, secret=account.access_key_secret)
    answer = send(live_api.endpoint, request)
    assert (answer.status_code, answer.json()["Code"]) == (400, "InvalidTimeStamp.Expired")


def test_other_api_version_is_refused(live_api, account):
    with pytest.raises(ClientException) as raised:
        v3_call(live_api.v3(account), "DescribeEais", {"RegionId": "cn-hangzhou"}, version="2018-01-01")
    assert (raised.value.code, raised.value.status_code) == ("InvalidVersion", 400)


def test_unsigned_request_is_refused_with_a_clear_message(live_api):
    answer = httpx.post(f"http://{live_api.endpoint}/?Action=DescribeEais&RegionId=cn-hangzhou")
    body = answer.json()
    assert (answer.status_code, body["Code"]) == (400, "IncompleteSignature")
    assert "HMAC" in body["Message"] and body["RequestId"] == answer.headers["x-acs-request-id"]


def test_oversized_body_is_refused_before_it_is_read(live_api):
    answer = httpx.post(f"http://{live_api.endpoint}/", content=b"x" * (1024 * 1024))
    assert (answer.status_code, answer.json()["Code"]) == (413, "RequestEntityTooLarge")


def test_error_bodies_have_the_standard_shape(live_api):
    body = httpx.get(f"http://{live_api.endpoint}/").json()
    assert set(body) == {"RequestId", "HostId", "Code", "Message", "Recommend"}
    assert body["Code"] in body["Recommend"]
