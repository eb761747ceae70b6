"""Attach: the channel is proven before the instance is InUse, then TensorFlow runs through it.
Detach: the forwarding connections are cut, calls in flight fail, and the endpoint refuses again."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grpc

from controller.states import Status
from eais_plumbing.endpoint_status import query_endpoint_status
from tests.harness.waiting import eventually
from tests.vm_agent.lifecycle import attach, available_instance, detach, last_transition, status_now, wait_for_status
from tests.vm_agent.probes import call_endpoint

VM = "i-attach0001"
GET_STATUS = "/tensorflow.WorkerService/GetStatus"


def test_the_instance_is_in_use_only_after_the_agent_proved_the_channel(controller, account, start_agent, start_gateway) -> None:
    agent = start_agent(VM)
    gateway = start_gateway()
    gateway.open_for_channels.clear()  # hellos refused as "worker not started yet" until set
    instance_id = available_instance(controller, account, gateway)

    attach(controller, instance_id, VM)
    eventually(lambda: len(gateway.hellos) >= 2, what="the agent retrying the gateway")
    status_while_refused = status_now(controller, instance_id)
    with grpc.insecure_channel(f"127.0.0.1:{agent.endpoint_port}") as app_channel:  # one app, kept connected
        get_status = app_channel.unary_unary(GET_STATUS, request_serializer=None, response_deserializer=None)
        refused_call = _error_of(lambda: get_status(b"", timeout=5))
        gateway.open_for_channels.set()
        wait_for_status(controller, instance_id, Status.IN_USE)
        eventually(lambda: agent.status()["state"] == "serving")
        served_call = get_status(b"", timeout=5, wait_for_ready=True)  # its refused connection was cut: it reconnects

    assert status_while_refused == Status.ATTACHING  # the node said READY; the VM had proven nothing
    assert refused_call.code() is grpc.StatusCode.UNAVAILABLE
    assert f"instance {instance_id} is Attaching to {VM}; not ready yet" in refused_call.details()
    assert isinstance(served_call, bytes)
    assert f"VM {VM} proved the channel" in last_transition(controller, instance_id).reason
    status = eventually(lambda: (s := query_endpoint_status(agent.endpoint_address))["state"] == "serving" and s)
    assert status["healthy"] and status["instance_id"] == instance_id and status["status"] == "InUse"
    assert status["node_gateway"] == gateway.address and status["round_trip_us"] > 0


def test_tensorflow_through_the_endpoint_gives_the_same_result_as_local(controller, account, start_agent, start_gateway,
                                                                       tf_client) -> None:
    agent = start_agent(VM)
    gateway = start_gateway()
    instance_id = available_instance(controller, account, gateway)
    attach(controller, instance_id, VM)
    wait_for_status(controller, instance_id, Status.IN_USE)
    eventually(lambda: agent.status()["state"] == "serving")

    session = tf_client.ask(op="session", target=f"grpc://{agent.endpoint_address}")
    remote_eager = tf_client.ask(op="eager", endpoint=agent.endpoint_address)
    local = tf_client.ask(op="local")

    assert session["value"] == remote_eager["value"] == local["value"] == [[7.0, 10.0], [15.0, 22.0]]
    assert remote_eager["device"] == "/job:worker/replica:0/task:0/device:CPU:0"
    assert agent.router.forwarded_connections >= 2
    assert eventually(lambda: len(gateway.relays)) >= 1


def test_detach_cuts_the_forwarding_connections_and_a_call_in_flight_fails(controller, account, start_agent,
                                                                          start_gateway, tf_client) -> None:
    agent = start_agent(VM)
    gateway = start_gateway()
    instance_id = available_instance(controller, account, gateway)
    attachment_id = attach(controller, instance_id, VM)
    wait_for_status(controller, instance_id, Status.IN_USE)
    eventually(lambda: agent.status()["state"] == "serving")
    tf_client.send(op="session", target=f"grpc://{agent.endpoint_address}", graph="dequeue", timeout_ms=30000)
    eventually(lambda: agent.router.forwarding_relays(attachment_id) > 0, what="the blocked call being forwarded")

    detach(controller, instance_id)
    in_flight = tf_client.answer(timeout_s=15)
    wait_for_status(controller, instance_id, Status.AVAILABLE)
    refused = call_endpoint(agent.endpoint_port)

    assert in_flight["error"] in ("UnavailableError", "AbortedError", "CancelledError") and in_flight["seconds"] < 10
    assert agent.router.forwarding_relays(attachment_id) == 0
    assert refused.code() is grpc.StatusCode.UNAVAILABLE
    assert f"accelerator {instance_id} detached from {VM}" in refused.details()
    assert "closed its channel" in last_transition(controller, instance_id).reason


def test_a_new_attachment_on_another_node_works_without_restarting_the_agent(controller, account, start_agent,
                                                                            start_gateway) -> None:
    agent = start_agent(VM)
    first_node, second_node = start_gateway("gpu-node-1"), start_gateway("gpu-node-2")
    first = available_instance(controller, account, first_node)
    second = available_instance(controller, account, second_node)
    attach(controller, first, VM)
    wait_for_status(controller, first, Status.IN_USE)
    detach(controller, first)
    wait_for_status(controller, first, Status.AVAILABLE)

    attach(controller, second, VM)
    wait_for_status(controller, second, Status.IN_USE)
    served = eventually(lambda: agent.status()["state"] == "serving" and agent.status())

    assert served["instance_id"] == second and served["node_gateway"] == second_node.address
    assert isinstance(call_endpoint(agent.endpoint_port), bytes)  # the second node's worker answered GetStatus


def test_the_status_command_exits_0_serving_1_idle_2_unreachable(controller, account, start_agent, start_gateway) -> None:
    agent = start_agent(VM)
    idle = _status_command(agent.endpoint_address)
    gateway = start_gateway()
    instance_id = available_instance(controller, account, gateway)
    attach(controller, instance_id, VM)
    eventually(lambda: agent.status()["state"] == "serving")
    serving = _status_command(agent.endpoint_address)
    agent.stop()
    unreachable = _status_command(agent.endpoint_address)

    assert idle.returncode == 1 and '"state": "idle"' in idle.stdout
    assert serving.returncode == 0 and f'"instance_id": "{instance_id}"' in serving.stdout
    assert unreachable.returncode == 2 and "systemctl status eais-agent" in unreachable.stderr


def _error_of(call) -> grpc.RpcError:
    try:
        call()
    except grpc.RpcError as error:
        return error
    raise AssertionError("the call succeeded")


def _status_command(endpoint: str) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).with_name("eais-agent")  # the installed console script
    return subprocess.run([str(script), "status", "--endpoint", endpoint], check=False, capture_output=True, text=True, timeout=30)
