"""DESIGN §4: "Killing the controller at any point and restarting it loses no accepted request and no transition."

The real ``eais-controller serve`` runs as a child process (SQLite file, and PostgreSQL when
``EAIS_TEST_PG_URL`` is set) with a simulated node agent linked over gRPC. Client threads send a
stream of signed calls through the official v3 SDK (CreateEai with a unique ClientToken each,
TagResources, DeleteEai) and record which calls were answered. The controller is SIGKILLed at
random moments while calls are in flight and restarted on the same database and ports; then it
is killed and restarted once more (one restart is also killed while it starts up) and the books
are checked:

* every answered CreateEai exists (DescribeEais finds it), or is Released only because a
  DeleteEai was sent for it; its ``create`` transition carries the answered RequestId;
* every answered DeleteEai left the instance Released, by a ``release`` transition carrying the
  answered RequestId;
* every answered TagResources is stored and visible in DescribeEais;
* a CreateEai refused with a 4xx error created nothing;
* retrying every CreateEai with its ClientToken after the crashes answers the ID created before
  (when one was) and never makes a second instance for a token;
* the transition log is a consistent chain for every instance, ending in its status; slices and
  instances point at each other consistently; the SQLite file passes ``PRAGMA integrity_check``;
* every ClientToken has exactly one idempotency record, and the unfiltered DescribeEais lists
  exactly the live instances stored, with a TotalCount that matches;
* the controller never exited by itself, and after the last restart the node drives every
  live instance to Available again.

Failures name the seed of the random choices (``EAIS_CRASH_SEED=N`` chooses the same kill
points and actions; thread timing still varies) and the controller's log.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from alibabacloud_eais20190624 import models as m
from darabonba.exceptions import ResponseException
from sqlalchemy import create_engine, text

from agent.controller_link import NodeToken
from agent.controller_link_async import AsyncControllerLink
from agent.controller_trust import ControllerTrust
from agent.simulated_fleet import AgentsInThread, SimulatedNode, node_registration
from controller.db import is_sqlite, normalise_url
from tests.api.sdk_capture import v3_client
from tests.controller_process import ControllerProcess, create_account_cli

REGION = "cn-hangzhou"
ZONE = "cn-hangzhou-a"
TYPE = "eais.ei-a6.medium"
SLICES = 150  # more than the creates and retries can take, so NoResources never muddles the books
KILLS = 3
TOTAL_CALLS = 100
CLIENT_THREADS = 3
MAX_OWN_TAGS = 12  # per instance, well under the limit of 20

OK, REFUSED, UNKNOWN = "ok", "refused", "unknown"


# ---------------------------------------------------------------------------------------------- the ledger


@dataclass
class Call:
    """One API call and what the client learnt about it."""

    number: int
    action: str
    target: str  # ClientToken for CreateEai, instance ID otherwise
    outcome: str = ""
    request_id: str = ""  # RequestId of the answer
    instance_id: str = ""  # CreateEai's answer
    error: str = ""
    tag: tuple[str, str] | None = None


@dataclass
class Ledger:
    """What the clients sent and learnt; shared by the client threads (all access under ``lock``)."""

    rng: random.Random
    lock: threading.Lock = field(default_factory=threading.Lock)
    calls: list[Call] = field(default_factory=list)
    in_flight: int = 0
    live: list[str] = field(default_factory=list)  # answered creates with no DeleteEai sent yet
    own_tags: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def next_call(self) -> Call | None:
        """Reserve the next call and choose what it does; None when the budget is spent."""
        with self.lock:
            number = len(self.calls)
            if number >= TOTAL_CALLS:
                return None
            taggable = [i for i in self.live if self.own_tags[i] < MAX_OWN_TAGS]
            roll = self.rng.random()
            if len(self.live) >= 3 and roll < 0.2:
                target = self.live.pop(self.rng.randrange(len(self.live)))  # never deleted twice, never tagged after
                call = Call(number, "DeleteEai", target)
            elif taggable and roll < 0.5:
                target = self.rng.choice(taggable)
                self.own_tags[target] += 1
                call = Call(number, "TagResources", target, tag=(f"k{number:03d}", f"v{number:03d}-{target[-4:]}"))
            else:
                call = Call(number, "CreateEai", f"tok-{uuid.uuid4().hex[:20]}")
            self.calls.append(call)
            self.in_flight += 1
            return call

    def finish(self, call: Call, outcome: str) -> None:
        with self.lock:
            call.outcome = outcome
            self.in_flight -= 1
            if call.action == "CreateEai" and outcome == OK:
                self.live.append(call.instance_id)

    def of(self, action: str, outcome: str | None = None) -> list[Call]:
        return [c for c in self.calls if c.action == action and (outcome is None or c.outcome == outcome)]


def _create_request(token: str) -> m.CreateEaiRequest:
    # The name is the token: instances can be counted per token, and a retry has the same fingerprint.
    return m.CreateEaiRequest(region_id=REGION, instance_type=TYPE, instance_name=token, client_token=token)


def _send(client, call: Call) -> None:  # noqa: ANN001
    if call.action == "CreateEai":
        body = client.create_eai(_create_request(call.target)).body
        call.instance_id = body.elastic_accelerated_instance_id
    elif call.action == "TagResources":
        key, value = call.tag
        body = client.tag_resources(m.TagResourcesRequest(
            region_id=REGION, resource_type="instance", resource_id=[call.target],
            tag=[m.TagResourcesRequestTag(key=key, value=value)]))
        body = body.body
    else:
        body = client.delete_eai(m.DeleteEaiRequest(region_id=REGION, elastic_accelerated_instance_id=call.target,
                                                    force=True)).body
    call.request_id = body.request_id


def classify(error: Exception) -> str:
    """A 4xx answer is a refusal (nothing applied); anything else (no answer, 5xx) is unknown."""
    status = getattr(error, "status_code", None) if isinstance(error, ResponseException) else None
    return REFUSED if isinstance(status, int) and 400 <= status < 500 else UNKNOWN


def client_loop(ledger: Ledger, make_client: Callable[[], object], up: threading.Event, stop: threading.Event,
                failures: list[str]) -> None:
    client = make_client()
    try:
        while not stop.is_set():
            if not up.wait(timeout=60):
                failures.append("the controller was not back within 60 s")
                return
            call = ledger.next_call()
            if call is None:
                return
            try:
                _send(client, call)
            except Exception as error:  # noqa: BLE001 - every failure is an outcome to record
                call.error = f"{type(error).__name__}: {str(error)[:300]}"
                ledger.finish(call, classify(error))
            else:
                ledger.finish(call, OK)
    except Exception as error:  # noqa: BLE001
        failures.append(f"client thread failed: {error!r}")


# ---------------------------------------------------------------------------------------------- the node


@dataclass
class RunningNode:
    agents: AgentsInThread
    lines: list[str]

    def close(self) -> None:
        self.agents.stop()


def start_node(controller: ControllerProcess) -> RunningNode:
    lines: list[str] = []
    request = node_registration("crash-node", REGION, ZONE, {TYPE: 2}, SLICES)
    trust = ControllerTrust.from_ca_file(controller.agent_ca_file)
    link = AsyncControllerLink(controller.grpc_target, request, NodeToken(controller.node_token), trust=trust)
    running = RunningNode(AgentsInThread([SimulatedNode(link, lines.append)]), lines)
    deadline = time.monotonic() + 20
    while not any("registered node crash-node" in line for line in lines):
        if time.monotonic() > deadline or not running.agents.alive():
            running.close()
            raise AssertionError(f"the simulated node did not register: {lines}")
        time.sleep(0.05)
    return running


# ---------------------------------------------------------------------------------------------- reading back


def describe_by_ids(client, ids: list[str]) -> dict[str, object]:  # noqa: ANN001
    found: dict[str, object] = {}
    for start in range(0, len(ids), 100):
        chunk = ids[start:start + 100]
        body = client.describe_eais(m.DescribeEaisRequest(
            region_id=REGION, elastic_accelerated_instance_ids=json.dumps(chunk), page_size=100)).body
        for item in body.instances.instance or []:
            found[item.elastic_accelerated_instance_id] = item
    return found


def list_all(client) -> tuple[int, list]:  # noqa: ANN001
    """Page through the unfiltered DescribeEais: (the TotalCount it states, every item it lists)."""
    items: list = []
    for page_number in range(1, 21):
        body = client.describe_eais(m.DescribeEaisRequest(region_id=REGION, page_size=100,
                                                          page_number=page_number)).body
        page = body.instances.instance or []
        items += page
        if len(page) < 100:
            return body.total_count, items
    raise AssertionError("more than 20 pages of instances")


def tags_of(item) -> dict[str, str]:  # noqa: ANN001
    tags = item.tags.tag if item.tags and item.tags.tag else []
    return {t.tag_key: t.tag_value for t in tags}


@dataclass
class Books:
    """The controller's database, read directly once the controller is down."""

    instances: dict[str, dict]
    transitions: dict[str, list[dict]]
    tags: dict[str, dict[str, str]]
    slices: list[dict]
    idempotency_tokens: set[str]


