"""Benchmark: signed DescribeEais requests per second and p50/p99 latency, 10,000 instances stored.

Runs the real controller (``eais-controller serve``) in its own process on SQLite and, when
``EAIS_BENCH_PG_URL`` or ``EAIS_TEST_PG_URL`` names a PostgreSQL server, on PostgreSQL too.
Requests are signed with ACS3-HMAC-SHA256 by the official v3 SDK's signer before the timed
phase (each with its own nonce), then sent over keep-alive connections by an asyncio client.

    python -m benchmarks.describe_eais [--instances 10000] [--requests 4000] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import httpx
import psycopg
from sqlalchemy import insert

from benchmarks.signed_requests import read_response, signed_request
from controller.accounts import NewAccount, create_account
from controller.context import ControllerContext
from controller.settings import load_settings
from controller.tables import Instance, InstanceTag, ListedCount, Node, Slice, Transition

REGION = "cn-hangzhou"
TYPE = "eais.ei-a6.2xlarge"


def seed(ctx: ControllerContext, count: int) -> NewAccount:
    """One account holding ``count`` Available instances (with log rows and a tag each)."""
    key = create_account(ctx, f"bench-{uuid.uuid4().hex[:6]}", balance=Decimal(10**6), real_name_verified=True)
    now = ctx.clock.now_us()
    with ctx.db.write() as session:
        session.add(Node(id="node-bench", region_id=REGION, zone_id=f"{REGION}-a", hostname="bench", gateway_address="-",
                         backend="simulated", heartbeat_deadline_us=now + 86_400_000_000,  # alive for the whole run
                         registered_us=now, last_seen_us=now))
    rows, slices, tags, log = [], [], [], []
    for n in range(count):
        iid = f"eais-bench{n:015d}"
        rows.append(dict(id=iid, account_id=key.account_id, region_id=REGION, zone_id=f"{REGION}-a", name=f"bench-{n}",
                         instance_type=TYPE, status="Available", status_since_us=now, slice_id=f"node-bench/{n}",
                         created_us=now - n, started_us=now, resource_group_id="", security_group_id="", vswitch_id="",
                         vpc_id="", image="", description="simulated", category="eais", payment_type="PostPaid"))
        slices.append(dict(id=f"node-bench/{n}", node_id="node-bench", instance_type=TYPE, gpu_index=0, memory_mib=1,
                           instance_id=iid, draining=False))
        tags.append(dict(instance_id=iid, key="shard", value=str(n % 10)))
        log.append(dict(instance_id=iid, account_id=key.account_id, instance_type=TYPE, from_status=None,
                        to_status="Available", event="slice_ready", reason="bench seed", at_us=now))
    with ctx.db.write() as session:
        for table, values in ((Instance, rows), (Slice, slices), (InstanceTag, tags), (Transition, log)):
            session.execute(insert(table), values)
        # Bulk rows bypass lifecycle.apply, so set the count it would have kept.
        session.execute(insert(ListedCount), [dict(account_id=key.account_id, region_id=REGION, listed=count)])
    if not ctx.db.url.startswith("sqlite"):
        with ctx.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE")  # what autovacuum does after a bulk load, done now
    return key


def signed_requests(endpoint: str, key: NewAccount, count: int, *, tag_filter: bool = False) -> list[bytes]:
    """Raw HTTP/1.1 requests, each signed by the v3 SDK's signer with its own nonce."""
    out = []
    for n in range(count):
        query = {"RegionId": REGION, "PageSize": "20", "PageNumber": str(1 + n % 50)}  # pages across all 10,000
        if tag_filter:
            query = {"RegionId": REGION, "Tag.1.Key": "shard", "Tag.1.Value": str(n % 10)}  # 1,000 match
        out.append(signed_request(endpoint, key.access_key_id, key.access_key_secret, "DescribeEais", query))
    return out


async def _worker(host: str, port: int, queue: list[bytes], latencies: list[float], errors: list[int]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    while queue:
        request = queue.pop()
        started = time.perf_counter()
        writer.write(request)
        status_line = await read_response(reader)
        latencies.append(time.perf_counter() - started)
        if b" 200 " not in status_line:
            errors.append(1)
    writer.close()


async def _run_load(host: str, port: int, requests: list[bytes], concurrency: int) -> tuple[list[float], int, float]:
    queue, latencies, errors = list(requests), [], []
    started = time.perf_counter()
    await asyncio.gather(*(_worker(host, port, queue, latencies, errors) for _ in range(concurrency)))
    return latencies, len(errors), time.perf_counter() - started


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def controller_process(db_url: str, state_dir: Path, api_processes: int = 1):  # noqa: ANN201
    api_port, grpc_port = free_port(), free_port()
    cmd = [sys.executable, "-m", "controller.cli", "serve", "--db", db_url, "--state-dir", str(state_dir),
           "--api-port", str(api_port), "--grpc-port", str(grpc_port), "--api-processes", str(api_processes)]
    process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{api_port}/healthz", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield api_port
    finally:
        process.terminate()
        process.wait(timeout=20)


def bench_one(label: str, db_url: str, args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "state"
        ctx = ControllerContext.open(load_settings(db_url=db_url, state_dir=state))
        print(f"[{label}] seeding {args.instances} instances ...", flush=True)
        key = seed(ctx, args.instances)
        ctx.db.dispose()
        with controller_process(db_url, state, args.api_processes) as port:
            for kind, tag_filter in (("paged list", False), ("tag filter", True)):
                report(label, kind, port, key, args, tag_filter)


def report(label: str, kind: str, port: int, key: NewAccount, args: argparse.Namespace, tag_filter: bool) -> None:
    requests = signed_requests(f"127.0.0.1:{port}", key, args.requests + args.warmup, tag_filter=tag_filter)
    asyncio.run(_run_load("127.0.0.1", port, requests[: args.warmup], args.concurrency))
    latencies, errors, elapsed = asyncio.run(_run_load("127.0.0.1", port, requests[args.warmup:], args.concurrency))
    latencies.sort()
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000
    rate = len(latencies) / elapsed
    verdict = "meets" if p99 <= 50 and rate >= 500 else "MISSES"
    print(f"[{label}] {kind}: {len(latencies)} signed DescribeEais, concurrency {args.concurrency}: "
          f"{rate:.0f} req/s, p50 {p50:.1f} ms, p99 {p99:.1f} ms, errors {errors} "
          f"({verdict} the goal p99 <= 50 ms and >= 500 req/s)", flush=True)


@contextmanager
def pg_database(admin_url: str):  # noqa: ANN201
    name = f"eais_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin_url.rpartition("/")[0] + "/" + name
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instances", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--api-processes", type=int, default=2, help="eais-controller serve --api-processes")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bench_one("sqlite", f"sqlite:///{tmp}/bench.db", args)
    pg_admin = os.environ.get("EAIS_BENCH_PG_URL") or os.environ.get("EAIS_TEST_PG_URL")
    if pg_admin:
        with pg_database(pg_admin) as url:
            bench_one("postgresql", url, args)
    else:
        print("[postgresql] skipped: set EAIS_BENCH_PG_URL (or EAIS_TEST_PG_URL; .ci/start-postgres.sh prints one)")


if __name__ == "__main__":
    main()
