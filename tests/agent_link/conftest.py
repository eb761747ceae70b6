"""Fixtures: a controller context on a real SQLite file, and the AgentLink served on 127.0.0.1:0 with TLS."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from agent.controller_trust import ControllerTrust
from controller.agent_link import WatchTiming, create_grpc_server
from controller.agent_link.server import AgentLinkServer
from controller.clock import FakeClock
from controller.context import ControllerContext
from controller.settings import ControllerSettings, LifecycleSettings
from protos.eais.v1 import agents_pb2_grpc
from tests.agent_link.builders import NODE_TOKEN
from tests.agent_trust import secure_channel, trust_for


@pytest.fixture
def clock() -> FakeClock:
    # Starts at the real time: VM agents sign with their real clock and must fall in the window.
    return FakeClock(start_us=time.time_ns() // 1000)


@pytest.fixture
def ctx(tmp_path: Path, clock: FakeClock) -> Iterator[ControllerContext]:
    settings = ControllerSettings(
        db_url=f"sqlite:///{tmp_path / 'controller.db'}",
        state_dir=tmp_path / "state",
        node_token=NODE_TOKEN,
        lifecycle=LifecycleSettings(heartbeat_interval_s=10.0, heartbeat_jitter_s=2.0, heartbeat_grace_s=30.0),
    )
    context = ControllerContext.open(settings, clock)
    yield context
    context.db.dispose()


@dataclass
class Link:
    """A running AgentLink server and a stub connected to it."""

    port: int
    stub: agents_pb2_grpc.AgentLinkStub
    trust: ControllerTrust  # what an agent of this controller is given
    server: AgentLinkServer

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"


@pytest.fixture
def link(ctx: ControllerContext) -> Iterator[Link]:
    server, port = create_grpc_server(ctx, watch=WatchTiming(resync_s=0.5, resend_s=60.0))
    server.start()
    channel = secure_channel(ctx.settings, f"127.0.0.1:{port}")
    yield Link(port, agents_pb2_grpc.AgentLinkStub(channel), trust_for(ctx.settings), server)
    channel.close()
    server.stop(grace=None).wait(5)
