"""The controller killed (SIGKILL): TensorFlow traffic keeps flowing while it is away, and an attach it
was in the middle of completes once it is back (no instance stuck in Attaching, calls work)."""

from __future__ import annotations

import time

import pytest
from alibabacloud_eais20190624 import models

from tests.faults.cluster import REGION, VM_ID, FaultCluster

pytestmark = pytest.mark.slow


def test_calls_keep_working_while_the_controller_is_down(cluster: FaultCluster, tf_app) -> None:
    instance = cluster.attached_instance()
    app = tf_app("loop", 30)
    app.wait_for("call", 30)

    killed_at = time.time()
    cluster.controller.kill()
    time.sleep(5.0)
    cluster.controller.start()
    back_at = time.time()
    time.sleep(1.0)

    during = [c for c in app.calls() if killed_at < c["at"] < back_at]
    assert len(during) > 20 and all(c["ok"] for c in during), [c for c in during if not c["ok"]][:3]
    assert cluster.eais.status(instance) == "InUse"


def test_an_attach_the_controller_was_killed_in_the_middle_of_completes_when_it_is_back(
        cluster: FaultCluster, tf_app) -> None:
    instance = cluster.eais.create()

    cluster.eais.client.attach_eai(models.AttachEaiRequest(region_id=REGION, elastic_accelerated_instance_id=instance,
                                                           client_instance_id=VM_ID))
    cluster.controller.kill()
    time.sleep(2.0)
    cluster.controller.start()
    in_use_after_s = cluster.eais.wait_until(instance, "InUse", 30)
    app = tf_app("loop", 3)
    app.wait_for("done", 30)
    print(f"figures: attach completed {in_use_after_s:.2f}s after the controller was back")

    assert in_use_after_s < 10.0
    assert app.calls() and all(call["ok"] for call in app.calls())
    assert [t.event for t in cluster.transitions(instance)][-2:] == ["attach", "attach_ready"]
