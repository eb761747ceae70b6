"""Money is kept as integer micro-CNY so that sums are exact on every database."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

MICRO = Decimal(1_000_000)


def to_micro(amount: Decimal | int | str) -> int:
    return int((Decimal(amount) * MICRO).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def from_micro(micro: int) -> Decimal:
    return (Decimal(micro) / MICRO).quantize(Decimal("0.000001"))
