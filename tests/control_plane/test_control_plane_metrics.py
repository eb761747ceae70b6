"""What an operator's Prometheus reads from a running controller about its agents, attaches and reconciler."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
from alibabacloud_eais20190624 import models as m
from prometheus_client.parser import text_string_to_metric_families

from tests.control_plane.cluster import REGION, Cluster, eventually, status


def _scrape(cluster: Cluster) -> dict[tuple[str, tuple], float]:
    text = httpx.get(f"http://{cluster.controllers[0].endpoint}/metrics", timeout=10, trust_env=False).text
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def test_metrics_show_agents_streams_heartbeats_attach_latency_and_the_lease_holder(tmp_path: Path) -> None:
    cluster = Cluster(f"sqlite:///{tmp_path}/controller.db", tmp_path)
    try:
        cluster.start()
        node, vm = cluster.node("node-m", via=[0]), cluster.vm("i-metr0001", via=[0])
        cluster.run(node, vm)
        instance_id = cluster.create()
        cluster.client().attach_eai(m.AttachEaiRequest(region_id=REGION, elastic_accelerated_instance_id=instance_id,
                                                       client_instance_id="i-metr0001"))
        eventually(lambda: status(cluster.client(), instance_id) == "InUse", 10, "InUse")
        eventually(lambda: vm.beats.answered and node.beats.answered, 20, "both agents beat once")
        time.sleep(1.5)  # the heartbeat batch reaches the database

        metrics = _scrape(cluster)

        assert metrics[("eais_agents", (("kind", "node"), ("state", "online")))] == 1
        assert metrics[("eais_agents", (("kind", "vm"), ("state", "online")))] == 1
        assert metrics[("eais_agent_link_streams", ())] == 2
        assert metrics[("eais_agent_heartbeats_total", (("kind", "vm"), ("timeliness", "on_time")))] >= 1
        assert metrics[("eais_attach_seconds_count", ())] == 1 and 0 < metrics[("eais_attach_seconds_sum", ())] < 5
        assert metrics[("eais_instances", (("instance_type", "eais.ei-a6.medium"), ("status", "InUse")))] == 1
        holder = next(labels for (name, labels) in metrics if name == "eais_reconciler_lease_info")
        assert dict(holder)["holder"].split(":")[1] == str(cluster.controllers[0].process.pid)
        assert metrics[("eais_reconciler_leading", ())] == 1
        assert any(name == "eais_gc_pause_seconds_count" for name, _ in metrics)
    finally:
        cluster.stop()
