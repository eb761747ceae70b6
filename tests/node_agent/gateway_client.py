"""The VM agent's side of a node gateway, as small as tests need it (the real one is agent/vm).

:func:`open_channel` dials, verifies TLS against the agent CA, sends the hello and reads the
answer; :class:`LocalPort` is a loopback port whose connections are relayed through such channels,
so that grpcio or TensorFlow can talk to the worker as if it were local.
"""

from __future__ import annotations

import socket
import threading

from agent.gateway_protocol import Hello, read_answer, send_hello
from agent.gateway_tls import client_context
from agent.relay import RelaySet
from agent.tls_stream import TlsStream
from eais_plumbing.endpoint_status import split_host_port


def open_channel(gateway_address: str, ca_pem: str, attachment_id: str, token: str,
                 timeout_s: float = 10.0) -> TlsStream:
    """An accepted channel to the attachment's worker; GatewayRefused (with the reason) otherwise."""
    host, port = split_host_port(gateway_address)
    sock = socket.create_connection((host, port), timeout=timeout_s)
    stream = TlsStream(sock, client_context(ca_pem), server_side=False, server_hostname=host)
    try:
        stream.handshake()
        send_hello(stream, Hello(attachment_id, token))
        read_answer(stream)
    except BaseException:
        sock.close()
        raise
    sock.settimeout(None)
    return stream


class LocalPort:
    """127.0.0.1:<port>; each connection to it goes through a fresh gateway channel."""

    def __init__(self, gateway_address: str, ca_pem: str, attachment_id: str, token: str) -> None:
        self._dial = lambda: open_channel(gateway_address, ca_pem, attachment_id, token)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.relays = RelaySet()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                channel = self._dial()
            except Exception:  # noqa: BLE001 - the local client sees its connection close
                client.close()
                continue
            self.relays.start(client, channel, name="test-vm")

    def close(self) -> None:
        self._listener.close()
        self.relays.close_all()

    def __enter__(self) -> LocalPort:  # noqa: PYI034
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
