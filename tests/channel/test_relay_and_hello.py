"""The byte relay carries traffic unchanged (plain and TLS), cuts both ends on close, and the gateway
hello refuses anything malformed without reading past itself."""

from __future__ import annotations

import hashlib
import os
import socket
import struct
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.gateway_protocol import MAGIC, BadHello, GatewayRefused, Hello, answer, read_answer, read_hello, send_hello
from agent.relay import RelaySet, tune


class _Buffered:
    """A stream over bytes, for the hello parser (it needs only recv_exactly/sendall)."""

    def __init__(self, data: bytes) -> None:
        self.data, self.sent = bytearray(data), bytearray()

    def recv_exactly(self, count: int) -> bytes:
        if len(self.data) < count:
            raise ConnectionError("closed")
        chunk, self.data = bytes(self.data[:count]), self.data[count:]
        return chunk

    def sendall(self, data: bytes) -> None:
        self.sent += data


def _echo_server() -> socket.socket:
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=_echo, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    return listener


def _echo(conn: socket.socket) -> None:
    with conn:
        while data := conn.recv(1 << 16):
            conn.sendall(data)


def _relayed_pair(relays: RelaySet, upstream: tuple[str, int]) -> socket.socket:
    """A client socket whose bytes reach ``upstream`` through a relay."""
    front = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(front.getsockname())
    accepted, _ = front.accept()
    front.close()
    back = socket.create_connection(upstream)
    for sock in (accepted, back):
        tune(sock)
    relays.start(accepted, back, "test")
    return client


def _recv_exactly(sock: socket.socket, count: int) -> bytes:
    chunks, got = [], 0
    while got < count:
        chunk = sock.recv(min(1 << 20, count - got))
        assert chunk, f"closed after {got} of {count} bytes"
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def test_a_relay_carries_megabytes_both_ways_unchanged() -> None:
    echo, relays = _echo_server(), RelaySet()
    client = _relayed_pair(relays, echo.getsockname())
    payload = os.urandom(8 * 1024 * 1024 + 17)
    sender = threading.Thread(target=client.sendall, args=(payload,))
    sender.start()
    back = _recv_exactly(client, len(payload))
    sender.join()
    assert hashlib.sha256(back).digest() == hashlib.sha256(payload).digest()
    client.close()
    echo.close()


def test_closing_an_attachments_relays_cuts_the_client_off_at_once() -> None:
    echo, relays = _echo_server(), RelaySet()
    client = _relayed_pair(relays, echo.getsockname())
    client.sendall(b"ping")
    assert _recv_exactly(client, 4) == b"ping"
    assert relays.close_all() == 1
    client.settimeout(5)
    assert client.recv(1) == b""  # closed, not hanging
    assert len(relays) == 0
    echo.close()


def test_a_hello_round_trips_and_leaves_the_bytes_after_it_unread() -> None:
    wire = _Buffered(b"")
    send_hello(wire, Hello("att-123", "secret-token"))
    stream = _Buffered(bytes(wire.sent) + b"PRI * HTTP/2.0")
    assert read_hello(stream) == Hello("att-123", "secret-token")
    assert bytes(stream.data) == b"PRI * HTTP/2.0"


def test_a_refusal_reaches_the_vm_agent_with_its_reason() -> None:
    wire = _Buffered(b"")
    answer(wire, "attachment att-1 has ended")
    with pytest.raises(GatewayRefused, match="att-1 has ended"):
        read_answer(_Buffered(bytes(wire.sent)))
    accepted = _Buffered(b"")
    answer(accepted, None)
    read_answer(_Buffered(bytes(accepted.sent)))


@pytest.mark.parametrize("data", [
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",  # TensorFlow talking straight to the gateway
    MAGIC + struct.pack(">H", 60000),  # announced length over the limit
    MAGIC + struct.pack(">H", 5) + b"{nope",  # not JSON
    MAGIC + struct.pack(">H", 2) + b"[]",  # JSON, not an object
    MAGIC + struct.pack(">H", 20) + b'{"attachment_id": 1}',  # no token
])
def test_malformed_hellos_are_refused_as_bad_hellos(data: bytes) -> None:
    with pytest.raises(BadHello):
        read_hello(_Buffered(data))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_give_a_hello_or_a_clear_refusal_never_another_exception(data: bytes) -> None:
    try:
        read_hello(_Buffered(data))
    except (BadHello, ConnectionError):
        pass
