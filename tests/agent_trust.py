"""What a test agent is given to trust a controller started in the test, as an operator gives it: the agent CA file."""

from __future__ import annotations

from pathlib import Path

import grpc

from agent.controller_trust import ControllerTrust
from controller.agent_ca import agent_ca_certificate_path
from controller.settings import ControllerSettings


def agent_ca_file(settings: ControllerSettings) -> Path:
    return agent_ca_certificate_path(settings)


def trust_for(settings: ControllerSettings) -> ControllerTrust:
    return ControllerTrust.from_ca_file(agent_ca_file(settings))


def secure_channel(settings: ControllerSettings, target: str) -> grpc.Channel:
    """A channel to the agent link that verifies the controller's certificate against its agent CA."""
    return grpc.secure_channel(target, grpc.ssl_channel_credentials(root_certificates=agent_ca_file(settings).read_bytes()))
