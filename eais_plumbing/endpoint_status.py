"""Asking a VM agent's local TensorFlow endpoint what it is connected to.

The endpoint (default ``127.0.0.1:8470``) carries TensorFlow's gRPC, which always opens with the
HTTP/2 preface ``PRI * HTTP/2.0``. A connection that opens with :data:`STATUS_REQUEST` instead
is answered by the VM agent itself with one JSON object and a newline, then closed:

    {"client_instance_id": "i-...", "endpoint": "127.0.0.1:8470",
     "state": "serving" | "idle" | "attaching" | "detaching" | "failed" | "lost",
     "instance_id": "eais-..." | "", "instance_type": "...", "status": "InUse" | ...,
     "attachment_id": "att-..." | "", "node_gateway": "host:port" | "",
     "node_tf_version": "2.21.0" | "", "agent_tf_version": "2.21.0" | "",
     "message": "what a person should know", "healthy": true | false,
     "round_trip_us": 1234}

``eais-agent status`` and ``remote_tf.connect()`` use it; a plain TensorFlow worker does not
answer it, which :func:`query_endpoint_status` reports as ``None``.
"""

from __future__ import annotations

import json
import socket
from typing import Any

STATUS_REQUEST = b"EAIS-STATUS/1\n"
HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
MAX_STATUS_BYTES = 64 * 1024


class EndpointUnreachable(OSError):
    """Nothing listens on the endpoint, or it did not answer in time."""


def split_host_port(endpoint: str) -> tuple[str, int]:
    host, sep, port = endpoint.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"{endpoint!r} is not HOST:PORT")
    return host.strip("[]") or "127.0.0.1", int(port)


def query_endpoint_status(endpoint: str, timeout_s: float = 2.0) -> dict[str, Any] | None:
    """The VM agent's status for ``endpoint``; None when something else (a bare TF worker) listens there."""
    try:
        with socket.create_connection(split_host_port(endpoint), timeout=timeout_s) as conn:
            conn.sendall(STATUS_REQUEST)
            answer = _read_until_close(conn)
    except TimeoutError as error:
        raise EndpointUnreachable(f"the endpoint {endpoint} did not answer within {timeout_s}s") from error
    except OSError as error:
        raise EndpointUnreachable(f"nothing answers at {endpoint}: {error.strerror or error}") from error
    try:
        status = json.loads(answer)
    except ValueError:
        return None
    return status if isinstance(status, dict) else None


def _read_until_close(conn: socket.socket) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size < MAX_STATUS_BYTES:
        try:
            chunk = conn.recv(MAX_STATUS_BYTES - size)
        except ConnectionResetError:
            break  # a TF worker resets a connection that does not speak HTTP/2
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        if chunk.endswith(b"\n"):
            break
    return b"".join(chunks)
