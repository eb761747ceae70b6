"""Churn: create, attach, connect, call, detach, delete, back to back, with leak checks on all three daemons.

    python -m benchmarks.churn [--cycles 500]        (make bench runs it)

Starts ``eais up`` (controller, node agent with its fork server, VM agent) as a child process, then
runs the cycles as a user would with the official SDK: CreateEai -> Available, AttachEai -> InUse
(timed by DescribeEais, polled every 20 ms), then at once what ``remote_tf.connect()`` checks before
it joins (the agent's status, waiting out an attach the agent has not heard has finished, and a
TensorFlow GetStatus through the endpoint; timed), then DetachEai -> Available and DeleteEai. Every ``--sample-every`` cycles it reads the threads,
descriptors and resident memory of the controller, the node agent and the VM agent; at the end it
prints their slopes (least squares, per 100 cycles, after the first tenth of the run), the attach
latency percentiles, and what is left: worker processes, their network namespaces, scratch
directories, instances in a transitional status. ``tests/faults/test_churn.py`` runs the same
cycles, fewer of them, in ``make test``.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from alibabacloud_eais20190624 import models
from alibabacloud_tea_openapi.exceptions import ClientException

from agent.vm.tf_version import local_tf_version
from eais_cli.sdk import client_from_credentials, describe
from eais_plumbing.endpoint_status import query_endpoint_status
from remote_tf.endpoint import check_endpoint
from remote_tf.errors import RemoteTFError

INSTANCE_TYPE, POLL_S, STEP_TIMEOUT_S = "eais.ei-a6.xlarge", 0.02, 60.0
LOCAL_TF_VERSION = local_tf_version()
TRANSITIONAL = {"Pending", "Starting", "Attaching", "Detaching"}


@dataclass(frozen=True)
class Target:
    """What the cycles run against: the user's credentials, the VM's endpoint, the daemons to watch."""

    credentials: dict[str, str]
    endpoint: str
    daemons: dict[str, int]  # name -> pid: controller, node, vm
    node_tmp: Path  # the node agent's TMPDIR, where its workers' scratch directories are


@dataclass
class ChurnResult:
    attach_s: list[float] = field(default_factory=list)
    cycle_s: list[float] = field(default_factory=list)
    connect_s: list[float] = field(default_factory=list)  # connect()'s checks right after InUse
    attaching_at_in_use: int = 0  # times the agent had not yet heard of InUse when asked (connect() waited)
    failed_connects: list[str] = field(default_factory=list)
    samples: list[tuple[int, dict[str, tuple[int, int, float]]]] = field(default_factory=list)

    def slope_per_100(self, daemon: str, metric: int) -> float:
        """Least-squares slope of (threads, fds, rss MiB)[metric] per 100 cycles, after the first tenth."""
        points = [(cycle, values[daemon][metric]) for cycle, values in self.samples]
        points = points[len(points) // 10:] if len(points) >= 10 else points
        if len(points) < 2:
            return 0.0
        mean_x = statistics.fmean(x for x, _ in points)
        mean_y = statistics.fmean(y for _, y in points)
        spread = sum((x - mean_x) ** 2 for x, _ in points)
        return 100 * sum((x - mean_x) * (y - mean_y) for x, y in points) / spread if spread else 0.0


def run_cycles(target: Target, cycles: int, *, sample_every: int = 10,
               progress: Callable[[int, ChurnResult], None] = lambda *_: None) -> ChurnResult:
    client, region = client_from_credentials(target.credentials), target.credentials["RegionId"]
    result = ChurnResult()
    result.samples.append((0, sample(target)))
    for cycle in range(1, cycles + 1):
        started = time.monotonic()
        instance = _create(client, region, target.credentials["VSwitchId"])
        attach_started = time.monotonic()
        client.attach_eai(models.AttachEaiRequest(region_id=region, elastic_accelerated_instance_id=instance,
                                                  client_instance_id=target.credentials["ClientInstanceId"]))
        _wait_status(client, region, instance, "InUse")
        result.attach_s.append(time.monotonic() - attach_started)
        _connect_checks(target.endpoint, result)
        client.detach_eai(models.DetachEaiRequest(region_id=region, elastic_accelerated_instance_id=instance))
        _wait_status(client, region, instance, "Available")
        client.delete_eai(models.DeleteEaiRequest(region_id=region, elastic_accelerated_instance_id=instance))
        result.cycle_s.append(time.monotonic() - started)
        if cycle % sample_every == 0 or cycle == cycles:
            result.samples.append((cycle, sample(target)))
            progress(cycle, result)
    return result


def sample(target: Target) -> dict[str, tuple[int, int, float]]:
    """(threads, open descriptors, RSS MiB) of each daemon now."""
    values = {}
    for name, pid in target.daemons.items():
        process = psutil.Process(pid)
        with process.oneshot():
            values[name] = (process.num_threads(), process.num_fds(), process.memory_info().rss / 2**20)
    return values


@dataclass(frozen=True)
class Leftovers:
    workers: int  # eais-worker processes under the node agent (the warm pool's, by design)
    namespaces: int  # network namespaces the node agent holds open (one per live worker)
    scratch_dirs: int  # eais-worker-* directories in the node's TMPDIR (one per live worker)
    transitional: list[str]  # instances of the account still in a transitional status


def leftovers(target: Target) -> Leftovers:
    node = psutil.Process(target.daemons["node"])
    workers = [p for p in node.children(recursive=True) if p.name() == "eais-worker"]
    namespaces = sum(1 for fd in Path(f"/proc/{node.pid}/fd").iterdir() if _readlink(fd).startswith("net:"))
    scratch = [name for name in os.listdir(target.node_tmp) if name.startswith("eais-worker-")]
    client, region = client_from_credentials(target.credentials), target.credentials["RegionId"]
    listed = client.describe_eais(models.DescribeEaisRequest(region_id=region, page_size=100)).body.instances.instance
    transitional = [f"{i.elastic_accelerated_instance_id} {i.status}" for i in listed or [] if i.status in TRANSITIONAL]
    return Leftovers(len(workers), namespaces, len(scratch), transitional)


def _readlink(path: Path) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return ""


def _create(client, region: str, vswitch: str) -> str:  # noqa: ANN001
    request = models.CreateEaiRequest(region_id=region, instance_type=INSTANCE_TYPE, instance_name="churn",
                                      v_switch_id=vswitch)
    deadline = time.monotonic() + STEP_TIMEOUT_S
    while True:
        try:
            instance = client.create_eai(request).body.elastic_accelerated_instance_id
            break
        except ClientException as error:
            if error.code != "NoResources" or time.monotonic() > deadline:  # a deleted slice drains first
                raise
            time.sleep(POLL_S)
    _wait_status(client, region, instance, "Available")
    return instance


def _wait_status(client, region: str, instance: str, wanted: str) -> None:  # noqa: ANN001
    deadline = time.monotonic() + STEP_TIMEOUT_S
    while (status := describe(client, region, instance).status) != wanted:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{instance} still {status} after {STEP_TIMEOUT_S:.0f}s (waiting for {wanted})")
        time.sleep(POLL_S)


def _connect_checks(endpoint: str, result: ChurnResult) -> None:
    """What connect() checks before joining, right after InUse: the agent serves (or finishes the attach), TF answers."""
    started = time.monotonic()
    if (query_endpoint_status(endpoint, timeout_s=2.0) or {}).get("state") == "attaching":
        result.attaching_at_in_use += 1
    try:
        check_endpoint(endpoint, local_tf_version=LOCAL_TF_VERSION, timeout_s=5.0)
    except RemoteTFError as error:
        result.failed_connects.append(error.message)
    result.connect_s.append(time.monotonic() - started)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))] if ordered else 0.0


def report(result: ChurnResult, left: Leftovers) -> list[str]:
    lines = [f"attach -> InUse over {len(result.attach_s)} back-to-back cycles: p50 {percentile(result.attach_s, 0.5):.2f}s "
             f"p99 {percentile(result.attach_s, 0.99):.2f}s max {max(result.attach_s):.2f}s (goal p99 <= 1 s: "
             f"{'met' if percentile(result.attach_s, 0.99) <= 1.0 else 'NOT met'})",
             f"connect() checks right after InUse: {len(result.failed_connects)} failed, p50 "
             f"{percentile(result.connect_s, 0.5) * 1000:.0f} ms, max {max(result.connect_s) * 1000:.0f} ms (the agent "
             f"had not yet heard of InUse {result.attaching_at_in_use} time(s)); whole cycle p50 "
             f"{percentile(result.cycle_s, 0.5):.2f}s",
             f"{'daemon':12s}{'threads':>18s}{'fds':>18s}{'RSS MiB':>22s}   slope per 100 cycles (threads, fds, MiB)"]
    (_, first), (last_cycle, last) = result.samples[0], result.samples[-1]
    for name in first:
        slopes = [result.slope_per_100(name, metric) for metric in range(3)]
        lines.append(f"{name:12s}{first[name][0]:>8d} -> {last[name][0]:<7d}{first[name][1]:>8d} -> {last[name][1]:<7d}"
                     f"{first[name][2]:>10.1f} -> {last[name][2]:<9.1f}   {slopes[0]:+.2f}, {slopes[1]:+.2f}, "
                     f"{slopes[2]:+.2f}")
    lines.append(f"left after cycle {last_cycle}: {left.workers} worker process(es) (the warm pool), {left.namespaces} "
                 f"namespace(s), {left.scratch_dirs} scratch dir(s), {len(left.transitional)} instance(s) in a "
                 f"transitional status {left.transitional or ''}")
    return lines


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start_eais_up(data_dir: Path) -> tuple[subprocess.Popen, Target]:
    node_tmp = data_dir / "node-tmp"
    node_tmp.mkdir(parents=True)
    tf_port = _free_port()
    command = [str(Path(sys.executable).with_name("eais")), "up", "--data-dir", str(data_dir / "up"),
               "--api-port", str(_free_port()), "--grpc-port", str(_free_port()), "--tf-port", str(tf_port),
               "--gateway-port", str(_free_port()), "--backend", "cpu", "--node-metrics-port", str(_free_port()),
               "--agent-metrics-port", str(_free_port())]
    env = {**os.environ, "TMPDIR": str(node_tmp), "TF_CPP_MIN_LOG_LEVEL": "2"}
    up = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    for line in up.stdout:
        if line.partition(" ")[2].startswith("ready"):  # "HH:MM:SS ready: ..."
            break
    else:
        raise RuntimeError(f"eais up exited with {up.wait()} before it was ready")
    daemons = {"controller": up.pid, "node": _child(up.pid, "eais-node"), "vm": _child(up.pid, "eais-agent")}
    credentials = json.loads((data_dir / "up" / "credentials.json").read_text())
    return up, Target(credentials, f"127.0.0.1:{tf_port}", daemons, node_tmp)


def _child(pid: int, script: str) -> int:
    for child in psutil.Process(pid).children():
        if any(part.endswith(script) for part in child.cmdline()[:2]):
            return child.pid
    raise RuntimeError(f"no {script} under eais up (pid {pid})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cycles", type=int, default=500)
    parser.add_argument("--sample-every", type=int, default=10)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="eais-churn-") as directory:
        up, target = _start_eais_up(Path(directory))
        try:
            print(f"churn: {options.cycles} cycles against eais up (pids {target.daemons}) ...", flush=True)
            started = time.monotonic()
            result = run_cycles(target, options.cycles, sample_every=options.sample_every,
                                progress=lambda cycle, r: print(f"  cycle {cycle}: {r.samples[-1][1]}", flush=True)
                                if cycle % 100 == 0 else None)
            time.sleep(2.0)  # the last release settles
            left = leftovers(target)
            print(f"\nchurn: {options.cycles} cycles in {time.monotonic() - started:.0f}s")
            print("\n".join(report(result, left)))
        finally:
            up.terminate()
            up.wait(60)


if __name__ == "__main__":
    main()
