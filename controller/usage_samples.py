"""Utilisation samples of attached instances: what is kept of the usage node agents report.

The node agent sends its slices' latest figures with every report. The controller keeps at most
one sample per instance per ``usage_sample_interval_s`` (a chatty node cannot flood the
database) and the reconciler drops samples older than ``usage_retention_s``. Which reports may
leave a sample (only those about the instance's current attachment) is decided by
``controller.agent_link.actual_state``; this module keeps and forgets them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlmodel import Session

from controller.context import ControllerContext
from controller.tables import UsageSample

MAX_MEMORY_MIB = 1 << 40  # 1 EiB: anything larger is a broken reading, and would not fit a signed BIGINT


@dataclass(frozen=True, slots=True)
class UsageFigures:
    """A slice's latest utilisation, as the node reported it (proto ``SliceUsage``)."""

    gpu_core_percent: float
    gpu_memory_percent: float
    memory_used_mib: int
    cpu_percent: float
    memory_percent: float

    def sanitised(self) -> UsageFigures | None:
        """Percentages clamped to 0-100 (measurement jitter), or None when a figure is not a number."""
        percents = (self.gpu_core_percent, self.gpu_memory_percent, self.cpu_percent, self.memory_percent)
        if not all(math.isfinite(value) for value in percents):
            return None
        gpu_core, gpu_memory, cpu, memory = (min(100.0, max(0.0, value)) for value in percents)
        return UsageFigures(gpu_core, gpu_memory, min(max(0, self.memory_used_mib), MAX_MEMORY_MIB), cpu, memory)


def sample_is_due(latest_us: int | None, now_us: int, min_gap_us: int) -> bool:
    """A new sample is kept when none exists yet, or the latest is at least ``min_gap_us`` old.

    Never two at one instant, and none while the clock reads earlier than the latest sample
    (another replica's clock ran ahead): the gap starts again from that sample.
    """
    return latest_us is None or (now_us > latest_us and now_us - latest_us >= min_gap_us)


def record_usage_sample(
    session: Session, *, instance_id: str, attachment_id: str, slice_id: str, figures: UsageFigures,
    now_us: int, min_gap_us: int,
) -> bool:
    """Keep ``figures`` as the instance's sample at ``now_us`` if one is due; True when kept."""
    latest = session.execute(
        select(func.max(UsageSample.at_us)).where(UsageSample.instance_id == instance_id)
    ).scalar_one_or_none()
    if not sample_is_due(latest, now_us, min_gap_us):
        return False
    session.add(UsageSample(
        instance_id=instance_id, attachment_id=attachment_id, slice_id=slice_id, at_us=now_us,
        gpu_core_percent=figures.gpu_core_percent, gpu_memory_percent=figures.gpu_memory_percent,
        memory_used_mib=figures.memory_used_mib, cpu_percent=figures.cpu_percent,
        memory_percent=figures.memory_percent,
    ))
    return True


def forget_usage_before(ctx: ControllerContext, cutoff_us: int) -> int:
    """Drop samples taken before ``cutoff_us`` (the retention limit); returns how many."""
    with ctx.db.write() as session:
        result = session.execute(delete(UsageSample).where(UsageSample.at_us < cutoff_us))
    return result.rowcount or 0
