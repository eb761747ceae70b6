"""Typed settings of the controller: environment (prefix ``EAIS_``), an optional TOML file, defaults.

Precedence: constructor arguments (CLI flags) > environment > TOML file > defaults.
Nested values use ``__`` in the environment (``EAIS_LIFECYCLE__ATTACHING_DEADLINE_S=30``).
Every timing lives in :class:`LifecycleSettings`; tests set them to what they need.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import SettingsConfigDict

from controller.states import Status
from eais_plumbing.settings_loader import LayeredSettings, is_placeholder, load_layered_settings


class InstanceTypeSpec(BaseModel):
    """One row of the instance-type table (product-rules.md §2) plus its price."""

    fp32_tflops: float
    fp16_tflops: float
    accelerator_memory_gb: int
    price_per_hour: Decimal = Field(description="CNY per hour in a billed state")


class RegionSpec(BaseModel):
    region_id: str
    local_name: str
    endpoint: str = ""
    zones: list[str] = Field(default_factory=list)


def _default_types() -> dict[str, InstanceTypeSpec]:
    rows = {
        "eais.ei-a6.4xlarge": (16, 128, 32, "12.00"),
        "eais.ei-a6.2xlarge": (8, 64, 16, "6.00"),
        "eais.ei-a6.xlarge": (4, 32, 8, "3.00"),
        "eais.ei-a6.large": (2, 16, 4, "1.50"),
        "eais.ei-a6.medium": (1, 8, 2, "0.75"),
    }
    return {
        name: InstanceTypeSpec(fp32_tflops=a, fp16_tflops=b, accelerator_memory_gb=m, price_per_hour=Decimal(p))
        for name, (a, b, m, p) in rows.items()
    }


def _zones(region: str, count: int) -> list[str]:
    return [f"{region}-{chr(ord('a') + i)}" for i in range(count)]


def _default_regions() -> list[RegionSpec]:
    rows = [
        ("cn-beijing", "华北2（北京）", 8),
        ("cn-hangzhou", "华东1（杭州）", 8),
        ("cn-shanghai", "华东2（上海）", 7),
        ("cn-shenzhen", "华南1（深圳）", 5),
        ("cn-chengdu", "西南1（成都）", 2),
    ]
    return [
        RegionSpec(region_id=r, local_name=n, endpoint=f"eais.{r}.aliyuncs.com", zones=_zones(r, z))
        for r, n, z in rows
    ]


class LifecycleSettings(BaseModel):
    """Deadlines of transitional states and agent heartbeats, in seconds."""

    pending_deadline_s: float = 120.0
    starting_deadline_s: float = 600.0
    attaching_deadline_s: float = 120.0
    detaching_deadline_s: float = 120.0
    stopping_deadline_s: float = 120.0  # jupyter block: Stopping -> Unavailable (memory not confirmed free)
    heartbeat_interval_s: float = 10.0
    heartbeat_jitter_s: float = 2.0
    heartbeat_grace_s: float = 30.0  # a node silent for interval+grace is lost
    heartbeat_flush_s: float = 1.0  # beats are answered from memory and written in one batch this often
    stream_resync_s: float = 10.0  # every agent stream is checked against the database this often (missed news)
    stream_resend_s: float = 15.0  # an agent is sent its unchanged desired state again this often
    reconcile_interval_s: float = 2.0
    lease_ttl_s: float = 10.0  # the reconciler lease lasts this long unless renewed; a standby takes over after
    billing_interval_s: float = 60.0
    billing_settle_s: float = 30.0  # an hour is closed this long after it ends, so late commits land in it
    usage_sample_interval_s: float = 10.0  # at most one usage sample per instance so often: no flood from a chatty node
    usage_retention_s: float = 86_400.0  # the reconciler purges usage samples older than this

    @property
    def agent_absence_s(self) -> float:
        """How long an agent may be silent before it is lost: a full heartbeat period plus the grace."""
        return self.heartbeat_interval_s + self.heartbeat_jitter_s + self.heartbeat_grace_s

    def deadline_s(self, status: Status) -> float:
        """How long an instance may stay in a transitional ``status`` (``<status>_deadline_s``).

        The EI family's transitional statuses do the EAI family's work and share its deadlines:
        Creating as Starting, StartingWorker as Attaching, StoppingWorker as Detaching.
        """
        status = _SAME_WORK_AS.get(status, status)
        return getattr(self, f"{status.value.lower()}_deadline_s")


_SAME_WORK_AS = {Status.CREATING: Status.STARTING, Status.STARTING_WORKER: Status.ATTACHING,
                 Status.STOPPING_WORKER: Status.DETACHING}


class ApiSettings(BaseModel):
    signature_window_s: float = 900.0  # ±15 minutes, as the real service
    max_body_bytes: int = 64 * 1024
    max_query_bytes: int = 32 * 1024
    host_id: str = "eais.local"
    handler_threads: int = Field(default=2, ge=1, le=64, description="threads running API handlers per process")


class AccountRules(BaseModel):
    min_balance_to_create: Decimal = Decimal("100")
    client_min_vcpu: int = 1
    client_min_memory_mib: int = 2048


class ControllerSettings(LayeredSettings):
    model_config = SettingsConfigDict(env_prefix="EAIS_", env_nested_delimiter="__", extra="ignore")

    db_url: str = Field(default="sqlite:///eais-controller.db", description="SQLAlchemy URL; sqlite or postgresql")
    api_host: str = "127.0.0.1"
    api_port: int = 8080
    grpc_host: str = "127.0.0.1"
    grpc_port: int = 50051
    grpc_plaintext: bool = Field(
        default=False, description="serve the agent link without TLS: only on a private network nobody else reaches")
    grpc_tls_names: list[str] | None = Field(
        default=None, description="host names and addresses agents dial, named in the agent link's certificate; "
        "default: this host's name, localhost, 127.0.0.1, ::1, and grpc_host when it is a specific address")
    state_dir: Path | None = Field(
        default=None,
        description="where generated keys are kept (0600); default: .eais beside a SQLite file, else ~/.local/state/eais",
    )
    master_key: str | None = Field(default=None, description="Fernet key encrypting AccessKey secrets")
    admin_token: str | None = Field(default=None, description="bearer token of the admin REST API")
    node_token: str | None = Field(default=None, description="token node agents register with")
    regions: list[RegionSpec] = Field(default_factory=_default_regions)
    instance_types: dict[str, InstanceTypeSpec] = Field(default_factory=_default_types)
    lifecycle: LifecycleSettings = Field(default_factory=LifecycleSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    accounts: AccountRules = Field(default_factory=AccountRules)

    @field_validator("master_key", "admin_token", "node_token")
    @classmethod
    def _refuse_placeholders(cls, value: str | None) -> str | None:
        if value is not None and is_placeholder(value):
            raise ValueError(f"{value!r} is a placeholder, not a secret: set a real one or leave it unset")
        return value

    @field_validator("grpc_tls_names")
    @classmethod
    def _names_a_certificate_can_hold(cls, names: list[str] | None) -> list[str] | None:
        if names is None:
            return None
        if not names:
            raise ValueError("grpc_tls_names is empty: name at least one host or address the agents dial")
        for name in names:
            if not _is_tls_name(name):
                raise ValueError(f"grpc_tls_names: {name!r} is neither an IP address nor a host name")
        return names

    def resolved_state_dir(self) -> Path:
        if self.state_dir is not None:
            return self.state_dir
        if self.db_url.startswith("sqlite") and ":memory:" not in self.db_url:
            return Path(self.db_url.split("///", 1)[-1]).expanduser().parent / ".eais"
        return Path.home() / ".local" / "state" / "eais"

    def resolved_grpc_tls_names(self) -> list[str]:
        """The names the agent link's certificate carries, in a stable order without repeats."""
        if self.grpc_tls_names is not None:
            return list(dict.fromkeys(self.grpc_tls_names))
        names = [socket.gethostname(), "localhost", "127.0.0.1", "::1", self.grpc_host.strip("[]")]
        return list(dict.fromkeys(name for name in names if name not in _ANY_ADDRESS and _is_tls_name(name)))

    def region(self, region_id: str) -> RegionSpec | None:
        return next((r for r in self.regions if r.region_id == region_id), None)


_ANY_ADDRESS = {"", "0.0.0.0", "::"}
_HOST_NAME = re.compile(r"(\*\.)?[A-Za-z0-9_]([A-Za-z0-9_-]{0,62})(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,62}))*\.?")


def _is_tls_name(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return len(name) <= 253 and _HOST_NAME.fullmatch(name) is not None


def load_settings(config_file: Path | None = None, **overrides: Any) -> ControllerSettings:
    """Load settings once; ``config_file`` is the ``--config`` TOML file."""
    return load_layered_settings(ControllerSettings, config_file, **overrides)