def read_books(db_url: str) -> Books:
    engine = create_engine(normalise_url(db_url))
    try:
        with engine.connect() as conn:
            instances = {r["id"]: dict(r) for r in conn.execute(text("SELECT * FROM instances")).mappings()}
            transitions: dict[str, list[dict]] = defaultdict(list)
            for row in conn.execute(text("SELECT * FROM transitions ORDER BY id")).mappings():
                transitions[row["instance_id"]].append(dict(row))
            tags: dict[str, dict[str, str]] = defaultdict(dict)
            for row in conn.execute(text("SELECT instance_id, key, value FROM instance_tags")).mappings():
                tags[row["instance_id"]][row["key"]] = row["value"]
            slices = [dict(r) for r in conn.execute(text("SELECT * FROM slices")).mappings()]
            tokens = set(conn.execute(text(
                "SELECT client_token FROM idempotency_records WHERE action = 'CreateEai'")).scalars())
    finally:
        engine.dispose()
    return Books(instances, dict(transitions), dict(tags), slices, tokens)


def instances_named(db_url: str, *, live_only: bool = False) -> dict[str, list[str]]:
    """Instance IDs per name (= ClientToken), read while the controller runs."""
    engine = create_engine(normalise_url(db_url))
    try:
        with engine.connect() as conn:
            live = " WHERE status <> 'Released'" if live_only else ""
            rows = conn.execute(text(f"SELECT name, id FROM instances{live}")).all()
    finally:
        engine.dispose()
    named: dict[str, list[str]] = defaultdict(list)
    for name, instance_id in rows:
        named[name].append(instance_id)
    return named


