"""The VM agent watches the data path of an instance in use: a node gateway that goes away breaks calls at
once and takes the instance out of InUse within seconds, naming what failed; one slow probe does not.
A connection that arrives while the proven channel only awaits InUse waits for it instead of being refused."""

from __future__ import annotations

import threading
import time

import grpc

from controller.states import Event, Status
from tests.agent_link.builders import transitions_of
from tests.harness.waiting import eventually
from tests.vm_agent.lifecycle import attach, available_instance, status_now, wait_for_status
from tests.vm_agent.probes import call_endpoint

VM = "i-watch0001"


def serving(controller, account, start_agent, start_gateway):  # noqa: ANN001, ANN201
    agent, gateway = start_agent(VM), start_gateway()
    instance_id = available_instance(controller, account, gateway)
    attachment_id = attach(controller, instance_id, VM)
    wait_for_status(controller, instance_id, Status.IN_USE)
    eventually(lambda: agent.status()["state"] == "serving")
    return agent, gateway, instance_id, attachment_id


def test_a_gateway_that_goes_away_fails_calls_at_once_and_the_instance_leaves_in_use_within_5s(
        controller, account, start_agent, start_gateway, tf_client) -> None:
    agent, gateway, instance_id, attachment_id = serving(controller, account, start_agent, start_gateway)
    tf_client.send(op="session", target=f"grpc://{agent.endpoint_address}", graph="dequeue", timeout_ms=60000)
    eventually(lambda: agent.router.forwarding_relays(attachment_id) > 0, what="the blocked call being forwarded")

    gone_at_us = time.time_ns() // 1000
    gateway.go_away()
    in_flight = tf_client.answer(timeout_s=15)
    lost = eventually(lambda: next((t for t in transitions_of(controller.ctx, instance_id)
                                    if t.event == Event.CHANNEL_LOST), None), 10, "channel_lost in the log")
    refused = call_endpoint(agent.endpoint_port)

    assert in_flight["error"] in ("UnavailableError", "AbortedError") and in_flight["seconds"] < 5
    assert (lost.from_status, lost.to_status) == (Status.IN_USE, Status.UNAVAILABLE)
    assert (lost.at_us - gone_at_us) / 1e6 < 5.0
    assert f"VM {VM} reported the channel for attachment {attachment_id} broken" in lost.reason
    assert f"cannot reach node gateway {gateway.address}" in lost.reason
    assert refused.code() is grpc.StatusCode.UNAVAILABLE
    assert f"accelerator {instance_id} attached to {VM} lost its data path" in refused.details()
    assert "detached" not in agent.status()["message"]  # nobody detached it


def test_one_probe_left_unanswered_does_not_break_the_path(controller, account, start_agent, start_gateway) -> None:
    agent, gateway, instance_id, _ = serving(controller, account, start_agent, start_gateway)

    gateway.stall_probes(1)
    eventually(lambda: gateway.probes.count("stalled") == 1 and gateway.probes[-1] == "accepted", 10,
               "a stalled probe, then an answered one")

    assert status_now(controller, instance_id) == Status.IN_USE
    assert agent.status()["state"] == "serving"


def test_a_connection_arriving_while_in_use_is_awaited_is_served_not_refused(
        controller, account, start_agent, start_gateway) -> None:
    agent, gateway = start_agent(VM), start_gateway()
    instance_id = available_instance(controller, account, gateway)
    gateway.worker_ready.clear()  # the node keeps its worker STARTING: the instance stays Attaching
    attach(controller, instance_id, VM)
    eventually(lambda: "channel proven" in agent.status()["message"], what="the channel proven while Attaching")
    answers: list[object] = []
    caller = threading.Thread(target=lambda: answers.append(call_endpoint(agent.endpoint_port, timeout_s=10)))

    caller.start()
    time.sleep(0.3)  # the call waits at the endpoint
    gateway.worker_ready.set()
    gateway.report_again()
    caller.join(15)

    assert status_now(controller, instance_id) == Status.IN_USE
    assert isinstance(answers[0], bytes), f"the call was refused: {answers[0]}"
