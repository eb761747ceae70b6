"""Database tables (SQLModel). Times are UTC epoch microseconds, money is integer micro-CNY.

Rules the database itself enforces, so that racing requests cannot break them:
- ``instances.client_instance_id`` is UNIQUE: a client instance holds at most one EAIS instance.
- ``instances.slice_id`` and ``slices.instance_id`` are UNIQUE: one slice, one instance.
- ``transitions`` is append-only; ``controller.lifecycle.apply`` is its only writer.
- ``seen_nonces`` (access key, nonce) is the primary key: a replayed nonce cannot be stored twice.
- ``idempotency_records`` (account, action, client token) is the primary key.
- ``bill_items`` (instance, hour) is UNIQUE: an hour is never billed twice.
- ``notebooks.client_instance_id`` is UNIQUE: a VM hosts at most one notebook.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Index, Integer, UniqueConstraint
from sqlmodel import Field, SQLModel

# SQLite only aliases ROWID for "INTEGER PRIMARY KEY"; PostgreSQL needs 64 bits for a log.
LogId = BigInteger().with_variant(Integer(), "sqlite")


def _us(**kw):  # noqa: ANN001, ANN202 - a BIGINT column for epoch microseconds or micro-CNY
    return Field(sa_type=BigInteger, **kw)


class Account(SQLModel, table=True):
    __tablename__ = "accounts"
    id: str = Field(primary_key=True, max_length=40)
    name: str = Field(max_length=128, unique=True)
    balance_micro: int = _us(default=0)
    real_name_verified: bool = False
    created_us: int = _us()


class AccessKey(SQLModel, table=True):
    __tablename__ = "access_keys"
    access_key_id: str = Field(primary_key=True, max_length=40)
    account_id: str = Field(foreign_key="accounts.id", index=True, max_length=40)
    secret_ciphertext: str = Field(max_length=512)
    enabled: bool = True
    created_us: int = _us()


class AgentPresence(SQLModel):
    """Columns every agent-registered host has: liveness, session and heartbeat deadline."""

    online: bool = True
    session_token_hash: str = Field(default="", max_length=128)
    heartbeat_deadline_us: int = _us()
    registered_us: int = _us()
    last_seen_us: int = _us()


class Node(AgentPresence, table=True):
    """A GPU server (or CPU/simulated backend) registered by its node agent."""

    __tablename__ = "nodes"
    id: str = Field(primary_key=True, max_length=64)
    region_id: str = Field(index=True, max_length=64)
    zone_id: str = Field(max_length=64)
    hostname: str = Field(max_length=255)
    gateway_address: str = Field(max_length=255)
    backend: str = Field(max_length=32)  # "gpu", "cpu" or "simulated"
    accelerator_model: str = Field(default="", max_length=128)
    tf_version: str = Field(default="", max_length=32)


def slice_id_for(node_id: str, local_id: str) -> str:
    """A slice's id is "<node_id>/<local_id>" (node ids hold no "/")."""
    return f"{node_id}/{local_id}"


def node_id_of_slice(slice_id: str) -> str:
    return slice_id.split("/", 1)[0]


class Slice(SQLModel, table=True):
    """A share of one accelerator sized for one instance type."""

    __tablename__ = "slices"
    id: str = Field(primary_key=True, max_length=128)
    node_id: str = Field(foreign_key="nodes.id", index=True, max_length=64)
    instance_type: str = Field(index=True, max_length=64)
    gpu_index: int = 0
    memory_mib: int = 0
    instance_id: str | None = Field(default=None, unique=True, max_length=40)
    draining: bool = False  # released, waiting for the node to confirm the memory is free


class ClientInstance(AgentPresence, table=True):
    """A CPU VM registered by its VM agent; it belongs to one account."""

    __tablename__ = "client_instances"
    id: str = Field(primary_key=True, max_length=64)
    account_id: str = Field(foreign_key="accounts.id", index=True, max_length=40)
    region_id: str = Field(max_length=64)
    zone_id: str = Field(max_length=64)
    vpc_id: str = Field(max_length=64)
    vswitch_id: str = Field(index=True, max_length=64)
    kind: str = Field(default="ECS", max_length=16)
    name: str = Field(default="", max_length=128)
    instance_type: str = Field(default="", max_length=64)
    vcpu: int = 0
    memory_mib: int = 0
    tf_endpoint: str = Field(default="", max_length=255)


