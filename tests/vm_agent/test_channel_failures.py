"""A channel that cannot be trusted or is refused is reported FAILED with a reason a person can act on."""

from __future__ import annotations

import grpc

from controller.states import Event, Status
from tests.harness.waiting import eventually
from tests.vm_agent.lifecycle import attach, available_instance, last_transition, wait_for_status
from tests.vm_agent.probes import call_endpoint

VM = "i-failing0001"


def test_a_gateway_whose_certificate_the_ca_did_not_sign_is_refused_and_reported_failed_naming_tls(
        controller, account, start_agent, start_gateway) -> None:
    agent = start_agent(VM)
    gateway = start_gateway(untrusted=True)
    instance_id = available_instance(controller, account, gateway)

    attach(controller, instance_id, VM)
    wait_for_status(controller, instance_id, Status.AVAILABLE)

    failed = last_transition(controller, instance_id)
    assert failed.event == Event.ATTACH_FAILED
    assert f"VM {VM} reported the channel" in failed.reason and "failed" in failed.reason
    assert "TLS" in failed.reason and "agent CA" in failed.reason and "certificate verify failed" in failed.reason
    assert gateway.hellos == []  # the token never left the VM
    refused = eventually(lambda: (e := call_endpoint(agent.endpoint_port)) and "TLS" in e.details() and e)
    assert refused.code() is grpc.StatusCode.UNAVAILABLE
    assert f"instance {instance_id} could not be attached to {VM}" in refused.details()


def test_a_gateway_that_refuses_the_token_is_reported_failed_after_the_retries(
        controller, account, start_agent, start_gateway) -> None:
    start_agent(VM)
    gateway = start_gateway(refuse_every_token=True)
    instance_id = available_instance(controller, account, gateway)

    attach(controller, instance_id, VM)
    wait_for_status(controller, instance_id, Status.AVAILABLE)

    failed = last_transition(controller, instance_id)
    assert failed.event == Event.ATTACH_FAILED
    assert "refused attachment" in failed.reason and "token" in failed.reason and "does not match" in failed.reason
    assert "gave up after" in failed.reason
    assert len(gateway.hellos) >= 2  # retried: a node that has not seen the attachment yet refuses too


def test_a_node_with_another_tensorflow_major_minor_is_refused_naming_both_versions(
        controller, account, start_agent, start_gateway) -> None:
    agent = start_agent(VM)
    gateway = start_gateway(tf_version="1.15.5")
    instance_id = available_instance(controller, account, gateway)

    attach(controller, instance_id, VM)
    wait_for_status(controller, instance_id, Status.AVAILABLE)

    reason = last_transition(controller, instance_id).reason
    assert "TensorFlow 1.15.5" in reason and f"TensorFlow {agent.agent_tf_version}" in reason
    assert gateway.hellos == []
