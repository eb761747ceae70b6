"""Changes committed by other controller processes, brought into this one's ``ChangeHub``.

- PostgreSQL: :class:`PostgresChangeListener` holds one connection doing ``LISTEN
  eais_agent_changes`` and publishes what other replicas (and API worker processes) NOTIFY. When
  the connection drops it reconnects with a bounded, jittered backoff and publishes
  ``RESYNC_ALL``, since NOTIFY is not replayed: the streams then check the database at once.
- SQLite (one machine): API worker processes write their changes to a pipe the primary process
  reads (:func:`forward_changes_to_pipe`, :class:`PipeChangeReader`).
"""

from __future__ import annotations

import logging
import os
import random
import threading

import psycopg

from controller.changes import NOTIFY_CHANNEL, RESYNC_ALL, Change, ChangeHub, decode_payload, encode_payloads
from controller.db import Database

log = logging.getLogger(__name__)
RECONNECT_MAX_S = 3.0
PIPE_LINE_BYTES = 3_000  # with its newline, well under PIPE_BUF (4096): one atomic write per line


class PostgresChangeListener(threading.Thread):
    """LISTEN on the database; every payload from another process goes to ``db.changes``."""

    def __init__(self, db: Database) -> None:
        super().__init__(name="eais-change-listener", daemon=True)
        self._db = db
        self._url = db.url.replace("postgresql+psycopg://", "postgresql://", 1)
        self._stop = threading.Event()
        self.connected = threading.Event()

    def run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                self._listen()
                failures = 0
            except psycopg.Error as error:
                self.connected.clear()
                failures += 1
                delay = min(RECONNECT_MAX_S, 0.1 * 2**failures) * random.uniform(0.5, 1.0)
                log.warning("change listener lost the database (%s); reconnecting in %.1fs", error, delay)
                self._stop.wait(delay)

    def _listen(self) -> None:
        with psycopg.connect(self._url, autocommit=True, connect_timeout=5) as connection:
            connection.execute(f"LISTEN {NOTIFY_CHANNEL}")
            self.connected.set()
            self._db.changes.publish([RESYNC_ALL])  # anything sent while we were not listening is lost
            while not self._stop.is_set():
                for notice in connection.notifies(timeout=1.0):
                    self._publish(notice.payload)

    def _publish(self, payload: str) -> None:
        origin, changes = decode_payload(payload)
        if origin != self._db.origin:  # this process published its own changes at commit already
            self._db.changes.publish(changes)

    def stop(self) -> None:
        self._stop.set()


def forward_changes_to_pipe(hub: ChangeHub, origin: str, fd: int) -> None:
    """In an API worker: write every committed change to the primary's pipe (one line per payload)."""

    def forward(changes: frozenset[Change]) -> None:
        for payload in encode_payloads(origin, changes, max_bytes=PIPE_LINE_BYTES):
            os.write(fd, payload.encode() + b"\n")  # under PIPE_BUF: never interleaved with another worker's

    hub.subscribe(forward)


class PipeChangeReader(threading.Thread):
    """In the primary process: publish what API workers write to the pipe."""

    def __init__(self, hub: ChangeHub, fd: int) -> None:
        super().__init__(name="eais-worker-changes", daemon=True)
        self._hub, self._fd = hub, fd

    def run(self) -> None:
        with os.fdopen(self._fd, "rb") as pipe:
            for line in pipe:
                _, changes = decode_payload(line.decode(errors="replace").strip())
                self._hub.publish(changes)
