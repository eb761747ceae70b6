"""Settings: flags > environment > TOML > credentials file > defaults, and a clear error when incomplete."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.vm.settings import SettingsError, load_settings, resolve_identity
from agent.vm.tf_version import version_mismatch

IDENTITY = {"client_instance_id": "i-abc123", "region_id": "cn-hangzhou", "zone_id": "cn-hangzhou-b",
            "vpc_id": "vpc-1", "vswitch_id": "vsw-1", "access_key_id": "LTAIkey", "access_key_secret": "s3cr3t-value"}


def _credentials_file(tmp_path: Path, **content: str) -> Path:
    path = tmp_path / "credentials.json"
    path.write_text(json.dumps(content))
    return path


def test_the_credentials_file_of_eais_up_fills_the_access_key_region_and_vm_id(tmp_path) -> None:
    path = _credentials_file(tmp_path, AccessKeyId="LTAIfile", AccessKeySecret="file-secret-1", RegionId="cn-beijing",
                             ClientInstanceId="i-fromfile", Endpoint="127.0.0.1:8080", AccountId="acc-1")

    identity = resolve_identity(load_settings(credentials_file=path, zone_id="cn-beijing-a", vpc_id="vpc-1",
                                              vswitch_id="vsw-1"))

    assert (identity.access_key_id, identity.access_key_secret) == ("LTAIfile", "file-secret-1")
    assert (identity.region_id, identity.client_instance_id, identity.kind) == ("cn-beijing", "i-fromfile", "ECS")


def test_values_given_as_flags_or_environment_win_over_the_credentials_file(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("EAIS_AGENT_CLIENT_INSTANCE_ID", "eci-fromenv")
    path = _credentials_file(tmp_path, AccessKeyId="LTAIfile", AccessKeySecret="file-secret-1",
                             RegionId="cn-beijing", ClientInstanceId="i-fromfile")

    identity = resolve_identity(load_settings(credentials_file=path, region_id="cn-hangzhou", zone_id="cn-hangzhou-a",
                                              vpc_id="vpc-1", vswitch_id="vsw-1"))

    assert (identity.client_instance_id, identity.region_id, identity.kind) == ("eci-fromenv", "cn-hangzhou", "ECI")


def test_a_toml_config_sets_values_and_timings_and_flags_override_it(tmp_path) -> None:
    config = tmp_path / "agent.toml"
    config.write_text('endpoint = "127.0.0.1:9000"\ncontroller = "ctl:50051"\n[timing]\ngive_up_after_s = 7.5\n')

    settings = load_settings(config, controller="other:50051")

    assert (settings.endpoint, settings.controller, settings.timing.give_up_after_s) == ("127.0.0.1:9000", "other:50051", 7.5)


def test_missing_identity_fails_at_startup_naming_each_flag() -> None:
    with pytest.raises(SettingsError) as refused:
        resolve_identity(load_settings(**{**IDENTITY, "vswitch_id": "", "zone_id": ""}))

    assert "zone_id: --zone or EAIS_AGENT_ZONE_ID" in str(refused.value)
    assert "vswitch_id: --vswitch-id or EAIS_AGENT_VSWITCH_ID" in str(refused.value)
    assert "client_instance_id" not in str(refused.value)


def test_a_placeholder_secret_is_refused_before_anything_starts() -> None:
    with pytest.raises(SettingsError, match="placeholder"):
        resolve_identity(load_settings(**{**IDENTITY, "access_key_secret": "changeme"}))


def test_a_credentials_file_that_is_not_json_is_named_in_the_error(tmp_path) -> None:
    path = tmp_path / "credentials.json"
    path.write_text("{")

    with pytest.raises(SettingsError, match="credentials.json is not JSON"):
        resolve_identity(load_settings(credentials_file=path, **IDENTITY))


@pytest.mark.parametrize(("node", "local", "refused"), [
    ("2.21.0", "2.21.3", False), ("2.16.1", "2.21.0", True), ("1.15.5", "2.15.0", True),
    ("", "2.21.0", False), ("2.21.0", "", False), ("none (simulated)", "2.21.0", False),
])
def test_only_a_different_major_minor_tensorflow_is_a_mismatch(node: str, local: str, refused: bool) -> None:
    reason = version_mismatch(node, local)

    assert (reason is not None) is refused
    if refused:
        assert f"TensorFlow {node}" in reason and f"TensorFlow {local}" in reason
