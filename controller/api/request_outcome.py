"""What the controller's HTTP port did with one request, kept in the ASGI scope while it runs.

The RPC endpoint fills in the action, the error handler the error code; the error renderers read
the request id and the response format from it, and the request metrics read all of it.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass, field
from typing import Any

from controller.api.eais_responses import ResponseFormat, requested_format
from controller.ids import new_request_id

ADMIN_PREFIX = "/admin"
CONSOLE_PREFIX = "/console"
UNKNOWN_ACTION = "unknown"  # the metrics label of a request whose action is not one we know
_STATE_KEY = "eais_outcome"


@dataclass
class Outcome:
    api: str  # "eais", "admin" or "console"
    response_format: ResponseFormat
    request_id: str = field(default_factory=new_request_id)
    action: str = UNKNOWN_ACTION
    error_code: str | None = None


def outcome_of(scope: MutableMapping[str, Any]) -> Outcome:
    """The request's outcome, made on first use from what the scope already says."""
    state = scope.setdefault("state", {})
    outcome = state.get(_STATE_KEY)
    if outcome is None:
        path = scope.get("path", "")
        api = next((name for name, prefix in (("admin", ADMIN_PREFIX), ("console", CONSOLE_PREFIX))
                    if path == prefix or path.startswith(prefix + "/")), "eais")
        outcome = state[_STATE_KEY] = Outcome(api, requested_format(scope.get("query_string", b"")))
    return outcome
