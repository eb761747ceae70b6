"""Typed settings of the node agent: environment (prefix ``EAIS_NODE_``), an optional TOML file, defaults.

Precedence: constructor arguments (CLI flags) > environment > TOML file (``--config``) > defaults.
Nested values use ``__`` in the environment (``EAIS_NODE_TIMING__REPORT_INTERVAL_S=2``). Every
timing lives in :class:`NodeTimings`; tests shorten them. The node token is a secret: give it as
``EAIS_NODE_TOKEN`` (systemd: ``/etc/eais/node.env``) or as a file (``token_file``), never in the
TOML file that everyone may read.
"""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from eais_plumbing.settings_loader import LayeredSettings, is_placeholder, load_layered_settings

# The controller's default instance types and their accelerator memory, GiB (controller/settings.py).
DEFAULT_INSTANCE_TYPES_GIB = {
    "eais.ei-a6.4xlarge": 32, "eais.ei-a6.2xlarge": 16, "eais.ei-a6.xlarge": 8,
    "eais.ei-a6.large": 4, "eais.ei-a6.medium": 2,
}
DEFAULT_CPU_SLICE_PLAN = ["eais.ei-a6.xlarge", "eais.ei-a6.xlarge", "eais.ei-a6.2xlarge"]
NODE_ID_SHAPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class NodeTimings(BaseModel):
    """Every wait of the node agent, in seconds."""

    worker_warm_timeout_s: float = Field(default=180.0, description="a worker process has this long to import TensorFlow")
    worker_ready_timeout_s: float = Field(default=30.0, description="an assigned worker has this long to start its server")
    probe_timeout_s: float = Field(default=10.0, description="the GetStatus round trip that proves a worker ready")
    memory_free_timeout_s: float = Field(default=30.0, description="after a kill, how long to wait for the memory to come back")
    failed_worker_retry_s: float = Field(default=10.0, description="an InUse slice whose worker died gets a fresh one after this")
    handshake_timeout_s: float = Field(default=10.0, description="a gateway client has this long for TLS and its hello")
    report_interval_s: float = Field(default=5.0, description="the whole picture (with usage) is reported at least this often")
    controller_call_timeout_s: float = 10.0


