"""With no accelerator attached, the endpoint answers status queries and refuses TensorFlow at once."""

from __future__ import annotations

import time

import grpc

from agent.vm.refusal_server import STATE_METADATA_KEY
from eais_plumbing.endpoint_status import query_endpoint_status
from tests.vm_agent.probes import call_endpoint


def test_an_idle_agent_answers_the_status_query_with_every_documented_field(start_agent) -> None:
    agent = start_agent("i-idle0001")

    status = query_endpoint_status(agent.endpoint_address)

    assert status == {
        "client_instance_id": "i-idle0001", "endpoint": agent.endpoint_address, "state": "idle",
        "instance_id": "", "instance_type": "", "status": "", "attachment_id": "", "node_gateway": "",
        "node_tf_version": "", "agent_tf_version": agent.agent_tf_version,
        "message": "no accelerator attached to i-idle0001; status Available "
                   "(attach an EAIS instance to this VM with AttachEai, or AttachEaisEi and StartEaisEi an EI instance)",
        "healthy": False, "round_trip_us": 0,
    }


def test_a_grpc_call_on_an_idle_endpoint_fails_at_once_with_unavailable_naming_the_vm(start_agent) -> None:
    agent = start_agent("i-idle0002")

    started = time.monotonic()
    error = call_endpoint(agent.endpoint_port, "/tensorflow.MasterService/CreateSession")
    took_s = time.monotonic() - started

    assert isinstance(error, grpc.RpcError) and error.code() is grpc.StatusCode.UNAVAILABLE
    assert "no accelerator attached to i-idle0002; status Available" in error.details()
    assert dict(error.trailing_metadata())[STATE_METADATA_KEY] == "idle"
    assert took_s < 2.0
    assert agent.refusals.refused_calls == 1


def test_a_tensorflow_session_on_an_idle_endpoint_raises_unavailable_error_at_once(start_agent, tf_client) -> None:
    agent = start_agent("i-idle0003")

    result = tf_client.ask(op="session", target=f"grpc://{agent.endpoint_address}", timeout_s=20)

    assert result["error"] == "UnavailableError"
    assert "no accelerator attached to i-idle0003; status Available" in result["message"]
    assert result["seconds"] < 5.0
