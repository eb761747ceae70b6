"""Typed settings of the VM agent: flags > environment (prefix ``EAIS_AGENT_``) > TOML file > defaults.

Nested values use ``__`` in the environment (``EAIS_AGENT_TIMING__PEEK_TIMEOUT_S=0.5``). The
AccessKey and the VM's id may also come from a credentials file in the JSON ``eais up`` writes
(``AccessKeyId``, ``AccessKeySecret``, ``RegionId``, ``ClientInstanceId``); values set any other
way win over the file. :func:`resolve_identity` checks that everything registration needs is
there and says what is missing, so a bad configuration fails at startup, not at the controller.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import SettingsConfigDict

from agent.controller_trust import ControllerTrust, ControllerTrustError, controller_trust
from eais_plumbing.settings_loader import LayeredSettings, is_placeholder, load_layered_settings

DEFAULT_ENDPOINT = "127.0.0.1:8470"
DEFAULT_CONTROLLER = "127.0.0.1:50051"
# Keys of the credentials file and the setting each one fills.
CREDENTIALS_FILE_KEYS = {
    "AccessKeyId": "access_key_id", "AccessKeySecret": "access_key_secret", "RegionId": "region_id",
    "ClientInstanceId": "client_instance_id", "ZoneId": "zone_id", "VpcId": "vpc_id", "VSwitchId": "vswitch_id",
}
# How a person sets each required value on the command line.
HOW_TO_SET = {
    "client_instance_id": "--client-instance-id", "region_id": "--region", "zone_id": "--zone",
    "vpc_id": "--vpc-id", "vswitch_id": "--vswitch-id", "access_key_id": "--access-key-id",
    "access_key_secret": "the config file",
}


class SettingsError(ValueError):
    """The settings cannot work; the message says which value to set and how."""


class AgentTiming(BaseModel):
    """Every timing of the agent, in seconds; tests shorten them."""

    peek_timeout_s: float = 1.0  # a new local connection that sends nothing this long is treated as TensorFlow
    gateway_timeout_s: float = 5.0  # TCP connect + TLS handshake + hello answer at the node gateway
    proof_timeout_s: float = 10.0  # the proving GetStatus call through a fresh channel
    retry_initial_s: float = 0.05  # first pause after a failed channel attempt (the worker is usually ~0.1 s away); doubles
    retry_max_s: float = 1.0  # low: the node's worker may come up any moment, and an attempt costs one handshake
    give_up_after_s: float = 90.0  # then report FAILED; below the controller's attaching deadline (120 s)
    report_repeat_s: float = 30.0  # an unchanged actual state is sent again this often
    loop_tick_s: float = 1.0  # main loop: watchdog pings and status lines
    status_line_every_s: float = 10.0  # at most one "refused N calls" line this often
    degraded_refusal_s: float = 1.0  # a refusal made while serving is cut after this, so TF retries the gateway
    attach_hold_s: float = 2.0  # a TF connection arriving while the proven channel awaits InUse waits this long
    watch_interval_s: float = 1.0  # the data path of an attachment in use is probed this often
    watch_timeout_s: float = 1.0  # a probe the gateway has not answered by then failed
    watch_retry_s: float = 0.25  # after a failed probe, the next one comes this soon
    watch_failures: int = 2  # this many failed probes in a row: the data path is broken
    watch_slow_failures: int = 5  # or this many, when the gateway's host took the connection but the agent was slow
    reopen_broken_after_s: float = 3.0  # an InUse channel that cannot be reopened this long is broken


class VmAgentSettings(LayeredSettings):
    model_config = SettingsConfigDict(env_prefix="EAIS_AGENT_", env_nested_delimiter="__", extra="ignore")

    controller: str = Field(default=DEFAULT_CONTROLLER, description="controller's agent gRPC address HOST:PORT")
    controller_ca_file: Path | None = Field(
        default=None, description="the controller's agent CA (its STATE_DIR/agent-ca.crt): the link is TLS")
    controller_plaintext: bool = Field(
        default=False, description="no TLS to the controller, for one run with --grpc-plaintext on a private network")
    credentials_file: Path | None = Field(default=None, description="JSON with AccessKeyId, AccessKeySecret, ...")
    access_key_id: str = ""
    access_key_secret: SecretStr = SecretStr("")
    client_instance_id: str = Field(default="", description="this VM's id, i-... (ECS) or eci-... (ECI)")
    region_id: str = ""
    zone_id: str = ""
    vpc_id: str = ""
    vswitch_id: str = ""
    kind: Literal["ECS", "ECI"] | None = Field(default=None, description="default: ECI for eci-... ids, else ECS")
    name: str = ""
    instance_type: str = Field(default="", description="the VM's own instance type, e.g. ecs.g7.large")
    endpoint: str = Field(default=DEFAULT_ENDPOINT, description="local TensorFlow endpoint HOST:PORT (port 0: any)")
    metrics_port: int = Field(default=0, ge=0, le=65535, description="Prometheus /metrics on this port; 0: none")
    metrics_host: str = Field(default="127.0.0.1", description="address the /metrics listener binds")
    state_dir: Path | None = Field(default=None, description="default: $STATE_DIRECTORY, else ~/.local/state/eais-agent")
    notebook_host: str = Field(default="127.0.0.1", description="address notebook servers (CreateEaiJupyter) listen on")
    notebook_url_host: str = Field(
        default="", description="address JupyterUrl names (default: notebook_host); set it when listening on 0.0.0.0")
    notebook_uid: str = Field(
        default="auto", pattern=r"^(auto|none|[1-9][0-9]{0,9})$",
        description="uid notebook servers run as: a number (the agent must be root), 'none' (the agent's own), or "
        "'auto' (62000 when root and the Python install is readable by every user, else the agent's own)")
    notebook_dir: Path | None = Field(
        default=None, description="notebook homes (kept across StopEaiJupyter, removed on DeleteEai); "
        "default <tmp>/eais-notebooks-<client instance id>")
    notebook_start_timeout_s: float = Field(default=60.0, gt=0, description="a notebook server not answering by then failed")
    timing: AgentTiming = Field(default_factory=AgentTiming)

    def resolved_state_dir(self) -> Path:
        if self.state_dir is not None:
            return self.state_dir
        systemd_dir = os.environ.get("STATE_DIRECTORY", "").split(":")[0]  # set by StateDirectory=
        return Path(systemd_dir) if systemd_dir else Path.home() / ".local" / "state" / "eais-agent"


@dataclass(frozen=True)
class AgentIdentity:
    """Everything registration needs, complete and checked."""

    client_instance_id: str
    region_id: str
    zone_id: str
    vpc_id: str
    vswitch_id: str
    kind: str
    name: str
    instance_type: str
    access_key_id: str
    access_key_secret: str


def load_settings(config_file: Path | None = None, **overrides: Any) -> VmAgentSettings:
    """Settings from flags (``overrides``; None means not given), environment and the TOML file."""
    try:
        return load_layered_settings(VmAgentSettings, config_file, **overrides)
    except FileNotFoundError as error:
        raise SettingsError(str(error)) from None


def resolve_identity(settings: VmAgentSettings) -> AgentIdentity:
    """The VM's identity and AccessKey, filling gaps from the credentials file; SettingsError if incomplete."""
    values = {
        "client_instance_id": settings.client_instance_id, "region_id": settings.region_id,
        "zone_id": settings.zone_id, "vpc_id": settings.vpc_id, "vswitch_id": settings.vswitch_id,
        "access_key_id": settings.access_key_id, "access_key_secret": settings.access_key_secret.get_secret_value(),
    }
    if settings.credentials_file is not None:
        for setting, value in read_credentials_file(settings.credentials_file).items():
            values[setting] = values[setting] or value
    _require_all(values)
    if is_placeholder(values["access_key_secret"]):
        raise SettingsError("the AccessKey secret is a placeholder; set the real secret of the account's AccessKey")
    kind = settings.kind or ("ECI" if values["client_instance_id"].startswith("eci-") else "ECS")
    return AgentIdentity(kind=kind, name=settings.name, instance_type=settings.instance_type, **values)


