"""Benchmark: how large a fleet one controller (SQLite) and three replicas (PostgreSQL) hold, and where it breaks.

Agents are simulated fleet processes speaking the real agent link over TLS (each agent with its own
connection, heartbeating at the default period); the fleet grows in steps (``--sizes``), a tenth
of each step nodes and the rest VMs. At every size, for ``--measure-s`` seconds, DescribeEais runs
at ``--rate`` signed requests/s (open loop) and ``--tenants`` tenants attach and detach instances
back to back through the official v3 SDK. Per size it prints the controllers' CPU (summed over
replicas) and largest RSS, heartbeats answered late (after the deadline the controller set, as the
agents saw it), agents marked offline and instances lost with a node (both should stay 0),
AttachEai -> InUse p50/p99 (sent by the tenant to the InUse transition in the log), DescribeEais
p50/p99 and errors, and whether every goal held: no heartbeat late, nobody wrongly offline,
attach p99 <= 1 s, DescribeEais p99 <= 50 ms, no error. The first size that misses one is where it
breaks; the sweep stops there.

Everything shares this machine's cores: controllers, fleet processes, the load and PostgreSQL.

    python -m benchmarks.fleet [--sizes 100,1000,2000,3000,4000] [--setups sqlite,postgresql]
                               [--measure-s 30] [--rate 100] [--tenants 4] [--keep-going]
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from alibabacloud_eais20190624 import models as m
from sqlalchemy import create_engine, text

from benchmarks.controller_metrics import bucket_counts, quantile_bound, scrape, worst_bound
from benchmarks.describe_eais import pg_database
from benchmarks.fleet_load import REGION, AttachCycles, describe_at_rate, sdk_client, wait_for
from benchmarks.fleet_processes import Controllers, FleetProcess
from controller.db import normalise_url
from controller.states import Status

GOALS = "no heartbeat late, nobody offline, attach p99 <= 1 s, DescribeEais p99 <= 50 ms, no errors"


@dataclass
class Row:
    agents: int
    cpu_percent: float
    rss_mb: float
    beats_late: int
    offline: int
    lost: int
    attach_ms: tuple[float, float]
    describe_ms: tuple[float, float]
    errors: int
    server_p99_ms: float = math.nan  # DescribeEais p99 as the controllers measured it (a bucket bound)
    gc_worst_ms: float = 0.0  # the longest garbage-collection pause of any controller process (a bucket bound)

    def misses(self) -> list[str]:
        reasons = []
        if self.beats_late:
            reasons.append(f"{self.beats_late} heartbeats late")
        if self.offline or self.lost:
            reasons.append(f"{self.offline} agents offline, {self.lost} instances lost")
        if self.attach_ms[1] > 1000:
            reasons.append(f"attach p99 {self.attach_ms[1]:.0f} ms")
        if self.describe_ms[1] > 50:
            reasons.append(f"DescribeEais p99 {self.describe_ms[1]:.0f} ms")
        if self.errors:
            reasons.append(f"{self.errors} errors")
        return reasons

    def line(self) -> str:
        verdict = "holds" if not self.misses() else "BREAKS: " + "; ".join(self.misses())
        return (f"{self.agents:>6} | {self.cpu_percent:6.0f}% | {self.rss_mb:5.0f} MB | {self.beats_late:>5} | "
                f"{self.offline:>3}/{self.lost:<3} | {self.attach_ms[0]:5.0f} / {self.attach_ms[1]:5.0f} ms | "
                f"{self.describe_ms[0]:5.1f} / {self.describe_ms[1]:6.1f} ms | <= {self.server_p99_ms:4.0f} ms | "
                f"<= {self.gc_worst_ms:4.0f} ms | {self.errors:>5} | {verdict}")


HEADER = ("agents | ctl CPU | max RSS | late  | offl/lost | attach p50 / p99 | Describe p50 / p99 | server p99 | "
          "worst GC   | errors | verdict")


def percentiles_ms(samples: list[float]) -> tuple[float, float]:
    if not samples:
        return (float("nan"), float("nan"))
    ordered = sorted(samples)
    return (statistics.median(ordered) * 1000, ordered[max(0, int(len(ordered) * 0.99) - 1)] * 1000)


class Setup:
    """One database and its controllers, a growing fleet, and the tenants' instances."""

    def __init__(self, label: str, db_url: str, replicas: int, work: Path, args: argparse.Namespace) -> None:
        self.label, self.db_url, self.work, self.args = label, db_url, work, args
        self.controllers = Controllers(db_url, work / "state", work, replicas, args.api_processes)
        self.fleets: list[FleetProcess] = []
        self.engine = create_engine(normalise_url(db_url))

    def run(self) -> list[Row]:
        self.controllers.start()
        self.account = self.controllers.account("fleet-bench")
        rows = []
        print(f"\n[{self.label}: {len(self.controllers.replicas)} controller(s)] goals: {GOALS}\n{HEADER}", flush=True)
        for size in self.args.sizes:
            self._grow_to(size)
            row = self._measure(size)
            rows.append(row)
            print(row.line(), flush=True)
            if row.misses():
                print(f"[{self.label}] breaks at {size} agents: {'; '.join(row.misses())}", flush=True)
                if not self.args.keep_going or row.beats_late or row.offline:  # past lost heartbeats it only collapses
                    break
        return rows

    def stop(self) -> None:
        for fleet in self.fleets:
            fleet.stop()
        self.controllers.stop()
        self.engine.dispose()

    def _grow_to(self, size: int) -> None:
        have = sum(f.nodes + f.vms for f in self.fleets)
        nodes = max(1, (size - have) // 10)
        fleet = FleetProcess(nodes, size - have - nodes, first=1 + have, stats_file=self.work / f"fleet-{have}.json")
        fleet.start(self.controllers, self.account, self.work)
        self.fleets.append(fleet)
        deadline = time.monotonic() + 120 + size / 50
        while sum(f.stats()["registered"] for f in self.fleets) < size:
            if time.monotonic() > deadline:
                raise RuntimeError(f"[{self.label}] only {sum(f.stats()['registered'] for f in self.fleets)} of "
                                   f"{size} agents registered; see the logs in {self.work}")
            time.sleep(1)
        time.sleep(self.args.settle_s)  # every new agent beats at least once before the window

    def _measure(self, size: int) -> Row:
        apis = [replica.api for replica in self.controllers.replicas]
        tenants = AttachCycles(apis, self.account, self._tenant_pairs())
        beats_before = self._beats()
        metrics_before = [scrape(api) for api in apis]
        cpu_before, wall_before = self._cpu_seconds(), time.monotonic()
        tenants.start()
        # In a process of its own: the tenants' SDK threads here must not delay the load's clock.
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            describe = pool.submit(describe_at_rate, apis, self.account, self.args.rate, self.args.measure_s).result()
        tenants.finish()
        cpu = (self._cpu_seconds() - cpu_before) / (time.monotonic() - wall_before) * 100
        rss = max(p.memory_info().rss for p in self.controllers.processes()) / 1e6
        offline, lost = self._offline_and_lost()
        windows = list(zip(metrics_before, [scrape(api) for api in apis]))
        server = [bucket_counts(b, a, "eais_api_request_duration_seconds", action="DescribeEais") for b, a in windows]
        return Row(size, cpu, rss, self._beats()[0] - beats_before[0], offline, lost,
                   percentiles_ms(self._attach_latencies(tenants.sent)), percentiles_ms(describe.latencies_s),
                   len(describe.errors) + len(tenants.errors) + self._beats()[1] - beats_before[1],
                   server_p99_ms=1000 * max(quantile_bound(buckets, 0.99) for buckets in server),
                   gc_worst_ms=1000 * max(worst_bound(bucket_counts(b, a, "eais_gc_pause_seconds")) for b, a in windows))

    def _tenant_pairs(self) -> list[tuple[str, str]]:
        """One Available instance and one simulated VM per tenant (created once per setup)."""
        if not hasattr(self, "_pairs"):
            client = sdk_client(self.controllers.replicas[0].api, self.account)
            with self.engine.connect() as connection:
                vms = connection.execute(text("SELECT id FROM client_instances ORDER BY id LIMIT :n"),
                                         {"n": self.args.tenants}).scalars().all()
            self._pairs = []
            for vm in vms:
                made = client.create_eai(m.CreateEaiRequest(region_id=REGION, instance_type="eais.ei-a6.medium",
                                                            instance_name=f"bench-{vm}"))
                instance_id = made.body.elastic_accelerated_instance_id
                if not wait_for(client, instance_id, Status.AVAILABLE.value, 30):
                    raise RuntimeError(f"[{self.label}] {instance_id} did not become Available")
                self._pairs.append((instance_id, vm))
        return self._pairs

    def _attach_latencies(self, sent: list[tuple[str, float]]) -> list[float]:
        with self.engine.connect() as connection:
            ready = connection.execute(text("SELECT instance_id, at_us FROM transitions WHERE event = 'attach_ready'"))
            in_use = sorted((row.instance_id, row.at_us / 1e6) for row in ready)
        latencies = []
        for instance_id, at in sent:
            later = [t for i, t in in_use if i == instance_id and t >= at]
            if later:
                latencies.append(min(later) - at)
        return latencies

    def _beats(self) -> tuple[int, int]:
        stats = [f.stats()["heartbeats"] for f in self.fleets]
        return sum(s["late"] for s in stats), sum(s["failed"] for s in stats)

    def _cpu_seconds(self) -> float:
        return sum(sum(p.cpu_times()[:2]) for p in self.controllers.processes())

    def _offline_and_lost(self) -> tuple[int, int]:
        with self.engine.connect() as connection:
            offline = connection.execute(text(
                "SELECT (SELECT count(*) FROM nodes WHERE NOT online) + "
                "(SELECT count(*) FROM client_instances WHERE NOT online)")).scalar_one()
            lost = connection.execute(text("SELECT count(*) FROM transitions WHERE event = 'node_lost'")).scalar_one()
        return offline, lost


def run_setup(label: str, replicas: int, args: argparse.Namespace, pg_admin: str | None) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix=f"eais-fleet-{label}-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        db_url = f"sqlite:///{work}/controller.db" if pg_admin is None else stack.enter_context(pg_database(pg_admin))
        setup = Setup(label, db_url, replicas, work, args)
        try:
            return setup.run()
        finally:
            setup.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=lambda text: [int(n) for n in text.split(",")], default=[100, 1000, 2000, 3000, 4000])
    parser.add_argument("--setups", default="sqlite,postgresql", help="sqlite (1 controller), postgresql (replicas)")
    parser.add_argument("--replicas", type=int, default=3, help="controllers on PostgreSQL (default %(default)s)")
    parser.add_argument("--measure-s", type=float, default=30.0)
    parser.add_argument("--settle-s", type=float, default=15.0)
    parser.add_argument("--rate", type=float, default=100.0, help="signed DescribeEais per second")
    parser.add_argument("--tenants", type=int, default=4, help="tenants attaching and detaching back to back")
    parser.add_argument("--api-processes", type=int, default=1, help="eais-controller serve --api-processes")
    parser.add_argument("--keep-going", action="store_true",
                        help="measure the larger sizes after a miss too (the curve), until heartbeats are late")
    args = parser.parse_args()
    setups = args.setups.split(",")
    results: dict[str, list[Row]] = {}
    if "sqlite" in setups:
        results["sqlite"] = run_setup("sqlite", 1, args, None)
    pg_admin = os.environ.get("EAIS_BENCH_PG_URL") or os.environ.get("EAIS_TEST_PG_URL")
    if "postgresql" in setups and pg_admin:
        results["postgresql"] = run_setup("postgresql", args.replicas, args, pg_admin)
    elif "postgresql" in setups:
        print("[postgresql] skipped: set EAIS_BENCH_PG_URL (or EAIS_TEST_PG_URL; .ci/start-postgres.sh prints one)")
    print(f"\nsummary ({GOALS}):")
    for label, rows in results.items():
        broke = next((row for row in rows if row.misses()), None)
        held = [row.agents for row in rows if broke is None or row.agents < broke.agents]
        print(f"  {label}: holds up to {max(held) if held else 0} agents; "
              + (f"breaks at {broke.agents} ({'; '.join(broke.misses())})" if broke else "did not break in the sweep"))


if __name__ == "__main__":
    main()
