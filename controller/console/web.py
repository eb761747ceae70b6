"""The console's HTTP plumbing: templates, cookies with their flags, security headers, form bodies.

Every console response carries a Content-Security-Policy that allows scripts, styles and requests
from the console's own origin only (no inline script, no framing by another site) and is never
cached. Cookies are ``HttpOnly; SameSite=Strict`` on the console's path, ``Secure`` when the
request came over HTTPS (directly or through a proxy that says so in ``X-Forwarded-Proto``).
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from controller.api.caller_auth import unique_params
from controller.api.rpc_request import parse_query
from controller.console import formatting
from controller.errors import InvalidParameter, RequestTooLarge

BASE = "/console"
MAX_FORM_BYTES = 16 * 1024
_COOKIES_KEY = "console_cookies"
SECURITY_HEADERS = [
    (b"content-security-policy", (b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                                  b"connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
    (b"cache-control", b"no-store"),
]

templates = Environment(loader=PackageLoader("controller.console", "templates"), autoescape=select_autoescape(),
                        trim_blocks=True, lstrip_blocks=True)
templates.filters.update(readable_utc=formatting.readable_utc, money=formatting.money, money_short=formatting.money_short,
                         duration=formatting.duration, mebibytes=formatting.mebibytes)


def render(name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    return HTMLResponse(templates.get_template(name).render(base=BASE, **context), status_code=status_code)


def is_https(request: Request) -> bool:
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return request.url.scheme == "https" or forwarded == "https"


def set_cookie(request: Request, name: str, value: str, *, path: str, max_age_s: int) -> None:
    """Queue a Set-Cookie for this request's response (written by :class:`ConsoleHeaders`)."""
    flags = f"{name}={value}; Path={path}; Max-Age={max_age_s}; HttpOnly; SameSite=Strict"
    if is_https(request):
        flags += "; Secure"
    request.scope.setdefault("state", {}).setdefault(_COOKIES_KEY, []).append(flags)


def clear_cookie(request: Request, name: str, *, path: str) -> None:
    set_cookie(request, name, "", path=path, max_age_s=0)


async def form_fields(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body, with the API's own rules for hostile input."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise RequestTooLarge(f"The form is over {MAX_FORM_BYTES} bytes.")
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if body and content_type != "application/x-www-form-urlencoded":
        raise InvalidParameter("Send the form as application/x-www-form-urlencoded.", detail="ContentType")
    return unique_params(parse_query(body), "form body")


class ConsoleHeaders:
    """ASGI middleware: security headers on every response, and the cookies routes queued."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"cache-control"]
                headers += SECURITY_HEADERS
                headers += [(b"set-cookie", c.encode("latin-1")) for c in scope.get("state", {}).get(_COOKIES_KEY, [])]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)
