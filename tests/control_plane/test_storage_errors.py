"""A database that cannot serve says why; work that usually changes nothing never waits for the one writer."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy.exc import OperationalError
from sqlmodel import select

from controller.db import storage_error_class
from controller.errors import ServiceBusy, StorageFull, StorageReadOnly, StorageUnreachable
from controller.tables import Account


@pytest.mark.parametrize(("message", "expected"), [
    ("database or disk is full", StorageFull),
    ("attempt to write a readonly database", StorageReadOnly),
    ("database is locked", ServiceBusy),
    ("unable to open database file", StorageUnreachable),
    ("no such table: nodes", None),
])
def test_sqlite_failures_map_to_the_error_that_names_their_cause(message: str, expected: type | None) -> None:
    error = OperationalError("INSERT ...", {}, sqlite3.OperationalError(message))

    assert storage_error_class(error) is expected


class _PgError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


@pytest.mark.parametrize(("sqlstate", "expected"), [
    ("53100", StorageFull), ("25006", StorageReadOnly), ("40001", ServiceBusy), ("08006", StorageUnreachable),
    ("23505", None),
])
def test_postgresql_failures_map_by_sqlstate(sqlstate: str, expected: type | None) -> None:
    assert storage_error_class(OperationalError("UPDATE ...", {}, _PgError(sqlstate))) is expected


def test_work_that_changes_nothing_runs_without_the_write_transaction(ctx, monkeypatch) -> None:
    monkeypatch.setattr(ctx.db, "write", lambda: pytest.fail("took the write path"))

    names = ctx.db.write_if_needed(lambda session: session.exec(select(Account.name)).all())

    assert names == []


def test_work_that_changes_something_is_done_again_in_a_write_transaction_and_kept(ctx, account) -> None:
    runs = []

    def rename(session) -> str:  # noqa: ANN001
        runs.append(1)
        row = session.get(Account, account.account_id)
        row.name = "renamed"
        session.add(row)
        return row.name

    assert ctx.db.write_if_needed(rename) == "renamed"

    assert len(runs) == 2  # the dry run stopped at the write; the write transaction did it
    with ctx.db.read() as session:
        assert session.get(Account, account.account_id).name == "renamed"
