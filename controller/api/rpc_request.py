"""One signed EAIS RPC request as received, and the decoding both signature schemes share.

The web layer builds an :class:`RpcRequest` (``parse_query`` for the raw query string,
``headers_from_raw`` for the header list) and hands it to ``caller_auth.authenticate``.
Everything here is plain Python so it can be tested without a server; every failure is an
:class:`~controller.errors.EaisError`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import quote, unquote_to_bytes

from controller.errors import InvalidParameter, RequestTooLarge, SignatureMismatch

# Limits on hostile input; generous next to anything the EAIS actions need.
MAX_QUERY_BYTES = 64 * 1024
MAX_FORM_BYTES = 1024 * 1024
MAX_PARAMETERS = 500
MAX_NAME_CHARS = 128

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"

_BAD_PERCENT = re.compile(rb"%(?![0-9A-Fa-f]{2})")
# NUL and other C0 controls: no EAIS value needs them and some stores (PostgreSQL text) reject NUL.
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class RpcRequest:
    """An HTTP request to the RPC API. ``headers`` has lower-case names; ``query`` is decoded."""

    method: str
    path: str
    query: list[tuple[str, str]]
    headers: Mapping[str, str]
    body: bytes


def parse_query(raw_query_string: bytes | str) -> list[tuple[str, str]]:
    """Decode ``a=1&b=x+y`` into pairs: ``+`` is a space, blank values kept, order kept."""
    raw = _as_bytes(raw_query_string)
    if len(raw) > MAX_QUERY_BYTES:
        raise RequestTooLarge(
            f"The query string is {len(raw)} bytes; the limit is {MAX_QUERY_BYTES}. "
            "Send fewer or shorter parameters."
        )
    if not raw:
        return []
    pieces = [piece for piece in raw.split(b"&") if piece]
    if len(pieces) > MAX_PARAMETERS:
        raise RequestTooLarge(
            f"The request has {len(pieces)} parameters; the limit is {MAX_PARAMETERS}. Split the request."
        )
    return [_decode_pair(piece) for piece in pieces]


def is_form(request: RpcRequest) -> bool:
    """Whether the body carries parameters (``application/x-www-form-urlencoded``); other bodies carry none."""
    content_type = request.headers.get("content-type", "")
    return bool(request.body) and content_type.split(";", 1)[0].strip().lower() == FORM_CONTENT_TYPE


def form_params(request: RpcRequest) -> list[tuple[str, str]]:
    """Parameters of a form body (see :func:`is_form`)."""
    if not is_form(request):
        return []
    if len(request.body) > MAX_FORM_BYTES:
        raise RequestTooLarge(
            f"The form body is {len(request.body)} bytes; the limit is {MAX_FORM_BYTES}. "
            "Send fewer or shorter parameters."
        )
    return parse_query(request.body)


def headers_from_raw(raw_headers: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """ASGI-style header list -> lower-case names; a repeated header is joined with ``,`` (RFC 9110)."""
    headers: dict[str, str] = {}
    for raw_name, raw_value in raw_headers:
        # latin-1 maps bytes 1:1, which is how the SDKs' http clients put str values on the wire.
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    return headers


def percent_encode(text: str) -> str:
    """RFC 3986 encoding of UTF-8: keeps ``A-Z a-z 0-9 - _ . ~``, a space becomes ``%20``."""
    try:
        return quote(text, safe="~")
    except UnicodeEncodeError:
        raise InvalidParameter(
            f"The value {text[:40]!r} is not valid Unicode text. Send UTF-8 text, percent-encoded."
        ) from None


def signature_mismatch(string_to_sign: str, hint: str) -> SignatureMismatch:
    """The SignatureDoesNotMatch error both schemes raise.

    The v2 SDK reads ``message.split(':')[1]`` and compares it with its own string to sign, so
    the string to sign must follow the first and only ``:`` (neither it nor ``hint`` has one).
    """
    return SignatureMismatch(
        "Specified signature is not matched with our calculation. "
        f"{hint} server string to sign is:{string_to_sign}"
    )


def _as_bytes(raw_query_string: bytes | str) -> bytes:
    if isinstance(raw_query_string, bytes):
        return raw_query_string
    try:
        return raw_query_string.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidParameter("The query string is not valid Unicode text. Send UTF-8, percent-encoded.") from None


def _decode_pair(piece: bytes) -> tuple[str, str]:
    raw_name, _, raw_value = piece.partition(b"=")
    name = _decode_component(raw_name)
    if not name:
        raise InvalidParameter("The request has a parameter with an empty name. Remove it or give it a name.")
    if len(name) > MAX_NAME_CHARS:
        raise InvalidParameter(
            f"The parameter name {name[:40]!r}... is longer than {MAX_NAME_CHARS} characters. Check the parameter names."
        )
    return name, _decode_component(raw_value)


def _decode_component(raw: bytes) -> str:
    if _BAD_PERCENT.search(raw):
        raise InvalidParameter(
            f"The query or form text {raw[:40]!r} has a '%' not followed by two hex digits. "
            "Percent-encode '%' itself as %25."
        )
    try:
        text = unquote_to_bytes(raw.replace(b"+", b" ")).decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidParameter(
            f"The query or form text {raw[:40]!r} does not decode to UTF-8. Encode text as UTF-8 before percent-encoding."
        ) from None
    if _CONTROL_CHARS.search(text):
        raise InvalidParameter(
            f"The parameter text {text[:40]!r} contains control characters. Remove them."
        )
    return text
