"""Three ``eais-controller serve`` replicas on one PostgreSQL are one service (real processes, SIGKILL).

Agents dial the replicas they are given and move to the next when one stops answering; a change
committed on any replica reaches the agents of every other one by NOTIFY; one replica reconciles
under the lease, and another takes over when it dies.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from alibabacloud_eais20190624 import models as m
from sqlalchemy import create_engine, text

from controller.db import normalise_url
from tests.conftest import fresh_pg_database
from tests.control_plane.cluster import REGION, Cluster, assert_chain, eventually, status, transitions

pytestmark = pytest.mark.postgres

FAST_AGENTS = """
[lifecycle]
heartbeat_interval_s = 1.0
heartbeat_jitter_s = 0.5
heartbeat_grace_s = 2.0
attaching_deadline_s = 4.0
"""


@pytest.fixture
def pg_url(pg_admin_url: str) -> Iterator[str]:
    yield from fresh_pg_database(pg_admin_url)


@pytest.fixture
def cluster(pg_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Cluster]:
    config = getattr(request, "param", "")
    serve_args = ()
    if config:
        (tmp_path / "controller.toml").write_text(config)
        serve_args = ("--config", str(tmp_path / "controller.toml"))
    cluster = Cluster(pg_url, tmp_path, replicas=3, serve_args=serve_args)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


def test_an_attach_through_one_replica_reaches_a_vm_connected_to_another_at_once(cluster: Cluster) -> None:
    cluster.run(cluster.node("node-c", via=[2]), cluster.vm("i-onb0001", via=[1]))
    instance_id = cluster.create(replica=0)

    sent = time.monotonic()
    cluster.client(0).attach_eai(m.AttachEaiRequest(region_id=REGION, elastic_accelerated_instance_id=instance_id,
                                                    client_instance_id="i-onb0001"))

    seen = eventually(lambda: cluster.said.first(f"instance {instance_id}", after=sent), 5,
                      "the VM on replica 1 hears of the attach made through replica 0")
    print(f"AttachEai sent to replica 0 reached the VM on replica 1 {1000 * (seen - sent):.0f} ms later")
    assert seen - sent < 1.0  # NOTIFY, not the 5 s resync
    eventually(lambda: status(cluster.client(2), instance_id) == "InUse", 5, "InUse, seen through replica 2")


def test_a_replica_killed_mid_attaching_loses_nothing_and_its_agents_move_on(cluster: Cluster) -> None:
    cluster.run(cluster.node("node-c", via=[2]), cluster.vm("i-onb0002", via=[1, 2], prove_after_s=2.0))
    instance_id = cluster.create(replica=0)
    cluster.client(0).attach_eai(m.AttachEaiRequest(region_id=REGION, elastic_accelerated_instance_id=instance_id,
                                                    client_instance_id="i-onb0002"))
    eventually(lambda: cluster.said.first(f"instance {instance_id} is Attaching"), 5, "the VM sees Attaching")

    cluster.controllers[1].kill()  # the VM's replica, while its channel is still being proven

    eventually(lambda: status(cluster.client(0), instance_id) == "InUse", 20, "InUse after the VM moved to replica 2")
    log = transitions(cluster.db_url, instance_id)
    assert_chain(log)
    assert [event for _, _, event in log].count("attach_ready") == 1


def _leader_pid(db_url: str) -> int | None:
    engine = create_engine(normalise_url(db_url))
    try:
        with engine.connect() as connection:
            holder = connection.execute(text("SELECT holder FROM leases WHERE name = 'reconciler' AND "
                                             "expires_us > EXTRACT(EPOCH FROM clock_timestamp()) * 1000000")).scalar()
    finally:
        engine.dispose()
    return int(holder.split(":")[1]) if holder else None


def _timed_out(db_url: str) -> int:
    engine = create_engine(normalise_url(db_url))
    try:
        with engine.connect() as connection:
            return connection.execute(text("SELECT count(*) FROM transitions WHERE event = 'attach_timeout'")).scalar()
    finally:
        engine.dispose()


@pytest.mark.parametrize("cluster", [FAST_AGENTS], indirect=True)
def test_the_leader_killed_mid_reconcile_is_replaced_and_every_timeout_happens_once(cluster: Cluster) -> None:
    stuck = 24
    vms = [cluster.vm(f"i-stuck{n:04d}", via=[n % 3, (n + 1) % 3], prove_after_s=math.inf) for n in range(stuck)]
    cluster.run(cluster.node("node-x", via=[0, 1, 2], slices=stuck), *vms, timeout_s=60)
    instances = [cluster.create(replica=n % 3) for n in range(stuck)]
    for n, instance_id in enumerate(instances):  # channels never open: every attach times out together
        cluster.client(n % 3).attach_eai(m.AttachEaiRequest(
            region_id=REGION, elastic_accelerated_instance_id=instance_id, client_instance_id=f"i-stuck{n:04d}"))
    leader = eventually(lambda: _leader_pid(cluster.db_url), 10, "a replica holds the reconciler lease")
    eventually(lambda: _timed_out(cluster.db_url) > 0, 30, "the leader starts timing the attaches out", poll_s=0.005)

    killed_at = time.monotonic()
    next(c for c in cluster.controllers if c.process.pid == leader).kill()

    successor = eventually(lambda: (pid := _leader_pid(cluster.db_url)) and pid != leader and pid, 20,
                           "another replica takes the lease")
    print(f"lease taken over {time.monotonic() - killed_at:.1f}s after the leader was killed "
          f"({_timed_out(cluster.db_url)} of {stuck} timeouts done by then)")
    assert time.monotonic() - killed_at <= 15 and successor != leader
    eventually(lambda: _timed_out(cluster.db_url) == stuck, 30, "every stuck attach timed out")
    for instance_id in instances:
        log = transitions(cluster.db_url, instance_id)
        assert_chain(log)
        assert [event for _, _, event in log].count("attach_timeout") == 1 and log[-1][1] == "Available"


def test_a_read_only_database_answers_writes_with_a_clear_code_and_reads_go_on(cluster: Cluster, pg_url: str) -> None:
    cluster.run(cluster.node("node-ro", via=[0]))
    before = cluster.create(replica=0)
    name = pg_url.rpartition("/")[2]
    admin = create_engine(normalise_url(os.environ["EAIS_TEST_PG_URL"]), isolation_level="AUTOCOMMIT")

    def read_only(on: bool) -> None:
        with admin.connect() as connection:
            connection.execute(text(f'ALTER DATABASE "{name}" SET default_transaction_read_only = {"on" if on else "off"}'))
            connection.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                    "WHERE datname = :name AND pid <> pg_backend_pid()"), {"name": name})

    try:
        read_only(True)
        refused = eventually(lambda: _refusal(lambda: cluster.client(0).create_eai(
            m.CreateEaiRequest(region_id=REGION, instance_type="eais.ei-a6.medium"))), 10, "CreateEai is refused")
        described = eventually(lambda: _answer(lambda: status(cluster.client(1), before)), 10, "DescribeEais answers")
    finally:
        read_only(False)
        admin.dispose()

    assert (refused.code, refused.statusCode) == ("ServiceUnavailable.StorageReadOnly", 503)
    assert "read-only" in refused.message and described == "Available"
    eventually(lambda: _answer(lambda: status(cluster.client(0), before)), 10, "replica 0 reads again")
    eventually(lambda: _answer(lambda: cluster.client(0).create_eai(
        m.CreateEaiRequest(region_id=REGION, instance_type="eais.ei-a6.medium"))), 10, "CreateEai works again")


def _refusal(call):
    """The SDK's error for ``call``, once it is not the one a connection the server dropped gives."""
    try:
        call()
    except Exception as error:  # noqa: BLE001
        return None if getattr(error, "code", "") == "ServiceUnavailable.Database" else error
    raise AssertionError("the call was not refused")


def _answer(call):
    """The call's answer, or None while it fails because a connection the server dropped is replaced."""
    try:
        return call()
    except Exception as error:
        if getattr(error, "code", "") == "ServiceUnavailable.Database":
            return None
        raise
