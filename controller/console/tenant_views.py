"""What the tenant pages show, shaped from the EAIS answers: rows, filters, status badges, the release rules.

The rows come from DescribeEais's own answer (the same handler the API runs), so the console
shows exactly the 19 fields an SDK gets. Pending is internal (product rules §3): the console
shows such an instance as Starting, and offers only the statuses a console shows as filters.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlencode

from controller.console.formatting import from_millis_text
from controller.settings import ControllerSettings
from controller.states import CATEGORY_EAI, FORCE_TO_RELEASE, RELEASABLE_WITHOUT_FORCE, TRANSITIONAL, VISIBLE_IN_CONSOLE, Status

PAGE_SIZES = (10, 20, 50, 100)
FILTER_STATUSES = [s.value for s in Status if s in VISIBLE_IN_CONSOLE]
_BADGE = {Status.AVAILABLE: "available", Status.IN_USE: "in-use", Status.UNAVAILABLE: "unavailable"}


@dataclass(frozen=True)
class InstanceRow:
    fields: dict  # DescribeEais Instances.Instance[] as the API answers it
    shown_status: str
    badge: str
    tags: list[tuple[str, str]]

    @property
    def id(self) -> str:
        return self.fields["ElasticAcceleratedInstanceId"]

    @property
    def status(self) -> str:
        return self.fields["Status"]

    @property
    def created(self) -> str:
        return from_millis_text(self.fields["CreationTime"])

    @property
    def can_attach(self) -> bool:  # the console's buttons send the EAI family's actions
        return self.status == Status.AVAILABLE and self.fields["Category"] == CATEGORY_EAI

    @property
    def can_detach(self) -> bool:
        return self.status == Status.IN_USE and self.fields["Category"] == CATEGORY_EAI

    @property
    def can_release(self) -> bool:  # an EI instance is released with DeleteEaisEi (API, SDK), not from here yet
        return self.fields["Category"] == CATEGORY_EAI

    @property
    def needs_force(self) -> bool:
        return Status(self.status) in FORCE_TO_RELEASE

    def action_params(self, **extra: str) -> str:
        """The JSON a button sends with its action (the API's parameter names)."""
        return json.dumps({"RegionId": self.fields["RegionId"], "ElasticAcceleratedInstanceId": self.id, **extra})


def instance_row(fields: Mapping) -> InstanceRow:
    status = Status(fields["Status"])
    shown = Status.STARTING if status is Status.PENDING else status
    badge = _BADGE.get(shown, "moving" if shown in TRANSITIONAL else "other")
    tags = [(t["TagKey"], t["TagValue"]) for t in fields["Tags"]["Tag"]]
    return InstanceRow(dict(fields), shown.value, badge, tags)


@dataclass(frozen=True)
class Filters:
    """The list's filters and page, read from the page's query string (the API's parameter names)."""

    status: str = ""
    instance_type: str = ""
    name: str = ""
    tag_key: str = ""
    tag_value: str = ""
    page: int = 1
    page_size: int = 20
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> Filters:
        def number(name: str, default: int) -> int:
            text = query.get(name, "")
            return int(text) if text.isdigit() and len(text) < 7 else default

        size = number("PageSize", 20)
        return cls(query.get("Status", "")[:32], query.get("InstanceType", "")[:64], query.get("InstanceName", "")[:128],
                   query.get("TagKey", "")[:128], query.get("TagValue", "")[:128], max(1, number("PageNumber", 1)),
                   size if size in PAGE_SIZES else 20)

    def describe_params(self, region_id: str) -> dict[str, str]:
        """DescribeEais parameters for this view; the handler validates every value as for an API call."""
        params = {"RegionId": region_id, "PageNumber": str(self.page), "PageSize": str(self.page_size),
                  "Status": self.status, "InstanceType": self.instance_type, "InstanceName": self.name}
        if self.tag_key or self.tag_value:
            params["Tag.1.Key"] = self.tag_key
            if self.tag_value:
                params["Tag.1.Value"] = self.tag_value
        return {k: v for k, v in params.items() if v != ""}

    def query(self, region_id: str, **changes: object) -> str:
        values = {"RegionId": region_id, "Status": self.status, "InstanceType": self.instance_type,
                  "InstanceName": self.name, "TagKey": self.tag_key, "TagValue": self.tag_value,
                  "PageNumber": self.page, "PageSize": self.page_size, **changes}
        return urlencode({k: v for k, v in values.items() if v not in ("", None)})

    @property
    def active(self) -> bool:
        return any((self.status, self.instance_type, self.name, self.tag_key, self.tag_value))


@dataclass(frozen=True)
class TypeOption:
    name: str
    memory_gb: int
    fp32_tflops: float
    price_per_hour: str


def type_options(settings: ControllerSettings) -> list[TypeOption]:
    return [TypeOption(name, spec.accelerator_memory_gb, spec.fp32_tflops, f"{spec.price_per_hour:.2f}")
            for name, spec in sorted(settings.instance_types.items(), key=lambda item: item[1].accelerator_memory_gb)]


def release_rules() -> dict[str, list[str]]:
    """Which statuses release without Force and which need it, from the one table in ``controller.states``."""
    order = list(Status)
    return {"without_force": sorted((s.value for s in RELEASABLE_WITHOUT_FORCE), key=lambda v: order.index(Status(v))),
            "with_force": sorted((s.value for s in FORCE_TO_RELEASE if s in VISIBLE_IN_CONSOLE),
                                 key=lambda v: order.index(Status(v)))}
