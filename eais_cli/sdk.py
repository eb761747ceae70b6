"""The official v3 SDK (``alibabacloud_eais20190624``) as the user CLI's client, and waiting on status."""

from __future__ import annotations

import time
from typing import Any

from alibabacloud_eais20190624.client import Client
from alibabacloud_tea_openapi import models as open_api

from eais_cli.service import describe_one


def client_from_credentials(credentials: dict[str, str]) -> Client:
    config = open_api.Config(
        access_key_id=credentials["AccessKeyId"], access_key_secret=credentials["AccessKeySecret"],
        region_id=credentials["RegionId"], endpoint=credentials["Endpoint"], protocol="http",
    )
    return Client(config)


def describe(client: Client, region_id: str, instance_id: str) -> Any:
    found = describe_one(client, region_id, instance_id)
    if found is None:
        raise LookupError(f"instance {instance_id} is not listed by DescribeEais")
    return found


def wait_for_status(client: Client, region_id: str, instance_id: str, wanted: str, timeout_s: float) -> float:
    """Seconds until DescribeEais shows ``wanted``; TimeoutError naming the last status otherwise."""
    started = time.monotonic()
    status = "?"
    while time.monotonic() - started < timeout_s:
        status = describe(client, region_id, instance_id).status
        if status == wanted:
            return time.monotonic() - started
        time.sleep(0.05)
    raise TimeoutError(f"{instance_id} is still {status} after {timeout_s:.0f}s (waiting for {wanted})")
