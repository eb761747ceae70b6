"""Bytes straight onto a TCP connection and the HTTP/1.1 answer read back: for requests no client library sends."""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from xml.etree import ElementTree


@dataclass(frozen=True)
class RawAnswer:
    status_code: int
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)

    def error_code(self) -> str:
        """``Code`` of the EAIS error body (JSON or XML), or ``code`` of the admin one."""
        if self.headers.get("content-type", "").startswith("text/xml"):
            return ElementTree.fromstring(self.body).findtext("Code") or ""
        body = self.json()
        return body.get("Code") or body.get("code") or ""


def exchange(endpoint: str, request: bytes, *, timeout_s: float = 10.0) -> RawAnswer:
    """Send ``request`` whole, then read one answer (its ``content-length`` bytes, or up to EOF)."""
    host, port = endpoint.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=timeout_s) as conn:
        conn.sendall(request)
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = conn.recv(65536)
            if not chunk:
                raise ConnectionError(f"the server closed before answering; got {received[:200]!r}")
            received += chunk
        head, _, body = received.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
        length = int(headers.get("content-length", "-1"))
        while length < 0 or len(body) < length:
            chunk = conn.recv(65536)
            if not chunk:
                break
            body += chunk
    return RawAnswer(int(status_line.split(" ")[1]), headers, body if length < 0 else body[:length])
