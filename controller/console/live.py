"""Live status for the console: a server-sent event each time the account's instances in a region change.

The stream wakes on this process's change hub (every committed status change marks the agents
it concerns; with PostgreSQL the hub also carries other replicas' commits, by NOTIFY) and also
polls every :data:`POLL_S` seconds, for changes the hub does not carry (another API worker
process on SQLite, a NOTIFY lost while reconnecting). It reads at most every :data:`MIN_GAP_S`,
however busy the fleet's change feed is. Each time, it reads the statuses of the
account's instances in the region (one indexed query) and sends an ``instances`` event only when
they differ from what it sent last. A stream ends after :data:`STREAM_MAX_S`; the browser's
EventSource reconnects by itself, so no connection outlives a controller restart for long.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator

from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from controller.context import ControllerContext
from controller.states import Status
from controller.tables import Instance

log = logging.getLogger("eais.console")
POLL_S = 3.0
MIN_GAP_S = 0.25  # a fleet commits many changes a second; few of them are this account's
KEEPALIVE_S = 15.0
STREAM_MAX_S = 120.0
RETRY_MS = 1500


def instance_statuses(ctx: ControllerContext, account_id: str, region_id: str) -> dict[str, list[str]]:
    """Instance id -> [status, client instance id] for the account's listed instances in the region."""
    query = (select(Instance.id, Instance.status, Instance.client_instance_id)
             .where(Instance.account_id == account_id, Instance.region_id == region_id,
                    Instance.status != Status.RELEASED.value).order_by(Instance.id))
    with ctx.db.read_connection() as conn:
        return {row.id: [row.status, row.client_instance_id or ""] for row in conn.execute(query)}


async def instance_events(ctx: ControllerContext, account_id: str, region_id: str,
                          max_s: float = STREAM_MAX_S) -> AsyncIterator[str]:
    """The text of an ``text/event-stream`` answer: an ``instances`` event at start and after every change."""
    loop = asyncio.get_running_loop()
    woken = asyncio.Event()

    def on_change(_changes: object) -> None:  # runs in the committing thread
        try:
            loop.call_soon_threadsafe(woken.set)
        except RuntimeError:  # the loop closed (shutdown): nothing to wake
            pass

    unsubscribe = ctx.db.changes.subscribe(on_change)
    try:
        yield f"retry: {RETRY_MS}\n\n"
        sent, last_write, started = None, time.monotonic(), time.monotonic()
        while time.monotonic() - started < max_s:
            woken.clear()
            current = await run_in_threadpool(instance_statuses, ctx, account_id, region_id)
            if current != sent:
                sent, last_write = current, time.monotonic()
                yield f"event: instances\ndata: {json.dumps(current, separators=(',', ':'))}\n\n"
            elif time.monotonic() - last_write > KEEPALIVE_S:
                last_write = time.monotonic()
                yield ": still here\n\n"
            try:
                await asyncio.wait_for(woken.wait(), POLL_S)
            except TimeoutError:
                continue
            await asyncio.sleep(MIN_GAP_S)  # changes landing meanwhile are read together
    finally:
        unsubscribe()