def chain_problems(instance: dict, rows: list[dict]) -> list[str]:
    """Why this instance's log is not a chain from creation to its current status ([] when it is)."""
    iid = instance["id"]
    if not rows:
        return [f"{iid}: no transition at all (status {instance['status']})"]
    problems = []
    if rows[0]["from_status"] is not None or rows[0]["event"] != "create" or rows[0]["to_status"] != "Pending":
        problems.append(f"{iid}: first row is {rows[0]['from_status']} -{rows[0]['event']}-> {rows[0]['to_status']}")
    for before, after in zip(rows, rows[1:]):
        if after["from_status"] != before["to_status"]:
            problems.append(f"{iid}: row {after['id']} starts from {after['from_status']} "
                            f"but row {before['id']} ended in {before['to_status']}")
        if before["to_status"] == "Released":
            problems.append(f"{iid}: row {after['id']} follows Released")
        if after["at_us"] < before["at_us"]:
            problems.append(f"{iid}: row {after['id']} is dated before row {before['id']}")
    if rows[-1]["to_status"] != instance["status"]:
        problems.append(f"{iid}: status {instance['status']} but the log ends in {rows[-1]['to_status']}")
    if (instance["status"] == "Released") != (instance["released_us"] is not None):
        problems.append(f"{iid}: status {instance['status']} with released_us {instance['released_us']}")
    return problems


