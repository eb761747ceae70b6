"""The parameters of GetInstanceMetrics: parsing, defaults and limits.

- ``MetricType``: GpuCoreUsage, GpuMemoryUsage, CpuCoreUsage or MemoryUsage (exact spelling).
- ``StartTime`` / ``EndTime``: a Unix timestamp or ``yyyy-MM-ddTHH:mm:ssZ`` (UTC). A timestamp
  below 100,000,000,000 is seconds (that is the year 5138), anything larger milliseconds (which
  that threshold puts after March 1973); milliseconds are what the API answers in.
  ``EndTime`` defaults to now, ``StartTime`` to one hour before ``EndTime``; start < end.
- ``TimeStep``: a whole number with unit ``h``, ``m`` or ``s``, a bare number meaning seconds;
  default ``5m``. The range may hold at most :data:`MAX_STEPS` steps.

Every refusal is ``InvalidParameter.<Name>`` (HTTP 400) with a message that says what is accepted.
"""

from __future__ import annotations

import re

from controller.api import params as p
from controller.api.caller_auth import parse_timestamp
from controller.clock import US_PER_S, from_datetime
from controller.errors import InvalidParameter, TimestampMalformed
from controller.instance_metrics import MetricsQuery, MetricType

DEFAULT_WINDOW_US = 3600 * US_PER_S
DEFAULT_TIME_STEP = "5m"
MAX_STEPS = 1440  # a day at one-minute steps
SECONDS_BELOW = 100_000_000_000
LATEST_MILLIS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z
_TIME_STEP = re.compile(r"([0-9]{1,9})([hms]?)")
_UNIT_US = {"h": 3600 * US_PER_S, "m": 60 * US_PER_S, "s": US_PER_S, "": US_PER_S}
_MOMENT_HINT = "a Unix timestamp (seconds or milliseconds) or yyyy-MM-ddTHH:mm:ssZ in UTC"


def metrics_query(params: p.Params, now_us: int) -> MetricsQuery:
    """The request's parameters as a :class:`MetricsQuery`, defaults filled in; raises on bad values."""
    instance_id = p.identifier(params, "InstanceId")
    metric = metric_type(p.required(params, "MetricType", max_length=32))
    end_us = moment_us("EndTime", p.optional(params, "EndTime", max_length=32), default=now_us)
    start_text = p.optional(params, "StartTime", max_length=32)
    start_us = moment_us("StartTime", start_text, default=end_us - DEFAULT_WINDOW_US)
    if start_us >= end_us:
        raise InvalidParameter(
            f"StartTime ({start_us // 1000} ms) must be earlier than EndTime ({end_us // 1000} ms).", detail="StartTime"
        )
    step_us = time_step_us(p.optional(params, "TimeStep", max_length=16, default=DEFAULT_TIME_STEP))
    check_step_count(start_us, end_us, step_us)
    return MetricsQuery(instance_id, metric, start_us, end_us, step_us)


def metric_type(text: str) -> MetricType:
    try:
        return MetricType(text)
    except ValueError:
        raise InvalidParameter(
            f"MetricType {text!r} is not one of {', '.join(m.value for m in MetricType)}.", detail="MetricType"
        ) from None


def moment_us(name: str, text: str, *, default: int) -> int:
    """``text`` as epoch microseconds: seconds, milliseconds or ``yyyy-MM-ddTHH:mm:ssZ``; ``default`` if empty."""
    if text == "":
        return default
    if text.isascii() and text.isdigit():
        number = int(text)
        if number < SECONDS_BELOW:
            return number * US_PER_S
        if number <= LATEST_MILLIS:
            return number * 1000
        raise InvalidParameter(f"{name} {text!r} is beyond the year 9999; give {_MOMENT_HINT}.", detail=name)
    try:
        return from_datetime(parse_timestamp(text))
    except TimestampMalformed:
        raise InvalidParameter(f"{name} {text!r} is not {_MOMENT_HINT}.", detail=name) from None


def time_step_us(text: str) -> int:
    """``5m``, ``1h``, ``30s`` or ``30`` (seconds) as microseconds; at least one second."""
    match = _TIME_STEP.fullmatch(text)
    if match is None or int(match[1]) == 0:
        raise InvalidParameter(
            f"TimeStep {text!r} is not a positive whole number with unit h, m or s (a bare number is seconds), "
            "e.g. 5m.", detail="TimeStep",
        )
    return int(match[1]) * _UNIT_US[match[2]]


def check_step_count(start_us: int, end_us: int, step_us: int) -> None:
    steps = -(-(end_us - start_us) // step_us)
    if steps > MAX_STEPS:
        raise InvalidParameter(
            f"The range from StartTime to EndTime holds {steps} steps of TimeStep; at most {MAX_STEPS} are allowed. "
            "Choose a larger TimeStep or a shorter range.", detail="TimeStep",
        )
