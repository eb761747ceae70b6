"""Node agent settings: TOML file, environment, flags, and what they refuse."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from agent.node.registration import gateway_address, tensorflow_version
from agent.node.settings import NodeSettings, load_node_settings

TOML = """
controller = "ctl.example:50051"
region = "cn-beijing"
gateway_port = 6000
slice_plan = ["eais.ei-a6.2xlarge", "eais.ei-a6.xlarge"]
cpu_slice_plan = ["eais.ei-a6.large"]

[slice_plan_by_gpu]
1 = ["eais.ei-a6.4xlarge"]

[timing]
report_interval_s = 2.5
"""


def test_a_toml_file_is_read_and_the_environment_and_flags_override_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "node.toml"
    config.write_text(TOML)
    monkeypatch.setenv("EAIS_NODE_GATEWAY_PORT", "7000")
    monkeypatch.setenv("EAIS_NODE_TOKEN", "a-real-node-token-123")

    settings = load_node_settings(config, region="cn-shanghai")

    assert (settings.controller, settings.region, settings.resolved_zone()) == ("ctl.example:50051", "cn-shanghai",
                                                                               "cn-shanghai-a")
    assert settings.gateway_port == 7000 and settings.timing.report_interval_s == 2.5
    assert settings.slice_plan == ["eais.ei-a6.2xlarge", "eais.ei-a6.xlarge"]
    assert settings.slice_plan_by_gpu == {1: ["eais.ei-a6.4xlarge"]}
    assert settings.node_token() == "a-real-node-token-123"


def test_the_token_comes_from_its_file_and_a_placeholder_is_refused(tmp_path: Path) -> None:
    token_file = tmp_path / "node.token"
    token_file.write_text("from-the-controller-abc\n")

    assert NodeSettings(token_file=token_file).node_token() == "from-the-controller-abc"
    with pytest.raises(ValidationError, match="placeholder"):
        NodeSettings(token="changeme")
    with pytest.raises(ValueError, match="EAIS_NODE_TOKEN or pass --node-token-file"):
        NodeSettings().node_token()


@pytest.mark.parametrize("field, value", [("worker_uids", "5-1"), ("worker_isolation", "chroot"),
                                          ("node_id", "bad id!"), ("backend", "tpu")])
def test_malformed_settings_are_refused(field: str, value: str) -> None:
    with pytest.raises(ValidationError):
        NodeSettings(**{field: value})


def test_the_gateway_address_is_the_advertised_host_with_the_bound_port_unless_a_port_is_given() -> None:
    assert gateway_address(NodeSettings(advertise="gpu1.example"), 50052) == "gpu1.example:50052"
    assert gateway_address(NodeSettings(advertise="10.0.0.7:443"), 50052) == "10.0.0.7:443"
    assert gateway_address(NodeSettings(advertise="fd00::7"), 50052) == "[fd00::7]:50052"
    assert gateway_address(NodeSettings(advertise="[fd00::7]:443"), 50052) == "[fd00::7]:443"


def test_the_tensorflow_version_is_read_without_importing_tensorflow() -> None:
    probe = "import sys; from agent.node.registration import tensorflow_version as v; print(v(), 'tensorflow' in sys.modules)"

    shown = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=30, check=True)

    assert shown.stdout.split() == [tensorflow_version(), "False"] and tensorflow_version().startswith("2.")
