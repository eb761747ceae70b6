"""Agents given several controller addresses use the next when one does not answer, and back off boundedly."""

from __future__ import annotations

import asyncio

from agent.backoff import DEFAULT_MAX_S, Backoff
from agent.controller_link_async import AsyncControllerLink, controller_targets
from agent.link_auth import NodeToken
from tests.agent_link.builders import NODE_TOKEN, node_request
from tests.controller_process import free_port


def test_an_agent_moves_to_the_next_controller_address_when_one_does_not_answer(link) -> None:
    dead = f"127.0.0.1:{free_port()}"

    async def register() -> tuple[str, str]:
        agent = AsyncControllerLink([dead, link.target], node_request(), NodeToken(NODE_TOKEN), trust=link.trust)
        try:
            response = await agent.register_until_done(asyncio.Event())
            return response.agent_id, agent.target
        finally:
            await agent.close()

    assert asyncio.run(asyncio.wait_for(register(), 20)) == ("node-1", link.target)


def test_controller_addresses_are_read_from_one_comma_separated_option() -> None:
    assert controller_targets(" a:1, b:2,,a:1 ") == ["a:1", "b:2"]
    assert controller_targets(["c:3"]) == ["c:3"]


def test_the_retry_delay_never_grows_past_two_seconds_however_long_the_controller_is_away() -> None:
    backoff = Backoff()

    delays = [backoff.next_delay_s() for _ in range(200)]

    assert max(delays) <= DEFAULT_MAX_S and delays[0] <= 0.25 and delays[-1] >= DEFAULT_MAX_S / 2
