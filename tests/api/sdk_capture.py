"""The official EAIS SDKs pointed at a local HTTP endpoint, and a tiny server that records what they send.

Reusable pieces:

* ``v3_client(endpoint, ak, secret, **cfg)`` / ``v2_client(endpoint, ak, secret, region)`` and
  ``v2_do(client, request)``: unmodified official SDK clients talking plain HTTP to ``endpoint``.
* ``CaptureServer(handler)``: a real HTTP server on 127.0.0.1, port 0, in a background thread;
  it records every request as a :class:`CapturedRequest` and answers what ``handler`` returns.
* ``AuthenticatingHandler``: a handler that runs ``caller_auth.authenticate`` with a key table,
  an in-memory nonce set and a shiftable clock, answering the standard EAIS body.
* ``resend(endpoint, captured, ...)``: send captured bytes again, optionally changed.
"""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from urllib.parse import urlencode

import httpx
from alibabacloud_eais20190624.client import Client as V3Client
from alibabacloud_tea_openapi import models as open_api_models
from alibabacloud_tea_openapi.utils import Utils as OpenApiUtils
from aliyunsdkcore.auth.composer import rpc_signature_composer
from aliyunsdkcore.client import AcsClient
from darabonba.runtime import RuntimeOptions

from controller.api.caller_auth import API_VERSION, Caller, authenticate
from controller.api.rpc_request import RpcRequest, headers_from_raw, parse_query
from controller.errors import AccessKeyInactive, AccessKeyNotFound, EaisError

REGION = "cn-hangzhou"
TEST_AK = "testAK"
TEST_SECRET = "testSecret"
_HOP_BY_HOP = frozenset({"content-length", "connection", "transfer-encoding", "keep-alive"})


def v3_client(endpoint: str, ak: str, secret: str, **cfg: object) -> V3Client:
    """The v3 SDK (ACS3-HMAC-SHA256 unless ``signature_algorithm='v2'``) talking HTTP to ``endpoint``."""
    config = open_api_models.Config(
        access_key_id=ak, access_key_secret=secret, region_id=cfg.pop("region_id", REGION),
        endpoint=endpoint, protocol="http", no_proxy=endpoint.split(":")[0], **cfg,
    )
    return V3Client(config)


def v2_client(endpoint: str, ak: str, secret: str, region: str = REGION) -> AcsClient:
    """The v2 SDK (RPC HMAC-SHA1) routing every ``eais`` request of ``region`` to ``endpoint``."""
    client = AcsClient(ak, secret, region, auto_retry=False)
    client.add_endpoint(region, "eais", endpoint)
    return client


def v3_call(
    client: V3Client, action: str, query: dict[str, str], *, version: str = API_VERSION, body: dict[str, str] | None = None
) -> dict:
    """Any RPC action through the v3 SDK's generic ``call_api`` (other versions, form bodies)."""
    params = open_api_models.Params(
        action=action, version=version, protocol="HTTPS", pathname="/", method="POST",
        auth_type="AK", style="RPC", req_body_type="formData", body_type="json",
    )
    request = open_api_models.OpenApiRequest(query=query, body=body)
    return client.call_api(params, request, RuntimeOptions())


def v2_do(client: AcsClient, request: object) -> dict:
    """Send a v2 request over HTTP (five EAIS request classes default to https) and decode the JSON."""
    request.set_protocol_type("http")  # type: ignore[attr-defined]
    return json.loads(client.do_action_with_exception(request))


def acs3_request_signed_by_sdk(
    headers: dict[str, str], query: dict[str, str], *, ak: str = TEST_AK, secret: str = TEST_SECRET,
    body: bytes = b"", algorithm: str = "ACS3-HMAC-SHA256",
) -> RpcRequest:
    """An RpcRequest whose Authorization the v3 SDK's own signer wrote over exactly ``headers``."""
    sdk_request = SimpleNamespace(method="POST", pathname="/", query=query, headers=dict(headers))
    payload_hash = hashlib.sha256(body).hexdigest()
    authorization = OpenApiUtils.get_authorization(sdk_request, algorithm, payload_hash, ak, secret)
    return RpcRequest(
        method="POST", path="/", query=list(query.items()),
        headers={**headers, "authorization": authorization}, body=body,
    )


def rpc_request_signed_by_sdk(
    params: dict[str, str], *, ak: str = TEST_AK, secret: str = TEST_SECRET, body_params: dict[str, str] | None = None,
) -> RpcRequest:
    """An RpcRequest whose query the v2 SDK's own signer built (Timestamp, nonce, Signature...) from ``params``."""
    url, _ = rpc_signature_composer.get_signed_url(dict(params), ak, secret, "JSON", "POST", body_params or {})
    body = urlencode(body_params).encode() if body_params else b""
    headers = {"content-type": "application/x-www-form-urlencoded"} if body_params else {}
    return RpcRequest(method="POST", path="/", query=parse_query(url.partition("?")[2]), headers=headers, body=body)


