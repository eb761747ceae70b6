"""The controller's database: engine set-up, migrations, and transaction scopes.

SQLite (WAL, the default) and PostgreSQL are both first-class. Write transactions on SQLite
start with ``BEGIN IMMEDIATE`` so that two writers never interleave; on PostgreSQL the rules are
held by UNIQUE constraints and conditional updates (see ``controller.tables``).

A write transaction that touched agents (``controller.changes``) tells them after its commit:
this process's :class:`~controller.changes.ChangeHub` at once, other replicas by NOTIFY.
A database that cannot serve (disk full, read-only, unreachable, busy) raises the
:class:`~controller.errors.StorageError` or :class:`~controller.errors.ServiceBusy` that names
the cause, so callers answer a clear 503 instead of an unknown error.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

from controller.changes import NOTIFY_CHANNEL, ChangeHub, encode_payloads, touched
from controller.errors import ServiceBusy, StorageFull, StorageReadOnly, StorageUnreachable

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
T = TypeVar("T")


def normalise_url(url: str) -> str:
    """Accept plain ``postgresql://`` URLs and use the psycopg 3 driver for them."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def _prepare_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):  # noqa: ANN001, ANN202
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):  # noqa: ANN001, ANN202
        options = connection.get_execution_options()
        if options.get("eais_autocommit", False):
            return  # each statement is its own transaction (pysqlite does not open one by itself here)
        if not options.get("eais_write", False):
            connection.exec_driver_sql("BEGIN")  # a read: durability settings do not apply
            return
        # FULL: a committed change survives power loss. NORMAL (lazy): it survives a crash of this
        # process, and reaches the disk with the next FULL commit or checkpoint.
        connection.exec_driver_sql("PRAGMA synchronous=" + ("NORMAL" if options.get("eais_lazy_sync") else "FULL"))
        connection.exec_driver_sql("BEGIN IMMEDIATE")


