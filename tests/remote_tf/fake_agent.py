"""A stand-in for the VM agent's local endpoint: its status reply, and optionally its byte relay.

It answers :data:`eais_plumbing.endpoint_status.STATUS_REQUEST` with the JSON status the test sets. Any
other connection is TensorFlow's: relayed byte for byte to ``forward_to`` (a real worker) while
attached and reachable; otherwise its calls are refused with gRPC status UNAVAILABLE and the
status message, as DESIGN.md asks of the agent ("refuses calls with a clear status"). Closing the
connection instead would hang TF1 sessions: their MasterService calls wait for a connection
forever, but give up on an error status. ``detach`` cuts the live relays like the real agent
does when the accelerator goes away. TensorFlow itself is never faked.

A relaying agent must live in another process than the TensorFlow client, like the real one:
TensorFlow holds the GIL while it connects, so relay threads in its own process would never run.
:class:`FakeAgentProcess` runs this module as a script and drives it with one JSON command per
line on its stdin.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc

from eais_plumbing.endpoint_status import STATUS_REQUEST, split_host_port


class FakeAgentEndpoint:
    def __init__(self, status: dict[str, Any], forward_to: str | None = None) -> None:
        self.status, self.forward_to = status, forward_to
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.endpoint = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self._relayed: list[socket.socket] = []
        self._lock = threading.Lock()
        self._refuser = grpc.server(ThreadPoolExecutor(4), handlers=[_RefuseEveryCall(self)])
        self._refuser_address = f"127.0.0.1:{self._refuser.add_insecure_port('127.0.0.1:0')}"
        self._refuser.start()
        threading.Thread(target=self._accept_forever, name="fake-agent", daemon=True).start()

    def detach(self, message: str) -> None:
        """Refuse TensorFlow from now on and cut every relayed connection."""
        with self._lock:  # no relay may start between the switch and the cut
            self.forward_to = None
            self.status = {**self.status, "healthy": False, "state": "idle", "status": "Available",
                           "message": message}
            for sock in self._relayed:
                _close(sock)
            self._relayed.clear()

    def attach(self, forward_to: str, status: dict[str, Any]) -> None:
        with self._lock:
            self.forward_to, self.status = forward_to, status

    def close(self) -> None:
        _close(self._listener)
        self.detach("agent stopped")
        self._refuser.stop(grace=None)

    def _accept_forever(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        opening = conn.recv(len(STATUS_REQUEST), socket.MSG_PEEK | socket.MSG_WAITALL)
        if opening == STATUS_REQUEST:
            conn.sendall(json.dumps(self.status).encode() + b"\n")
            _close(conn)
        else:
            self._relay(conn)

    def _connect_upstream(self) -> socket.socket:
        if self.forward_to is not None:
            try:
                return socket.create_connection(split_host_port(self.forward_to))
            except OSError:
                pass  # the worker is gone: refuse like a detached agent
        return socket.create_connection(split_host_port(self._refuser_address))

    def _relay(self, client: socket.socket) -> None:
        with self._lock:
            worker = self._connect_upstream()
            self._relayed += [client, worker]
        for source, sink in ((client, worker), (worker, client)):
            threading.Thread(target=_copy, args=(source, sink), daemon=True).start()


class _RefuseEveryCall(grpc.GenericRpcHandler):
    def __init__(self, endpoint: FakeAgentEndpoint) -> None:
        self._endpoint = endpoint

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        def refuse(requests: Any, context: grpc.ServicerContext) -> Any:
            message = self._endpoint.status.get("message") or "no accelerator attached"
            context.abort(grpc.StatusCode.UNAVAILABLE, message)

        # Streaming on both sides fits every TensorFlow call, unary or not, and reads nothing.
        return grpc.stream_stream_rpc_method_handler(refuse)


def _copy(source: socket.socket, sink: socket.socket) -> None:
    try:
        while chunk := source.recv(1 << 16):
            sink.sendall(chunk)
    except OSError:
        pass
    _close(source)
    _close(sink)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed by the other side
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


class FakeAgentProcess:
    """:class:`FakeAgentEndpoint` in a child process, for clients that run TensorFlow."""

    def __init__(self, status: dict[str, Any], forward_to: str | None = None) -> None:
        self._process = subprocess.Popen([sys.executable, os.path.abspath(__file__)], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, text=True)
        self.endpoint = self._command({"status": status, "forward_to": forward_to})

    def attach(self, forward_to: str, status: dict[str, Any]) -> None:
        self._command({"status": status, "forward_to": forward_to})

    def detach(self, message: str) -> None:
        self._command({"detach": message})

    def close(self) -> None:
        self._process.kill()
        self._process.wait()

    def _command(self, command: dict[str, Any]) -> str:
        self._process.stdin.write(json.dumps(command) + "\n")
        self._process.stdin.flush()
        return self._process.stdout.readline().strip()


def serve_commands() -> None:
    """One JSON command per stdin line; each answered with the endpoint on stdout."""
    endpoint: FakeAgentEndpoint | None = None
    for line in sys.stdin:
        command = json.loads(line)
        if endpoint is None:
            endpoint = FakeAgentEndpoint(command["status"], command.get("forward_to"))
        elif "detach" in command:
            endpoint.detach(command["detach"])
        else:
            endpoint.attach(command["forward_to"], command["status"])
        print(endpoint.endpoint, flush=True)


if __name__ == "__main__":
    serve_commands()
