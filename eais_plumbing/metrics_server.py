"""The Prometheus ``/metrics`` listener of a daemon (``--metrics-port``; 0 means none).

Each daemon hands over a collector that reads its own state when scraped (no cost on its hot
paths); the process's own figures come along (``process_resident_memory_bytes``,
``process_open_fds``, ``process_cpu_seconds_total``, and ``process_threads``). One registry per
listener, never the global one, so that daemons sharing a process (tests) do not mix their metrics.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, ProcessCollector, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector


class ThreadsCollector(Collector):
    """``process_threads``: the operating system's threads of this process (a leak shows here first)."""

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily("process_threads", "Threads of this process.", value=len(os.listdir("/proc/self/task")))


@dataclass
class MetricsServer:
    host: str
    port: int
    _server: object

    @classmethod
    def start(cls, host: str, port: int, collector: Collector) -> MetricsServer:
        """Serve ``http://HOST:PORT/metrics`` from a thread of its own (port 0: any free one); OSError if taken."""
        registry = CollectorRegistry()
        registry.register(collector)
        registry.register(ThreadsCollector())
        ProcessCollector(registry=registry)
        server, _thread = start_http_server(port, addr=host, registry=registry)
        return cls(host, server.server_port, server)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def labelled(kind: type, name: str, documentation: str, label: str, values: dict[str, float]) -> Metric:
    """A metric family (GaugeMetricFamily, CounterMetricFamily ...) with one sample per ``label`` value."""
    family = kind(name, documentation, labels=[label])
    for key, value in values.items():
        family.add_metric([key], value)
    return family
