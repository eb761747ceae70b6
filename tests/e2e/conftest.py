"""A live EAIS API (real uvicorn on 127.0.0.1, port 0) on SQLite and PostgreSQL, and SDK clients for it."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import pytest
import uvicorn

from controller.accounts import NewAccount
from controller.api.app import create_app
from controller.api.http_server import uvicorn_config
from controller.clock import SystemClock
from controller.context import ControllerContext
from controller.server import bind_api_socket
from controller.settings import ControllerSettings
from tests.api.sdk_capture import v2_client, v3_client

WATCHED_LOGGERS = ("", "uvicorn", "uvicorn.error", "eais")


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def errors(self) -> list[str]:
        return [f"{r.name}: {r.getMessage()}" for r in self.records if r.levelno >= logging.ERROR or r.exc_info]


@pytest.fixture
def log() -> Iterator[Records]:
    handler = Records()
    for name in WATCHED_LOGGERS:  # uvicorn's loggers do not propagate to the root: watch them directly
        logging.getLogger(name).addHandler(handler)
    yield handler
    for name in WATCHED_LOGGERS:
        logging.getLogger(name).removeHandler(handler)


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


@contextmanager
def running_api(ctx: ControllerContext, *, http: str = "auto") -> Iterator[str]:
    """The controller's HTTP app on a real uvicorn (``http``: "auto", "h11" or "httptools") at 127.0.0.1:port."""
    sock, port = bind_api_socket("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn_config(create_app(ctx), ctx.settings, graceful_shutdown_s=1, http=http))
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
    try:
        yield endpoint
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def live_api(live_ctx: ControllerContext) -> Iterator[LiveApi]:
    with running_api(live_ctx) as endpoint:
        yield LiveApi(live_ctx, endpoint)


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
