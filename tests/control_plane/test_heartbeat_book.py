"""Heartbeats answered from memory, written in batches, kept through a failing database, void for a stale session."""

from __future__ import annotations

import pytest

from controller.agent_link.heartbeat_book import HeartbeatBook
from controller.agent_link.sessions import AgentIdentity, AgentKind, SessionCache, current_session_hashes
from controller.errors import SignatureMismatch
from controller.tables import ClientInstance, Node
from tests.agent_link.builders import given_node, given_vm, new_account


def _hash(ctx, kind: AgentKind, agent_id: str) -> str:  # noqa: ANN001
    return current_session_hashes(ctx, [(kind.value, agent_id)])[(kind.value, agent_id)]


def test_many_beats_of_many_agents_are_written_in_one_flush_with_each_agents_newest(ctx, clock) -> None:
    given_node(ctx, "node-1")
    given_vm(ctx, new_account(ctx), "i-vm0001")
    book = HeartbeatBook(ctx)
    node, vm = AgentIdentity(AgentKind.NODE, "node-1"), AgentIdentity(AgentKind.VM, "i-vm0001")
    book.beat(node, _hash(ctx, AgentKind.NODE, "node-1"))
    clock.advance(3)
    last_node = book.beat(node, _hash(ctx, AgentKind.NODE, "node-1"))
    last_vm = book.beat(vm, _hash(ctx, AgentKind.VM, "i-vm0001"))

    assert book.flush() == 2

    with ctx.db.read() as session:
        assert session.get(Node, "node-1").heartbeat_deadline_us == last_node.deadline_us
        assert session.get(ClientInstance, "i-vm0001").last_seen_us == clock.now_us()
    assert last_vm.deadline_us > clock.now_us() and book.pending == 0


def test_a_beat_after_the_deadline_handed_out_counts_as_late(ctx, clock) -> None:
    given_node(ctx, "node-1")
    book, node = HeartbeatBook(ctx), AgentIdentity(AgentKind.NODE, "node-1")
    first = book.beat(node, _hash(ctx, AgentKind.NODE, "node-1"))
    clock.advance(5)
    on_time = book.beat(node, _hash(ctx, AgentKind.NODE, "node-1"))
    clock.advance(20)

    late = book.beat(node, _hash(ctx, AgentKind.NODE, "node-1"))

    assert (first.late, on_time.late, late.late) == (False, False, True)


def test_beats_that_cannot_be_written_are_kept_for_the_next_flush(ctx, monkeypatch) -> None:
    given_node(ctx, "node-1")
    book = HeartbeatBook(ctx)
    book.beat(AgentIdentity(AgentKind.NODE, "node-1"), _hash(ctx, AgentKind.NODE, "node-1"))

    def disk_full(**_kw):  # noqa: ANN003, ANN202
        raise OSError("database or disk is full")

    monkeypatch.setattr(ctx.db, "write_connection", disk_full)
    with pytest.raises(OSError):
        book.flush()
    monkeypatch.undo()

    assert book.pending == 1 and book.flush() == 1


def test_a_beat_under_a_replaced_session_keeps_nobody_alive(ctx, clock) -> None:
    given_node(ctx, "node-1")
    stale = _hash(ctx, AgentKind.NODE, "node-1")
    given_node(ctx, "node-1")  # registered again: a new session
    with ctx.db.read() as session:
        before = session.get(Node, "node-1").heartbeat_deadline_us
    clock.advance(5)
    book = HeartbeatBook(ctx)
    book.beat(AgentIdentity(AgentKind.NODE, "node-1"), stale)

    book.flush()

    with ctx.db.read() as session:
        assert session.get(Node, "node-1").heartbeat_deadline_us == before


def test_the_session_cache_answers_from_memory_and_forgets_a_replaced_session(ctx) -> None:
    token = given_node(ctx, "node-1")
    cache = SessionCache(ctx)
    assert cache.cached(token) is None
    assert cache.load(token) == AgentIdentity(AgentKind.NODE, "node-1")

    assert cache.cached(token) == AgentIdentity(AgentKind.NODE, "node-1")
    given_node(ctx, "node-1")
    cache.forget("node", "node-1")  # what a session change from any replica does
    assert cache.cached(token) is None
    with pytest.raises(SignatureMismatch):
        cache.load(token)
