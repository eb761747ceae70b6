"""The console's live stream: an event at start, one per change of the account's statuses, none for the rest."""

from __future__ import annotations

import asyncio
import json
import time
from concurrent.futures import ThreadPoolExecutor

from controller.console.live import POLL_S, instance_events
from controller.states import Event
from controller.tables import Instance
from tests.agent_link.builders import REGION, available_instance, begin_attach, move


def _run_apart(coro):  # noqa: ANN001, ANN202 - Playwright's sync API leaves a loop running on this thread
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _statuses(event_text: str) -> dict[str, list[str]]:
    assert event_text.startswith("event: instances\n"), event_text
    return json.loads(event_text.split("data: ", 1)[1])


def test_a_committed_change_reaches_the_stream_without_waiting_for_the_poll(ctx):
    instance_id = available_instance(ctx)
    with ctx.db.read() as session:
        account_id = session.get(Instance, instance_id).account_id

    async def watch() -> tuple[dict, dict, float]:
        stream = instance_events(ctx, account_id, REGION, max_s=30)
        assert (await anext(stream)).startswith("retry:")
        first = _statuses(await anext(stream))
        changed_at = time.monotonic()
        await asyncio.to_thread(begin_attach, ctx, instance_id, "i-vm0001")  # Available -> Attaching, committed
        second = _statuses(await anext(stream))
        await stream.aclose()
        return first, second, time.monotonic() - changed_at

    first, second, delay_s = _run_apart(watch())
    assert first == {instance_id: ["Available", ""]}
    assert second == {instance_id: ["Attaching", "i-vm0001"]}
    assert delay_s < POLL_S, f"the change took {delay_s:.2f}s: the stream waited for its poll"


def test_changes_of_other_accounts_send_nothing(ctx):
    instance_id = available_instance(ctx)
    with ctx.db.read() as session:
        account_id = session.get(Instance, instance_id).account_id

    async def watch() -> list[str]:
        stream = instance_events(ctx, "another-account", REGION, max_s=1.5)
        texts = [text async for text in stream if not text.startswith("retry:")]
        return texts

    async def both() -> list[str]:
        watching = asyncio.create_task(watch())
        await asyncio.sleep(0.2)
        await asyncio.to_thread(move, ctx, instance_id, Event.RELEASE)
        return await watching

    texts = _run_apart(both())
    assert account_id != "another-account"
    assert [_statuses(text) for text in texts] == [{}], texts
