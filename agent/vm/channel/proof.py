"""Proof that a channel reaches the attachment's TensorFlow worker: one real gRPC round trip.

A private listener (a unix socket in a directory only this user can enter, so no other local
process can slip in) is relayed to a freshly opened gateway stream, exactly as the endpoint
relays TensorFlow's own connections; then ``/tensorflow.WorkerService/GetStatus`` with an empty
request must come back OK. The TLS handshake and the hello are timed apart from the round trip.
"""

from __future__ import annotations

import socket
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import grpc

from agent.relay import Relay, close_listener
from agent.tls_stream import TlsStream
from agent.vm.channel.gateway import ChannelError

WORKER_GET_STATUS = "/tensorflow.WorkerService/GetStatus"


@dataclass(frozen=True)
class Proof:
    open_ms: float  # TCP + TLS + hello at the gateway
    round_trip_us: int  # the GetStatus call through the channel, once its HTTP/2 connection was up


def prove_channel(open_stream: Callable[[], TlsStream], timeout_s: float) -> Proof:
    """Open a channel and run GetStatus through it; ChannelError when it does not come back OK."""
    started = time.monotonic()
    stream = open_stream()
    open_ms = (time.monotonic() - started) * 1000
    with tempfile.TemporaryDirectory(prefix="eais-proof-") as directory:  # mode 0700
        path = str(Path(directory, "proof.sock"))
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(path)
        listener.listen(1)
        relay = _FirstConnectionRelay(listener, stream, timeout_s).start()
        try:
            round_trip_us = _get_status(f"unix:{path}", timeout_s)
        finally:
            close_listener(listener)
            relay.close()
    return Proof(open_ms, round_trip_us)


class _FirstConnectionRelay:
    """Accepts one connection in the background and relays it to the stream; close ends both."""

    def __init__(self, listener: socket.socket, stream: TlsStream, timeout_s: float) -> None:
        self._listener, self._stream, self._timeout_s = listener, stream, timeout_s
        self._relay: Relay | None = None
        self._lock = threading.Lock()
        self._closed = False

    def start(self) -> _FirstConnectionRelay:
        threading.Thread(target=self._accept, name="proof-accept", daemon=True).start()
        return self

    def close(self) -> None:
        with self._lock:
            self._closed = True
            relay = self._relay
        if relay is not None:
            relay.close()
        else:
            self._stream.close()

    def _accept(self) -> None:
        self._listener.settimeout(self._timeout_s)
        try:
            conn, _ = self._listener.accept()
        except OSError:
            return  # closed or timed out: the GetStatus call reports the failure
        conn.settimeout(None)
        with self._lock:
            if self._closed:
                conn.close()
                return
            self._relay = Relay(conn, self._stream, name="proof").start()


def _get_status(target: str, timeout_s: float) -> int:
    """Two GetStatus calls; the first also brings the HTTP/2 connection up, the second is the round trip."""
    # No retries and no proxy: the proof must be this one connection through this one channel.
    options = [("grpc.enable_retries", 0), ("grpc.enable_http_proxy", 0)]
    with grpc.insecure_channel(target, options=options) as channel:
        call = channel.unary_unary(WORKER_GET_STATUS, request_serializer=None, response_deserializer=None)
        _call_ok(call, timeout_s)
        started = time.perf_counter_ns()
        _call_ok(call, timeout_s)
        return max(1, (time.perf_counter_ns() - started) // 1000)


def _call_ok(call: grpc.UnaryUnaryMultiCallable, timeout_s: float) -> None:
    try:
        call(b"", timeout=timeout_s)
    except grpc.RpcError as error:
        raise ChannelError(f"the worker did not answer {WORKER_GET_STATUS} through the channel: "
                           f"{error.code().name} {error.details()}", retryable=True) from None
