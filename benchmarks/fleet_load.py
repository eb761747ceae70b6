"""What tenants do while a fleet benchmark measures: signed DescribeEais at a fixed rate, and attach/detach cycles.

- :func:`describe_at_rate`: an open-loop load (request n is due at start + n/rate, whatever came
  before; its latency counts from that moment, so a stalled controller cannot hide its stall),
  signed by the v3 SDK's signer, spread over the replicas' API ports.
- :class:`AttachCycles`: each tenant thread owns one instance and one simulated VM and attaches,
  waits for InUse (polling DescribeEais every 0.2 s), holds it a second, detaches, waits for
  Available, waits a second, again and again, through the official v3 SDK.
  When each AttachEai was sent is kept; the moment it became InUse is read from the transition log.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field

from alibabacloud_eais20190624 import models as m
from alibabacloud_eais20190624.client import Client
from alibabacloud_tea_openapi import models as open_api

from benchmarks.signed_requests import read_response, signed_request

REGION = "cn-hangzhou"
TIMEOUT_S = 5.0
WARM_CONNECTIONS = 8
HOLD_S = 1.0  # a tenant holds an attachment (and then a detached instance) this long before the next step


@dataclass
class CallStats:
    latencies_s: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


async def _call(pool: asyncio.Queue, host_port: tuple[str, int], request: bytes) -> bytes:
    reader, writer = await pool.get() if not pool.empty() else await asyncio.open_connection(*host_port)
    try:
        writer.write(request)
        status_line = await read_response(reader)
    except BaseException:
        writer.close()
        raise
    pool.put_nowait((reader, writer))
    return status_line


async def _describe_at_rate(apis: list[str], account: dict[str, str], rate: float, duration_s: float) -> CallStats:
    stats, tasks = CallStats(), []
    pools = {api: asyncio.Queue() for api in apis}
    for api, pool in pools.items():  # connections open before the clock starts, as a client's keep-alive pool
        host, port = api.split(":")
        for _ in range(WARM_CONNECTIONS):
            pool.put_nowait(await asyncio.open_connection(host, int(port)))
    started = time.perf_counter()

    async def one(n: int, due: float) -> None:
        api = apis[n % len(apis)]
        host, port = api.split(":")
        request = signed_request(api, account["AccessKeyId"], account["AccessKeySecret"], "DescribeEais",
                                 {"RegionId": REGION, "PageSize": "20"})
        try:
            status = await asyncio.wait_for(_call(pools[api], (host, int(port)), request), TIMEOUT_S)
            if b" 200 " not in status:
                stats.errors.append(status.decode(errors="replace").strip())
        except (TimeoutError, OSError) as error:
            stats.errors.append(f"{type(error).__name__}: {error}")
        stats.latencies_s.append(time.perf_counter() - due)

    for n in range(int(rate * duration_s)):
        due = started + n / rate
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        tasks.append(asyncio.create_task(one(n, due)))
    await asyncio.gather(*tasks)
    return stats


def describe_at_rate(apis: list[str], account: dict[str, str], rate: float, duration_s: float) -> CallStats:
    return asyncio.run(_describe_at_rate(apis, account, rate, duration_s))


def sdk_client(api: str, account: dict[str, str]) -> Client:
    return Client(open_api.Config(access_key_id=account["AccessKeyId"], access_key_secret=account["AccessKeySecret"],
                                  region_id=REGION, endpoint=api, protocol="http", no_proxy=api.split(":")[0],
                                  read_timeout=10_000, connect_timeout=5_000))


def status_of(client: Client, instance_id: str) -> str:
    found = client.describe_eais(m.DescribeEaisRequest(
        region_id=REGION, elastic_accelerated_instance_ids=f'["{instance_id}"]')).body.instances.instance
    return found[0].status if found else ""


def wait_for(client: Client, instance_id: str, status: str, timeout_s: float, every_s: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if status_of(client, instance_id) == status:
            return True
        time.sleep(every_s)
    return False


@dataclass
class AttachCycles:
    """Tenants attaching and detaching back to back until ``stop``; ``sent`` holds (instance, epoch seconds)."""

    apis: list[str]
    account: dict[str, str]
    pairs: list[tuple[str, str]]  # (instance id, client instance id)
    stop: threading.Event = field(default_factory=threading.Event)
    sent: list[tuple[str, float]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        for number, pair in enumerate(self.pairs):
            thread = threading.Thread(target=self._cycle, args=(self.apis[number % len(self.apis)], *pair), daemon=True)
            self._threads.append(thread)
            thread.start()

    def finish(self) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def _cycle(self, api: str, instance_id: str, client_id: str) -> None:
        client = sdk_client(api, self.account)
        while not self.stop.is_set():
            try:
                self.sent.append((instance_id, time.time()))
                client.attach_eai(m.AttachEaiRequest(region_id=REGION, elastic_accelerated_instance_id=instance_id,
                                                     client_instance_id=client_id))
                if not wait_for(client, instance_id, "InUse", 30):
                    self.errors.append(f"{instance_id} not InUse 30 s after AttachEai")
                self.stop.wait(HOLD_S)  # the tenant uses the accelerator a moment
                client.detach_eai(m.DetachEaiRequest(region_id=REGION, elastic_accelerated_instance_id=instance_id))
                if not wait_for(client, instance_id, "Available", 30):
                    self.errors.append(f"{instance_id} not Available 30 s after DetachEai")
                self.stop.wait(HOLD_S)
            except Exception as error:  # noqa: BLE001 - counted, and the cycle goes on
                self.errors.append(f"{type(error).__name__}: {str(error)[:200]}")
                time.sleep(0.5)
