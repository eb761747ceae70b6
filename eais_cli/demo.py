"""``eais up --demo``: once the local cluster is ready, walk one instance through its whole life.

CreateEai → Available → AttachEai to this host → InUse → a small Keras model through the
accelerator, checked against local execution → DetachEai → Available → DeleteEai, each step
through the official SDK, with its time, and the bill so far at the end.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from decimal import Decimal

from alibabacloud_eais20190624 import models

from controller.ledger import running_charges
from controller.money import from_micro
from eais_cli.local_cluster import LocalCluster
from eais_cli.say import say
from eais_cli.sdk import client_from_credentials, wait_for_status

DEMO_TYPE = "eais.ei-a6.xlarge"


class DemoFailed(RuntimeError):
    """A demo step did not give the expected result."""


@dataclass
class DemoReport:
    steps: dict[str, float] = field(default_factory=dict)
    model: dict[str, object] = field(default_factory=dict)
    bill_cny: Decimal = Decimal(0)


def run_demo(cluster: LocalCluster, *, status_timeout_s: float = 60.0) -> DemoReport:
    creds = cluster.credentials
    client, region, vm = client_from_credentials(creds), creds["RegionId"], creds["ClientInstanceId"]
    report = DemoReport()
    started = time.monotonic()
    instance_id = client.create_eai(models.CreateEaiRequest(
        region_id=region, instance_type=DEMO_TYPE, instance_name="eais-up-demo", v_switch_id=creds["VSwitchId"],
        client_token=f"eais-up-demo-{int(time.time())}",
    )).body.elastic_accelerated_instance_id
    report.steps["create→Available"] = time.monotonic() - started
    report.steps["create→Available"] += wait_for_status(client, region, instance_id, "Available", status_timeout_s)
    say(f"demo: CreateEai {DEMO_TYPE} → {instance_id} Available in {report.steps['create→Available']:.2f} s")
    try:
        _attach_run_detach(cluster, client, region, instance_id, vm, report, status_timeout_s)
    finally:
        client.delete_eai(models.DeleteEaiRequest(region_id=region, elastic_accelerated_instance_id=instance_id,
                                                  force=True))
        say(f"demo: DeleteEai {instance_id} (released; billing for it stops)")
    charges = running_charges(cluster.ctx, creds["AccountId"])
    report.bill_cny = from_micro(charges.amount_micro)
    say(f"demo: bill so far for account {creds['AccountId']}: {report.bill_cny} CNY "
        f"({len(charges.items)} open item(s); billed per second from the transition log)")
    return report


def _attach_run_detach(cluster: LocalCluster, client, region: str, instance_id: str, vm: str,  # noqa: ANN001
                       report: DemoReport, timeout_s: float) -> None:
    started = time.monotonic()
    client.attach_eai(models.AttachEaiRequest(region_id=region, elastic_accelerated_instance_id=instance_id,
                                              client_instance_id=vm))
    report.steps["attach→InUse"] = time.monotonic() - started + wait_for_status(
        client, region, instance_id, "InUse", timeout_s)
    say(f"demo: AttachEai {instance_id} → {vm} InUse in {report.steps['attach→InUse']:.2f} s")
    report.model = run_model(cluster.tf_endpoint)
    say(f"demo: Keras model (64→128→10, batch 32) on {report.model['device']}: "
        f"{'same result as local' if report.model['equal'] else 'DIFFERENT from local'} "
        f"(max |diff| {report.model['max_abs_diff']:.1e}); latency p50 {report.model['p50_ms']:.1f} ms")
    if not report.model["equal"]:
        raise DemoFailed("the remote result differs from local execution")
    started = time.monotonic()
    client.detach_eai(models.DetachEaiRequest(region_id=region, elastic_accelerated_instance_id=instance_id))
    report.steps["detach→Available"] = time.monotonic() - started + wait_for_status(
        client, region, instance_id, "Available", timeout_s)
    say(f"demo: DetachEai {instance_id} → Available in {report.steps['detach→Available']:.2f} s")


def run_model(tf_endpoint: str, timeout_s: float = 120.0) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-m", "eais_cli.demo_model", "--endpoint", tf_endpoint],
                          capture_output=True, text=True, timeout=timeout_s)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise DemoFailed(f"the model run failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
    return json.loads(lines[-1])
