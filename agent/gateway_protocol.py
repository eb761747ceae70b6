"""The opening exchange on a gateway connection, inside TLS, before TensorFlow's bytes flow.

    VM agent -> gateway:  MAGIC (8 bytes) | length (2 bytes, big endian) | JSON
                          {"attachment_id": "att-...", "token": "...", "purpose": "relay" | "probe"}
    gateway -> VM agent:  status (1 byte: 0 accepted, 1 refused) | length (2 bytes) | UTF-8 text
                          (empty when accepted; the reason when refused)

``relay`` (the default when ``purpose`` is absent): after an accepted answer both sides relay bytes
unchanged, the VM agent's local TensorFlow connection on one end, the attachment's worker on the
other. ``probe``: the VM agent watching the data path asks whether the attachment is served now;
the gateway answers (accepted only while its worker is ready and alive) and closes, connecting
nothing. A refused connection is closed. The gateway reads exactly the announced length, so no
TensorFlow byte is ever consumed by it.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Protocol

MAGIC = b"EAISGW01"
MAX_HELLO_BYTES = 4096
ACCEPTED, REFUSED = 0, 1
RELAY, PROBE = "relay", "probe"


class Stream(Protocol):
    def sendall(self, data: bytes) -> None: ...
    def recv_exactly(self, count: int) -> bytes: ...


class GatewayRefused(Exception):
    """The gateway refused the attachment's credentials; the message says why."""


class BadHello(ValueError):
    """What the VM agent sent is not a gateway hello."""


@dataclass(frozen=True)
class Hello:
    attachment_id: str
    token: str
    purpose: str = RELAY


def send_hello(stream: Stream, hello: Hello) -> None:
    fields = {"attachment_id": hello.attachment_id, "token": hello.token}
    if hello.purpose != RELAY:
        fields["purpose"] = hello.purpose
    body = json.dumps(fields).encode()
    stream.sendall(MAGIC + struct.pack(">H", len(body)) + body)


def read_hello(stream: Stream) -> Hello:
    if stream.recv_exactly(len(MAGIC)) != MAGIC:
        raise BadHello("not an eais gateway hello (wrong magic)")
    (length,) = struct.unpack(">H", stream.recv_exactly(2))
    if length > MAX_HELLO_BYTES:
        raise BadHello(f"hello of {length} bytes is over the {MAX_HELLO_BYTES}-byte limit")
    try:
        fields = json.loads(stream.recv_exactly(length))
        hello = Hello(str(fields["attachment_id"]), str(fields["token"]), str(fields.get("purpose", RELAY)))
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise BadHello(f"malformed hello: {error}") from None
    if hello.purpose not in (RELAY, PROBE):
        raise BadHello(f"unknown hello purpose {hello.purpose[:32]!r}")
    return hello


def answer(stream: Stream, refusal: str | None) -> None:
    text = (refusal or "").encode()[:MAX_HELLO_BYTES]
    stream.sendall(struct.pack(">BH", REFUSED if refusal else ACCEPTED, len(text)) + text)


def read_answer(stream: Stream) -> None:
    """Return when the gateway accepted; raise GatewayRefused with its reason otherwise."""
    status, length = struct.unpack(">BH", stream.recv_exactly(3))
    reason = stream.recv_exactly(length).decode(errors="replace") if length else ""
    if status != ACCEPTED:
        raise GatewayRefused(reason or "refused without a reason")
