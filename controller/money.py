"""Money is kept as integer micro-CNY so that sums are exact on every database.

Amounts that people type (opening balances, top-ups) go through :func:`amount_micro`: finite,
at most six decimal places, and at most :data:`MAX_AMOUNT` in magnitude, so that a balance and
any sum of a few of them stay far inside the BIGINT column they are stored in.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from controller.errors import InvalidParameter

MICRO = Decimal(1_000_000)
CURRENCY = "CNY"
MAX_AMOUNT = Decimal(10) ** 12  # CNY; 10^18 micro-CNY, a ninth of BIGINT's range
MAX_MICRO = int(MAX_AMOUNT * MICRO)


def to_micro(amount: Decimal | int | str) -> int:
    return int((Decimal(amount) * MICRO).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def from_micro(micro: int) -> Decimal:
    return (Decimal(micro) / MICRO).quantize(Decimal("0.000001"))


def amount_micro(amount: Decimal | int | str, *, name: str) -> int:
    """An amount a person gave, in micro-CNY; ``InvalidParameter.<name>`` when it cannot be one."""
    try:
        value = Decimal(amount)
    except (InvalidOperation, TypeError, ValueError):
        raise InvalidParameter(f"{name} {str(amount)[:40]!r} is not a number; give CNY such as 100 or 12.5.",
                               detail=name) from None
    if not value.is_finite():
        raise InvalidParameter(f"{name} must be a finite number of CNY, not {value}.", detail=name)
    if abs(value) > MAX_AMOUNT:
        raise InvalidParameter(f"{name} {str(value)[:40]} CNY is out of range; at most {MAX_AMOUNT:,} CNY either way.",
                               detail=name)
    if value != value.quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP):
        raise InvalidParameter(f"{name} {value} has more than 6 decimal places; amounts are kept to the micro-CNY.",
                               detail=name)
    return to_micro(value)


def check_balance_micro(balance_micro: int, *, name: str) -> int:
    """A balance about to be stored; refused like an amount when it would leave the allowed range."""
    if abs(balance_micro) > MAX_MICRO:
        raise InvalidParameter(
            f"{name} would take the balance to {from_micro(balance_micro):,} CNY; balances stay within "
            f"{MAX_AMOUNT:,} CNY either way.", detail=name)
    return balance_micro
