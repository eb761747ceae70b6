"""The agent link's server certificate: signed by the agent CA for the configured names, kept, renewed."""

from __future__ import annotations

import datetime as dt
import ipaddress
import shutil
import socket
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from controller.agent_ca import AGENT_LINK_VALIDITY, load_or_create_agent_ca
from controller.agent_link.tls import AgentLinkCertificates, agent_link_certificate, agent_link_certificate_paths
from controller.settings import ControllerSettings

NOW = dt.datetime(2026, 11, 21, 12, 0, tzinfo=dt.UTC)


def settings_in(tmp_path: Path, **values: object) -> ControllerSettings:
    return ControllerSettings(db_url=f"sqlite:///{tmp_path}/c.db", state_dir=tmp_path / "state", **values)


def names_in(certificate: x509.Certificate) -> list[x509.GeneralName]:
    return list(certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)


def test_the_certificate_names_exactly_the_configured_hosts_and_addresses(tmp_path: Path) -> None:
    settings = settings_in(tmp_path, grpc_tls_names=["ctl.example", "10.0.0.5", "fd00::5"])
    ca = load_or_create_agent_ca(settings)

    issued = agent_link_certificate(settings, ca, NOW)

    assert names_in(issued.certificate) == [
        x509.DNSName("ctl.example"), x509.IPAddress(ipaddress.ip_address("10.0.0.5")),
        x509.IPAddress(ipaddress.ip_address("fd00::5"))]
    issued.certificate.verify_directly_issued_by(ca.certificate)
    usage = issued.certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]


def test_by_default_the_certificate_names_this_host_loopback_and_a_specific_grpc_host(tmp_path: Path) -> None:
    on_all_interfaces = settings_in(tmp_path, grpc_host="0.0.0.0")
    on_one_address = settings_in(tmp_path, grpc_host="10.0.0.5")

    assert on_all_interfaces.resolved_grpc_tls_names() == [socket.gethostname(), "localhost", "127.0.0.1", "::1"]
    assert on_one_address.resolved_grpc_tls_names()[-1] == "10.0.0.5"


def test_the_key_stays_in_the_state_directory_readable_by_the_controller_alone(tmp_path: Path) -> None:
    settings = settings_in(tmp_path)

    agent_link_certificate(settings, load_or_create_agent_ca(settings), NOW)

    key_path, certificate_path = agent_link_certificate_paths(settings)
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert certificate_path.parent == settings.resolved_state_dir()


def test_the_stored_certificate_is_kept_while_names_ca_and_validity_hold(tmp_path: Path) -> None:
    settings = settings_in(tmp_path, grpc_tls_names=["ctl.example"])
    ca = load_or_create_agent_ca(settings)
    first = agent_link_certificate(settings, ca, NOW)

    again = agent_link_certificate(settings, ca, NOW + dt.timedelta(days=1))

    assert again.certificate.serial_number == first.certificate.serial_number and again.key_pem == first.key_pem


def test_changed_names_get_a_new_certificate_with_a_new_key(tmp_path: Path) -> None:
    first_settings = settings_in(tmp_path, grpc_tls_names=["ctl.example"])
    ca = load_or_create_agent_ca(first_settings)
    first = agent_link_certificate(first_settings, ca, NOW)

    renamed = agent_link_certificate(settings_in(tmp_path, grpc_tls_names=["ctl.example", "10.0.0.9"]), ca, NOW)

    assert renamed.names == ["ctl.example", "10.0.0.9"] and renamed.key_pem != first.key_pem


def test_a_new_agent_ca_gets_a_new_certificate(tmp_path: Path) -> None:
    settings = settings_in(tmp_path)
    first = agent_link_certificate(settings, load_or_create_agent_ca(settings), NOW)
    for name in ("agent-ca.key", "agent-ca.crt"):
        (settings.resolved_state_dir() / name).unlink()
    new_ca = load_or_create_agent_ca(settings)

    reissued = agent_link_certificate(settings, new_ca, NOW)

    assert reissued.certificate.serial_number != first.certificate.serial_number
    reissued.certificate.verify_directly_issued_by(new_ca.certificate)


def test_a_certificate_with_a_third_of_its_validity_left_is_reissued_at_start(tmp_path: Path) -> None:
    settings = settings_in(tmp_path)
    ca = load_or_create_agent_ca(settings)
    first = agent_link_certificate(settings, ca, NOW)

    later = agent_link_certificate(settings, ca, NOW + AGENT_LINK_VALIDITY * 2 / 3)

    assert later.certificate.serial_number != first.certificate.serial_number


def test_a_damaged_key_file_is_replaced_by_a_new_pair(tmp_path: Path) -> None:
    settings = settings_in(tmp_path)
    ca = load_or_create_agent_ca(settings)
    agent_link_certificate(settings, ca, NOW)
    key_path, _ = agent_link_certificate_paths(settings)
    key_path.write_text("not a key")

    replaced = agent_link_certificate(settings, ca, NOW)

    assert key_path.read_bytes() == replaced.key_pem


def test_a_running_controller_renews_its_certificate_once_renewal_is_due(tmp_path: Path) -> None:
    settings = settings_in(tmp_path)
    clock = [NOW]
    certificates = AgentLinkCertificates(settings, now=lambda: clock[0])
    first = certificates.current

    not_yet = certificates.renewed()
    clock[0] = NOW + AGENT_LINK_VALIDITY * 2 / 3
    renewed = certificates.renewed()

    assert not_yet is None and renewed is not None
    assert certificates.current.certificate.not_valid_after_utc > first.certificate.not_valid_after_utc
    _, certificate_path = agent_link_certificate_paths(settings)
    assert certificate_path.read_bytes() == certificates.current.certificate_pem


@pytest.mark.parametrize("name", ["ctl example", "ctl.example:50051", "https://ctl.example", ""])
def test_a_name_a_certificate_cannot_hold_is_refused_in_the_settings(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match="grpc_tls_names"):
        settings_in(tmp_path, grpc_tls_names=[name])


def test_an_empty_list_of_names_is_refused_in_the_settings(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="grpc_tls_names is empty"):
        settings_in(tmp_path, grpc_tls_names=[])


def test_copying_the_state_directory_to_a_replica_keeps_its_certificate(tmp_path: Path) -> None:
    first = settings_in(tmp_path / "a", grpc_tls_names=["ctl.example"])
    issued = agent_link_certificate(first, load_or_create_agent_ca(first), NOW)
    shutil.copytree(first.resolved_state_dir(), tmp_path / "b" / "state")
    replica = settings_in(tmp_path / "b", grpc_tls_names=["ctl.example"])

    kept = agent_link_certificate(replica, load_or_create_agent_ca(replica), NOW)

    assert kept.certificate.serial_number == issued.certificate.serial_number
