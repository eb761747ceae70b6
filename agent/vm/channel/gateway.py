"""Opening a channel to a node gateway: TCP, TLS verified against the controller's agent CA for
the gateway's host name, then the hello with the attachment's credentials (gateway_protocol).

Every failure becomes a :class:`ChannelError` whose ``reason`` a person can act on and whose
``retryable`` says whether trying again can help: an unreachable gateway or a refused hello may
be a node that has not started the attachment's worker yet; a certificate that does not verify
will not verify next time either.
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass

from agent.gateway_protocol import PROBE, RELAY, GatewayRefused, Hello, read_answer, send_hello
from agent.gateway_tls import client_context
from agent.relay import keep_alive, tune
from agent.tls_stream import TlsStream


class ChannelError(Exception):
    """The channel could not be opened; ``reason`` says why, ``retryable`` whether to try again,
    ``timed_out`` whether the gateway was silent (rather than refusing or closing), ``reached``
    whether its host accepted the TCP connection (its kernel answers even when the agent is busy)."""

    def __init__(self, reason: str, *, retryable: bool, timed_out: bool = False, reached: bool = True) -> None:
        super().__init__(reason)
        self.reason, self.retryable, self.timed_out, self.reached = reason, retryable, timed_out, reached


@dataclass(frozen=True)
class GatewayGrant:
    """Where one attachment is served and what to present there."""

    gateway_address: str
    attachment_id: str
    token: str
    ca_pem: str

    @property
    def host_and_port(self) -> tuple[str, int]:
        host, sep, port = self.gateway_address.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ChannelError(f"node gateway address {self.gateway_address!r} is not HOST:PORT", retryable=False)
        return host.strip("[]"), int(port)


def open_gateway_stream(grant: GatewayGrant, timeout_s: float, purpose: str = RELAY) -> TlsStream:
    """A TLS stream to the gateway on which the attachment's hello was accepted, ready to relay."""
    if not grant.ca_pem:
        raise ChannelError("the controller sent no agent CA certificate; cannot verify any node gateway",
                           retryable=False)
    host, port = grant.host_and_port
    sock = _connect(grant.gateway_address, host, port, timeout_s)
    try:
        stream = _tls(sock, grant, host)
        _hello(stream, grant, purpose)
    except BaseException:
        sock.close()
        raise
    sock.settimeout(None)  # relays block until the peer or a detach ends them
    return stream


def probe_gateway(grant: GatewayGrant, timeout_s: float) -> None:
    """Return when the gateway says the attachment is served now; ChannelError saying why not otherwise."""
    open_gateway_stream(grant, timeout_s, PROBE).close()


def _connect(address: str, host: str, port: int, timeout_s: float) -> socket.socket:
    try:
        sock = socket.create_connection((host, port), timeout=timeout_s)
    except OSError as error:
        raise ChannelError(f"cannot reach node gateway {address}: {error.strerror or error}", retryable=True,
                           timed_out=isinstance(error, TimeoutError), reached=False) from None
    tune(sock)
    keep_alive(sock)  # a node that vanishes without closing fails the relays within seconds
    return sock


def _tls(sock: socket.socket, grant: GatewayGrant, host: str) -> TlsStream:
    try:
        stream = TlsStream(sock, client_context(grant.ca_pem), server_side=False, server_hostname=host)
        stream.handshake()
    except ssl.SSLCertVerificationError as error:
        raise ChannelError(
            f"TLS: node gateway {grant.gateway_address} presented a certificate that does not verify against "
            f"the controller's agent CA (certificate verify failed: {error.verify_message})", retryable=False) from None
    except ssl.SSLEOFError as error:
        raise ChannelError(f"node gateway {grant.gateway_address} dropped the TLS handshake: {error}",
                           retryable=True) from None
    except ssl.SSLError as error:
        raise ChannelError(f"TLS handshake with node gateway {grant.gateway_address} failed: {error.reason or error}",
                           retryable=False) from None
    except (OSError, ConnectionError) as error:
        raise ChannelError(f"node gateway {grant.gateway_address} dropped the TLS handshake: {error}",
                           retryable=True, timed_out=isinstance(error, TimeoutError)) from None
    return stream


def _hello(stream: TlsStream, grant: GatewayGrant, purpose: str) -> None:
    try:
        send_hello(stream, Hello(grant.attachment_id, grant.token, purpose))
        read_answer(stream)
    except GatewayRefused as refusal:
        raise ChannelError(f"node gateway {grant.gateway_address} refused attachment {grant.attachment_id}: {refusal}",
                           retryable=True) from None
    except TimeoutError:
        raise ChannelError(f"node gateway {grant.gateway_address} did not answer the hello in time",
                           retryable=True, timed_out=True) from None
    except (OSError, ConnectionError, ValueError) as error:
        raise ChannelError(f"node gateway {grant.gateway_address} closed the channel during the hello: {error}",
                           retryable=True) from None
