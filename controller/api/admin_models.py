"""The admin API's request and response bodies (money as decimal CNY, times as ISO 8601 UTC)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from fastapi import Path, Query
from pydantic import BaseModel, Field

# Identifiers in paths and filters look like what the controller issues (acc-…, eais-…, i-…): bounded, no
# control bytes (PostgreSQL refuses NUL in text, so one would otherwise surface as a server error).
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:\-]*$"
IdPath = Annotated[str, Path(max_length=64, pattern=ID_PATTERN)]
IdQuery = Annotated[str | None, Query(max_length=64, pattern=ID_PATTERN)]


class AdminError(BaseModel):
    """Every admin error: ``code`` from the same table as the EAIS API's codes, for programs to match on."""

    code: str = Field(examples=["InvalidParameter.Amount"])
    message: str
    request_id: str


class AccountPublic(BaseModel):
    account_id: str
    name: str
    balance: Decimal
    in_debt: bool
    real_name_verified: bool
    created_at: str


class AccountCreate(BaseModel):
    name: str = Field(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$")
    balance: Decimal = Field(default=Decimal(0), description="opening balance in CNY; at most 6 decimal places, "
                             "at most 10^12 either way")
    real_name_verified: bool = False


class AccountCreated(BaseModel):
    AccountId: str
    AccessKeyId: str
    AccessKeySecret: str


class TopUp(BaseModel):
    amount: Decimal = Field(description="CNY added to the balance (negative to correct); at most 6 decimal places, "
                            "and the balance stays within 10^12 CNY either way")


class NodePublic(BaseModel):
    node_id: str
    region_id: str
    zone_id: str
    hostname: str
    backend: str
    accelerator_model: str
    online: bool
    agent: str = Field(description="online; late (heartbeat deadline passed, not yet declared lost); offline")
    slices_total: int
    slices_free: int
    last_seen_at: str


class ClientInstancePublic(BaseModel):
    client_instance_id: str
    account_id: str
    region_id: str
    zone_id: str
    vpc_id: str
    vswitch_id: str
    vcpu: int
    memory_mib: int
    online: bool
    agent: str = Field(description="online; late (heartbeat deadline passed, not yet declared lost); offline")
    last_seen_at: str


class TransitionPublic(BaseModel):
    at: str
    from_status: str | None
    to_status: str
    event: str
    reason: str
    request_id: str | None


class BillItemPublic(BaseModel):
    account_id: str
    instance_id: str
    instance_type: str
    hour_start: str
    billed_seconds: float
    amount: Decimal


class SliceUsagePublic(BaseModel):
    """The latest usage sample the node reported for the worker on a slice (percentages 0-100)."""

    at: str
    gpu_core_percent: float
    gpu_memory_percent: float
    memory_used_mib: int
    cpu_percent: float
    memory_percent: float


class SlicePublic(BaseModel):
    slice_id: str
    node_id: str
    instance_type: str
    gpu_index: int
    memory_mib: int
    draining: bool = Field(description="released; waiting for the node to confirm its memory is free")
    instance_id: str | None
    instance_status: str | None
    account_id: str | None
    client_instance_id: str | None
    usage: SliceUsagePublic | None = Field(description="None when no sample arrived in the last two minutes")


class LeasePublic(BaseModel):
    """The reconciler lease: the replica holding it (``host:pid:tag``) is the one reconciling."""

    name: str
    holder: str
    epoch: int = Field(description="grows each time the lease changes hands or lapses")
    acquired_at: str
    expires_at: str
    current: bool = Field(description="false when the lease ran out and no replica renewed it yet")
