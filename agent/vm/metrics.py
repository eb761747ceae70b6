"""The VM agent's Prometheus metrics (``eais-agent run --metrics-port``), read from the agent when scraped.

    eais_agent_attachment{state}                  1 for what the endpoint does now: serving, idle, attaching,
                                                  detaching, failed, lost (0 for the others)
    eais_agent_relayed_bytes_total{direction}     bytes forwarded between TensorFlow and node gateways: to_node, from_node
    eais_agent_connections_total{outcome}         TensorFlow connections on the endpoint: forwarded, refused
    eais_agent_connections_open                   connections being forwarded now
    eais_agent_refused_calls_total                TensorFlow calls answered UNAVAILABLE (no accelerator serving)
    eais_agent_data_path_probes_total{outcome}    probes of the gateway of the instance in use: ok, failed
    eais_agent_data_path_broken_total             times a data path was found broken
    eais_agent_heartbeats_total{outcome}          heartbeats to the controller: ok, failed
    eais_agent_reports_total{outcome}             actual-state reports: sent, failed
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from agent.vm.channel.view import EndpointState
from eais_plumbing.metrics_server import labelled

if TYPE_CHECKING:
    from agent.vm.agent import VmAgent


class VmMetrics(Collector):
    def __init__(self, agent: VmAgent) -> None:
        self._agent = agent

    def collect(self) -> Iterator[Metric]:
        agent = self._agent
        router, follower = agent.router, agent.follower
        state = router.view.state
        yield labelled(GaugeMetricFamily, "eais_agent_attachment", "What the endpoint does now.", "state",
                        {str(each): int(each is state) for each in EndpointState})
        to_node, from_node, open_relays = router.relayed.totals()
        yield labelled(CounterMetricFamily, "eais_agent_relayed_bytes", "Bytes forwarded to and from node gateways.",
                        "direction", {"to_node": to_node, "from_node": from_node})
        yield labelled(CounterMetricFamily, "eais_agent_connections", "TensorFlow connections on the endpoint.",
                        "outcome", {"forwarded": router.forwarded_connections, "refused": router.refused_connections})
        yield GaugeMetricFamily("eais_agent_connections_open", "Connections being forwarded now.", value=open_relays)
        yield CounterMetricFamily("eais_agent_refused_calls", "TensorFlow calls answered UNAVAILABLE.",
                                  value=agent.refusals.refused_calls)
        probes = follower.probes if follower is not None else {}
        yield labelled(CounterMetricFamily, "eais_agent_data_path_probes", "Probes of the gateway in use.", "outcome",
                        {"ok": probes.get("ok", 0), "failed": probes.get("failed", 0)})
        yield CounterMetricFamily("eais_agent_data_path_broken", "Times a data path was found broken.",
                                  value=follower.broken_paths if follower is not None else 0)
        yield labelled(CounterMetricFamily, "eais_agent_heartbeats", "Heartbeats to the controller.", "outcome",
                        {"ok": agent.heartbeats["ok"], "failed": agent.heartbeats["failed"]})
        reporter = agent.reporter
        yield labelled(CounterMetricFamily, "eais_agent_reports", "Actual-state reports.", "outcome",
                        {"sent": reporter.reports_sent if reporter else 0,
                         "failed": reporter.reports_failed if reporter else 0})

