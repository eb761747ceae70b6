"""What a registration may say: field shapes and sizes, configured regions, zones and types.

Every refusal is an EaisError that maps to INVALID_ARGUMENT and names the field and what is allowed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from controller.errors import InvalidInstanceType, InvalidParameter, InvalidRegion
from controller.settings import ControllerSettings

NODE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
SLICE_LOCAL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}")
CLIENT_INSTANCE_ID = re.compile(r"(i|eci)-[A-Za-z0-9-]{1,60}")
BACKENDS = ("gpu", "cpu", "simulated")
CLIENT_KINDS = ("ECS", "ECI")
MAX_SLICES_PER_NODE = 1024


@dataclass(frozen=True, slots=True)
class SliceOfferInfo:
    local_id: str
    instance_type: str
    gpu_index: int
    memory_mib: int


@dataclass(frozen=True, slots=True)
class NodeInfo:
    node_id: str
    hostname: str
    region_id: str
    zone_id: str
    gateway_address: str
    backend: str  # one of BACKENDS
    accelerator_model: str
    tf_version: str
    slices: tuple[SliceOfferInfo, ...]
    gateway_csr_pem: str = ""


@dataclass(frozen=True, slots=True)
class VmInfo:
    client_instance_id: str
    region_id: str
    zone_id: str
    vpc_id: str
    vswitch_id: str
    kind: str  # one of CLIENT_KINDS
    name: str
    instance_type: str
    vcpu: int
    memory_mib: int
    tf_endpoint: str


def check_node(settings: ControllerSettings, info: NodeInfo) -> None:
    _matches(info.node_id, NODE_ID, "node_id", "letters, digits, '.', '_', '-'; 1-64 characters")
    _text(info.hostname, "hostname", 255)
    _text(info.gateway_address, "gateway_address", 255)
    _text(info.accelerator_model, "accelerator_model", 128, required=False)
    _text(info.tf_version, "tf_version", 32, required=False)
    _one_of(info.backend, BACKENDS, "backend")
    if info.backend != "simulated" and not info.gateway_csr_pem:
        raise InvalidParameter("gateway_csr_pem is required: a node with a real backend serves its gateway over TLS "
                               "with a certificate the controller signs.")
    check_region_and_zone(settings, info.region_id, info.zone_id)
    if len(info.slices) > MAX_SLICES_PER_NODE:
        raise InvalidParameter(f"A node may offer at most {MAX_SLICES_PER_NODE} slices; got {len(info.slices)}.")
    seen: set[str] = set()
    for offer in info.slices:
        _check_offer(settings, offer)
        if offer.local_id in seen:
            raise InvalidParameter(f"Slice local_id {offer.local_id!r} appears twice; each slice needs its own id.")
        seen.add(offer.local_id)


def check_vm(settings: ControllerSettings, info: VmInfo) -> None:
    _matches(info.client_instance_id, CLIENT_INSTANCE_ID, "client_instance_id", "i-... (ECS) or eci-... (ECI)")
    _one_of(info.kind, CLIENT_KINDS, "kind")
    check_region_and_zone(settings, info.region_id, info.zone_id)
    _text(info.vpc_id, "vpc_id", 64)
    _text(info.vswitch_id, "vswitch_id", 64)
    _text(info.name, "name", 128, required=False)
    _text(info.instance_type, "instance_type", 64, required=False)
    _text(info.tf_endpoint, "tf_endpoint", 255, required=False)
    if info.vcpu < 1 or info.memory_mib < 1:
        raise InvalidParameter(f"vcpu and memory_mib must be at least 1; got {info.vcpu} and {info.memory_mib}.")


def check_region_and_zone(settings: ControllerSettings, region_id: str, zone_id: str) -> None:
    region = settings.region(region_id)
    if region is None:
        known = ", ".join(r.region_id for r in settings.regions)
        raise InvalidRegion(f"Region {region_id[:64]!r} is not configured; configured regions: {known}.")
    _text(zone_id, "zone_id", 64)
    if region.zones and zone_id not in region.zones:
        raise InvalidParameter(f"Zone {zone_id!r} is not in region {region_id}; its zones: {', '.join(region.zones)}.")


def _check_offer(settings: ControllerSettings, offer: SliceOfferInfo) -> None:
    _matches(offer.local_id, SLICE_LOCAL_ID, "slice local_id", "letters, digits, '.', '_', '-'; 1-32 characters")
    if offer.instance_type not in settings.instance_types:
        configured = ", ".join(sorted(settings.instance_types))
        raise InvalidInstanceType(
            f"Slice {offer.local_id!r} offers instance type {offer.instance_type[:64]!r}, which is not configured; "
            f"configured types: {configured}."
        )
    if offer.memory_mib < 1:
        raise InvalidParameter(f"Slice {offer.local_id!r} must reserve at least 1 MiB of memory.")


def _matches(value: str, pattern: re.Pattern[str], name: str, allowed: str) -> None:
    if not pattern.fullmatch(value):
        raise InvalidParameter(f"{name} {value[:80]!r} is malformed; allowed: {allowed}.")


def _text(value: str, name: str, max_length: int, *, required: bool = True) -> None:
    if required and not value.strip():
        raise InvalidParameter(f"{name} is required.")
    if len(value) > max_length:
        raise InvalidParameter(f"{name} is longer than {max_length} characters.")


def _one_of(value: str, allowed: tuple[str, ...], name: str) -> None:
    if value not in allowed:
        raise InvalidParameter(f"{name} must be one of {', '.join(allowed)}; got {value[:40]!r}.")
