"""Shared fixtures: a controller database on SQLite and on PostgreSQL, clocks, accounts.

PostgreSQL tests run when ``EAIS_TEST_PG_URL`` names a superuser connection
(``.ci/start-postgres.sh`` prints one); each test gets a fresh database. In CI the variable is
required, so that a missing server fails the run instead of skipping half the suite.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from controller.accounts import NewAccount, create_account
from controller.clock import FakeClock
from controller.context import ControllerContext
from controller.settings import ControllerSettings, load_settings

PG_URL = os.environ.get("EAIS_TEST_PG_URL", "")

if os.environ.get("CI") and not PG_URL:
    raise RuntimeError("CI runs the suite on PostgreSQL too: set EAIS_TEST_PG_URL (see .ci/start-postgres.sh)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run ``sqlite_only`` tests once: their PostgreSQL copies are dropped at collection."""
    kept, dropped = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        on_pg = callspec is not None and callspec.params.get("db_url") == "postgresql"
        (dropped if on_pg and item.get_closest_marker("sqlite_only") else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    if not PG_URL:
        pytest.skip("PostgreSQL not configured: set EAIS_TEST_PG_URL (run .ci/start-postgres.sh to get one)")
    return PG_URL


def fresh_pg_database(admin_url: str) -> Iterator[str]:
    name = f"eais_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = admin_url.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/controller.db"
        return
    yield from fresh_pg_database(request.getfixturevalue("pg_admin_url"))


def test_settings(db_url: str, tmp_path: Path, **overrides: object) -> ControllerSettings:
    return load_settings(db_url=db_url, state_dir=tmp_path / "state", **overrides)


test_settings.__test__ = False  # a helper, not a test


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> ControllerSettings:
    return test_settings(db_url, tmp_path)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def ctx(settings: ControllerSettings, clock: FakeClock) -> Iterator[ControllerContext]:
    context = ControllerContext.open(settings, clock)
    yield context
    context.db.dispose()


@pytest.fixture
def account(ctx: ControllerContext) -> NewAccount:
    return create_account(ctx, "alice", balance=Decimal("1000"), real_name_verified=True)


@pytest.fixture
def other_account(ctx: ControllerContext) -> NewAccount:
    return create_account(ctx, "mallory", balance=Decimal("1000"), real_name_verified=True)
