"""The controller's agent CA signs a node's gateway key for the gateway host it registered, and only that."""

from __future__ import annotations

import socket
import ssl
import threading
from pathlib import Path

import pytest
from cryptography import x509

from agent.gateway_tls import client_context, new_gateway_key, server_context
from agent.tls_stream import TlsStream
from controller.agent_ca import load_or_create_agent_ca
from controller.errors import InvalidParameter
from controller.settings import ControllerSettings


@pytest.fixture
def ca(tmp_path: Path):  # noqa: ANN201
    return load_or_create_agent_ca(ControllerSettings(db_url=f"sqlite:///{tmp_path}/c.db", state_dir=tmp_path / "state"))


def _tls_pair(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext, hostname: str) -> tuple[str, str]:
    """Handshake over a real loopback TCP connection; returns (server outcome, client outcome)."""
    listener = socket.create_server(("127.0.0.1", 0))
    outcome: dict[str, str] = {}

    def serve() -> None:
        conn, _ = listener.accept()
        try:
            TlsStream(conn, server_ctx, server_side=True).handshake()
            outcome["server"] = "ok"
        except (ssl.SSLError, ConnectionError) as error:
            outcome["server"] = type(error).__name__
        finally:
            conn.close()

    thread = threading.Thread(target=serve)
    thread.start()
    raw = socket.create_connection(listener.getsockname())
    try:
        TlsStream(raw, client_ctx, server_side=False, server_hostname=hostname).handshake()
        outcome["client"] = "ok"
    except ssl.SSLCertVerificationError as error:
        outcome["client"] = f"verify: {error.verify_message}"
    finally:
        raw.close()
        thread.join(5)
        listener.close()
    return outcome["server"], outcome["client"]


def test_the_ca_is_made_once_with_a_private_key_only_its_owner_reads(ca, tmp_path: Path) -> None:  # noqa: ANN001
    key = tmp_path / "state" / "agent-ca.key"
    assert key.stat().st_mode & 0o777 == 0o600
    again = load_or_create_agent_ca(ControllerSettings(db_url=f"sqlite:///{tmp_path}/c.db", state_dir=tmp_path / "state"))
    assert again.certificate_pem == ca.certificate_pem


def test_a_signed_gateway_certificate_names_the_registered_host_not_the_csr_names(ca) -> None:  # noqa: ANN001
    key = new_gateway_key("evil.example.com")
    certificate = x509.load_pem_x509_certificate(ca.sign_gateway(key.csr_pem, "10.1.2.3:50052").encode())
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["10.1.2.3"]
    assert names.get_values_for_type(x509.DNSName) == []


def test_a_vm_that_trusts_the_ca_completes_tls_with_the_gateway(ca) -> None:  # noqa: ANN001
    key = new_gateway_key("gw")
    server = server_context(key.key_pem, ca.sign_gateway(key.csr_pem, "127.0.0.1:1"), ca.certificate_pem)
    assert _tls_pair(server, client_context(ca.certificate_pem), "127.0.0.1") == ("ok", "ok")


def test_a_gateway_certificate_for_another_host_is_refused_by_the_vm(ca) -> None:  # noqa: ANN001
    key = new_gateway_key("gw")
    server = server_context(key.key_pem, ca.sign_gateway(key.csr_pem, "node-7.internal:50052"), ca.certificate_pem)
    _, client = _tls_pair(server, client_context(ca.certificate_pem), "127.0.0.1")
    assert client.startswith("verify:") and "mismatch" in client.lower()


def test_a_gateway_signed_by_another_ca_is_refused_by_the_vm(ca, tmp_path: Path) -> None:  # noqa: ANN001
    other = load_or_create_agent_ca(ControllerSettings(db_url="sqlite:///x.db", state_dir=tmp_path / "other"))
    key = new_gateway_key("gw")
    server = server_context(key.key_pem, other.sign_gateway(key.csr_pem, "127.0.0.1:1"), other.certificate_pem)
    _, client = _tls_pair(server, client_context(ca.certificate_pem), "127.0.0.1")
    assert client.startswith("verify:")  # unknown issuer or a self-signed CA it does not trust


@pytest.mark.parametrize("csr", ["", "not a csr", "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
                                 "x" * 20000])
def test_a_malformed_csr_is_an_invalid_parameter(ca, csr: str) -> None:  # noqa: ANN001
    with pytest.raises(InvalidParameter):
        ca.sign_gateway(csr, "127.0.0.1:1")