class NodeSettings(LayeredSettings):
    model_config = SettingsConfigDict(env_prefix="EAIS_NODE_", env_nested_delimiter="__", extra="ignore")

    controller: str = Field(default="127.0.0.1:50051", description="the controller's agent gRPC address, HOST:PORT")
    controller_ca_file: Path | None = Field(
        default=None, description="the controller's agent CA (its STATE_DIR/agent-ca.crt): the link is TLS")
    controller_plaintext: bool = Field(
        default=False, description="no TLS to the controller, for one run with --grpc-plaintext on a private network")
    token: SecretStr | None = Field(default=None, description="the controller's node token (env EAIS_NODE_TOKEN)")
    token_file: Path | None = Field(default=None, description="file holding the node token (the controller's node.token)")
    node_id: str | None = Field(default=None, description="stable id of this server; default: its host name")
    region: str = "cn-hangzhou"
    zone: str | None = Field(default=None, description="default: REGION-a")
    backend: Literal["auto", "gpu", "cpu"] = Field(
        default="auto", description="gpu: NVML GPUs (fail without); cpu: TensorFlow on the CPU; auto: gpu if NVML finds one")
    gateway_host: str = Field(default="0.0.0.0", description="address the TLS gateway listens on")
    gateway_port: int = Field(default=50052, ge=0, le=65535, description="port of the gateway (0: any free port)")
    advertise: str | None = Field(
        default=None, description="HOST or HOST:PORT that VM agents dial; the gateway certificate names HOST. "
        "Default: this host's name if it resolves, else 127.0.0.1")
    warm_workers: int = Field(default=1, ge=0, le=32, description="TensorFlow workers kept started ahead of attaches")
    metrics_port: int = Field(default=0, ge=0, le=65535, description="Prometheus /metrics on this port; 0: none")
    metrics_host: str = Field(default="127.0.0.1", description="address the /metrics listener binds")
    worker_isolation: Literal["netns", "none"] = Field(
        default="netns", description="netns: each worker in its own network namespace; none: on the host network")
    worker_uids: str = Field(
        default="auto", description="uids the workers run as, one per worker: 'A-B', 'none' (the agent's own), "
        "or 'auto' (61000-61999 when root and the Python install is readable by every user, else the agent's own)")
    worker_start: Literal["fork", "spawn"] = Field(
        default="fork", description="fork: workers forked from a process that imported TensorFlow once (milliseconds); "
        "spawn: each worker a fresh interpreter importing TensorFlow itself (seconds)")
    worker_port: int = Field(default=2222, ge=1, le=65535, description="port of each worker inside its namespace")
    worker_python: Path | None = Field(default=None, description="interpreter that runs workers; default: this one")
    state_dir: Path | None = Field(
        default=None, description="worker pid records and logs; default $STATE_DIRECTORY or ~/.local/state/eais-node")
    instance_types: dict[str, int] = Field(
        default_factory=lambda: dict(DEFAULT_INSTANCE_TYPES_GIB), description="instance type -> accelerator memory, GiB")
    slice_plan: list[str] | None = Field(
        default=None, description="instance types to carve every GPU into; default: largest type first while it fits")
    slice_plan_by_gpu: dict[int, list[str]] = Field(default_factory=dict, description="a plan for one GPU index")
    cpu_slice_plan: list[str] = Field(default_factory=lambda: list(DEFAULT_CPU_SLICE_PLAN))
    gpu_worker_overhead_mib: int = Field(
        default=512, ge=0, description="GPU memory a worker's CUDA context takes beyond its TensorFlow cap")
    timing: NodeTimings = Field(default_factory=NodeTimings)

    @field_validator("token")
    @classmethod
    def _refuse_placeholder(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and is_placeholder(value.get_secret_value()):
            raise ValueError("the node token is a placeholder: set the controller's real node token")
        return value

    @field_validator("node_id")
    @classmethod
    def _node_id_shape(cls, value: str | None) -> str | None:
        if value is not None and not NODE_ID_SHAPE.fullmatch(value):
            raise ValueError(f"node_id {value!r} must be letters, digits, '.', '_', '-' (1-64 characters)")
        return value

    @field_validator("worker_uids")
    @classmethod
    def _uid_range_shape(cls, value: str) -> str:
        if value not in ("auto", "none"):
            parse_uid_range(value)
        return value

    def resolved_node_id(self) -> str:
        if self.node_id:
            return self.node_id
        cleaned = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname()).strip("-._") or "node"
        return cleaned[:64]

    def resolved_zone(self) -> str:
        return self.zone or f"{self.region}-a"

    def resolved_state_dir(self) -> Path:
        if self.state_dir is not None:
            return self.state_dir
        systemd_state = os.environ.get("STATE_DIRECTORY")  # set by StateDirectory= in the unit
        if systemd_state:
            return Path(systemd_state.split(":")[0])
        return Path.home() / ".local" / "state" / "eais-node"

    def node_token(self) -> str:
        """The node token from settings or its file; ValueError saying where to get it."""
        if self.token is not None:
            return self.token.get_secret_value()
        if self.token_file is None:
            raise ValueError("no node token: set EAIS_NODE_TOKEN or pass --node-token-file "
                             "(the controller keeps it in STATE_DIR/node.token)")
        try:
            token = self.token_file.read_text().strip()
        except OSError as error:
            raise ValueError(f"cannot read the node token from {self.token_file}: {error.strerror}") from None
        if is_placeholder(token):
            raise ValueError(f"{self.token_file} holds no node token")
        return token


def parse_uid_range(text: str) -> range:
    first, sep, last = text.partition("-")
    if not sep or not first.isdigit() or not last.isdigit() or not 0 < int(first) <= int(last):
        raise ValueError(f"worker_uids {text!r} is not 'auto', 'none' or a range 'FIRST-LAST' of non-root uids")
    return range(int(first), int(last) + 1)


def load_node_settings(config_file: Path | None = None, **overrides: Any) -> NodeSettings:
    """Settings once, at start-up; ``config_file`` is the ``--config`` TOML file."""
    return load_layered_settings(NodeSettings, config_file, **overrides)
