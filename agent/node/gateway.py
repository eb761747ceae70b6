"""The node's gateway: where VM agents reach their attachment's worker, over TLS, with a token.

Per connection, in a thread of its own: TLS handshake (the certificate the controller signed) and
the hello (:mod:`agent.gateway_protocol`) within ``handshake_timeout_s``; the attachment must be
one the controller wants on this node now, the token must match (constant-time), and its worker
must be READY. Then a socket is made inside the worker's namespace, the answer says accepted,
and bytes are relayed as part of the attachment's RelaySet (cut all at once on detach). A refusal
is answered with its reason and closed; a client that cannot even finish TLS or a hello is logged
and closed. Nothing a client sends can take the gateway down.
"""

from __future__ import annotations

import hmac
import logging
import socket
import ssl
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from agent.gateway_protocol import PROBE, RELAY, BadHello, Hello, answer, read_hello
from agent.node.worker.served import ServedWorker, WorkerUnavailable
from agent.relay import close_listener, keep_alive, tune
from agent.tls_stream import TlsStream

log = logging.getLogger(__name__)
MAX_PENDING_HANDSHAKES = 64  # connections still in TLS/hello; more are closed at once (slow-client floods)


@dataclass(frozen=True)
class GatewayTarget:
    """What the gateway knows of an attachment the controller wants here: its token and its worker."""

    token: str
    served: ServedWorker | None


Lookup = Callable[[str], GatewayTarget | None]


class Gateway:
    def __init__(self, host: str, port: int, lookup: Lookup, handshake_timeout_s: float) -> None:
        self._lookup, self._timeout_s = lookup, handshake_timeout_s
        self._listener = _bind(host, port)
        self.port: int = self._listener.getsockname()[1]
        self._context: ssl.SSLContext | None = None
        self._pending = threading.BoundedSemaphore(MAX_PENDING_HANDSHAKES)
        self._closed = threading.Event()
        self.connections: Counter[str] = Counter()  # relayed, probe, refused, dropped (no TLS or hello)
        self._counting = threading.Lock()

    def serve(self, context: ssl.SSLContext) -> None:
        """Start accepting, with this TLS context (replace it later with :meth:`use_context`)."""
        self._context = context
        threading.Thread(target=self._accept_loop, name="gateway", daemon=True).start()

    def use_context(self, context: ssl.SSLContext) -> None:
        """A renewed certificate: new connections use it; open ones keep theirs."""
        self._context = context

    def close(self) -> None:
        self._closed.set()
        close_listener(self._listener)

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            try:
                sock, peer = self._listener.accept()
            except OSError:
                if self._closed.is_set():
                    return
                continue  # e.g. EMFILE or a connection reset before accept: keep serving
            if not self._pending.acquire(blocking=False):
                log.warning("gateway: %s handshakes pending; closing %s at once", MAX_PENDING_HANDSHAKES, _peer(peer))
                sock.close()
                continue
            threading.Thread(target=self._handle, args=(sock, peer), name=f"gw-{_peer(peer)}", daemon=True).start()

    def _handle(self, sock: socket.socket, peer: tuple) -> None:
        try:
            stream, hello = self._greet(sock, peer)
        except Exception:  # noqa: BLE001 - as below: log it, close it, keep serving
            log.exception("gateway: handshake with %s failed", _peer(peer))
            hello = None
        finally:
            self._pending.release()
        if hello is None:
            self._count("dropped")
            sock.close()
            return
        try:
            self._admit(stream, hello, peer)
        except Exception:  # noqa: BLE001 - one connection's bug must not end the gateway
            log.exception("gateway: connection from %s failed", _peer(peer))
            sock.close()

    def _greet(self, sock: socket.socket, peer: tuple) -> tuple[TlsStream, Hello | None]:
        """TLS and the hello, within the handshake timeout; (stream, None) when the client fails at it."""
        stream = TlsStream(sock, self._context, server_side=True)
        try:
            sock.settimeout(self._timeout_s)
            tune(sock)
            stream.handshake()
            return stream, read_hello(stream)
        except BadHello as error:
            log.info("gateway: refused %s: %s", _peer(peer), error)
            _answer_quietly(stream, str(error))
        except (OSError, ssl.SSLError, ConnectionError, ValueError) as error:
            log.info("gateway: dropped %s before its hello: %s", _peer(peer), error or type(error).__name__)
        return stream, None

    def _admit(self, stream: TlsStream, hello: Hello, peer: tuple) -> None:
        target = self._lookup(hello.attachment_id)
        refusal = _refusal(target, hello)
        upstream = None
        if refusal is None and hello.purpose == RELAY:
            try:
                upstream = target.served.connect_client()
            except WorkerUnavailable as error:
                refusal = str(error)
        self._count("refused" if refusal is not None else hello.purpose)
        if refusal is not None or hello.purpose == PROBE:  # a probe is answered and closed either way
            if refusal is not None:
                log.info("gateway: refused %s (%s): %s", _peer(peer), hello.purpose, refusal)
            _answer_quietly(stream, refusal)
            stream.close()
            return
        answer(stream, None)
        stream.settimeout(None)
        keep_alive(stream.sock)
        tune(upstream)  # without TCP_NODELAY toward the worker, small frames wait out delayed ACKs (~40 ms)
        if target.served.relay(stream, upstream, name=f"gw-{hello.attachment_id[:24]}") is not None:
            log.info("gateway: %s connected to the worker of %s", _peer(peer), hello.attachment_id)


    def _count(self, outcome: str) -> None:
        with self._counting:
            self.connections[outcome] += 1


def _refusal(target: GatewayTarget | None, hello: Hello) -> str | None:
    """Why this hello is refused; None when its attachment is wanted here, the token matches and it is served."""
    shown = repr(hello.attachment_id[:64])
    if target is None:
        return f"attachment {shown} is unknown to this node or has ended"
    if not hmac.compare_digest(hello.token.encode(), target.token.encode()):
        return f"wrong token for attachment {shown}"
    if target.served is None:
        return f"the worker for attachment {shown} is not running yet; retry shortly"
    return target.served.refusal()


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    listener.listen(128)
    return listener


def _answer_quietly(stream: TlsStream, refusal: str) -> None:
    try:
        answer(stream, refusal)
    except (OSError, ssl.SSLError, ValueError):
        pass  # the client is gone; nothing to tell


def _peer(peer: tuple) -> str:
    return f"{peer[0]}:{peer[1]}" if len(peer) >= 2 else str(peer)
