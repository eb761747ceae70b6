"""Nonces of read-only calls: checked at once without a write, stored in batches.

A signed call's nonce may be used once. For a call that changes something, the nonce is inserted
in the call's own durable write (``controller.accounts.remember_nonce``). A read-only call
(DescribeEais, ...) replayed changes nothing, so its nonce need not wait for the database's one
writer: :meth:`ReadNonceBook.remember` refuses a nonce this process saw recently or the database
already holds, and otherwise accepts it at once; a thread writes the accepted ones every
``flush_every_s``. So reads keep answering while writes queue, or while the disk is full (the
nonces wait in memory until it has room again, or until their signature window has passed). The
price: a read-only request replayed to another controller process within ``flush_every_s`` of
the original can be answered a second time.
"""

from __future__ import annotations

import logging
import threading
import time

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from controller.db import Database
from controller.tables import SeenNonce

log = logging.getLogger(__name__)
KEEP_FLUSHED_S = 5.0  # flushed nonces stay in memory this long, covering other processes' flush period


class ReadNonceBook:
    """Thread-safe; one per process and database."""

    def __init__(self, db: Database, *, window_us: int, flush_every_s: float = 0.5) -> None:
        self._db, self._window_us, self._every_s = db, window_us, flush_every_s
        self._lock = threading.Lock()
        self._recent: dict[tuple[str, str], float] = {}  # accepted here: (key, nonce) -> monotonic time
        self._pending: dict[tuple[str, str], int] = {}  # accepted, not yet written: -> seen_us
        self._flusher: threading.Thread | None = None
        self._stopped = threading.Event()

    def remember(self, access_key_id: str, nonce: str, seen_us: int) -> bool:
        """False when the nonce was used before (here, or by any process whose batch reached the database)."""
        key = (access_key_id, nonce)
        with self._lock:
            if key in self._recent:
                return False
        if self._stored(key):
            return False
        with self._lock:
            if key in self._recent:
                return False
            self._recent[key] = time.monotonic()
            self._pending[key] = seen_us
            self._start_flusher()
        return True

    def flush(self) -> int:
        """Write the pending nonces (a nonce another process wrote first is fine); how many. Raises on failure."""
        with self._lock:
            taken, self._pending = self._pending, {}
        if taken:
            try:
                self._insert(taken)
            except Exception:
                with self._lock:
                    self._pending.update(taken)
                raise
        self._forget_old()
        return len(taken)

    def stop(self) -> None:
        self._stopped.set()

    def _stored(self, key: tuple[str, str]) -> bool:
        with self._db.read_connection() as connection:
            found = connection.execute(select(SeenNonce.nonce).where(
                SeenNonce.access_key_id == key[0], SeenNonce.nonce == key[1])).first()
        return found is not None

    def _insert(self, taken: dict[tuple[str, str], int]) -> None:
        rows = [{"access_key_id": key, "nonce": nonce, "seen_us": seen} for (key, nonce), seen in taken.items()]
        with self._db.write_connection(lazy_sync=True) as connection:
            insert = postgresql_insert if self._db.is_postgresql else sqlite_insert
            connection.execute(insert(SeenNonce).on_conflict_do_nothing(), rows)

    def _forget_old(self) -> None:
        cutoff = time.monotonic() - KEEP_FLUSHED_S
        oldest_kept_us = time.time_ns() // 1000 - 2 * self._window_us  # older ones fail the timestamp check anyway
        with self._lock:
            self._recent = {k: t for k, t in self._recent.items() if t >= cutoff or k in self._pending}
            self._pending = {k: us for k, us in self._pending.items() if us >= oldest_kept_us}

    def _start_flusher(self) -> None:
        if self._flusher is None:
            self._flusher = threading.Thread(target=self._flush_forever, name="eais-read-nonces", daemon=True)
            self._flusher.start()

    def _flush_forever(self) -> None:
        failing = False
        while not self._stopped.wait(self._every_s) and not self._db.disposed:
            try:
                self.flush()
            except Exception as error:  # noqa: BLE001 - kept in memory; the next flush tries again
                if not failing:
                    log.warning("cannot store read-only nonces (kept in memory, retrying): %s", error)
                failing = True
                continue
            if failing:
                log.info("read-only nonces are stored again")
            failing = False
