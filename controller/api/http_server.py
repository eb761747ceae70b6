"""uvicorn set up for the controller's HTTP port: one size limit on the request head, whichever parser runs.

Left to itself uvicorn answers a request its parser refuses with a bare ``400 Invalid HTTP request
received.`` before the app sees it, and each parser draws its own line: h11 at its buffer size,
and only when the head arrives in pieces; httptools at 64 KiB of URL and never for headers. The
protocols here count the head themselves and answer with the EAIS error body:
``RequestEntityTooLarge`` (413) past :data:`MAX_TARGET_BYTES` of request target or
:data:`MAX_HEAD_BYTES` of head, ``MalformedRequest`` (400) for anything else a parser refuses.
After the answer they read and drop what the client still sends for a moment before closing
("lingering close"), so a client busy sending a huge request still reads the 413.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from controller.api.render import error_json
from controller.errors import EaisError, MalformedHttpRequest, RequestTooLarge
from controller.ids import new_request_id
from controller.settings import ControllerSettings

MAX_TARGET_BYTES = 64 * 1024 - 1  # httptools keeps URL offsets in 16 bits: this is the most both parsers take
MAX_HEAD_BYTES = 96 * 1024  # request line and every header together
LINGER_S = 2.0


def uvicorn_config(app: Any, settings: ControllerSettings, *, graceful_shutdown_s: float, http: str = "auto") -> uvicorn.Config:
    """The one uvicorn configuration of the API port (primary process and API workers alike)."""
    return uvicorn.Config(app, http=refusing_protocol(http, settings.api.host_id), log_level="warning", access_log=False,
                          lifespan="off", timeout_graceful_shutdown=graceful_shutdown_s,
                          h11_max_incomplete_event_size=MAX_HEAD_BYTES)


def refusing_protocol(http: str, host_id: str) -> type[asyncio.Protocol]:
    """uvicorn's protocol for ``http`` ("auto", "h11", "httptools") with the limits and answers above."""
    bases = {"h11": _LimitedH11Protocol, "httptools": _LimitedHttpToolsProtocol}
    base = bases.get(http, _LimitedHttpToolsProtocol if http == "auto" and _has_httptools() else _LimitedH11Protocol)
    return type(base.__name__.lstrip("_"), (base,), {"host_id": host_id})


def oversized_head(target_bytes: int, head_bytes: int) -> RequestTooLarge | None:
    if target_bytes > MAX_TARGET_BYTES:
        return RequestTooLarge(f"The request line is over {MAX_TARGET_BYTES} bytes. Send fewer or shorter "
                               "parameters, or send them in a form body (application/x-www-form-urlencoded).")
    if head_bytes > MAX_HEAD_BYTES:
        return RequestTooLarge(f"The request headers are over {MAX_HEAD_BYTES} bytes. Send fewer or shorter headers.")
    return None


def refusal_bytes(error: EaisError, host_id: str) -> bytes:
    """A whole HTTP/1.1 response carrying the EAIS error body, closing the connection."""
    request_id = new_request_id()
    body = json.dumps(error_json(error, request_id=request_id, host_id=host_id)).encode()
    head = [f"HTTP/1.1 {error.http_status} {'Request Entity Too Large' if error.http_status == 413 else 'Bad Request'}",
            "content-type: application/json", f"content-length: {len(body)}", f"x-acs-request-id: {request_id}",
            "connection: close"]
    return ("\r\n".join(head) + "\r\n\r\n").encode("ascii") + body


class _Refusing:
    """What both protocols share: write the EAIS refusal, then drop input until the client leaves."""

    host_id = ""
    transport: asyncio.Transport
    loop: asyncio.AbstractEventLoop
    _refused = False

    def refuse(self, error: EaisError) -> None:
        self._refused = True
        self.transport.write(refusal_bytes(error, self.host_id))
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(LINGER_S, self.transport.close)

    def _refusal_for_parser_error(self) -> EaisError:
        return MalformedHttpRequest("The request is not valid HTTP/1.1; the server could not parse it.")


class _LimitedHttpToolsProtocol(_Refusing, HttpToolsProtocol):
    _head_refusal: RequestTooLarge | None = None
    _head_bytes = 0

    def data_received(self, data: bytes) -> None:
        if not self._refused:
            super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = 0

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        self._head_bytes += len(url)
        self._check_head()

    def on_header(self, name: bytes, value: bytes) -> None:
        super().on_header(name, value)
        self._head_bytes += len(name) + len(value) + 4  # ": " and CRLF
        self._check_head()

    def _check_head(self) -> None:
        self._head_refusal = oversized_head(len(self.url), self._head_bytes)
        if self._head_refusal is not None:
            raise self._head_refusal  # httptools turns it into HttpParserCallbackError: uvicorn's 400 path below

    def send_400_response(self, msg: str) -> None:
        self.refuse(self._head_refusal or self._refusal_for_parser_error())


class _HeadLimitedConnection(h11.Connection):
    """h11 with our head limit also when the whole head arrived at once (h11 checks only pieces)."""

    def __init__(self) -> None:
        super().__init__(h11.SERVER, max_incomplete_event_size=MAX_HEAD_BYTES)
        self.head_refusal: RequestTooLarge | None = None
        self._line_ended = False  # whether the request line being received has ended, to name what was too long

    def receive_data(self, data: bytes) -> None:
        self._line_ended = self._line_ended or b"\n" in data
        super().receive_data(data)

    def next_event(self) -> Any:
        try:
            event = super().next_event()
        except h11.RemoteProtocolError as error:
            if error.error_status_hint == 431:  # h11's "Receive buffer too long"
                self.head_refusal = oversized_head(0 if self._line_ended else MAX_TARGET_BYTES + 1, MAX_HEAD_BYTES + 1)
            raise
        if isinstance(event, h11.Request):
            self._line_ended = False
            head_bytes = len(event.target) + sum(len(name) + len(value) + 4 for name, value in event.headers)
            self.head_refusal = oversized_head(len(event.target), head_bytes)
            if self.head_refusal is not None:
                raise h11.RemoteProtocolError("request head too large", error_status_hint=413)
        return event


class _LimitedH11Protocol(_Refusing, H11Protocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.conn = _HeadLimitedConnection()

    def data_received(self, data: bytes) -> None:
        if not self._refused:
            super().data_received(data)

    def send_400_response(self, msg: str) -> None:
        self.refuse(self.conn.head_refusal or self._refusal_for_parser_error())


def _has_httptools() -> bool:
    try:
        import httptools  # noqa: F401
    except ImportError:  # pragma: no cover - uvicorn[standard] brings it
        return False
    return True