def wait_until(check: Callable[[], bool], timeout_s: float, what: str, *, poll_s: float = 0.05) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"{what} not reached within {timeout_s}s"
        time.sleep(poll_s)


# ---------------------------------------------------------------------------------------------- the test


@pytest.fixture
def seed() -> int:
    return int(os.environ.get("EAIS_CRASH_SEED") or random.SystemRandom().randrange(1 << 30))


@pytest.mark.timeout(180)
def test_sigkilled_controller_loses_no_accepted_request_and_no_transition(db_url: str, tmp_path: Path, seed: int) -> None:
    phases = {"start": time.monotonic()}
    rng = random.Random(seed)
    state_dir = tmp_path / "state"
    key = create_account_cli(db_url, state_dir, "crash-tester", balance="1000")
    controller = ControllerProcess(db_url, state_dir, tmp_path / "controller.log")
    ledger = Ledger(random.Random(rng.random()))
    up, stop = threading.Event(), threading.Event()
    failures: list[str] = []
    workers: list[threading.Thread] = []
    node: RunningNode | None = None
    kills: list[dict] = []
    created: set[str] = set()

    def make_client():  # noqa: ANN202 - each thread its own client, 10 s at most per call
        return v3_client(controller.endpoint, key["AccessKeyId"], key["AccessKeySecret"],
                         connect_timeout=2000, read_timeout=10000)

    context = f"seed {seed} (EAIS_CRASH_SEED={seed}); controller log {controller.log_path}"
    try:
        controller.start()
        node = start_node(controller)
        phases["set-up"] = time.monotonic()
        up.set()
        workers = [threading.Thread(target=client_loop, args=(ledger, make_client, up, stop, failures),
                                    name=f"client-{n}", daemon=True) for n in range(CLIENT_THREADS)]
        for worker in workers:
            worker.start()

        # ---- the crashes: SIGKILL at a random moment with calls in flight, restart on the same DB and ports
        for round_number in range(KILLS):
            target = len(ledger.calls) + rng.randint(12, 22)
            wait_until(lambda: len(ledger.calls) >= target or failures, 60, f"call {target} of round {round_number}")
            wait_until(lambda: ledger.in_flight > 0 or len(ledger.calls) >= TOTAL_CALLS, 10, "a call in flight",
                       poll_s=0.001)
            time.sleep(rng.uniform(0, 0.04))  # about one call's time: anywhere from parsing to commit
            assert controller.alive(), f"the controller exited by itself: {controller.log_tail()}"
            up.clear()
            in_flight = ledger.in_flight
            controller.kill()
            kills.append({"after_calls": len(ledger.calls), "in_flight": in_flight})
            if round_number == 1:  # once, also while it starts up: migrations, statistics, binding
                controller.start(wait=False)
                time.sleep(rng.uniform(0.2, 1.2))
                assert controller.alive(), f"the controller exited by itself while starting: {controller.log_tail()}"
                controller.kill()
                kills.append({"during_start_up": True})
            controller.start()
            up.set()

        for worker in workers:
            worker.join(timeout=90)
        assert not any(w.is_alive() for w in workers), "client threads did not finish"
        assert not failures, failures
        phases["calls and kills"] = time.monotonic()

        # ---- the last crash and restart, then read everything back
        assert controller.alive(), f"the controller exited by itself: {controller.log_tail()}"
        controller.kill()
        controller.start()
        client = make_client()
        created = verify_after_restart(db_url, client, ledger, context)
        phases["restart, check and retry"] = time.monotonic()

        # ---- the node comes back and drives every live instance to Available
        # (the agent's own reconnect backoff makes this take from 2 to about 20 seconds)
        wait_until(lambda: all(i.status == "Available" for i in list_all(client)[1]), 45,
                   "every live instance Available after the restarts", poll_s=0.25)
        phases["all Available"] = time.monotonic()

        # ---- the unfiltered listing and its TotalCount agree with the instances stored
        total, items = list_all(client)
        stored = [i for ids in instances_named(db_url, live_only=True).values() for i in ids]
        assert total == len(items) == len(stored), (
            f"DescribeEais TotalCount {total}, {len(items)} listed, {len(stored)} live instances stored; {context}")
        assert sorted(i.elastic_accelerated_instance_id for i in items) == sorted(stored), context

        assert controller.alive(), f"the controller exited by itself: {controller.log_tail()}"
    finally:
        stop.set()
        up.set()
        if node is not None:
            node.close()
        controller.kill()
        for worker in workers:
            worker.join(timeout=15)

    books = verify_books(db_url, ledger, context)
    phases["stop and read the books"] = time.monotonic()
    counts: dict[str, int] = defaultdict(int)
    for call in ledger.calls:
        counts[f"{call.action} {call.outcome}"] += 1
    applied = [c.number for c in ledger.calls if c.outcome == UNKNOWN and was_applied(c, books, created)]
    marks = list(phases.items())
    durations = ", ".join(f"{name} {end - start:.1f}s" for (_, start), (name, end) in zip(marks, marks[1:]))
    print(f"\ncrash test: {context}\n  kills {kills}\n  outcomes {dict(sorted(counts.items()))}; "
          f"cut-off calls that took effect anyway: {applied}\n  {durations}")
    for call in ledger.calls:
        if call.outcome != OK:
            print(f"  #{call.number} {call.action} {call.target} {call.outcome}: {call.error}")
    # The crashes must actually have cut calls off; otherwise this test proved nothing.
    assert ledger.of("CreateEai", OK) and ledger.of("DeleteEai", OK) and ledger.of("TagResources", OK), counts
    assert any(c.outcome == UNKNOWN for c in ledger.calls), f"no call was cut off by a kill: {kills}; {context}"


