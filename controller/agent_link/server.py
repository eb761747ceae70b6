"""``create_grpc_server``: the AgentLink service bound to an address, ready for ``server.start()``.

Kept apart from any serving loop so tests bind port 0 and the controller's ``main`` wires it.
The port speaks TLS with the certificate of :mod:`controller.agent_link.tls`, unless the
``grpc_plaintext`` setting says otherwise.
Each WatchDesiredState stream holds one worker thread for as long as its agent is connected, so
``max_workers`` must exceed the number of agents plus the concurrent unary calls.
"""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor

import grpc

from controller.agent_link.servicer import AgentLinkServicer, WatchTiming
from controller.agent_link.tls import AgentLinkCertificates
from controller.context import ControllerContext
from protos.eais.v1 import agents_pb2_grpc

MAX_MESSAGE_BYTES = 4 * 1024 * 1024  # a node with 1024 slices reports well under this


def create_grpc_server(
    ctx: ControllerContext,
    address: str = "127.0.0.1:0",
    *,
    watch: WatchTiming | None = None,
    max_workers: int = 512,
    rng: random.Random | None = None,
) -> tuple[grpc.Server, int]:
    """Build the server and bind ``address``; returns (server, bound port). Call ``server.start()``."""
    server = grpc.server(
        ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="agent-link"),
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            # gRPC shares ports by default: a second controller would silently split the agents.
            ("grpc.so_reuseport", 0),
        ],
    )
    agents_pb2_grpc.add_AgentLinkServicer_to_server(AgentLinkServicer(ctx, watch=watch, rng=rng), server)
    if ctx.settings.grpc_plaintext:
        port = server.add_insecure_port(address)
    else:
        port = server.add_secure_port(address, AgentLinkCertificates(ctx.settings).server_credentials())
    if port == 0:
        raise RuntimeError(f"could not bind the agent link to {address}; is the port in use?")
    return server, port
