"""Usage samples: at most one per instance per interval, sane figures, purged after their retention."""

from __future__ import annotations

import math

import pytest
from sqlmodel import select

from controller.clock import US_PER_S
from controller.reconciler import reconcile_once
from controller.tables import UsageSample
from controller.usage_samples import UsageFigures, record_usage_sample, sample_is_due

FIGURES = UsageFigures(gpu_core_percent=40.0, gpu_memory_percent=25.0, memory_used_mib=2048, cpu_percent=5.0,
                       memory_percent=3.0)
GAP = 10 * US_PER_S


def test_the_first_sample_is_always_due() -> None:
    assert sample_is_due(None, 0, GAP)


@pytest.mark.parametrize(("since_latest_us", "due"), [(0, False), (GAP - 1, False), (GAP, True), (GAP * 3, True)])
def test_a_sample_is_due_only_once_the_interval_has_passed(since_latest_us, due) -> None:
    assert sample_is_due(1_000, 1_000 + since_latest_us, GAP) is due


def test_with_no_interval_every_instant_may_have_one_sample_but_not_two() -> None:
    assert sample_is_due(1_000, 1_001, 0)
    assert not sample_is_due(1_000, 1_000, 0)


def test_a_clock_behind_the_latest_sample_waits_instead_of_writing_out_of_order() -> None:
    assert not sample_is_due(1_000 + GAP, 1_000, GAP)


def test_percentages_are_clamped_to_0_100_and_memory_to_a_sane_bound() -> None:
    wild = UsageFigures(gpu_core_percent=100.4, gpu_memory_percent=-2.0, memory_used_mib=2**64 - 1, cpu_percent=50.0,
                        memory_percent=0.0)

    clean = wild.sanitised()

    assert (clean.gpu_core_percent, clean.gpu_memory_percent, clean.cpu_percent) == (100.0, 0.0, 50.0)
    assert clean.memory_used_mib < 2**63


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_figures_that_are_not_numbers_are_not_usable(bad) -> None:
    assert UsageFigures(bad, 1.0, 1, 1.0, 1.0).sanitised() is None
    assert UsageFigures(1.0, 1.0, 1, 1.0, bad).sanitised() is None


def record(ctx, instance_id: str = "eais-one") -> bool:
    with ctx.db.write() as session:
        return record_usage_sample(session, instance_id=instance_id, attachment_id="att-1", slice_id="node-1/0",
                                   figures=FIGURES, now_us=ctx.clock.now_us(), min_gap_us=GAP)


def sample_times(ctx, instance_id: str = "eais-one") -> list[int]:
    with ctx.db.read() as session:
        rows = session.exec(select(UsageSample).where(UsageSample.instance_id == instance_id)).all()
    return sorted(row.at_us for row in rows)


def test_a_chatty_node_leaves_one_sample_per_interval(ctx, clock) -> None:
    start = clock.now_us()
    kept = []
    for _ in range(25):  # a report every second for 25 s
        kept.append(record(ctx))
        clock.advance(1)

    assert kept.count(True) == 3
    assert sample_times(ctx) == [start, start + GAP, start + 2 * GAP]


def test_the_interval_is_counted_per_instance(ctx) -> None:
    assert record(ctx, "eais-one")
    assert record(ctx, "eais-two")
    assert not record(ctx, "eais-one")


def test_a_kept_sample_holds_the_five_figures_and_where_they_came_from(ctx, clock) -> None:
    record(ctx)

    with ctx.db.read() as session:
        row = session.exec(select(UsageSample)).one()
    assert (row.instance_id, row.attachment_id, row.slice_id, row.at_us) == ("eais-one", "att-1", "node-1/0", clock.now_us())
    assert (row.gpu_core_percent, row.gpu_memory_percent, row.memory_used_mib, row.cpu_percent, row.memory_percent) == (
        40.0, 25.0, 2048, 5.0, 3.0)


def test_the_reconciler_purges_samples_older_than_the_retention(ctx, clock) -> None:
    retention_s = ctx.settings.lifecycle.usage_retention_s
    record(ctx)
    clock.advance(retention_s / 2)
    recent = clock.now_us()
    record(ctx)
    clock.advance(retention_s / 2 + 1)

    report = reconcile_once(ctx, close_billing=False)

    assert report.usage_samples_forgotten == 1
    assert sample_times(ctx) == [recent]
