"""``GET /metrics``: the Prometheus text format, unauthenticated (keep the port on the operators' network)."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import FastAPI
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.metrics_core import Metric

from controller.context import ControllerContext
from controller.observability.registry import collect_all


class _Scrape:
    def __init__(self, ctx: ControllerContext) -> None:
        self.ctx = ctx

    def collect(self) -> Iterator[Metric]:
        return collect_all(self.ctx)


def mount_metrics(app: FastAPI, ctx: ControllerContext) -> None:
    scrape = _Scrape(ctx)

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:  # a thread of the pool: the scrape reads the database
        return Response(generate_latest(scrape), media_type=CONTENT_TYPE_PLAIN_0_0_4)  # what every Prometheus reads