def verify_after_restart(db_url: str, client, ledger: Ledger, context: str) -> set[str]:  # noqa: ANN001
    """Check what the API shows, then retry every CreateEai; the tokens that had made an instance before."""
    creates = ledger.of("CreateEai")
    answered_ids = {c.instance_id for c in creates if c.outcome == OK}
    deletes_sent = {c.target: c for c in ledger.of("DeleteEai")}

    # Every answered create is listed, unless a DeleteEai was sent for it; every answered delete took.
    listed = describe_by_ids(client, sorted(answered_ids))
    for call in ledger.of("CreateEai", OK):
        delete = deletes_sent.get(call.instance_id)
        if delete is None:
            assert call.instance_id in listed, f"answered CreateEai #{call.number} {call.instance_id} is gone; {context}"
        elif delete.outcome == OK:
            assert call.instance_id not in listed, f"answered DeleteEai #{delete.number} did not take; {context}"

    # Every answered tag is visible on the instances still listed.
    for call in ledger.of("TagResources", OK):
        if call.target in listed:
            key, value = call.tag
            assert tags_of(listed[call.target]).get(key) == value, (
                f"answered TagResources #{call.number} {call.tag} not on {call.target}: "
                f"{tags_of(listed[call.target])}; {context}")

    # Retrying each CreateEai with its ClientToken answers the instance made before, or makes exactly one.
    before = instances_named(db_url)
    for call in creates:
        existing = before.get(call.target, [])
        assert len(existing) <= 1, f"ClientToken {call.target} made {existing}; {context}"
        if call.outcome == OK:
            assert existing == [call.instance_id], f"answered CreateEai #{call.number}: {existing}; {context}"
        if call.outcome == REFUSED:
            assert existing == [], f"refused CreateEai #{call.number} ({call.error}) made {existing}; {context}"
        again = client.create_eai(_create_request(call.target)).body.elastic_accelerated_instance_id
        if existing:
            assert again == existing[0], (f"retrying CreateEai #{call.number} ({call.outcome}) answered {again}, "
                                          f"not {existing[0]}; {context}")
        call_again = client.create_eai(_create_request(call.target)).body.elastic_accelerated_instance_id
        assert call_again == again, f"ClientToken {call.target} answered {again} then {call_again}; {context}"
    after = instances_named(db_url)
    duplicates = {c.target: after.get(c.target) for c in creates if len(after.get(c.target, [])) != 1}
    assert not duplicates, f"tokens without exactly one instance after the retries: {duplicates}; {context}"
    return {c.target for c in creates if before.get(c.target)}


