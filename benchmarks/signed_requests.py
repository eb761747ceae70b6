"""Raw HTTP/1.1 EAIS requests signed by the official v3 SDK's signer (ACS3-HMAC-SHA256), each with its own nonce,
and reading their answers off a keep-alive connection."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from datetime import UTC, datetime
from types import SimpleNamespace
from urllib.parse import quote, urlencode

from alibabacloud_tea_openapi.utils import Utils as OpenApiUtils

EMPTY_BODY_SHA256 = hashlib.sha256(b"").hexdigest()


def signed_request(endpoint: str, access_key_id: str, access_key_secret: str, action: str, query: dict[str, str]) -> bytes:
    """One POST of ``action`` to ``endpoint`` (HOST:PORT), signed now; bytes ready for a keep-alive connection."""
    headers = {
        "host": endpoint, "x-acs-version": "2019-06-24", "x-acs-action": action,
        "x-acs-date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "x-acs-signature-nonce": uuid.uuid4().hex, "accept": "application/json",
        "x-acs-content-sha256": EMPTY_BODY_SHA256,
    }
    sdk_request = SimpleNamespace(method="POST", pathname="/", query=query, headers=dict(headers))
    headers["authorization"] = OpenApiUtils.get_authorization(
        sdk_request, "ACS3-HMAC-SHA256", EMPTY_BODY_SHA256, access_key_id, access_key_secret)
    lines = [f"POST /?{urlencode(query, quote_via=quote)} HTTP/1.1", "content-length: 0"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def read_response(reader: asyncio.StreamReader) -> bytes:
    """Read one HTTP/1.1 answer (status line, headers, a Content-Length body); its status line."""
    status_line = await reader.readline()
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    await reader.readexactly(length)
    return status_line
