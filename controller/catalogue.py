"""What this deployment offers: served regions and instance types (both from configuration)."""

from __future__ import annotations

from controller.errors import InvalidInstanceType, InvalidRegion
from controller.settings import ControllerSettings


def require_region(settings: ControllerSettings, region_id: str) -> str:
    if settings.region(region_id) is None:
        served = ", ".join(r.region_id for r in settings.regions)
        raise InvalidRegion(f"Region {region_id[:64]!r} is not served; served regions: {served} (see DescribeRegions).")
    return region_id


def require_instance_type(settings: ControllerSettings, instance_type: str) -> str:
    if instance_type not in settings.instance_types:
        known = ", ".join(settings.instance_types)
        raise InvalidInstanceType(f"InstanceType {instance_type[:64]!r} does not exist; choose one of: {known}.")
    return instance_type
