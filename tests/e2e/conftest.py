"""A live EAIS API (real uvicorn on 127.0.0.1, port 0) on SQLite and PostgreSQL, and SDK clients for it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import uvicorn

from controller.accounts import NewAccount
from controller.api.app import create_app
from controller.clock import SystemClock
from controller.context import ControllerContext
from controller.server import bind_api_socket
from controller.settings import ControllerSettings
from tests.api.sdk_capture import v2_client, v3_client


@dataclass
class LiveApi:
    ctx: ControllerContext
    endpoint: str

    def v3(self, key: NewAccount, **cfg):  # noqa: ANN201
        return v3_client(self.endpoint, key.access_key_id, key.access_key_secret, **cfg)

    def v2(self, key: NewAccount, region: str = "cn-hangzhou"):  # noqa: ANN201
        return v2_client(self.endpoint, key.access_key_id, key.access_key_secret, region)


@pytest.fixture
def live_ctx(settings: ControllerSettings) -> Iterator[ControllerContext]:
    context = ControllerContext.open(settings, SystemClock())  # signatures carry real time
    yield context
    context.db.dispose()


@pytest.fixture
def live_api(live_ctx: ControllerContext) -> Iterator[LiveApi]:
    sock, port = bind_api_socket("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(create_app(live_ctx), log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    endpoint = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://{endpoint}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.05)
    yield LiveApi(live_ctx, endpoint)
    server.should_exit = True
    thread.join(timeout=10)


def v2_call(client, endpoint: str, action: str, query: dict[str, str], *, version: str = "2019-06-24") -> dict:  # noqa: ANN001
    """Any RPC action through the v2 SDK's own CommonRequest (signed with HMAC-SHA1)."""
    import json

    from aliyunsdkcore.request import CommonRequest

    request = CommonRequest(domain=endpoint, version=version, action_name=action)
    request.set_method("POST")
    request.set_protocol_type("http")
    request.set_accept_format("json")
    for name, value in query.items():
        request.add_query_param(name, value)
    return json.loads(client.do_action_with_exception(request))
