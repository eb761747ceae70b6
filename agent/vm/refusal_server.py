"""Refusing TensorFlow's calls with a real gRPC status instead of a dropped connection.

While the endpoint must not forward (no accelerator, not ready, detached, failed), its
connections are relayed to this gRPC server on a unix socket. It answers every method, whatever
its shape, with UNAVAILABLE and the endpoint's current message, so TensorFlow's client raises
``UnavailableError: no accelerator attached to i-...`` at once rather than hanging or retrying
into an obscure "Socket closed". The trailing metadata ``x-eais-endpoint-state`` carries the
machine-readable state (idle, attaching, detaching, failed) for clients such as remote_tf.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc

STATE_METADATA_KEY = "x-eais-endpoint-state"
MAX_SOCKET_PATH = 100  # sun_path holds 108 bytes including the terminator
Refusal = Callable[[], tuple[str, str]]  # () -> (state, message)


class _RefuseEveryMethod(grpc.GenericRpcHandler):
    def __init__(self, refusal: Refusal, count: Callable[[], None]) -> None:
        self._refusal, self._count = refusal, count

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        # A stream-stream handler that reads nothing answers unary and streaming calls alike.
        return grpc.stream_stream_rpc_method_handler(self._refuse)

    def _refuse(self, requests: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[bytes]:
        self._count()
        state, message = self._refusal()
        context.set_trailing_metadata(((STATE_METADATA_KEY, state),))
        context.abort(grpc.StatusCode.UNAVAILABLE, message)  # raises: no response is ever sent


class RefusalServer:
    """The gRPC server that refuses; :meth:`connect` gives a socket to relay a connection to."""

    def __init__(self, socket_path: Path, refusal: Refusal) -> None:
        self.socket_path = socket_path
        self._lock = threading.Lock()
        self._refused_calls = 0
        self._server = grpc.server(ThreadPoolExecutor(max_workers=4, thread_name_prefix="refusal"),
                                   handlers=[_RefuseEveryMethod(refusal, self._count)])

    @property
    def refused_calls(self) -> int:
        with self._lock:
            return self._refused_calls

    def start(self) -> None:
        self.socket_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.socket_path.unlink(missing_ok=True)  # left over by an agent that was killed
        if self._server.add_insecure_port(f"unix:{self.socket_path}") == 0:
            raise OSError(f"cannot listen on the unix socket {self.socket_path}")
        self._server.start()
        os.chmod(self.socket_path, 0o600)

    def stop(self) -> None:
        self._server.stop(grace=None).wait(5)
        self.socket_path.unlink(missing_ok=True)

    def connect(self) -> socket.socket:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.connect(str(self.socket_path))
        return conn

    def _count(self) -> None:
        with self._lock:
            self._refused_calls += 1


def refusal_socket_path(state_dir: Path, private_dir: Callable[[], str]) -> Path:
    """``<state_dir>/refusal.sock``, or one in a private temporary directory when that path is too long."""
    path = state_dir / "refusal.sock"
    return path if len(str(path)) <= MAX_SOCKET_PATH else Path(private_dir(), "refusal.sock")
