"""Byte relay between two connected sockets: how TensorFlow's gRPC crosses the agents unchanged.

The agents never parse TensorFlow's traffic; after the gateway handshake they copy bytes both
ways. One thread per direction with blocking sockets: the copy loop spends its time in the
kernel (recv/send release the GIL), which beats an asyncio or message-level gRPC proxy by a wide
margin. Each direction reuses one 256 KiB buffer (``recv_into`` then ``sendall``): measured on
loopback it beat both 1 MiB buffers (cache misses) and ``splice(2)`` through a pipe.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable

BUFFER_BYTES = 256 * 1024
SOCKET_BUFFER_BYTES = 4 * 1024 * 1024
# A peer that vanishes without closing (host gone, link cut) is noticed within about 6 s on an idle
# connection (3 s idle, then 3 unanswered probes 1 s apart) and within 6 s of unacknowledged data.
KEEPALIVE = ((socket.TCP_KEEPIDLE, 3), (socket.TCP_KEEPINTVL, 1), (socket.TCP_KEEPCNT, 3))
USER_TIMEOUT_MS = 6000


def tune(sock: socket.socket) -> None:
    """Small gRPC frames must leave at once: no Nagle delay; big tensors want big buffers."""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for option in (socket.SO_SNDBUF, socket.SO_RCVBUF):
        try:
            sock.setsockopt(socket.SOL_SOCKET, option, SOCKET_BUFFER_BYTES)
        except OSError:
            pass  # the kernel's limit applies; not worth failing over


def keep_alive(sock: socket.socket) -> None:
    """Kernel keepalive probes and a bound on unacknowledged data, for connections between hosts."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for option, value in KEEPALIVE:
        sock.setsockopt(socket.IPPROTO_TCP, option, value)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, USER_TIMEOUT_MS)


class ByteTally:
    """Bytes copied by many relays over time, closed ones included, and how many are open: for metrics."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._closed_bytes = [0, 0]  # a -> b, b -> a
        self._live: set[Relay] = set()
        self.opened = 0

    def track(self, relay: Relay) -> None:
        with self._lock:
            self._live.add(relay)
            self.opened += 1

    def finish(self, relay: Relay) -> None:
        with self._lock:
            if relay in self._live:
                self._live.discard(relay)
                self._closed_bytes = [done + more for done, more in zip(self._closed_bytes, relay.bytes_copied)]

    def totals(self) -> tuple[int, int, int]:
        """(bytes a -> b, bytes b -> a, relays open now)."""
        with self._lock:
            live = list(self._live)
            a_to_b, b_to_a = self._closed_bytes
        return (a_to_b + sum(r.bytes_copied[0] for r in live), b_to_a + sum(r.bytes_copied[1] for r in live),
                len(live))


class Relay:
    """Copies bytes between ``a`` and ``b`` until either side closes or :meth:`close` is called."""

    def __init__(self, a: socket.socket, b: socket.socket, *, name: str = "relay",
                 on_close: Callable[[Relay], None] | None = None, tally: ByteTally | None = None) -> None:
        self._a, self._b, self._name = a, b, name
        self._on_close = on_close
        self._tally = tally
        self._closed = False
        self._lock = threading.Lock()
        self.received_from_b_at = 0.0  # monotonic time of the last bytes from ``b``: is the far side alive?
        self.bytes_copied = [0, 0]  # a -> b, b -> a

    def start(self) -> Relay:
        if self._tally is not None:
            self._tally.track(self)
        threading.Thread(target=self._pump, args=(self._a, self._b, 0), name=f"{self._name}>", daemon=True).start()
        threading.Thread(target=self._pump, args=(self._b, self._a, 1), name=f"{self._name}<", daemon=True).start()
        return self

    def close(self) -> None:
        """Cut both connections; the peers see the connection reset or closed."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        for sock in (self._a, self._b):
            _shutdown_and_close(sock)
        if self._tally is not None:
            self._tally.finish(self)
        if self._on_close is not None:
            self._on_close(self)

    def _pump(self, source: socket.socket, sink: socket.socket, direction: int) -> None:
        try:
            self._copy(source, sink, direction)
        except (OSError, ValueError):
            pass  # a reset or a close from the other pump ends this direction like EOF
        finally:
            self.close()  # gRPC never half-closes a connection, so either side ending ends both

    def _copy(self, source: socket.socket, sink: socket.socket, direction: int) -> None:
        buffer = bytearray(BUFFER_BYTES)
        view = memoryview(buffer)
        copied = self.bytes_copied
        while True:
            count = source.recv_into(buffer)
            if not count:
                return
            if direction:
                self.received_from_b_at = time.monotonic()
            sink.sendall(view[:count])
            copied[direction] += count


def close_listener(listener: socket.socket) -> None:
    """Close a listener and wake the thread blocked in its accept(): close() alone leaves it blocked for good."""
    _shutdown_and_close(listener)


def _shutdown_and_close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)  # wakes the other pump's blocking recv
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


class RelaySet:
    """The relays of one attachment, so that a detach can cut them all at once."""

    def __init__(self, tally: ByteTally | None = None) -> None:
        self._relays: set[Relay] = set()
        self._lock = threading.Lock()
        self._tally = tally

    def start(self, a: socket.socket, b: socket.socket, name: str) -> Relay:
        relay = Relay(a, b, name=name, on_close=self._forget, tally=self._tally)
        with self._lock:
            self._relays.add(relay)
        return relay.start()

    def close_all(self) -> int:
        with self._lock:
            relays, self._relays = list(self._relays), set()
        for relay in relays:
            relay.close()
        return len(relays)

    def __len__(self) -> int:
        with self._lock:
            return len(self._relays)

    def last_received_from_b(self) -> float:
        """Monotonic time of the latest bytes any relay of the set got from its ``b`` side (0: none yet)."""
        with self._lock:
            return max((relay.received_from_b_at for relay in self._relays), default=0.0)

    def _forget(self, relay: Relay) -> None:
        with self._lock:
            self._relays.discard(relay)
