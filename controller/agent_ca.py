"""The controller's agent CA: it signs node gateways' TLS certificates and the controller's own
certificate for the agent link; agents trust only it.

A node agent keeps its gateway key to itself and sends a certificate signing request when it
registers; the controller signs it for the host of the gateway address the node registered (the
names inside the request are ignored, so a node cannot ask for another name). VM agents receive
the CA certificate when they register and verify every gateway against it and nothing else.

Agents dial the controller's agent link (gRPC) with TLS and verify it against the same CA, given
to them as a file (``--controller-ca``); :meth:`AgentCA.sign_agent_link` makes that server
certificate for the names agents dial (the ``grpc_tls_names`` setting).

The CA key lives in ``<state_dir>/agent-ca.key`` (mode 0600, created once); the certificate in
``agent-ca.crt`` beside it. Several controller replicas must share the state directory's CA (copy
both files), like the node token.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from controller.errors import InvalidParameter
from controller.settings import ControllerSettings

CA_VALIDITY = dt.timedelta(days=3650)
GATEWAY_VALIDITY = dt.timedelta(days=30)  # nodes re-register (and so renew) on every restart
AGENT_LINK_VALIDITY = dt.timedelta(days=90)  # the controller renews it while it runs (controller/agent_link/tls.py)
CLOCK_SKEW = dt.timedelta(minutes=5)
MAX_CSR_BYTES = 16 * 1024


@dataclass(frozen=True)
class AgentCA:
    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    @property
    def certificate_pem(self) -> str:
        return self.certificate.public_bytes(serialization.Encoding.PEM).decode()

    def sign_gateway(self, csr_pem: str, gateway_address: str, *, now: dt.datetime | None = None) -> str:
        """A PEM server certificate for the gateway's key, valid for the host of ``gateway_address``."""
        csr = _load_csr(csr_pem)
        now = now or dt.datetime.now(dt.UTC)
        host = gateway_host(gateway_address)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host[:64])]))
            .issuer_name(self.certificate.subject)
            .public_key(csr.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - CLOCK_SKEW)
            .not_valid_after(now + GATEWAY_VALIDITY)
            .add_extension(x509.SubjectAlternativeName([_general_name(host)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        return certificate.public_bytes(serialization.Encoding.PEM).decode()

    def sign_agent_link(
        self, public_key: ec.EllipticCurvePublicKey, names: list[str], *, now: dt.datetime | None = None
    ) -> x509.Certificate:
        """The controller's server certificate for its agent link, valid for every one of ``names``."""
        now = now or dt.datetime.now(dt.UTC)
        return (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "eais controller agent link")]))
            .issuer_name(self.certificate.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - CLOCK_SKEW)
            .not_valid_after(now + AGENT_LINK_VALIDITY)
            .add_extension(x509.SubjectAlternativeName([_general_name(name) for name in names]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(self.key, hashes.SHA256())
        )


def agent_ca_certificate_path(settings: ControllerSettings) -> Path:
    """The file agents are given as ``--controller-ca``."""
    return settings.resolved_state_dir() / "agent-ca.crt"


def gateway_host(gateway_address: str) -> str:
    host, sep, port = gateway_address.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit():
        raise InvalidParameter(f"gateway_address {gateway_address!r} is not HOST:PORT.")
    return host


def load_or_create_agent_ca(settings: ControllerSettings) -> AgentCA:
    cert_path = agent_ca_certificate_path(settings)
    key_path = cert_path.with_name("agent-ca.key")
    if not key_path.exists():
        _create(key_path, cert_path)
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{key_path} is not an EC private key; remove it to have a new agent CA made")
    return AgentCA(key, x509.load_pem_x509_certificate(cert_path.read_bytes()))


def _create(key_path: Path, cert_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    # a name of its own, so a gateway signed by another deployment's CA fails as "unknown issuer"
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"eais agent CA {secrets.token_hex(4)}")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW).not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_path.parent.mkdir(parents=True, exist_ok=True)
    key_bytes = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption())
    try:  # O_EXCL: two controllers starting at once must not make two CAs
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    with os.fdopen(fd, "wb") as handle:
        handle.write(key_bytes)


def _load_csr(csr_pem: str) -> x509.CertificateSigningRequest:
    if len(csr_pem) > MAX_CSR_BYTES:
        raise InvalidParameter(f"gateway_csr_pem is longer than {MAX_CSR_BYTES} bytes.")
    try:
        csr = x509.load_pem_x509_csr(csr_pem.encode())
    except ValueError:
        raise InvalidParameter("gateway_csr_pem is not a PEM certificate signing request.") from None
    if not csr.is_signature_valid:
        raise InvalidParameter("gateway_csr_pem is not signed by its own key.")
    return csr


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)