def resolve_controller_trust(settings: VmAgentSettings) -> ControllerTrust:
    """The controller's CA (or explicit plaintext); SettingsError saying where the CA file is when neither is set."""
    try:
        return controller_trust(settings.controller_ca_file, settings.controller_plaintext)
    except ControllerTrustError as error:
        raise SettingsError(str(error)) from None


def read_credentials_file(path: Path) -> dict[str, str]:
    """The settings a credentials file fills (unknown keys such as ``Endpoint`` are ignored)."""
    try:
        content = json.loads(path.read_text())
    except OSError as error:
        raise SettingsError(f"cannot read the credentials file {path}: {error.strerror or error}") from None
    except ValueError as error:
        raise SettingsError(f"the credentials file {path} is not JSON: {error}") from None
    if not isinstance(content, dict):
        raise SettingsError(f"the credentials file {path} must hold a JSON object with AccessKeyId, AccessKeySecret ...")
    return {setting: str(content[key]) for key, setting in CREDENTIALS_FILE_KEYS.items() if content.get(key)}


def _require_all(values: dict[str, str]) -> None:
    missing = [name for name, value in values.items() if not value.strip()]
    if missing:
        how = "; ".join(f"{name}: {HOW_TO_SET[name]} or EAIS_AGENT_{name.upper()}" for name in missing)
        raise SettingsError(f"missing settings ({how}); the AccessKey, region and VM id may also come from "
                            "--credentials-file")
