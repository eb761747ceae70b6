"""The node agent killed (SIGKILL) under a call in flight: the call fails within a second, the instance
leaves InUse within 5 s (Unavailable, naming what failed), billing stops there, and the VM's endpoint says
the data path was lost. A node agent started again gets the slice back: the instance is Available again."""

from __future__ import annotations

import time

import pytest

from eais_plumbing.endpoint_status import query_endpoint_status
from tests.faults.cluster import FaultCluster

pytestmark = pytest.mark.slow


def test_a_killed_node_fails_the_call_at_once_and_the_instance_is_unavailable_and_unbilled_within_5s(
        cluster: FaultCluster, tf_app) -> None:
    instance = cluster.attached_instance()
    app = tf_app("long", 30)
    app.wait_for("in_flight", 30)
    time.sleep(0.5)  # the long call is on the worker now

    killed_at = time.time()
    cluster.node.kill()
    call = app.wait_for("call", 10)
    lost = cluster.first_transition(instance, "channel_lost", 10)
    status = query_endpoint_status(cluster.tf_endpoint)
    print(f"figures: node killed; the call failed after {call['at'] + call['seconds'] - killed_at:.2f}s, "
          f"Unavailable after {lost.at_us / 1e6 - killed_at:.2f}s")

    assert not call["ok"] and call["error"] == "AcceleratorLost"
    assert call["at"] + call["seconds"] - killed_at < 1.0
    assert lost.at_us / 1e6 - killed_at < 5.0
    assert (lost.from_status, lost.to_status) == ("InUse", "Unavailable")
    assert "reported the channel" in lost.reason and "cannot reach node gateway" in lost.reason
    assert not status["healthy"] and "lost its data path" in status["message"]
    assert "detached" not in status["message"]
    cluster.assert_unbilled_from(instance, lost)

    cluster.node.start()
    cluster.eais.wait_until(instance, "Available", 120)
