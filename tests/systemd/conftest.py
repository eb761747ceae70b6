"""A real systemd-style notify socket: an AF_UNIX datagram socket bound to a temporary path.

``notify_socket`` binds it, sets ``$NOTIFY_SOCKET`` to its path (children inherit it) and
yields a :class:`NotifyListener` that receives the datagrams a daemon sends.
"""

from __future__ import annotations

import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


class NotifyListener:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))

    def receive(self, timeout_s: float = 1.0) -> str | None:
        """The next datagram, or None if none arrives in time."""
        self.sock.settimeout(timeout_s)
        try:
            return self.sock.recv(4096).decode()
        except TimeoutError:
            return None

    def wait_for(self, wanted: str, timeout_s: float) -> list[str]:
        """Every datagram received until one equal to ``wanted`` (included); fails after ``timeout_s``."""
        seen: list[str] = []
        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            message = self.receive(min(left, 0.5))
            if message is not None:
                seen.append(message)
                if message == wanted:
                    return seen
        raise AssertionError(f"no {wanted!r} within {timeout_s}s; received {seen!r}")

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def notify_socket(monkeypatch: pytest.MonkeyPatch) -> Iterator[NotifyListener]:
    # A short directory: AF_UNIX paths are limited to 108 bytes, pytest's tmp_path can be longer.
    with tempfile.TemporaryDirectory(prefix="eais-notify-") as directory:
        listener = NotifyListener(Path(directory) / "notify.sock")
        monkeypatch.setenv("NOTIFY_SOCKET", str(listener.path))
        monkeypatch.delenv("WATCHDOG_USEC", raising=False)
        monkeypatch.delenv("WATCHDOG_PID", raising=False)
        try:
            yield listener
        finally:
            listener.close()