def was_applied(call: Call, books: Books, created_before_retry: set[str]) -> bool:
    if call.action == "CreateEai":
        return call.target in created_before_retry
    if call.action == "DeleteEai":
        return books.instances[call.target]["status"] == "Released"
    key, value = call.tag
    return books.tags.get(call.target, {}).get(key) == value


def verify_books(db_url: str, ledger: Ledger, context: str) -> Books:
    books = read_books(db_url)

    # The log: one chain per instance, from creation to the instance's status.
    problems = [p for iid, row in books.instances.items() for p in chain_problems(row, books.transitions.get(iid, []))]
    orphans = set(books.transitions) - set(books.instances)
    assert not problems and not orphans, f"log problems: {problems[:20]}, rows of no instance: {orphans}; {context}"

    # Answered requests are in the log under their own RequestId.
    for call in ledger.of("CreateEai", OK):
        first = books.transitions[call.instance_id][0]
        assert first["request_id"] == call.request_id, f"CreateEai #{call.number}: {first}; {context}"
    for call in ledger.of("DeleteEai", OK):
        instance = books.instances[call.target]
        assert instance["status"] == "Released", f"answered DeleteEai #{call.number}: {instance['status']}; {context}"
        release = [r for r in books.transitions[call.target] if r["event"] == "release"]
        assert [r["request_id"] for r in release] == [call.request_id], f"DeleteEai #{call.number}: {release}; {context}"
    deleted = {c.target for c in ledger.of("DeleteEai")}
    for iid, instance in books.instances.items():
        if instance["status"] == "Released":
            assert iid in deleted, f"{iid} is Released but no DeleteEai was sent for it; {context}"
    for call in ledger.of("TagResources", OK):
        key, value = call.tag
        assert books.tags.get(call.target, {}).get(key) == value, f"TagResources #{call.number} lost; {context}"

    # Idempotency records exist exactly for the tokens that made an instance.
    tokens = {c.target for c in ledger.of("CreateEai")}
    assert books.idempotency_tokens == tokens, (
        f"records without calls: {books.idempotency_tokens - tokens}, calls without: {tokens - books.idempotency_tokens}")

    # Slices and instances agree: a live instance holds its slice, a released one holds none.
    holders = {s["instance_id"]: s["id"] for s in books.slices if s["instance_id"] is not None}
    for iid, instance in books.instances.items():
        if instance["status"] == "Released":
            assert instance["slice_id"] is None and iid not in holders, f"{iid}: released but holds a slice; {context}"
        else:
            held = holders.get(iid)
            assert instance["slice_id"] is not None and held == instance["slice_id"], (
                f"{iid} ({instance['status']}): slice {instance['slice_id']}, but the slices say {held}; {context}")

    if is_sqlite(normalise_url(db_url)):
        path = normalise_url(db_url).split("///", 1)[1]
        with closing(sqlite3.connect(path)) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)], context
            assert conn.execute("PRAGMA foreign_key_check").fetchall() == [], context
    return books