class Instance(SQLModel, table=True):
    """An EAIS instance. ``status`` is written only by ``controller.lifecycle.apply``."""

    __tablename__ = "instances"
    # Covers DescribeEais: filter by account and region, order by creation, count without reading rows.
    __table_args__ = (Index("ix_instances_listing", "account_id", "region_id", "created_us", "id", "status"),)
    id: str = Field(primary_key=True, max_length=40)
    account_id: str = Field(foreign_key="accounts.id", max_length=40)
    region_id: str = Field(max_length=64)
    zone_id: str = Field(default="", max_length=64)
    name: str = Field(default="", index=True, max_length=128)
    instance_type: str = Field(index=True, max_length=64)
    status: str = Field(index=True, max_length=16)
    status_since_us: int = _us()
    client_instance_id: str | None = Field(default=None, unique=True, max_length=64)
    slice_id: str | None = Field(default=None, unique=True, max_length=128)
    attachment_id: str | None = Field(default=None, max_length=40)
    resource_group_id: str = Field(default="", max_length=64)
    security_group_id: str = Field(default="", max_length=64)
    vswitch_id: str = Field(default="", max_length=64)
    vpc_id: str = Field(default="", max_length=64)
    image: str = Field(default="", max_length=512)
    description: str = Field(default="", max_length=512)
    category: str = Field(default="eais", max_length=16)
    payment_type: str = Field(default="PostPaid", max_length=16)
    created_us: int = _us()
    started_us: int | None = _us(default=None)
    released_us: int | None = _us(default=None)


class ListedCount(SQLModel, table=True):
    """How many listed (not Released) instances an account has in a region.

    Kept by ``controller.lifecycle.apply`` in the transaction that creates or releases an
    instance, so an unfiltered DescribeEais answers TotalCount without counting rows.
    """

    __tablename__ = "listed_counts"
    account_id: str = Field(primary_key=True, max_length=40)
    region_id: str = Field(primary_key=True, max_length=64)
    listed: int = 0


class InstanceTag(SQLModel, table=True):
    __tablename__ = "instance_tags"
    __table_args__ = (Index("ix_instance_tags_key_value", "key", "value", "instance_id"),)  # covering for tag filters
    instance_id: str = Field(foreign_key="instances.id", primary_key=True, max_length=40)
    key: str = Field(primary_key=True, max_length=128)
    value: str = Field(default="", max_length=128)


class Transition(SQLModel, table=True):
    """Append-only log of every status change; billing is a pure function of it."""

    __tablename__ = "transitions"
    __table_args__ = (Index("ix_transitions_instance_at", "instance_id", "at_us", "id"),)
    id: int | None = Field(default=None, primary_key=True, sa_type=LogId)
    instance_id: str = Field(max_length=40)
    account_id: str = Field(index=True, max_length=40)
    instance_type: str = Field(max_length=64)
    from_status: str | None = Field(default=None, max_length=16)
    to_status: str = Field(max_length=16)
    event: str = Field(max_length=32)
    reason: str = Field(default="", max_length=512)
    at_us: int = _us(index=True)
    request_id: str | None = Field(default=None, max_length=64)


class Attachment(SQLModel, table=True):
    """One binding of an instance to a client instance, with the credentials both agents use."""

    __tablename__ = "attachments"
    id: str = Field(primary_key=True, max_length=40)
    instance_id: str = Field(index=True, max_length=40)
    client_instance_id: str = Field(index=True, max_length=64)
    node_id: str = Field(max_length=64)
    token_ciphertext: str = Field(max_length=512)
    created_us: int = _us()
    node_ready_us: int | None = _us(default=None)
    vm_ready_us: int | None = _us(default=None)
    ended_us: int | None = _us(default=None)
    end_reason: str = Field(default="", max_length=256)


