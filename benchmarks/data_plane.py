"""Data-plane benchmark: TensorFlow (a) straight to a worker, (b) through VM agent + node gateway,
(c) on the local CPU; and how long CreateEai → Available and AttachEai → InUse take.

    python -m benchmarks.data_plane        (or: make bench)

Everything runs on this machine, side by side in one run: (a) a bare worker on loopback, (b) a
whole `eais up` cluster (controller, node agent with its TLS gateway and a netns-isolated worker,
VM agent) with an instance attached to this host, (c) no remote at all. Figures are printed; the
goals are (b) within 1.2x of (a) on p50 call latency and at least 0.85x of its throughput, and
AttachEai → InUse at most 1 s p50 with the warm pool.
"""

from __future__ import annotations

import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from alibabacloud_eais20190624 import models

from eais_cli.local_cluster import ClusterOptions, LocalCluster
from eais_cli.sdk import client_from_credentials, wait_for_status

CYCLES = 5
POOL_REFILL_S = 8.0  # one TensorFlow import on 2 cores, with margin


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_client(target: str) -> dict[str, float]:
    done = subprocess.run([sys.executable, "-m", "benchmarks.tensor_client", "--target", target],
                          capture_output=True, text=True, timeout=600)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        raise RuntimeError(f"tensor client for {target} failed:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1])


def direct_worker() -> dict[str, float]:
    port = free_port()
    worker = subprocess.Popen([sys.executable, "-m", "benchmarks.plain_worker", str(port)],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        if worker.stdout.readline().strip() != "ready":
            raise RuntimeError("the bare worker did not start")
        return run_client(f"127.0.0.1:{port}")
    finally:
        worker.kill()
        worker.wait()


def through_agents() -> tuple[dict[str, float], dict[str, list[float]]]:
    with tempfile.TemporaryDirectory(prefix="eais-bench-") as directory:
        cluster = LocalCluster(ClusterOptions(Path(directory), free_port(), free_port(), free_port(), free_port(),
                                              backend="cpu"))
        try:
            cluster.start()
            cluster.wait_until_ready()
            timings = lifecycle_timings(cluster, "warm pool", CYCLES, pause_s=POOL_REFILL_S)
            timings |= lifecycle_timings(cluster, "back to back", 3, pause_s=0.0)
            _create_and_attach(cluster)
            return run_client(cluster.tf_endpoint), timings
        finally:
            cluster.stop()


def lifecycle_timings(cluster: LocalCluster, label: str, cycles: int, pause_s: float) -> dict[str, list[float]]:
    """Create → Available, attach → InUse, detach → Available, ``cycles`` times, ``pause_s`` apart."""
    creds = cluster.credentials
    client, region = client_from_credentials(creds), creds["RegionId"]
    timings: dict[str, list[float]] = {f"{label}: {name}": [] for name in ("create → Available", "attach → InUse",
                                                                           "detach → Available")}
    for _ in range(cycles):
        time.sleep(pause_s)  # the node refills its warm pool (one TensorFlow import) meanwhile
        instance, created_s, attached_s = _create_and_attach(cluster)
        timings[f"{label}: create → Available"].append(created_s)
        timings[f"{label}: attach → InUse"].append(attached_s)
        started = time.monotonic()
        client.detach_eai(models.DetachEaiRequest(region_id=region, elastic_accelerated_instance_id=instance))
        wait_for_status(client, region, instance, "Available", 60)
        timings[f"{label}: detach → Available"].append(time.monotonic() - started)
        client.delete_eai(models.DeleteEaiRequest(region_id=region, elastic_accelerated_instance_id=instance))
    return timings


def _create_and_attach(cluster: LocalCluster) -> tuple[str, float, float]:
    creds = cluster.credentials
    client, region = client_from_credentials(creds), creds["RegionId"]
    started = time.monotonic()
    instance = client.create_eai(models.CreateEaiRequest(
        region_id=region, instance_type="eais.ei-a6.xlarge", instance_name="bench",
        v_switch_id=creds["VSwitchId"])).body.elastic_accelerated_instance_id
    wait_for_status(client, region, instance, "Available", 60)
    created_s, started = time.monotonic() - started, time.monotonic()
    client.attach_eai(models.AttachEaiRequest(region_id=region, elastic_accelerated_instance_id=instance,
                                              client_instance_id=creds["ClientInstanceId"]))
    wait_for_status(client, region, instance, "InUse", 60)
    return instance, created_s, time.monotonic() - started


def main() -> None:
    print("data plane: (a) bare worker ...", flush=True)
    direct = direct_worker()
    print("data plane: (b) eais up cluster, CPU backend, through VM agent + TLS gateway ...", flush=True)
    relayed, timings = through_agents()
    print("data plane: (c) local CPU ...", flush=True)
    local = run_client("local")
    print(f"\n{'':34s}{'call p50':>10s}{'call p99':>10s}{'batch p50':>11s}{'MB/s':>9s}")
    for name, row in (("(a) TF straight to a worker", direct), ("(b) via VM agent + node gateway", relayed),
                      ("(c) local CPU", local)):
        print(f"{name:34s}{row['call_p50_ms']:>8.2f}ms{row['call_p99_ms']:>8.2f}ms"
              f"{row['batch_p50_ms']:>9.1f}ms{row['throughput_mb_s']:>9.0f}")
    print(f"\n(b)/(a) p50 call latency: {relayed['call_p50_ms'] / direct['call_p50_ms']:.2f}x  (goal <= 1.2x)")
    print(f"(b)/(a) tensor throughput: {relayed['throughput_mb_s'] / direct['throughput_mb_s']:.2f}x  (goal >= 0.85x)")
    for name, values in timings.items():
        if values:
            print(f"{name:34s} p50 {statistics.median(values):.2f}s, max {max(values):.2f}s over {len(values)}")


if __name__ == "__main__":
    main()
