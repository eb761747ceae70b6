"""The status answer of the endpoint (format: eais_plumbing.endpoint_status) and ``eais-agent status``.

Exit codes of the command: 0 serving (an accelerator is attached and its channel proven), 1 the
agent answers but does not serve, 2 the agent cannot be reached.
"""

from __future__ import annotations

import json
from typing import Any, TextIO

from agent.vm.channel.view import ChannelView, EndpointState
from eais_plumbing.endpoint_status import EndpointUnreachable, query_endpoint_status

EXIT_SERVING, EXIT_NOT_SERVING, EXIT_UNREACHABLE = 0, 1, 2


def status_document(view: ChannelView, client_instance_id: str, endpoint: str, agent_tf_version: str) -> dict[str, Any]:
    """The JSON object a status query is answered with (every field eais_plumbing.endpoint_status names)."""
    return {
        "client_instance_id": client_instance_id, "endpoint": endpoint, "state": str(view.state),
        "instance_id": view.instance_id, "instance_type": view.instance_type, "status": view.status,
        "attachment_id": view.attachment_id, "node_gateway": view.node_gateway,
        "node_tf_version": view.node_tf_version, "agent_tf_version": agent_tf_version,
        "message": view.message, "healthy": view.serving, "round_trip_us": view.round_trip_us,
    }


def show_status(endpoint: str, out: TextIO, err: TextIO, timeout_s: float = 3.0) -> int:
    """Print the agent's status JSON for ``endpoint``; returns the command's exit code."""
    try:
        status = query_endpoint_status(endpoint, timeout_s=timeout_s)
    except EndpointUnreachable as error:
        print(f"error: the eais VM agent is not reachable: {error}. "
              "Check `systemctl status eais-agent` (and `journalctl -u eais-agent`).", file=err)
        return EXIT_UNREACHABLE
    if status is None:
        print(f"error: something answers at {endpoint}, but not the eais VM agent (a bare TensorFlow server?). "
              "Check `systemctl status eais-agent` and the agent's --endpoint.", file=err)
        return EXIT_UNREACHABLE
    print(json.dumps(status, indent=2, sort_keys=True), file=out)
    serving = status.get("state") == EndpointState.SERVING and status.get("healthy") is True
    return EXIT_SERVING if serving else EXIT_NOT_SERVING
