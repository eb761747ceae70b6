"""The endpoint tells a status query from TensorFlow by peeking at the first bytes, leaving them in place."""

from __future__ import annotations

import socket
import threading

from agent.vm.endpoint import Opening, classify_opening
from eais_plumbing.endpoint_status import HTTP2_PREFACE, STATUS_REQUEST


def _classified(*chunks: bytes, timeout_s: float = 0.5) -> tuple[Opening, bytes]:
    server, client = socket.socketpair()
    with server, client:
        sender = threading.Thread(target=lambda: [client.sendall(chunk) for chunk in chunks])
        sender.start()
        opening = classify_opening(server, timeout_s)
        sender.join()
        server.settimeout(0.5)
        left_in_socket = server.recv(1024) if chunks else b""
    return opening, left_in_socket


def test_a_status_request_is_recognised_even_when_it_arrives_in_pieces() -> None:
    opening, left = _classified(STATUS_REQUEST[:4], STATUS_REQUEST[4:])

    assert opening is Opening.STATUS_QUERY and left == STATUS_REQUEST


def test_the_http2_preface_is_tensorflow_and_stays_in_the_socket_for_the_relay() -> None:
    opening, left = _classified(HTTP2_PREFACE)

    assert opening is Opening.TENSORFLOW and left == HTTP2_PREFACE


def test_a_silent_client_is_treated_as_tensorflow_after_the_peek_timeout() -> None:
    opening, _ = _classified(timeout_s=0.05)

    assert opening is Opening.TENSORFLOW
