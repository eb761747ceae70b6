"""GetInstanceMetrics rules: epoch-aligned bucket means, value text, pod ids, and who may read what."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.clock import US_PER_S
from controller.errors import InstanceNotFound
from controller.instance_metrics import (
    MetricPoint,
    MetricsQuery,
    MetricType,
    bucket_means,
    instance_metrics,
    percent_text,
    pod_id,
)
from controller.provisioning import CreateRequest, create_instance
from controller.release import delete_instance
from controller.tables import Instance, UsageSample
from tests.fleet_rows import REGION, add_node

TYPE = "eais.ei-a6.2xlarge"
MINUTE = 60 * US_PER_S
T0 = 1_767_225_600 * US_PER_S  # 2026-01-01T00:00:00Z, a whole hour


def test_samples_in_one_step_are_averaged_into_one_point_at_the_step_start() -> None:
    samples = [(T0 + 10 * US_PER_S, 30.0), (T0 + 50 * US_PER_S, 50.0), (T0 + MINUTE + 1, 70.0)]

    points = bucket_means(samples, MINUTE)

    assert points == [MetricPoint(T0, 40.0), MetricPoint(T0 + MINUTE, 70.0)]


def test_buckets_are_aligned_to_the_epoch_not_to_the_first_sample() -> None:
    points = bucket_means([(T0 + 7 * MINUTE + 3, 12.0)], 5 * MINUTE)

    assert points == [MetricPoint(T0 + 5 * MINUTE, 12.0)]


def test_steps_without_samples_give_no_point_and_points_come_out_in_time_order() -> None:
    samples = [(T0 + 9 * MINUTE, 1.0), (T0, 2.0)]

    assert [p.bucket_start_us for p in bucket_means(samples, MINUTE)] == [T0, T0 + 9 * MINUTE]


@given(st.lists(st.tuples(st.integers(0, 10**15), st.floats(0, 100)), max_size=50), st.integers(1, 10**10))
def test_every_sample_lands_in_exactly_one_bucket_that_starts_at_or_before_it(samples, step_us) -> None:
    points = bucket_means(samples, step_us)

    assert all(p.bucket_start_us % step_us == 0 for p in points)
    assert {p.bucket_start_us for p in points} == {at - at % step_us for at, _ in samples}
    assert all(0 <= p.mean_percent <= 100 for p in points)


@pytest.mark.parametrize(("value", "text"), [
    (37.5, "37.5"), (40.0, "40"), (0.0, "0"), (100.0, "100"), (33.333333, "33.33"), (66.666666, "66.67"),
    (0.004, "0"), (100.2, "100"), (-0.1, "0"),
])
def test_values_are_percentages_with_at_most_two_decimals(value, text) -> None:
    assert percent_text(value) == text


def test_pod_id_has_the_documented_shape_and_is_stable_per_instance_and_slice() -> None:
    first = pod_id("eais-abc123", "node-1/0")

    assert re.fullmatch(r"eais-abc123-[bcdfghjklmnpqrstvwxz2456789]{10}-[bcdfghjklmnpqrstvwxz2456789]{5}", first)
    assert pod_id("eais-abc123", "node-1/0") == first
    assert pod_id("eais-abc123", "node-1/1") != first
    assert pod_id("eais-abc124", "node-1/0") != first


@pytest.fixture
def instance_id(ctx, account) -> str:
    add_node(ctx, slices={TYPE: 2})
    return create_instance(ctx, account.account_id, CreateRequest(region_id=REGION, instance_type=TYPE), request_id="r")


def add_samples(ctx, instance_id: str, *rows: tuple[int, float]) -> None:
    with ctx.db.write() as session:
        for at_us, percent in rows:
            session.add(UsageSample(instance_id=instance_id, attachment_id="att-1", slice_id="s", at_us=at_us,
                                    gpu_core_percent=percent, gpu_memory_percent=percent + 1, memory_used_mib=512,
                                    cpu_percent=percent + 2, memory_percent=percent + 3))


def query(instance_id: str, metric: MetricType = MetricType.GPU_CORE_USAGE, *, start=T0, end=T0 + 10 * MINUTE, step=MINUTE):
    return MetricsQuery(instance_id, metric, start, end, step)


def test_only_samples_inside_start_and_end_count_and_both_ends_are_included(ctx, account, instance_id) -> None:
    add_samples(ctx, instance_id, (T0 - 1, 90.0), (T0, 10.0), (T0 + 10 * MINUTE, 20.0), (T0 + 10 * MINUTE + 1, 90.0))

    series = instance_metrics(ctx, account.account_id, REGION, query(instance_id))

    assert series.points == [MetricPoint(T0, 10.0), MetricPoint(T0 + 10 * MINUTE, 20.0)]


@pytest.mark.parametrize(("metric", "offset"), [
    (MetricType.GPU_CORE_USAGE, 0), (MetricType.GPU_MEMORY_USAGE, 1), (MetricType.CPU_CORE_USAGE, 2),
    (MetricType.MEMORY_USAGE, 3),
])
def test_each_metric_type_reads_its_own_figure(ctx, account, instance_id, metric, offset) -> None:
    add_samples(ctx, instance_id, (T0 + 1, 40.0))

    series = instance_metrics(ctx, account.account_id, None, query(instance_id, metric))

    assert [p.mean_percent for p in series.points] == [40.0 + offset]


def test_one_series_per_instance_named_after_its_slice_even_without_samples(ctx, account, instance_id) -> None:
    series = instance_metrics(ctx, account.account_id, REGION, query(instance_id))

    with ctx.db.read() as session:
        slice_id = session.get(Instance, instance_id).slice_id
    assert series.pod_id == pod_id(instance_id, slice_id)
    assert series.points == []


def test_another_accounts_instance_is_not_found(ctx, instance_id, other_account) -> None:
    with pytest.raises(InstanceNotFound):
        instance_metrics(ctx, other_account.account_id, None, query(instance_id))


def test_an_unknown_instance_is_not_found(ctx, account) -> None:
    with pytest.raises(InstanceNotFound):
        instance_metrics(ctx, account.account_id, None, query("eais-doesnotexist"))


def test_an_instance_in_another_region_than_asked_is_not_found(ctx, account, instance_id) -> None:
    with pytest.raises(InstanceNotFound):
        instance_metrics(ctx, account.account_id, "cn-beijing", query(instance_id))


def test_a_released_instance_is_not_found(ctx, account, instance_id) -> None:
    delete_instance(ctx, account.account_id, REGION, instance_id, force=True, request_id="r2")

    with pytest.raises(InstanceNotFound):
        instance_metrics(ctx, account.account_id, REGION, query(instance_id))
