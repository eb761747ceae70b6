"""Time as the controller sees it: epoch microseconds (UTC). Tests use :class:`FakeClock`."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol

US_PER_S = 1_000_000


class Clock(Protocol):
    def now_us(self) -> int: ...


class SystemClock:
    def now_us(self) -> int:
        return time.time_ns() // 1000


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, start_us: int = 1_767_225_600 * US_PER_S) -> None:  # 2026-01-01T00:00:00Z
        self._now = start_us

    def now_us(self) -> int:
        return self._now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock does not go back")
        self._now += round(seconds * US_PER_S)


def to_datetime(us: int) -> datetime:
    return datetime.fromtimestamp(us / US_PER_S, tz=UTC)


def from_datetime(moment: datetime) -> int:
    return round(moment.timestamp() * US_PER_S)


def to_millis_text(us: int | None) -> str:
    """DescribeEais time fields: Unix time in milliseconds, as text."""
    return "" if us is None else str(us // 1000)
