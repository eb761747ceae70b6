"""GetInstanceMetrics: an instance's usage samples as one series of per-step means.

Buckets are aligned to the Unix epoch (a 5-minute step gives points at :00, :05, ...), so a
chart that asks again a moment later gets the same points instead of ones shifted by a few
seconds; a point's time is the start of its bucket, so the first one may lie just before the
requested start. Only samples inside [start, end] count, and only buckets holding at least one
sample give a point. One series per instance: an instance keeps its slice from creation to
release, so its pod (the worker on that slice) is one and its id is derived from both.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import select

from controller.context import ControllerContext
from controller.ownership import visible_instance
from controller.tables import UsageSample

# Kubernetes' alphabet for generated name suffixes: no vowels (no words) and no 0/1/3 (no look-alikes).
_POD_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


class MetricType(StrEnum):
    GPU_CORE_USAGE = "GpuCoreUsage"
    GPU_MEMORY_USAGE = "GpuMemoryUsage"
    CPU_CORE_USAGE = "CpuCoreUsage"
    MEMORY_USAGE = "MemoryUsage"


_SAMPLE_COLUMN = {
    MetricType.GPU_CORE_USAGE: UsageSample.gpu_core_percent,
    MetricType.GPU_MEMORY_USAGE: UsageSample.gpu_memory_percent,
    MetricType.CPU_CORE_USAGE: UsageSample.cpu_percent,
    MetricType.MEMORY_USAGE: UsageSample.memory_percent,
}


@dataclass(frozen=True, slots=True)
class MetricsQuery:
    """What a caller asks for; times are epoch microseconds, ``end_us`` included."""

    instance_id: str
    metric: MetricType
    start_us: int
    end_us: int
    step_us: int


@dataclass(frozen=True, slots=True)
class MetricPoint:
    bucket_start_us: int
    mean_percent: float


@dataclass(frozen=True, slots=True)
class PodSeries:
    pod_id: str
    points: list[MetricPoint]


def bucket_means(samples: Iterable[tuple[int, float]], step_us: int) -> list[MetricPoint]:
    """Mean of the (time, value) samples in each epoch-aligned bucket of ``step_us``, by time."""
    sums: dict[int, tuple[float, int]] = {}
    for at_us, value in samples:
        bucket = at_us - at_us % step_us
        total, count = sums.get(bucket, (0.0, 0))
        sums[bucket] = (total + value, count + 1)
    return [MetricPoint(bucket, total / count) for bucket, (total, count) in sorted(sums.items())]


def percent_text(value: float) -> str:
    """A percentage as the API's ``Value``: 0-100, two decimals at most, no trailing zeros ("37.5")."""
    text = f"{min(100.0, max(0.0, value)):.2f}".rstrip("0").rstrip(".")
    return text or "0"


def pod_id(instance_id: str, slice_id: str) -> str:
    """A stable pod name in the documented shape ``eais-...-579b587ddf-9txr6``, from instance and slice."""
    number = int.from_bytes(hashlib.sha256(f"{instance_id}\n{slice_id}".encode()).digest(), "big")
    letters = []
    for _ in range(15):
        number, index = divmod(number, len(_POD_ALPHABET))
        letters.append(_POD_ALPHABET[index])
    return f"{instance_id}-{''.join(letters[:10])}-{''.join(letters[10:])}"


def instance_metrics(ctx: ControllerContext, account_id: str, region_id: str | None, query: MetricsQuery) -> PodSeries:
    """The caller's instance's series for ``query``; another account's instance is not found.

    Rows read are bounded by the sampling interval: one per 10 s by default, 8,640 a day.
    """
    column = _SAMPLE_COLUMN[query.metric]
    with ctx.db.read() as session:
        instance = visible_instance(session, account_id, region_id, query.instance_id)
        samples = session.execute(
            select(UsageSample.at_us, column)
            .where(UsageSample.instance_id == instance.id, UsageSample.at_us.between(query.start_us, query.end_us))
            .order_by(UsageSample.at_us)
        ).all()
        slice_id = instance.slice_id or ""
    return PodSeries(pod_id(query.instance_id, slice_id), bucket_means(samples, query.step_us))
