"""TLS for the channel between a VM agent and a node gateway.

The node makes its own key and asks the controller to sign it (the CSR goes in its
registration); the VM agent trusts only the controller's agent CA and checks that the
certificate names the gateway host it dials. TLS 1.3 only.
"""

from __future__ import annotations

import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class GatewayKey:
    """The gateway's private key (PEM) and the CSR the node sends to the controller."""

    key_pem: str
    csr_pem: str


def new_gateway_key(common_name: str) -> GatewayKey:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64] or "eais gateway")]))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return GatewayKey(key_pem, csr.public_bytes(serialization.Encoding.PEM).decode())


def server_context(key_pem: str, certificate_pem: str, ca_pem: str) -> ssl.SSLContext:
    """The gateway's side: its signed certificate (with the CA as chain) and key."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.num_tickets = 0  # no session resumption: every channel is a fresh, authenticated handshake
    # load_cert_chain reads only files; keep the key in a private temporary file just long enough
    with tempfile.TemporaryDirectory(prefix="eais-gw-") as directory:
        chain, key = Path(directory, "chain.pem"), Path(directory, "key.pem")
        chain.write_text(certificate_pem + ca_pem)
        key.touch(0o600)
        key.write_text(key_pem)
        context.load_cert_chain(chain, key)
    return context


def client_context(ca_pem: str) -> ssl.SSLContext:
    """The VM agent's side: trust only the controller's agent CA, and check the host name."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.load_verify_locations(cadata=ca_pem)
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    return context
