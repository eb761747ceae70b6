"""How the console and the tenant routes write times, money and sizes (one place, so pages and JSON agree)."""

from __future__ import annotations

from controller.clock import US_PER_S, to_datetime
from controller.money import from_micro


def iso_utc(us: int | None) -> str:
    """``2026-11-21T10:00:00Z``; "" for no time."""
    return "" if us is None else to_datetime(us).strftime("%Y-%m-%dT%H:%M:%SZ")


def readable_utc(us: int | None) -> str:
    """``2026-11-21 10:00:05 UTC`` for people; "" for no time."""
    return "" if us is None else to_datetime(us).strftime("%Y-%m-%d %H:%M:%S UTC")


def from_millis_text(text: str) -> str:
    """DescribeEais times (Unix milliseconds as text) for people."""
    return readable_utc(int(text) * 1000) if text.isdigit() else ""


def money(micro: int) -> str:
    """Micro-CNY as decimal CNY text with six places (``12.345678``), as the admin API writes it."""
    return str(from_micro(micro))


def money_short(micro: int) -> str:
    """For tables: two decimals, or four when the amount is under one fen."""
    value = from_micro(micro)
    return f"{value:.4f}" if 0 < abs(value) < 0.01 else f"{value:.2f}"


def duration(us: int) -> str:
    seconds = us // US_PER_S
    if seconds < 60:
        return f"{us / US_PER_S:.1f} s"
    minutes, seconds = divmod(seconds, 60)
    return f"{minutes} min {seconds:02d} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def mebibytes(mib: int) -> str:
    return f"{mib / 1024:.1f} GiB" if mib >= 1024 else f"{mib} MiB"
