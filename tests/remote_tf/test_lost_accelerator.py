"""A lost accelerator surfaces as an exception within a bounded time, never as a hang.

The numbers come from tests/remote_tf/scenarios/lost_accelerator.py: a real worker behind an
agent-like relay, frozen (SIGSTOP), detached (relay cut) and killed (SIGKILL) mid-call, with
shrunken :class:`remote_tf.LivenessTimings`.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.remote_tf.scenarios.lost_accelerator import LONG_CALL_S

SCHEDULING_SLACK_S = 3.0  # two busy cores: threads and processes start late


@pytest.fixture(scope="module")
def run(scenarios: dict) -> dict[str, Any]:
    return scenarios["lost_accelerator"].result()


def test_a_healthy_call_longer_than_the_workers_ping_policing_allows_completes(run):
    long_call = run["long_call"]
    assert "error" not in long_call, long_call
    assert long_call["seconds"] >= LONG_CALL_S


def test_a_frozen_worker_fails_the_pending_call_with_accelerator_lost_within_the_bound(run):
    frozen = run["frozen"]
    assert frozen["error"] == "AcceleratorLost" and frozen["code"] == "accelerator_lost"
    assert "ping timeout" in frozen["message"]
    assert frozen["seconds_after_act"] < run["worst_case_detection_s"] + SCHEDULING_SLACK_S


def test_reconnect_after_the_worker_recovers_computes_again_with_functions_traced_before(run):
    assert run["after_thaw_reconnect"]["value"] == "4.0"
    assert "error" not in run["function_traced_before_reconnect"], run["function_traced_before_reconnect"]


def test_a_detach_mid_call_raises_accelerator_lost_with_what_the_agent_says(run):
    detached = run["detached"]
    assert detached["error"] == "AcceleratorLost"
    assert "no accelerator attached to i-test" in detached["message"]
    assert detached["seconds_after_act"] < SCHEDULING_SLACK_S


def test_connecting_while_detached_raises_accelerator_unavailable_with_the_agents_message(run):
    refused = run["connect_while_detached"]
    assert refused["error"] == "AcceleratorUnavailable" and refused["code"] == "accelerator_unavailable"
    assert refused["message"].startswith("no accelerator attached to i-test; status Available")


def test_after_a_new_attach_reconnect_computes_again(run):
    assert run["after_attach_reconnect"]["value"] == "4.0"


def test_killing_the_worker_fails_pending_tf2_and_tf1_calls_within_seconds(run):
    for api in ("tf2", "tf1"):
        killed = run["killed"][api]
        assert killed["error"] == "UnavailableError", (api, killed)
        assert killed["seconds"] < 1.0 + SCHEDULING_SLACK_S, (api, killed)