class Database:
    """Engine plus ``read()``/``write()`` transaction scopes."""

    def __init__(self, url: str, *, pool_size: int = 8) -> None:
        self.url = normalise_url(url)
        self.changes = ChangeHub()
        self.origin = secrets.token_hex(6)  # tells this process's own NOTIFY apart from other replicas'
        self.is_postgresql = not is_sqlite(self.url)
        self.disposed = False
        if is_sqlite(self.url):
            self._ensure_sqlite_dir()
            self.engine = create_engine(
                self.url, connect_args={"check_same_thread": False, "timeout": 10}, pool_size=pool_size
            )
            _prepare_sqlite(self.engine)
            self._lazy_write_engine = self.engine.execution_options(eais_write=True, eais_lazy_sync=True)
        else:
            # No pre-ping (a round trip per checkout); a dropped connection is replaced after its error.
            # Custom plans: psycopg prepares repeated statements, and PostgreSQL's generic plan for a
            # tag filter scans every instance (measured 24 ms against 5 ms).
            self.engine = create_engine(self.url, pool_size=pool_size, max_overflow=pool_size, pool_recycle=600,
                                        connect_args={"options": "-c plan_cache_mode=force_custom_plan"})
            # Single-statement lazy writes: autocommit, and the server does not wait for its WAL flush.
            self._lazy_write_engine = create_engine(
                self.url, pool_size=pool_size, max_overflow=pool_size, pool_recycle=600,
                isolation_level="AUTOCOMMIT",
                connect_args={"options": "-c synchronous_commit=off -c plan_cache_mode=force_custom_plan"},
            )
        self._write_engine = self.engine.execution_options(eais_write=True)
        self._read_engine = (self.engine.execution_options(eais_autocommit=True) if is_sqlite(self.url)
                             else self._lazy_write_engine)
        # SQLite allows one writer; queueing our own threads on a lock beats SQLite's sleep-and-retry.
        self._write_lock = threading.Lock() if is_sqlite(self.url) else contextlib.nullcontext()

    def _ensure_sqlite_dir(self) -> None:
        path = self.url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One write transaction: commits on success, rolls back on any exception."""
        with self._write_lock, storage_errors(), Session(self._write_engine, expire_on_commit=False) as session:
            with session.begin():
                yield session
                changes = touched(session)
                if changes and self.is_postgresql:  # sent at commit, in commit order; never if it rolls back
                    for payload in encode_payloads(self.origin, changes):
                        session.execute(text("SELECT pg_notify(:channel, :payload)"),
                                        {"channel": NOTIFY_CHANNEL, "payload": payload})
        self.changes.publish(changes)  # after the commit, so woken readers see the new state

    @contextmanager
    def write_connection(self, *, lazy_sync: bool = False) -> Iterator[Connection]:
        """A Core write transaction, for hot paths where ORM sessions cost too much.

        ``lazy_sync`` skips the wait for the disk at commit (SQLite ``synchronous=NORMAL``,
        PostgreSQL ``synchronous_commit=off``): the change survives a crash of the controller
        but a power loss can forget the last ones. Only for records whose loss is harmless.
        """
        engine = self._lazy_write_engine if lazy_sync else self._write_engine
        with self._write_lock, storage_errors(), engine.begin() as connection:
            yield connection

    @contextmanager
    def read_connection(self) -> Iterator[Connection]:
        """Core reads for hot paths. Each statement is its own snapshot (autocommit): no BEGIN/ROLLBACK
        round trips, at the price of a count and a page read a moment apart."""
        with storage_errors(), self._read_engine.connect() as connection:
            yield connection

    def write_if_needed(self, act: Callable[[Session], T]) -> T:
        """Run ``act`` in a read transaction; only if it tries to change something, run it again in a write one.

        For work that usually finds nothing to change (agents' periodic reports): it then never waits for,
        or holds, the database's one writer. ``act`` must be repeatable (build its result afresh each run).
        """
        try:
            with self.read() as session:
                _refuse_writes(session)
                session.info[DRY_RUN] = True
                result = act(session)
                if session.new or session.dirty or session.deleted:
                    raise _WriteNeeded
                return result
        except _WriteNeeded:
            pass
        with self.write() as session:
            return act(session)

    @contextmanager
    def read(self) -> Iterator[Session]:
        with storage_errors(), Session(self.engine, expire_on_commit=False) as session:
            with session.begin():
                yield session

    def migrate(self) -> None:
        """Bring the schema to the newest migration (idempotent)."""
        command.upgrade(alembic_config(self.url), "head")

    def refresh_statistics(self) -> None:
        """Let SQLite's planner know the table sizes (PostgreSQL's autovacuum does this by itself)."""
        if is_sqlite(self.url):
            with self.write_connection() as connection:
                connection.exec_driver_sql("PRAGMA analysis_limit=1000")
                connection.exec_driver_sql("ANALYZE")

    def dispose(self) -> None:
        self.disposed = True  # background writers (read-only nonces) stop
        self.engine.dispose()
        if self._lazy_write_engine.engine is not self.engine:
            self._lazy_write_engine.engine.dispose()


DRY_RUN = "eais.dry_run"  # session.info flag: write_if_needed's read-only first run


class _WriteNeeded(Exception):
    """A dry run in a read transaction reached a write."""


def _refuse_writes(session: Session) -> None:
    def on_statement(state) -> None:  # noqa: ANN001 - an ORMExecuteState
        if state.is_insert or state.is_update or state.is_delete:
            raise _WriteNeeded

    def on_flush(*_args: object) -> None:
        raise _WriteNeeded

    event.listen(session, "do_orm_execute", on_statement)
    event.listen(session, "before_flush", on_flush)


IN_CHUNK = 500  # ids per IN (...) list: well under SQLite's limit on bound parameters


def in_chunks(ids: Iterable[str]) -> Iterator[list[str]]:
    """Distinct ``ids`` in sorted lists short enough for one ``IN (...)`` each."""
    ordered = sorted(set(ids))
    for start in range(0, len(ordered), IN_CHUNK):
        yield ordered[start:start + IN_CHUNK]


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    return config


# SQLSTATEs (PostgreSQL) and message fragments (SQLite) of a database that cannot serve, by cause.
_SQLSTATE_ERRORS = {"53100": StorageFull, "25006": StorageReadOnly, "40001": ServiceBusy, "40P01": ServiceBusy}
_SQLITE_ERRORS = (
    ("database or disk is full", StorageFull), ("disk i/o error", StorageFull), ("readonly database", StorageReadOnly),
    ("database is locked", ServiceBusy), ("unable to open database file", StorageUnreachable),
)
_MESSAGES = {
    StorageFull: "The controller's database has no space left to record this request; nothing was changed. "
                 "Retry once the operator has freed disk space (reads keep working).",
    StorageReadOnly: "The controller's database is read-only now; nothing was changed. "
                     "Retry once the operator has made it writable again (reads keep working).",
    StorageUnreachable: "The controller cannot reach its database; nothing was changed. Retry in a moment.",
    ServiceBusy: "The database is busy; retry the request in a moment.",
}


@contextmanager
def storage_errors() -> Iterator[None]:
    """A database failure that names its cause (full, read-only, unreachable, busy) becomes that EaisError."""
    try:
        yield
    except DBAPIError as exc:
        error_class = storage_error_class(exc)
        if error_class is None:
            raise
        raise error_class(_MESSAGES[error_class]) from exc


def storage_error_class(exc: DBAPIError) -> type | None:
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if sqlstate in _SQLSTATE_ERRORS:
        return _SQLSTATE_ERRORS[sqlstate]
    if exc.connection_invalidated or (sqlstate or "").startswith("08"):
        return StorageUnreachable
    message = str(exc.orig).lower()
    return next((error for fragment, error in _SQLITE_ERRORS if fragment in message), None)
