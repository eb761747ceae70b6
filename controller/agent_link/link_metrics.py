"""Prometheus metrics of the agent link: streams, heartbeats, attach and detach latency, agents online.

Counted where they happen (``controller.observability.registry``): open desired-state streams of
this process, heartbeats answered on time or late (after the deadline handed out), heartbeat
batches that could not be written, and how long attaches and detaches took (AttachEai to InUse,
DetachEai to Available, observed once the completing transaction committed). Read from the
database at each scrape: agents online, late (past their deadline, within the grace) and offline.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from sqlalchemy import case, func, literal, select, union_all
from sqlalchemy.exc import SQLAlchemyError

from controller.context import ControllerContext
from controller.errors import EaisError
from controller.observability import registry
from controller.tables import ClientInstance, Node

log = logging.getLogger("eais.metrics")
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0)

STREAMS = registry.gauge("eais_agent_link_streams", "Open WatchDesiredState streams (agents following this process)",
                         multiprocess_mode="livesum")
HEARTBEATS = registry.counter("eais_agent_heartbeats_total",
                              "Heartbeats answered, by agent kind and whether they came after the deadline handed out",
                              ["kind", "timeliness"])
HEARTBEAT_FLUSH_FAILURES = registry.counter(
    "eais_agent_heartbeat_flush_failures_total", "Batches of heartbeats the database could not take yet (kept, retried)")
ATTACH_SECONDS = registry.histogram("eais_attach_seconds", "AttachEai accepted to InUse", buckets=LATENCY_BUCKETS)
DETACH_SECONDS = registry.histogram("eais_detach_seconds", "DetachEai accepted to Available", buckets=LATENCY_BUCKETS)


def count_heartbeat(kind: str, late: bool) -> None:
    HEARTBEATS.labels(kind, "late" if late else "on_time").inc()


@registry.scrape_source
def agents_by_state(ctx: ControllerContext) -> Iterator[Metric]:
    try:
        with ctx.db.read_connection() as connection:
            rows = connection.execute(_agent_states(ctx.clock.now_us())).all()
    except (EaisError, SQLAlchemyError) as error:
        log.warning("metrics: cannot count agents: %s", error)
        return
    counts = {(kind, state): n for kind, state, n in rows}
    family = GaugeMetricFamily("eais_agents", "Registered agents: online, late (past their heartbeat deadline, within "
                               "the grace) or offline", labels=["kind", "state"])
    for kind in ("node", "vm"):
        for state in ("online", "late", "offline"):
            family.add_metric([kind, state], counts.get((kind, state), 0))
    yield family


def _agent_states(now_us: int):  # noqa: ANN202 - a SQL statement
    def of(kind: str, table: type) -> object:
        state = case((~table.online, "offline"), (table.heartbeat_deadline_us < now_us, "late"), else_="online")
        return select(literal(kind).label("kind"), state.label("state"), func.count()).group_by(state)

    return union_all(of("node", Node), of("vm", ClientInstance))
