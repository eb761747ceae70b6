"""The link between the VM and the node's gateway cut (packets vanish, no reset), the node itself alive
and heartbeating over its own link to the controller: the call in flight fails and the instance leaves
InUse within 5 s, the VM agent naming the unreachable gateway; billing stops there."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from eais_plumbing.endpoint_status import query_endpoint_status
from tests.faults.cluster import FaultCluster
from tests.harness.netns import TestHosts

pytestmark = pytest.mark.slow
DATA, CONTROL = 0, 1  # links between the host (controller, VM agent) and the node's namespace


@pytest.fixture
def node_apart(tmp_path: Path) -> Iterator[tuple[FaultCluster, TestHosts]]:
    hosts = TestHosts.make("node")
    node = hosts.namespace("node")
    hosts.link(DATA, node, None)
    hosts.link(CONTROL, node, None)
    controller_here = hosts.address(CONTROL, 2)  # the VM agent still dials it on loopback
    cluster = FaultCluster(
        tmp_path, node_prefix=hosts.exec_in(node), node_advertise=hosts.address(DATA, 1),
        node_controller_host=controller_here,
        controller_args=("--grpc-host", "0.0.0.0", "--grpc-tls-name", "127.0.0.1", "--grpc-tls-name", controller_here))
    try:
        yield cluster.start(), hosts
    finally:
        cluster.stop()
        hosts.close()


def test_a_cut_link_to_the_gateway_fails_the_call_and_takes_the_instance_out_of_use_within_5s(
        node_apart, tf_app) -> None:
    cluster, hosts = node_apart
    instance = cluster.attached_instance()
    app = tf_app("long", 60, endpoint=cluster.tf_endpoint)
    app.wait_for("in_flight", 30)
    time.sleep(0.5)

    cut_at = time.time()
    hosts.cut(DATA, 1)  # the node's end of the data link: the VM's packets vanish
    call = app.wait_for("call", 15)
    lost = cluster.first_transition(instance, "channel_lost", 15)
    status = query_endpoint_status(cluster.tf_endpoint)
    print(f"figures: link cut; the call failed after {call['at'] + call['seconds'] - cut_at:.2f}s, "
          f"Unavailable after {lost.at_us / 1e6 - cut_at:.2f}s")

    assert not call["ok"] and call["at"] + call["seconds"] - cut_at < 5.0
    assert lost.at_us / 1e6 - cut_at < 5.0
    assert f"node gateway {hosts.address(DATA, 1)}" in lost.reason and "timed out" in lost.reason
    assert "lost its data path" in status["message"]
    assert cluster.node.alive
    cluster.assert_unbilled_from(instance, lost)

