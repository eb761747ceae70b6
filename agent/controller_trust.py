"""How an agent trusts the controller's agent link: the controller's agent CA, or, said explicitly, nothing.

An agent starts with exactly one of the two: ``--controller-ca FILE`` (the controller's
``STATE_DIR/agent-ca.crt``; the link is TLS, and the controller's certificate must chain to that
CA and name the address the agent dials) or ``--controller-plaintext`` (for a controller run with
``--grpc-plaintext`` on a private network). gRPC reports every TLS failure as "unavailable", so
:meth:`ControllerTrust.mismatch` looks at the handshake itself and says which side to change.
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import NameOID

WHERE_THE_CA_IS = ("the controller prints its path at start, \"agent CA: STATE_DIR/agent-ca.crt\"; "
                   "with eais up it is DATA_DIR/state/agent-ca.crt")
PROBE_TIMEOUT_S = 3.0
PLAINTEXT_WARNING = ("warning: --controller-plaintext: the link to the controller is not encrypted; its tokens "
                     "cross the network readable (keep it on a private network nobody else reaches)")


class ControllerTrustError(ValueError):
    """The agent was not told how to trust the controller, or the CA file is unusable."""


@dataclass(frozen=True)
class ControllerTrust:
    ca_pem: bytes | None  # None: plaintext, chosen explicitly
    ca_file: Path | None = None

    @classmethod
    def plaintext(cls) -> ControllerTrust:
        return cls(None)

    @classmethod
    def from_ca_file(cls, path: Path) -> ControllerTrust:
        try:
            pem = path.read_bytes()
        except OSError as error:
            raise ControllerTrustError(f"cannot read the controller's CA file {path}: {error.strerror}") from None
        try:
            x509.load_pem_x509_certificates(pem)
        except ValueError:
            raise ControllerTrustError(f"{path} holds no PEM certificate; give the controller's agent-ca.crt "
                                       f"({WHERE_THE_CA_IS})") from None
        return cls(pem, path)

    @property
    def is_plaintext(self) -> bool:
        return self.ca_pem is None

    def channel_credentials(self) -> grpc.ChannelCredentials | None:
        return None if self.ca_pem is None else grpc.ssl_channel_credentials(root_certificates=self.ca_pem)

    def mismatch(self, target: str) -> str | None:
        """Why this agent and the controller at ``target`` cannot agree on TLS, if a handshake shows it; else None."""
        try:
            host, port = _host_and_port(target)
            if self.ca_pem is None:
                return _plaintext_agent_meets_tls(target) if _speaks_tls(host, port) else None
            _verified_handshake(host, port, self.ca_pem)
        except ssl.SSLCertVerificationError as error:
            return self._explain_rejected_certificate(target, host, port, error)
        except (ssl.SSLEOFError, ssl.SSLZeroReturnError):
            return None  # closed mid-handshake: a controller stopping, or a busy one; retrying is the answer
        except ssl.SSLError as error:
            return (f"the controller at {target} does not complete a TLS handshake ({error.reason or error}): if it "
                    "runs with --grpc-plaintext, start this agent with --controller-plaintext; else check that "
                    "this is its agent gRPC port")
        except (OSError, ValueError):
            return None  # unreachable, or not a HOST:PORT we can probe: retrying is the answer
        return None

    def _explain_rejected_certificate(
        self, target: str, host: str, port: int, error: ssl.SSLCertVerificationError,
    ) -> str:
        try:
            presented = _presented_certificate(host, port)
        except (OSError, ValueError):
            return f"the controller's certificate at {target} was rejected: {error.verify_message}"
        if not _issued_by_any(presented, x509.load_pem_x509_certificates(self.ca_pem)):
            return (f"the controller at {target} presents a certificate from another CA "
                    f"({_common_name(presented.issuer)}) than the one in {self.ca_file}: give this agent that "
                    f"controller's agent-ca.crt as --controller-ca ({WHERE_THE_CA_IS})")
        names = _certificate_names(presented)
        if host.lower() not in {name.lower() for name in names}:
            return (f"the controller's certificate does not name {host}, the address this agent dials "
                    f"(--controller {target}); it names {', '.join(names)}. Dial one of those, or add {host} to the "
                    f"controller's grpc_tls_names (eais-controller serve --grpc-tls-name {host}) and restart it")
        return f"the controller's certificate at {target} was rejected: {error.verify_message}"


def controller_trust(ca_file: Path | None, plaintext: bool) -> ControllerTrust:
    """The trust an agent's settings ask for; ControllerTrustError unless exactly one of the two is given."""
    if ca_file is not None and plaintext:
        raise ControllerTrustError("both --controller-ca and --controller-plaintext are set; choose one")
    if plaintext:
        return ControllerTrust.plaintext()
    if ca_file is None:
        raise ControllerTrustError(
            "the agent link to the controller is TLS: pass --controller-ca FILE, the controller's agent CA "
            f"({WHERE_THE_CA_IS}), or --controller-plaintext if the controller runs with --grpc-plaintext")
    return ControllerTrust.from_ca_file(ca_file)


def _plaintext_agent_meets_tls(target: str) -> str:
    return (f"the controller at {target} speaks TLS, but this agent runs with --controller-plaintext: pass "
            f"--controller-ca FILE instead ({WHERE_THE_CA_IS})")


def _host_and_port(target: str) -> tuple[str, int]:
    host, _, port = target.rpartition(":")
    return host.strip("[]"), int(port)


def _verified_handshake(host: str, port: int, ca_pem: bytes) -> None:
    context = ssl.create_default_context(cadata=ca_pem.decode())
    _handshake(host, port, context)


def _speaks_tls(host: str, port: int) -> bool:
    try:
        _handshake(host, port, _unverified_context())
    except ssl.SSLError:
        return False
    return True


def _presented_certificate(host: str, port: int) -> x509.Certificate:
    return x509.load_der_x509_certificate(_handshake(host, port, _unverified_context()))


def _unverified_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # only to read what the controller presents, never to send anything
    return context


def _handshake(host: str, port: int, context: ssl.SSLContext) -> bytes:
    """A TLS handshake and nothing more; the certificate the server presented (DER)."""
    context.set_alpn_protocols(["h2"])
    with socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S) as raw:
        with context.wrap_socket(raw, server_hostname=host) as tls:
            return tls.getpeercert(binary_form=True) or b""


def _issued_by_any(certificate: x509.Certificate, authorities: list[x509.Certificate]) -> bool:
    for authority in authorities:
        try:
            certificate.verify_directly_issued_by(authority)
            return True
        except (ValueError, TypeError, InvalidSignature):
            continue
    return False


def _certificate_names(certificate: x509.Certificate) -> list[str]:
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [str(name.value) for name in names]


def _common_name(name: x509.Name) -> str:
    found = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(found[0].value) if found else name.rfc4514_string()
