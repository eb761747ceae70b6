"""GetInstanceMetrics parameters: defaults, the accepted forms of times and steps, and clear refusals."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.api.metrics_params import MAX_STEPS, metrics_query, moment_us, time_step_us
from controller.clock import US_PER_S
from controller.errors import EaisError, InvalidParameter, MissingParameter
from controller.instance_metrics import MetricType

NOW = 1_767_225_600 * US_PER_S + 123_456  # 2026-01-01T00:00:00.123456Z
HOUR = 3600 * US_PER_S


def ask(**params: str):
    return metrics_query({"InstanceId": "eais-abc", "MetricType": "GpuCoreUsage", **params}, NOW)


def test_without_times_the_last_hour_is_asked_in_five_minute_steps() -> None:
    query = ask()

    assert (query.start_us, query.end_us, query.step_us) == (NOW - HOUR, NOW, 300 * US_PER_S)
    assert (query.instance_id, query.metric) == ("eais-abc", MetricType.GPU_CORE_USAGE)


def test_start_defaults_to_one_hour_before_the_given_end() -> None:
    query = ask(EndTime="2025-12-31T12:00:00Z")

    assert query.start_us == query.end_us - HOUR


@pytest.mark.parametrize("text", ["1767225600", "1767225600000", "2026-01-01T00:00:00Z"])
def test_a_time_may_be_seconds_milliseconds_or_utc_text(text) -> None:
    assert moment_us("StartTime", text, default=0) == 1_767_225_600 * US_PER_S


def test_milliseconds_keep_their_fraction_of_a_second() -> None:
    assert moment_us("EndTime", "1767225600250", default=0) == 1_767_225_600_250_000


def test_a_number_below_one_hundred_billion_is_seconds_and_above_is_milliseconds() -> None:
    assert moment_us("EndTime", "99999999999", default=0) == 99_999_999_999 * US_PER_S
    assert moment_us("EndTime", "100000000000", default=0) == 100_000_000_000 * 1000


@pytest.mark.parametrize(("text", "seconds"), [("5m", 300), ("1h", 3600), ("30s", 30), ("45", 45), ("1440m", 86400)])
def test_a_time_step_takes_h_m_s_and_a_bare_number_is_seconds(text, seconds) -> None:
    assert time_step_us(text) == seconds * US_PER_S


@pytest.mark.parametrize("text", ["0", "0m", "5 m", "5M", "5d", "-5", "1.5h", "m", "５m", "1234567890s"])
def test_a_malformed_time_step_is_refused_naming_the_forms(text) -> None:
    with pytest.raises(InvalidParameter) as refused:
        time_step_us(text)

    assert refused.value.code == "InvalidParameter.TimeStep"
    assert "unit h, m or s" in refused.value.message


@pytest.mark.parametrize("text", ["yesterday", "2026-01-01 00:00:00", "2026-13-01T00:00:00Z", "2026-01-01T00:00:00+08:00",
                                  "-1767225600", "1e9", "999999999999999999"])
def test_a_malformed_time_is_refused_naming_the_forms(text) -> None:
    with pytest.raises(InvalidParameter) as refused:
        ask(StartTime=text, EndTime="2026-01-02T00:00:00Z")

    assert refused.value.code == "InvalidParameter.StartTime"


def test_start_after_end_is_refused() -> None:
    with pytest.raises(InvalidParameter) as refused:
        ask(StartTime="2026-01-01T02:00:00Z", EndTime="2026-01-01T01:00:00Z")

    assert refused.value.code == "InvalidParameter.StartTime"
    assert "earlier than EndTime" in refused.value.message


def test_a_day_in_one_minute_steps_is_allowed_and_one_more_step_is_not() -> None:
    day = {"StartTime": "2026-01-01T00:00:00Z", "EndTime": "2026-01-02T00:00:00Z"}
    assert ask(**day, TimeStep="1m").step_us == 60 * US_PER_S

    with pytest.raises(InvalidParameter) as refused:
        ask(**day, TimeStep="59s")
    assert refused.value.code == "InvalidParameter.TimeStep"
    assert f"at most {MAX_STEPS}" in refused.value.message


def test_an_unknown_metric_type_is_refused_listing_the_four() -> None:
    with pytest.raises(InvalidParameter) as refused:
        ask(MetricType="DiskUsage")

    assert refused.value.code == "InvalidParameter.MetricType"
    assert "GpuCoreUsage, GpuMemoryUsage, CpuCoreUsage, MemoryUsage" in refused.value.message


@pytest.mark.parametrize("name", ["InstanceId", "MetricType"])
def test_instance_id_and_metric_type_are_required(name) -> None:
    params = {"InstanceId": "eais-abc", "MetricType": "MemoryUsage"}
    del params[name]

    with pytest.raises(MissingParameter) as refused:
        metrics_query(params, NOW)
    assert refused.value.code == f"MissingParameter.{name}"


@given(st.dictionaries(st.sampled_from(["StartTime", "EndTime", "TimeStep", "MetricType"]), st.text(max_size=40)))
def test_hostile_values_give_a_parameter_error_or_a_bounded_query(values) -> None:
    try:
        query = metrics_query({"InstanceId": "eais-abc", "MetricType": "CpuCoreUsage", **values}, NOW)
    except EaisError as refused:
        assert refused.code.startswith(("InvalidParameter.", "MissingParameter."))
        return
    assert query.start_us < query.end_us
    assert -(-(query.end_us - query.start_us) // query.step_us) <= MAX_STEPS
