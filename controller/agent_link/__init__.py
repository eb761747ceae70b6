"""The controller's side of the agent link (gRPC service ``eais.v1.AgentLink``).

Modules, one job each:
- ``sessions``            session tokens (only their hashes are stored) and the agent they stand for
- ``auth``                node token, AccessKey-signed VM registration, session bearer tokens
- ``registration_rules``  what a registration may say
- ``registration``        upsert nodes + slices, VMs as client instances of an account
- ``heartbeats``          deadlines with jitter; ``expire_heartbeats`` for the reconciler
- ``desired_state``       what each agent should do, from the database alone
- ``actual_state``        agent reports -> lifecycle events (level-triggered, idempotent)
- ``attachment_progress`` the attach/detach completion rules both ends feed
- ``wire``                protobuf messages <-> plain values
- ``grpc_errors``         EaisError -> gRPC status, in one place
- ``servicer``, ``server`` the thin gRPC edge and ``create_grpc_server``
- ``tls``                 the link's server certificate (signed by the agent CA), kept and renewed
"""

from __future__ import annotations

from controller.agent_link.actual_state import apply_node_report, apply_vm_report
from controller.agent_link.heartbeats import expire_heartbeats
from controller.agent_link.server import create_grpc_server
from controller.agent_link.servicer import WatchTiming

__all__ = ["WatchTiming", "apply_node_report", "apply_vm_report", "create_grpc_server", "expire_heartbeats"]
