"""Proof that a worker serves: a real gRPC round trip into it over the path tenants' bytes take.

``/tensorflow.WorkerService/GetStatus`` with an empty request, sent by grpcio to a private Unix
socket (a fresh 0700 directory) whose connections are relayed to sockets made by ``connect``, i.e.
inside the worker's namespace. The answer lists the worker's devices, which the agent logs; no
TensorFlow import is needed for it (a few lines of protobuf wire format below).
"""

from __future__ import annotations

import socket
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import grpc

from agent.relay import RelaySet, close_listener

GET_STATUS = "/tensorflow.WorkerService/GetStatus"


class ProbeFailed(RuntimeError):
    """The round trip did not complete; the message says how it failed."""


def probe_worker(connect: Callable[[], socket.socket], timeout_s: float) -> tuple[list[str], float]:
    """(device names, round-trip seconds) of one GetStatus into the worker; ProbeFailed otherwise."""
    relays = RelaySet()
    with tempfile.TemporaryDirectory(prefix="eais-probe-") as directory:
        path = str(Path(directory) / "worker.sock")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(path)
        listener.listen(4)
        threading.Thread(target=_relay_each, args=(listener, connect, relays), name="probe-relay", daemon=True).start()
        channel = grpc.insecure_channel(f"unix:{path}")
        try:
            started = time.monotonic()
            answer = channel.unary_unary(GET_STATUS)(b"", timeout=timeout_s, wait_for_ready=True)
            elapsed = time.monotonic() - started
        except grpc.RpcError as error:
            raise ProbeFailed(f"GetStatus into the worker failed: {error.code().name} {error.details()}") from None
        finally:
            channel.close()
            close_listener(listener)
            relays.close_all()
    try:
        return device_names(answer), elapsed
    except ValueError as error:
        raise ProbeFailed(f"GetStatus answered something that is not a GetStatusResponse: {error}") from None


def _relay_each(listener: socket.socket, connect: Callable[[], socket.socket], relays: RelaySet) -> None:
    while True:
        try:
            client, _ = listener.accept()
        except OSError:
            return  # closed: the probe is over
        try:
            upstream = connect()
        except OSError:
            client.close()  # grpc sees the connection drop and reports UNAVAILABLE
            continue
        relays.start(client, upstream, name="probe")


def device_names(get_status_response: bytes) -> list[str]:
    """``GetStatusResponse.device_attributes[*].name`` (field 1 of field 1) from the wire bytes."""
    names = []
    for number, value in _fields(get_status_response):
        if number == 1 and isinstance(value, bytes):
            names += [inner.decode(errors="replace") for n, inner in _fields(value) if n == 1 and isinstance(inner, bytes)]
    return names


def _fields(data: bytes) -> list[tuple[int, int | bytes]]:
    """Top-level (field number, value) pairs of a protobuf message; raises ValueError if malformed."""
    fields, position = [], 0
    while position < len(data):
        key, position = _varint(data, position)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value, position = _varint(data, position)
        elif wire_type == 1:
            value, position = data[position:position + 8], position + 8
        elif wire_type == 2:
            length, position = _varint(data, position)
            value, position = data[position:position + length], position + length
        elif wire_type == 5:
            value, position = data[position:position + 4], position + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire_type}")
        fields.append((number, value))
    if position != len(data):
        raise ValueError("truncated protobuf message")
    return fields


def _varint(data: bytes, position: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if position >= len(data):
            raise ValueError("truncated varint")
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, position
        shift += 7
