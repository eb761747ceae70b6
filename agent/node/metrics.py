"""The node agent's Prometheus metrics (``eais-node run --metrics-port``), read from the agent when scraped.

    eais_node_workers{state}                   attachment workers by state: starting, ready, failed, stopping
    eais_node_slices{role}                     slices by what the controller wants of them: idle, serve, release
    eais_node_worker_pool{state}               warm workers kept for the next attaches: warm, warming
    eais_node_worker_pool_target               how many the pool keeps now (it grows after takes that found it empty)
    eais_node_worker_pool_takes_total          attaches that took a worker from the pool
    eais_node_worker_pool_started_total        workers the pool started (its refills)
    eais_node_fork_server_starts_total         worker fork servers started (1 unless one died)
    eais_node_gateway_bytes_total{direction}   bytes relayed through the gateway: to_worker, from_worker
    eais_node_gateway_connections_total{outcome}  gateway connections: relay, probe, refused, dropped
    eais_node_gateway_relays_open              connections being relayed now
    eais_node_heartbeats_total{outcome}        heartbeats to the controller: ok, failed
    eais_node_reports_total{outcome}           actual-state reports: sent, failed
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from agent.node.worker.served import FAILED, READY, STARTING, STOPPING
from eais_plumbing.metrics_server import labelled

if TYPE_CHECKING:
    from agent.node.agent import NodeAgent

WORKER_STATES = (STARTING, READY, FAILED, STOPPING)
ROLES = {0: "unspecified", 1: "idle", 2: "serve", 3: "release"}


class NodeMetrics(Collector):
    def __init__(self, agent: NodeAgent) -> None:
        self._agent = agent

    def collect(self) -> Iterator[Metric]:
        agent = self._agent
        runners = agent.runners()
        states = Counter(runner.worker_state() for runner in runners)
        yield labelled(GaugeMetricFamily, "eais_node_workers", "Attachment workers by state.", "state",
                        {state: states.get(state, 0) for state in WORKER_STATES})
        roles = Counter(ROLES.get(runner.role(), "unspecified") for runner in runners)
        yield labelled(GaugeMetricFamily, "eais_node_slices", "Slices by what the controller wants of them.", "role",
                        {role: roles.get(role, 0) for role in ("idle", "serve", "release")})
        yield from self._pool()
        to_worker, from_worker, open_relays = agent.relayed.totals()
        yield labelled(CounterMetricFamily, "eais_node_gateway_bytes", "Bytes relayed through the gateway.",
                        "direction", {"to_worker": to_worker, "from_worker": from_worker})
        yield labelled(CounterMetricFamily, "eais_node_gateway_connections", "Gateway connections by outcome.",
                        "outcome", {k: agent.gateway.connections.get(k, 0) for k in ("relay", "probe", "refused", "dropped")})
        yield GaugeMetricFamily("eais_node_gateway_relays_open", "Connections being relayed now.", value=open_relays)
        yield labelled(CounterMetricFamily, "eais_node_heartbeats", "Heartbeats to the controller by outcome.",
                        "outcome", {"ok": agent.heartbeats["ok"], "failed": agent.heartbeats["failed"]})
        reporter = agent.reporter
        yield labelled(CounterMetricFamily, "eais_node_reports", "Actual-state reports by outcome.", "outcome",
                        {"sent": reporter.reports_sent, "failed": reporter.reports_failed})

    def _pool(self) -> Iterator[Metric]:
        pool = self._agent.pool
        warm, warming = pool.counts()
        yield labelled(GaugeMetricFamily, "eais_node_worker_pool", "Warm workers kept for the next attaches.",
                        "state", {"warm": warm, "warming": warming})
        yield GaugeMetricFamily("eais_node_worker_pool_target", "Workers the pool keeps now.", value=pool.target)
        yield CounterMetricFamily("eais_node_worker_pool_takes", "Workers taken from the pool.", value=pool.takes)
        yield CounterMetricFamily("eais_node_worker_pool_started", "Workers the pool started.", value=pool.spawned)
        yield CounterMetricFamily("eais_node_fork_server_starts", "Worker fork servers started.",
                                  value=self._agent.starter.fork_server_starts)

