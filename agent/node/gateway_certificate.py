"""The gateway's TLS certificate: signed by the controller at registration, renewed before it expires.

The node's key never leaves it; the controller signs its CSR at every registration. The node
registers again when a third of the certificate's validity is left (a failed attempt waits ten
minutes), and the gateway takes the new certificate for new connections whenever the link's last
registration carries one it does not use yet (also after the link re-registered by itself).
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import ssl
import time
from collections.abc import Callable

from cryptography import x509

from agent.controller_link import ControllerLink
from agent.gateway_tls import GatewayKey, server_context

log = logging.getLogger(__name__)
RENEW_AT_SHARE = 1 / 3  # re-register for a new certificate when this share of its validity is left
RETRY_AFTER_S = 600.0


class GatewayCertificate:
    def __init__(self, link: ControllerLink, key: GatewayKey, say: Callable[[str], None]) -> None:
        self._link, self._key, self._say = link, key, say
        self._in_use = ""
        self._renew_not_before = 0.0

    def context(self) -> ssl.SSLContext:
        """A server context with the certificate of the link's last registration."""
        registration = self._link.last_registration
        self._in_use = registration.gateway_certificate_pem
        return server_context(self._key.key_pem, registration.gateway_certificate_pem, registration.ca_certificate_pem)

    def newer_one_registered(self) -> bool:
        return self._link.last_registration.gateway_certificate_pem != self._in_use

    def renew_if_due(self) -> None:
        not_before, not_after = _validity(self._in_use)
        left = not_after - dt.datetime.now(dt.UTC)
        if left > (not_after - not_before) * RENEW_AT_SHARE or time.monotonic() < self._renew_not_before:
            return
        try:
            self._link.register()
            self._say("gateway certificate renewed (registered again)")
        except Exception as error:  # noqa: BLE001 - LinkRefused or unreachable: the old one still holds for now
            self._renew_not_before = time.monotonic() + RETRY_AFTER_S
            log.warning("cannot renew the gateway certificate yet (%s left): %s", left, error)


@functools.lru_cache(maxsize=4)
def _validity(certificate_pem: str) -> tuple[dt.datetime, dt.datetime]:
    """(not before, not after) of a certificate, parsed once: the agent's watch loop asks every second."""
    certificate = x509.load_pem_x509_certificate(certificate_pem.encode())
    return certificate.not_valid_before_utc, certificate.not_valid_after_utc
