"""What travels between controller processes when a commit touches agents, and who is woken by it."""

from __future__ import annotations

import os
import queue

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.change_listener import PipeChangeReader, forward_changes_to_pipe
from controller.changes import (
    MAX_PAYLOAD_BYTES, Change, ChangeHub, decode_payload, encode_payloads, touch_node, touched,
)
from controller.states import Event
from tests.agent_link.builders import available_instance, begin_attach, move

agent_ids = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-.", min_size=1, max_size=64)
changes = st.builds(Change, st.sampled_from(["node", "vm"]), agent_ids, st.booleans())


@given(st.lists(changes, max_size=400))
def test_payloads_carry_every_change_within_postgresqls_limit(batch: list[Change]) -> None:
    payloads = encode_payloads("origin1", batch)

    decoded = set()
    for payload in payloads:
        assert len(payload.encode()) < MAX_PAYLOAD_BYTES + 100
        origin, found = decode_payload(payload)
        assert origin == "origin1"
        decoded.update(found)
    assert decoded == set(batch)


@given(st.text(max_size=200))
def test_a_malformed_payload_decodes_to_what_it_can_without_failing(payload: str) -> None:
    _, found = decode_payload(payload)
    assert all(change.kind in ("node", "vm") and change.agent_id for change in found)


def test_a_status_change_touches_the_node_of_the_slice_and_the_vm_bound_before_and_after(ctx) -> None:
    instance_id = available_instance(ctx)
    seen: list[frozenset[Change]] = []
    ctx.db.changes.subscribe(seen.append)

    begin_attach(ctx, instance_id, "i-vm0001")
    move(ctx, instance_id, Event.ATTACH_READY, Event.DETACH, Event.DETACH_DONE)

    assert all(batch == {Change("node", "node-1"), Change("vm", "i-vm0001")} for batch in seen) and len(seen) == 4


def test_a_rolled_back_transaction_tells_nobody(ctx) -> None:
    seen: list[frozenset[Change]] = []
    ctx.db.changes.subscribe(seen.append)

    with pytest.raises(RuntimeError), ctx.db.write() as session:
        touch_node(session, "node-1")
        assert touched(session) == {Change("node", "node-1")}
        raise RuntimeError("rolled back")

    assert seen == []


def test_a_failing_subscriber_does_not_stop_the_others() -> None:
    hub, seen = ChangeHub(), []

    def broken(_batch: frozenset[Change]) -> None:
        raise ValueError("broken")

    hub.subscribe(broken)
    unsubscribe = hub.subscribe(seen.append)
    hub.publish([Change("vm", "i-1")])
    unsubscribe()
    hub.publish([Change("vm", "i-2")])

    assert seen == [frozenset({Change("vm", "i-1")})]


def test_what_an_api_worker_process_commits_reaches_the_primary_through_the_pipe() -> None:
    """SQLite with ``serve --api-processes N``: workers write their changes to a pipe the primary reads."""
    read_fd, write_fd = os.pipe()
    worker, primary, seen = ChangeHub(), ChangeHub(), queue.Queue()
    primary.subscribe(seen.put)
    forward_changes_to_pipe(worker, "worker-1", write_fd)
    PipeChangeReader(primary, read_fd).start()
    many = [Change("vm", f"i-{n:060d}") for n in range(200)]  # more than one line's worth

    worker.publish([Change("node", "node-1"), Change("vm", "i-1", session=True)])
    worker.publish(many)

    assert seen.get(timeout=5) == {Change("node", "node-1"), Change("vm", "i-1", session=True)}
    arrived: set[Change] = set()
    while arrived != set(many):
        arrived |= seen.get(timeout=5)
    os.close(write_fd)