@dataclass(frozen=True)
class CapturedRequest:
    """One request exactly as it reached the server."""

    method: str
    target: str  # path and raw query, e.g. "/?A=1"
    headers: list[tuple[str, str]]  # names as sent, in order
    body: bytes

    @property
    def path(self) -> str:
        return self.target.partition("?")[0]

    @property
    def raw_query(self) -> str:
        return self.target.partition("?")[2]

    def header(self, name: str) -> str | None:
        return next((value for key, value in self.headers if key.lower() == name.lower()), None)

    def to_rpc_request(self) -> RpcRequest:
        """What the app does: decode the query, lower-case the header names."""
        raw_headers = [(key.encode("latin-1"), value.encode("latin-1")) for key, value in self.headers]
        return RpcRequest(
            method=self.method, path=self.path, query=parse_query(self.raw_query),
            headers=headers_from_raw(raw_headers), body=self.body,
        )


Handler = Callable[[CapturedRequest], tuple[int, dict]]


class CaptureServer:
    """HTTP server on 127.0.0.1:0 recording requests; ``handler`` may be swapped between calls."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.captured: list[CapturedRequest] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _request_handler_class(self))
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{host}:{port}"

    def __enter__(self) -> CaptureServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def answer(self, captured: CapturedRequest) -> tuple[int, dict]:
        self.captured.append(captured)
        return self.handler(captured)


def _request_handler_class(owner: CaptureServer) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            captured = CapturedRequest(self.command, self.path, list(self.headers.items()), self.rfile.read(length))
            status, body = owner.answer(captured)
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json;charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = _serve

        def log_message(self, *args: object) -> None:  # keep test output quiet
            pass

    return _Handler


def error_body(error: EaisError, request_id: str, host_id: str) -> dict:
    """The standard EAIS error body (section 10 of the reference)."""
    return {
        "RequestId": request_id, "HostId": host_id, "Code": error.code, "Message": error.message,
        "Recommend": f"https://api.alibabacloud.com/troubleshoot?q={error.code}&product=eais&requestId={request_id}",
    }


@dataclass
class AuthenticatingHandler:
    """Authenticates each request; ``shift`` moves the server clock, ``tamper`` edits requests in transit."""

    keys: dict[str, str]
    inactive: frozenset[str] = frozenset()
    shift: timedelta = timedelta(0)
    tamper: Callable[[CapturedRequest], CapturedRequest] | None = None
    nonces: set[tuple[str, str]] = field(default_factory=set)
    callers: list[Caller] = field(default_factory=list)
    errors: list[EaisError] = field(default_factory=list)

    def __call__(self, captured: CapturedRequest) -> tuple[int, dict]:
        request_id = str(uuid.uuid4()).upper()
        try:
            request = (self.tamper(captured) if self.tamper else captured).to_rpc_request()
            caller = authenticate(
                request, lookup_secret=self.lookup_secret, remember_nonce=self.remember_nonce,
                now=datetime.now(UTC) + self.shift,
            )
        except EaisError as error:
            self.errors.append(error)
            return error.http_status, error_body(error, request_id, captured.header("host") or "")
        self.callers.append(caller)
        return 200, {"RequestId": request_id}

    def lookup_secret(self, access_key_id: str) -> str:
        if access_key_id not in self.keys:
            raise AccessKeyNotFound(f"Specified access key {access_key_id!r} is not found.")
        if access_key_id in self.inactive:
            raise AccessKeyInactive(f"Specified access key {access_key_id!r} is disabled.")
        return self.keys[access_key_id]

    def remember_nonce(self, access_key_id: str, nonce: str, signed_at: datetime) -> bool:
        if (access_key_id, nonce) in self.nonces:
            return False
        self.nonces.add((access_key_id, nonce))
        return True


def resend(
    endpoint: str,
    captured: CapturedRequest,
    *,
    target: str | None = None,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """Send a captured request again, byte for byte unless ``target``/``body``/``headers`` replace parts."""
    changed = replace(
        captured,
        target=captured.target if target is None else target,
        body=captured.body if body is None else body,
    )
    overrides = {name.lower(): value for name, value in (headers or {}).items()}
    sent_headers = [
        (name, overrides.pop(name.lower(), value))
        for name, value in changed.headers
        if name.lower() not in _HOP_BY_HOP
    ] + list(overrides.items())
    with httpx.Client(trust_env=False) as client:
        return client.request(
            changed.method, f"http://{endpoint}{changed.target}", headers=sent_headers, content=changed.body
        )


def edit_query(target: str, name: str, new_raw_value: str | None) -> str:
    """``target`` with the raw (still encoded) value of ``name`` replaced, or the parameter dropped (None)."""
    path, _, query = target.partition("?")
    pieces = []
    for piece in query.split("&"):
        if piece.partition("=")[0] != name:
            pieces.append(piece)
        elif new_raw_value is not None:
            pieces.append(f"{name}={new_raw_value}")
    return f"{path}?{'&'.join(pieces)}"
