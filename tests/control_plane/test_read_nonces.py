"""Read-only calls' nonces: refused when replayed, checked without a write, stored in batches, kept through a full disk."""

from __future__ import annotations

import pytest

from controller.read_nonces import ReadNonceBook
from controller.tables import SeenNonce


def _book(ctx) -> ReadNonceBook:  # noqa: ANN001
    return ReadNonceBook(ctx.db, window_us=900_000_000, flush_every_s=3600)  # flushed by hand here


def test_a_nonce_is_accepted_once_in_this_process(ctx, clock) -> None:
    book = _book(ctx)

    assert book.remember("AK1", "n-1", clock.now_us()) is True
    assert book.remember("AK1", "n-1", clock.now_us()) is False
    assert book.remember("AK2", "n-1", clock.now_us()) is True  # nonces are per AccessKey


def test_a_nonce_another_process_stored_is_refused(ctx, clock) -> None:
    other, mine = _book(ctx), _book(ctx)
    other.remember("AK1", "n-1", clock.now_us())

    assert other.flush() == 1
    assert mine.remember("AK1", "n-1", clock.now_us()) is False


def test_accepted_nonces_stay_in_memory_while_the_database_cannot_store_them(ctx, clock, monkeypatch) -> None:
    book = _book(ctx)
    book.remember("AK1", "n-1", clock.now_us())

    def disk_full(**_kw):  # noqa: ANN003, ANN202
        raise OSError("database or disk is full")

    monkeypatch.setattr(ctx.db, "write_connection", disk_full)
    with pytest.raises(OSError):
        book.flush()
    assert book.remember("AK1", "n-1", clock.now_us()) is False  # still refused meanwhile
    monkeypatch.undo()

    assert book.flush() == 1
    with ctx.db.read() as session:
        assert session.get(SeenNonce, ("AK1", "n-1")) is not None


def test_remembering_a_read_only_nonce_takes_no_write_lock(ctx, clock, monkeypatch) -> None:
    book = _book(ctx)
    monkeypatch.setattr(ctx.db, "write_connection", lambda **_kw: pytest.fail("a write on the read path"))
    monkeypatch.setattr(ctx.db, "write", lambda: pytest.fail("a write on the read path"))

    assert book.remember("AK1", "n-1", clock.now_us()) is True
