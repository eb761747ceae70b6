"""TLS for the agent link: the controller's server certificate, signed by its agent CA.

``<state_dir>/agent-link.key`` (mode 0600) and ``agent-link.crt`` hold the key and the certificate
for the names in the ``grpc_tls_names`` setting. At start they are issued again when those names
changed, the CA changed, the two files do not belong together, or a third of the validity is
left; while the controller runs, the certificate is renewed once that third is reached (gRPC asks
before every new connection's handshake, so connections made later get the new one).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import os
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from controller.agent_ca import AgentCA, load_or_create_agent_ca
from controller.settings import ControllerSettings

log = logging.getLogger(__name__)
RENEW_AT_SHARE = 1 / 3  # issue a new certificate when this share of the validity is left
PEM = serialization.Encoding.PEM


@dataclass(frozen=True)
class AgentLinkCertificate:
    key_pem: bytes
    certificate: x509.Certificate

    @property
    def certificate_pem(self) -> bytes:
        return self.certificate.public_bytes(PEM)

    @property
    def names(self) -> list[str]:
        names = self.certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        return [str(name.value) for name in names]

    def renewal_due(self, now: dt.datetime) -> bool:
        lifetime = self.certificate.not_valid_after_utc - self.certificate.not_valid_before_utc
        return self.certificate.not_valid_after_utc - now <= lifetime * RENEW_AT_SHARE

    def server_configuration(self) -> grpc.ServerCertificateConfiguration:
        return grpc.ssl_server_certificate_configuration([(self.key_pem, self.certificate_pem)])


def agent_link_certificate_paths(settings: ControllerSettings) -> tuple[Path, Path]:
    directory = settings.resolved_state_dir()
    return directory / "agent-link.key", directory / "agent-link.crt"


def agent_link_certificate(settings: ControllerSettings, ca: AgentCA, now: dt.datetime) -> AgentLinkCertificate:
    """The stored certificate while it still fits the settings and the CA; else a new one, stored."""
    stored = _load(settings)
    if stored is not None and _fits(stored, ca, settings.resolved_grpc_tls_names(), now):
        return stored
    issued = issue_agent_link_certificate(ca, settings.resolved_grpc_tls_names(), now)
    store_agent_link_certificate(settings, issued)
    return issued


def issue_agent_link_certificate(ca: AgentCA, names: list[str], now: dt.datetime) -> AgentLinkCertificate:
    key = ec.generate_private_key(ec.SECP256R1())
    key_pem = key.private_bytes(PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return AgentLinkCertificate(key_pem, ca.sign_agent_link(key.public_key(), names, now=now))


def store_agent_link_certificate(settings: ControllerSettings, issued: AgentLinkCertificate) -> None:
    key_path, certificate_path = agent_link_certificate_paths(settings)
    _replace_file(key_path, issued.key_pem, 0o600)
    _replace_file(certificate_path, issued.certificate_pem, 0o644)


class AgentLinkCertificates:
    """The certificate the agent link serves, renewed while the controller runs."""

    def __init__(self, settings: ControllerSettings, ca: AgentCA | None = None,
                 now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)) -> None:
        self._settings, self._ca, self._now = settings, ca or load_or_create_agent_ca(settings), now
        self._lock = threading.Lock()
        self.current = agent_link_certificate(settings, self._ca, now())

    def server_credentials(self) -> grpc.ServerCredentials:
        return grpc.dynamic_ssl_server_credentials(self.current.server_configuration(), self.renewed)

    def renewed(self) -> grpc.ServerCertificateConfiguration | None:
        """gRPC's question before each new connection: a new certificate when renewal is due, else None."""
        with self._lock:
            now = self._now()
            if not self.current.renewal_due(now):
                return None
            self.current = issue_agent_link_certificate(self._ca, self._settings.resolved_grpc_tls_names(), now)
            try:
                store_agent_link_certificate(self._settings, self.current)
            except OSError as error:  # serving the new certificate matters more than keeping a copy
                log.warning("renewed the agent link certificate but cannot store it: %s", error)
            log.info("renewed the agent link certificate; valid until %s", self.current.certificate.not_valid_after_utc)
            return self.current.server_configuration()


def _load(settings: ControllerSettings) -> AgentLinkCertificate | None:
    key_path, certificate_path = agent_link_certificate_paths(settings)
    try:
        key_pem, certificate_pem = key_path.read_bytes(), certificate_path.read_bytes()
        serialization.load_pem_private_key(key_pem, password=None)
        return AgentLinkCertificate(key_pem, x509.load_pem_x509_certificate(certificate_pem))
    except (OSError, ValueError, TypeError):
        return None  # missing or damaged: a new pair replaces it


def _fits(stored: AgentLinkCertificate, ca: AgentCA, names: list[str], now: dt.datetime) -> bool:
    try:
        stored.certificate.verify_directly_issued_by(ca.certificate)
        same_names = _comparable(stored.names) == _comparable(names)
    except (ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound):
        return False
    return same_names and _key_matches(stored) and not stored.renewal_due(now)


def _key_matches(stored: AgentLinkCertificate) -> bool:
    key = serialization.load_pem_private_key(stored.key_pem, password=None)
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    return key.public_key().public_bytes(PEM, spki) == stored.certificate.public_key().public_bytes(PEM, spki)


def _comparable(names: list[str]) -> set[str]:
    def normal(name: str) -> str:
        try:
            return str(ipaddress.ip_address(name))
        except ValueError:
            return name.lower().rstrip(".")

    return {normal(name) for name in names}


def _replace_file(path: Path, content: bytes, mode: int) -> None:
    """Write beside ``path`` and rename over it, so a reader sees the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
