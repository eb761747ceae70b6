"""The agent link is TLS: agents given the controller's agent CA register; anything else is refused, saying why."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from cryptography.x509.oid import NameOID

from agent.controller_link import ControllerLink, ControllerUntrusted, NodeToken
from agent.controller_trust import ControllerTrust, ControllerTrustError, controller_trust
from controller.agent_ca import load_or_create_agent_ca
from controller.agent_link import WatchTiming, create_grpc_server
from controller.context import ControllerContext
from controller.settings import ControllerSettings
from controller.tables import Node
from protos.eais.v1 import agents_pb2 as pb
from protos.eais.v1 import agents_pb2_grpc
from tests.agent_link.builders import NODE_TOKEN, node_request
from tests.agent_trust import agent_ca_file, trust_for


@dataclass
class ServedLink:
    server: grpc.Server
    ctx: ControllerContext
    target: str

    @property
    def settings(self) -> ControllerSettings:
        return self.ctx.settings


StartLink = Callable[..., ServedLink]


@pytest.fixture
def start_link(tmp_path: Path) -> Iterator[StartLink]:
    """Serve an agent link with these controller settings on 127.0.0.1:0."""
    running: list[ServedLink] = []

    def start(state: str = "state", address: str = "127.0.0.1:0", **values: object) -> ServedLink:
        settings = ControllerSettings(db_url=f"sqlite:///{tmp_path}/c.db", state_dir=tmp_path / state,
                                      node_token=NODE_TOKEN, **values)
        ctx = ControllerContext.open(settings)
        server, port = create_grpc_server(ctx, address, watch=WatchTiming(resync_s=0.5, resend_s=60.0))
        server.start()
        running.append(ServedLink(server, ctx, f"127.0.0.1:{port}"))
        return running[-1]

    yield start
    for served in running:
        served.server.stop(grace=None).wait(5)
        served.ctx.db.dispose()


def register(target: str, trust: ControllerTrust) -> pb.RegisterResponse:
    link = ControllerLink(target, node_request("tls-node"), NodeToken(NODE_TOKEN), trust=trust, call_timeout_s=5)
    try:
        return link.register_until_done(threading.Event())
    finally:
        link.close()


def refusal(target: str, trust: ControllerTrust) -> str:
    with pytest.raises(ControllerUntrusted) as refused:
        register(target, trust)
    return str(refused.value)


def test_an_agent_given_the_agent_ca_registers_over_tls(start_link: StartLink) -> None:
    served = start_link()

    registered = register(served.target, trust_for(served.settings))

    with served.ctx.db.read() as session:
        assert session.get(Node, "tls-node") is not None
    assert registered.session_token


def test_an_agent_trusting_another_ca_is_refused_with_both_cas_named(start_link: StartLink, tmp_path: Path) -> None:
    served = start_link()
    other = ControllerSettings(db_url="sqlite:///unused.db", state_dir=tmp_path / "other-deployment")
    load_or_create_agent_ca(other)

    message = refusal(served.target, trust_for(other))

    controller_ca = load_or_create_agent_ca(served.settings).certificate.subject
    assert f"another CA ({controller_ca.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value})" in message
    assert str(agent_ca_file(other)) in message and "--controller-ca" in message


def test_an_agent_dialing_an_address_the_certificate_does_not_name_is_told_which_names_it_holds(
        start_link: StartLink) -> None:
    served = start_link(grpc_tls_names=["localhost", "ctl.example"])

    message = refusal(served.target, trust_for(served.settings))

    assert "does not name 127.0.0.1" in message and "it names localhost, ctl.example" in message
    assert "grpc_tls_names" in message and "--grpc-tls-name 127.0.0.1" in message


def test_the_same_agent_dialing_a_name_the_certificate_holds_registers(start_link: StartLink) -> None:
    served = start_link(grpc_tls_names=["localhost"])

    registered = register(served.target.replace("127.0.0.1", "localhost"), trust_for(served.settings))

    assert registered.session_token


def test_an_agent_whose_controller_comes_back_with_another_ca_stops_following_it(start_link: StartLink) -> None:
    first = start_link()
    link = ControllerLink(first.target, node_request("tls-node"), NodeToken(NODE_TOKEN), trust=trust_for(first.settings))
    stop, outcome = threading.Event(), []

    def follow() -> None:
        try:
            for _ in link.desired_states(stop):
                pass
        except ControllerUntrusted as refused:
            outcome.append(str(refused))

    follower = threading.Thread(target=follow, daemon=True)
    follower.start()
    link.register()
    first.server.stop(grace=None).wait(5)
    start_link(state="rebuilt-state", address=first.target)  # same address, a CA made anew
    follower.join(timeout=30)
    stop.set()
    link.close()

    assert outcome and "another CA" in outcome[0]


def test_a_plaintext_client_cannot_call_the_tls_port(start_link: StartLink) -> None:
    served = start_link()

    with grpc.insecure_channel(served.target) as channel, pytest.raises(grpc.RpcError) as failed:
        agents_pb2_grpc.AgentLinkStub(channel).Register(node_request(), timeout=5)

    assert failed.value.code() is grpc.StatusCode.UNAVAILABLE


def test_a_plaintext_agent_is_told_the_controller_speaks_tls(start_link: StartLink) -> None:
    served = start_link()

    message = refusal(served.target, ControllerTrust.plaintext())

    assert "speaks TLS" in message and "--controller-ca" in message


def test_grpc_plaintext_serves_agents_that_chose_plaintext(start_link: StartLink) -> None:
    served = start_link(grpc_plaintext=True)

    registered = register(served.target, ControllerTrust.plaintext())

    assert registered.session_token


def test_a_tls_agent_against_a_plaintext_controller_is_told_to_choose_plaintext_too(start_link: StartLink) -> None:
    served = start_link(grpc_plaintext=True)
    load_or_create_agent_ca(served.settings)

    message = refusal(served.target, trust_for(served.settings))

    assert "does not complete a TLS handshake" in message and "--controller-plaintext" in message


def test_an_unreachable_controller_is_no_reason_to_distrust_it(start_link: StartLink) -> None:
    served = start_link()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]

    assert trust_for(served.settings).mismatch(f"127.0.0.1:{closed_port}") is None


def test_an_agent_told_neither_the_ca_nor_plaintext_is_told_where_the_ca_file_is() -> None:
    with pytest.raises(ControllerTrustError) as refused:
        controller_trust(None, plaintext=False)

    assert "--controller-ca" in str(refused.value) and "agent-ca.crt" in str(refused.value)
    assert "--controller-plaintext" in str(refused.value)


def test_an_agent_told_both_is_asked_to_choose(tmp_path: Path) -> None:
    with pytest.raises(ControllerTrustError, match="choose one"):
        controller_trust(tmp_path / "agent-ca.crt", plaintext=True)


def test_a_ca_file_that_holds_no_certificate_is_refused_at_start(tmp_path: Path) -> None:
    not_a_certificate = tmp_path / "agent-ca.crt"
    not_a_certificate.write_text("node token, not a certificate\n")

    with pytest.raises(ControllerTrustError, match="holds no PEM certificate"):
        controller_trust(not_a_certificate, plaintext=False)
