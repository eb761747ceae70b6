"""The CLI's way to the service: the official v3 SDK for EAIS actions, and its ``call_api`` for the signed
tenant routes (``/tenant/v1``), with every failure turned into one of two exceptions that carry an exit code."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, TypeVar

from alibabacloud_eais20190624 import models
from alibabacloud_eais20190624.client import Client
from alibabacloud_tea_openapi import models as open_api
from alibabacloud_tea_openapi.exceptions import ClientException
from alibabacloud_tea_util.models import RuntimeOptions

from eais_cli.credentials import Credentials

API_VERSION = "2019-06-24"
_NETWORK_CAUSE = re.compile(r"\[Errno -?\d+\] ([^\"')]+)")
T = TypeVar("T")


class ServiceRefused(Exception):
    """The service answered with an EAIS error (exit code 1)."""

    def __init__(self, code: str, message: str, request_id: str = "") -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.request_id = code, message, request_id


class Unreachable(Exception):
    """No answer from the endpoint (exit code 6)."""


def client_for(creds: Credentials) -> Client:
    endpoint, protocol = creds.endpoint, "http"
    if "://" in endpoint:
        protocol, endpoint = endpoint.split("://", 1)
    config = open_api.Config(access_key_id=creds.access_key_id, access_key_secret=creds.access_key_secret,
                             region_id=creds.region_id, endpoint=endpoint.rstrip("/"), protocol=protocol,
                             read_timeout=30_000, connect_timeout=5_000)
    return Client(config)


def calling(endpoint: str, act: Callable[[], T]) -> T:
    """Run one SDK call; EAIS errors become ServiceRefused, network failures Unreachable."""
    try:
        return act()
    except ClientException as error:
        data = error.data if isinstance(error.data, dict) else {}
        message = re.sub(r"^code: \d+, ", "", error.message or "").split(" request id: ")[0]
        raise ServiceRefused(error.code or data.get("Code", ""), message, data.get("RequestId", "")) from None
    except Exception as error:
        if isinstance(error, OSError) or type(error).__module__.startswith(("requests", "urllib3", "darabonba", "Tea")):
            cause = _NETWORK_CAUSE.search(str(error))
            raise Unreachable(f"cannot reach the EAIS API at {endpoint} ({cause[1] if cause else type(error).__name__}); "
                              "is the controller running there? Set it with --endpoint or EAIS_ENDPOINT.") from None
        raise


def describe_one(client: Client, region_id: str, instance_id: str) -> Any | None:
    request = models.DescribeEaisRequest(region_id=region_id, elastic_accelerated_instance_ids=json.dumps([instance_id]))
    found = client.describe_eais(request).body.instances.instance
    return found[0] if found else None


def tenant_get(client: Client, path: str, action: str) -> dict[str, Any]:
    """GET a signed tenant route (ACS3-HMAC-SHA256 over method, path and headers, as for every API call)."""
    params = open_api.Params(action=action, version=API_VERSION, protocol="HTTP", pathname=path, method="GET",
                             auth_type="AK", style="ROA", req_body_type="json", body_type="json")
    answer = client.call_api(params, open_api.OpenApiRequest(), RuntimeOptions())
    return answer.get("body") or {}
