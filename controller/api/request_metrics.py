"""Requests, errors and latency of the EAIS and admin APIs, by action and code, counted as each request ends.

``action`` is the EAIS action (or "unknown" when the request names none of the API's) and, on the
admin API and the console, the route ("POST /v1/accounts/{account_id}/top-up", "GET /instances"); ``code`` is the error's EAIS code.
``/metrics`` and ``/healthz`` are not counted.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from controller.api.request_outcome import UNKNOWN_ACTION, Outcome, outcome_of
from controller.errors import InternalError, spec_for
from controller.observability.registry import counter, histogram

NOT_COUNTED = frozenset({"/metrics", "/healthz"})

REQUESTS = counter("eais_api_requests", "Requests answered, by API and action", ["api", "action"])
ERRORS = counter("eais_api_errors", "Requests answered with an error, by API, action and EAIS code",
                 ["api", "action", "code"])
LATENCY = histogram("eais_api_request_duration_seconds", "Time from the request's arrival to the end of its answer",
                    ["api", "action"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0))


def record(outcome: Outcome, seconds: float) -> None:
    REQUESTS.labels(outcome.api, outcome.action).inc()
    LATENCY.labels(outcome.api, outcome.action).observe(seconds)
    if outcome.error_code is not None:
        ERRORS.labels(outcome.api, outcome.action, outcome.error_code).inc()


class RequestMetrics:
    """ASGI middleware: one observation per request, whatever answered it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in NOT_COUNTED:
            await self.app(scope, receive, send)
            return
        outcome, started = outcome_of(scope), time.perf_counter()
        try:
            await self.app(scope, receive, send)
        except Exception:
            outcome.error_code = outcome.error_code or spec_for(InternalError).code
            raise
        finally:
            if outcome.api in ("admin", "console"):
                outcome.action = _route(scope)
            record(outcome, time.perf_counter() - started)


def _route(scope: dict[str, Any]) -> str:
    route = scope.get("route")  # set by the admin or console app's router on the shared scope when a route matched
    path = getattr(route, "path", None)
    return f"{scope['method']} {path}" if path else UNKNOWN_ACTION
