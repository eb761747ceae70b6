"""The VM agent's Prometheus metrics: what the endpoint does, bytes forwarded, connections, heartbeats."""

from __future__ import annotations

from controller.states import Status
from tests.harness.metrics import scrape
from tests.harness.waiting import eventually
from tests.vm_agent.lifecycle import attach, available_instance, wait_for_status
from tests.vm_agent.probes import call_endpoint
from tests.vm_agent.tf_processes import free_port

VM = "i-metrics0001"


def test_the_metrics_follow_the_attachment_and_count_what_went_through(
        controller, account, start_agent, start_gateway) -> None:
    agent = start_agent(VM, metrics_port=free_port())
    idle = scrape(agent.metrics.url)
    gateway = start_gateway()
    instance_id = available_instance(controller, account, gateway)
    attach(controller, instance_id, VM)
    wait_for_status(controller, instance_id, Status.IN_USE)
    eventually(lambda: agent.status()["state"] == "serving")
    call_endpoint(agent.endpoint_port)
    serving = eventually(lambda: (m := scrape(agent.metrics.url))['eais_agent_data_path_probes_total{outcome="ok"}'] >= 1
                         and m, 10, "a data-path probe counted")

    assert idle['eais_agent_attachment{state="idle"}'] == 1 and idle['eais_agent_attachment{state="serving"}'] == 0
    assert serving['eais_agent_attachment{state="serving"}'] == 1 and serving['eais_agent_attachment{state="idle"}'] == 0
    assert serving['eais_agent_relayed_bytes_total{direction="to_node"}'] > 0
    assert serving['eais_agent_relayed_bytes_total{direction="from_node"}'] > 0
    assert serving['eais_agent_connections_total{outcome="forwarded"}'] >= 1
    assert serving['eais_agent_reports_total{outcome="sent"}'] >= 1
    assert 'eais_agent_heartbeats_total{outcome="ok"}' in serving and serving["process_threads"] > 0