class UsageSample(SQLModel, table=True):
    """One utilisation reading of an attached instance's worker, as its node reported it.

    Written by ``controller.usage_samples`` at most once per instance per
    ``usage_sample_interval_s``; the reconciler purges rows older than ``usage_retention_s``.
    """

    __tablename__ = "usage_samples"
    __table_args__ = (Index("ix_usage_samples_instance_at", "instance_id", "at_us"),)  # GetInstanceMetrics ranges
    id: int | None = Field(default=None, primary_key=True, sa_type=LogId)
    instance_id: str = Field(max_length=40)
    attachment_id: str = Field(max_length=40)
    slice_id: str = Field(max_length=128)
    at_us: int = _us(index=True)  # controller clock, when the report arrived
    gpu_core_percent: float
    gpu_memory_percent: float
    memory_used_mib: int = Field(sa_type=BigInteger)
    cpu_percent: float
    memory_percent: float


class IdempotencyRecord(SQLModel, table=True):
    __tablename__ = "idempotency_records"
    account_id: str = Field(primary_key=True, max_length=40)
    action: str = Field(primary_key=True, max_length=64)
    client_token: str = Field(primary_key=True, max_length=64)
    fingerprint: str = Field(max_length=64)
    result_json: str = Field(max_length=4096)
    created_us: int = _us()


class SeenNonce(SQLModel, table=True):
    __tablename__ = "seen_nonces"
    access_key_id: str = Field(primary_key=True, max_length=40)
    nonce: str = Field(primary_key=True, max_length=128)
    seen_us: int = _us(index=True)


class BillItem(SQLModel, table=True):
    """Charge for one instance in one clock hour, derived from the transition log."""

    __tablename__ = "bill_items"
    __table_args__ = (UniqueConstraint("instance_id", "hour_start_us", name="uq_bill_items_instance_hour"),)
    id: int | None = Field(default=None, primary_key=True, sa_type=LogId)
    account_id: str = Field(index=True, max_length=40)
    instance_id: str = Field(max_length=40)
    instance_type: str = Field(max_length=64)
    hour_start_us: int = _us(index=True)
    billed_us: int = _us()
    amount_micro: int = _us()
    created_us: int = _us()


class BillingCursor(SQLModel, table=True):
    """Hours before ``billed_through_us`` are closed and their items written."""

    __tablename__ = "billing_cursor"
    id: int = Field(default=1, primary_key=True)
    billed_through_us: int = _us()


class Lease(SQLModel, table=True):
    """A role one controller replica holds at a time (the reconciler), until ``expires_us`` on the database's clock.

    Written only by ``controller.leadership``; ``epoch`` grows by one each time the role changes
    hands (or its holder comes back after letting it lapse), so work can be fenced by it.
    """

    __tablename__ = "leases"
    name: str = Field(primary_key=True, max_length=64)
    holder: str = Field(max_length=128)
    epoch: int = _us()
    acquired_us: int = _us()
    expires_us: int = _us()


class Notebook(SQLModel, table=True):
    """The Jupyter server of a notebook instance (Category ``jupyter``, CreateEaiJupyter).

    Written by ``controller.notebooks`` (create, start, stop) and by the VM's reports
    (``controller.agent_link.notebook_reports``); deleted with its instance (DeleteEai), so its
    token goes too. ``server_url`` is set only while the server answers for ``server_attachment_id``.
    """

    __tablename__ = "notebooks"
    instance_id: str = Field(foreign_key="instances.id", primary_key=True, max_length=40)
    account_id: str = Field(index=True, max_length=40)
    client_instance_id: str = Field(index=True, unique=True, max_length=64)  # the VM that runs it; one notebook a VM
    token_ciphertext: str = Field(max_length=512)  # sealed by the controller's master key
    environment_json: str = Field(default="[]", max_length=65536)  # [[key, value], ...]
    server_url: str = Field(default="", max_length=255)  # "http://host:port/", no token
    server_attachment_id: str | None = Field(default=None, max_length=40)
    created_us: int = _us()
