"""Data-plane benchmark: TensorFlow (a) straight to a worker, (b) through VM agent + node gateway,
(c) on the local CPU; and how long CreateEai -> Available and AttachEai -> InUse take, back to back.

    python -m benchmarks.data_plane [--rounds 3] [--calls 1000] [--cycles 30]      (or: make bench)

Everything runs on this machine, side by side in one run: (a) a bare worker on loopback, (b) a
whole ``eais up`` cluster (controller, node agent with its TLS gateway and a netns-isolated worker
forked from its fork server, VM agent) with an instance attached to this host, (c) no remote at
all. One TensorFlow client visits (a), (b) and (c) in turn, ``--rounds`` times. Goals: (b) within
1.2x of (a) on p50 call latency and 1.5x on p99, at least 0.85x of its throughput; AttachEai ->
InUse at most 1 s p99 back to back (each cycle creates, attaches, detaches and deletes at once).
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from alibabacloud_eais20190624 import models

from eais_cli.local_cluster import ClusterOptions, LocalCluster
from eais_cli.sdk import client_from_credentials, wait_for_status

CLIENT_TIMEOUT_S = 1800


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_clients(targets: list[str], *, rounds: int = 1, calls: int = 1000) -> dict[str, dict]:
    """benchmarks.tensor_client against ``targets`` in turn, ``rounds`` times; its figures per target."""
    command = [sys.executable, "-m", "benchmarks.tensor_client", "--rounds", str(rounds), "--calls", str(calls)]
    command += [arg for target in targets for arg in ("--target", target)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=CLIENT_TIMEOUT_S)
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or len(rows) != len(targets):
        raise RuntimeError(f"tensor client for {targets} failed:\n{done.stderr[-3000:]}")
    return {row["target"]: row for row in rows}


def start_worker() -> tuple[subprocess.Popen, str]:
    port = free_port()
    worker = subprocess.Popen([sys.executable, "-m", "benchmarks.plain_worker", str(port)],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    if worker.stdout.readline().strip() != "ready":
        raise RuntimeError("the bare worker did not start")
    return worker, f"127.0.0.1:{port}"


def attach_cycles(cluster: LocalCluster, cycles: int) -> dict[str, list[float]]:
    """Create -> Available, attach -> InUse, detach -> Available, ``cycles`` times back to back."""
    creds = cluster.credentials
    client, region = client_from_credentials(creds), creds["RegionId"]
    timings: dict[str, list[float]] = {"create -> Available": [], "attach -> InUse": [], "detach -> Available": []}
    for _ in range(cycles):
        instance, created_s, attached_s = create_and_attach(cluster)
        timings["create -> Available"].append(created_s)
        timings["attach -> InUse"].append(attached_s)
        started = time.monotonic()
        client.detach_eai(models.DetachEaiRequest(region_id=region, elastic_accelerated_instance_id=instance))
        wait_for_status(client, region, instance, "Available", 60)
        timings["detach -> Available"].append(time.monotonic() - started)
        client.delete_eai(models.DeleteEaiRequest(region_id=region, elastic_accelerated_instance_id=instance))
    return timings


def create_and_attach(cluster: LocalCluster) -> tuple[str, float, float]:
    creds = cluster.credentials
    client, region = client_from_credentials(creds), creds["RegionId"]
    started = time.monotonic()
    while True:
        try:
            instance = client.create_eai(models.CreateEaiRequest(
                region_id=region, instance_type="eais.ei-a6.xlarge", instance_name="bench",
                v_switch_id=creds["VSwitchId"])).body.elastic_accelerated_instance_id
            break
        except Exception as error:  # noqa: BLE001 - NoResources while a deleted slice drains
            if "NoResources" not in str(error) or time.monotonic() - started > 60:
                raise
            time.sleep(0.02)
    wait_for_status(client, region, instance, "Available", 60)
    created_s, started = time.monotonic() - started, time.monotonic()
    client.attach_eai(models.AttachEaiRequest(region_id=region, elastic_accelerated_instance_id=instance,
                                              client_instance_id=creds["ClientInstanceId"]))
    wait_for_status(client, region, instance, "InUse", 60)
    return instance, created_s, time.monotonic() - started


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--cycles", type=int, default=30)
    options = parser.parse_args()
    worker, direct = start_worker()
    with tempfile.TemporaryDirectory(prefix="eais-bench-") as directory:
        cluster = LocalCluster(ClusterOptions(Path(directory), free_port(), free_port(), free_port(), free_port(),
                                              backend="cpu"))
        try:
            print("data plane: eais up cluster (CPU backend) and a bare worker ...", flush=True)
            cluster.start()
            cluster.wait_until_ready()
            timings = attach_cycles(cluster, options.cycles)
            create_and_attach(cluster)
            print(f"data plane: one client, {options.rounds} rounds of {options.calls} calls: (a) bare worker, "
                  "(b) through the agents, (c) local CPU ...", flush=True)
            rows = run_clients([direct, cluster.tf_endpoint, "local"], rounds=options.rounds, calls=options.calls)
        finally:
            cluster.stop()
            worker.kill()
    report(rows[direct], rows[cluster.tf_endpoint], rows["local"], timings)


def report(direct: dict, relayed: dict, local: dict, timings: dict[str, list[float]]) -> None:
    from benchmarks.relay_hops import print_table

    print_table({"(a) TF straight to a worker": direct, "(b) via VM agent + node gateway": relayed,
                 "(c) local CPU": local}, base="(a) TF straight to a worker")
    p50, p99 = (relayed[f"call_{p}_ms"] / direct[f"call_{p}_ms"] for p in ("p50", "p99"))
    throughput = relayed["throughput_mb_s"] / direct["throughput_mb_s"]
    print(f"\n(b)/(a) call latency p50 {p50:.2f}x (goal <= 1.2x: {_met(p50 <= 1.2)}), "
          f"p99 {p99:.2f}x (goal <= 1.5x: {_met(p99 <= 1.5)}); throughput {throughput:.2f}x "
          f"(goal >= 0.85x: {_met(throughput >= 0.85)})")
    for name, values in timings.items():
        print(f"{name + ' (back to back)':40s} p50 {percentile(values, 0.5):.2f}s p99 {percentile(values, 0.99):.2f}s "
              f"max {max(values):.2f}s over {len(values)}")
    attach_p99 = percentile(timings["attach -> InUse"], 0.99)
    print(f"AttachEai -> InUse p99 back to back: {attach_p99:.2f}s (goal <= 1 s: {_met(attach_p99 <= 1.0)})")


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


if __name__ == "__main__":
    main()
