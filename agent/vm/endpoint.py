"""The local TensorFlow endpoint (default 127.0.0.1:8470): accept, tell status queries from
TensorFlow by their first bytes, and hand TensorFlow's connections to the router.

TensorFlow's gRPC opens with the HTTP/2 preface; a status query opens with
``eais_plumbing.endpoint_status.STATUS_REQUEST``. The first bytes are peeked (MSG_PEEK), so whatever
TensorFlow sent stays in the socket for the relay to carry on unchanged.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from enum import Enum
from typing import Any

from agent.relay import close_listener, tune
from eais_plumbing.endpoint_status import STATUS_REQUEST, split_host_port

log = logging.getLogger(__name__)
PEEK_PAUSE_S = 0.005  # between peeks at a status request that has only partly arrived


class Opening(Enum):
    STATUS_QUERY = "status query"
    TENSORFLOW = "tensorflow"
    CLOSED = "closed"


def classify_opening(conn: socket.socket, timeout_s: float) -> Opening:
    """What the client's first bytes say it is; a client silent for ``timeout_s`` counts as TensorFlow."""
    deadline = time.monotonic() + timeout_s
    while True:
        conn.settimeout(max(0.001, deadline - time.monotonic()))
        try:
            head = conn.recv(len(STATUS_REQUEST), socket.MSG_PEEK)
        except TimeoutError:
            return Opening.TENSORFLOW
        except OSError:
            return Opening.CLOSED
        if not head:
            return Opening.CLOSED
        if head == STATUS_REQUEST:
            return Opening.STATUS_QUERY
        if not STATUS_REQUEST.startswith(head) or time.monotonic() >= deadline:
            return Opening.TENSORFLOW
        time.sleep(PEEK_PAUSE_S)


class TfEndpoint:
    """Listens on ``address`` (port 0 picks a free one; see :attr:`port`) until :meth:`stop`."""

    def __init__(self, address: str, route: Callable[[socket.socket], None],
                 status: Callable[[], dict[str, Any]], peek_timeout_s: float) -> None:
        self._host, self._requested_port = split_host_port(address)
        self._route, self._status, self._peek_timeout_s = route, status, peek_timeout_s
        self._listener: socket.socket | None = None
        self.port = 0

    @property
    def address(self) -> str:
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"{host}:{self.port}"

    def start(self) -> int:
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        self._listener = socket.create_server((self._host, self._requested_port), family=family, backlog=128)
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept_forever, name="endpoint-accept", daemon=True).start()
        return self.port

    def stop(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            close_listener(listener)

    def _accept_forever(self) -> None:
        while (listener := self._listener) is not None:
            try:
                conn, _ = listener.accept()
            except OSError:
                if self._listener is None:
                    return
                log.warning("accept on the TensorFlow endpoint failed; continuing", exc_info=True)
                time.sleep(0.1)
                continue
            threading.Thread(target=self._handle, args=(conn,), name="endpoint-conn", daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        try:
            opening = classify_opening(conn, self._peek_timeout_s)
            if opening is Opening.STATUS_QUERY:
                self._answer_status(conn)
            elif opening is Opening.TENSORFLOW:
                conn.settimeout(None)
                tune(conn)
                self._route(conn)
            else:
                conn.close()
        except Exception:
            log.exception("error while handling a connection on the TensorFlow endpoint")
            conn.close()

    def _answer_status(self, conn: socket.socket) -> None:
        with conn:
            conn.recv(len(STATUS_REQUEST))  # consume it: closing with unread bytes would reset the answer
            conn.sendall(json.dumps(self._status(), sort_keys=True).encode() + b"\n")
            conn.shutdown(socket.SHUT_WR)
