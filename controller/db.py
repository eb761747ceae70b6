"""The controller's database: engine set-up, migrations, and transaction scopes.

SQLite (WAL, the default) and PostgreSQL are both first-class. Write transactions on SQLite
start with ``BEGIN IMMEDIATE`` so that two writers never interleave; on PostgreSQL the rules are
held by UNIQUE constraints and conditional updates (see ``controller.tables``).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from controller.change_signal import STATUS_CHANGED, ChangeSignal
from controller.errors import ServiceBusy

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


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
        # FULL: a committed change survives power loss. NORMAL (lazy): it survives a crash of this
        # process, and reaches the disk with the next FULL commit or checkpoint.
        connection.exec_driver_sql("PRAGMA synchronous=" + ("NORMAL" if options.get("eais_lazy_sync") else "FULL"))
        connection.exec_driver_sql("BEGIN IMMEDIATE" if options.get("eais_write", False) else "BEGIN")


class Database:
    """Engine plus ``read()``/``write()`` transaction scopes."""

    def __init__(self, url: str, *, pool_size: int = 8) -> None:
        self.url = normalise_url(url)
        self.status_changed = ChangeSignal()
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
        self._read_engine = self.engine if is_sqlite(self.url) else self._lazy_write_engine
        # SQLite allows one writer; queueing our own threads on a lock beats SQLite's sleep-and-retry.
        self._write_lock = threading.Lock() if is_sqlite(self.url) else contextlib.nullcontext()

    def _ensure_sqlite_dir(self) -> None:
        path = self.url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One write transaction: commits on success, rolls back on any exception."""
        with self._write_lock, _busy_as_error(), Session(self._write_engine, expire_on_commit=False) as session:
            with session.begin():
                yield session
            if session.info.get(STATUS_CHANGED):
                self.status_changed.notify()  # after the commit, so woken readers see the new state

    @contextmanager
    def write_connection(self, *, lazy_sync: bool = False) -> Iterator[Connection]:
        """A Core write transaction, for hot paths where ORM sessions cost too much.

        ``lazy_sync`` skips the wait for the disk at commit (SQLite ``synchronous=NORMAL``,
        PostgreSQL ``synchronous_commit=off``): the change survives a crash of the controller
        but a power loss can forget the last ones. Only for records whose loss is harmless.
        """
        engine = self._lazy_write_engine if lazy_sync else self._write_engine
        with self._write_lock, _busy_as_error(), engine.begin() as connection:
            yield connection

    @contextmanager
    def read_connection(self) -> Iterator[Connection]:
        """Core reads for hot paths. On PostgreSQL each statement is its own snapshot (autocommit):
        no BEGIN/ROLLBACK round trips, at the price of a count and a page read a moment apart."""
        with _busy_as_error(), self._read_engine.connect() as connection:
            yield connection

    @contextmanager
    def read(self) -> Iterator[Session]:
        with _busy_as_error(), Session(self.engine, expire_on_commit=False) as session:
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
        self.engine.dispose()
        if self._lazy_write_engine.engine is not self.engine:
            self._lazy_write_engine.engine.dispose()


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    return config


@contextmanager
def _busy_as_error() -> Iterator[None]:
    try:
        yield
    except OperationalError as exc:
        if "locked" in str(exc).lower() or "could not serialize" in str(exc).lower():
            raise ServiceBusy("The database is busy; retry the request in a moment.") from exc
        raise
