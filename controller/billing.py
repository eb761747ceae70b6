"""Billing as a pure function of the transition log: no clock, no database, no I/O.

An instance is billed for the time it spends in a :data:`~controller.states.BILLABLE` status
(Available, Attaching, InUse, Detaching; product-rules.md §3; for the EI family StartingWorker,
InUse and StoppingWorker too), at the share of its price :data:`~controller.states.BILLED_SHARE`
gives the status: the whole price, or the reserve share for an EI instance holding its slice with no
worker (Bindable, Bound). Pending, Starting, Creating, Unavailable and Released cost nothing.
Metering is per second and in fact microsecond-exact: a billed interval is ``[at_us of the
transition into a billed status, at_us of the transition out of it)``.

Items are cut at UTC clock hours (epoch microseconds are UTC and have no leap seconds, so an
hour starts at every multiple of :data:`US_PER_HOUR`). Each instance gets one
:class:`HourlyItem` per hour in which it had billed time.

Rounding rule: the exact amount of an item is
``Σ billed_us × share × price_per_hour (CNY) / 3_600_000_000 µs`` over its statuses, computed with exact fractions and
rounded **once per hourly item**, half up, to an integer number of micro-CNY. An account is
charged the sum of its items, so the charge for a period is the same whichever way the period
is split into ledger runs (runs close whole hours).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Protocol

from controller.states import BILLED_SHARE, Status

US_PER_HOUR = 3_600_000_000
MICRO_PER_CNY = 1_000_000

Interval = tuple[int, int]
PricedInterval = tuple[int, int, Fraction]  # start_us, end_us, share of the price


class TransitionRow(Protocol):
    """What billing reads of a transition (``controller.tables.Transition`` has all of it)."""

    instance_id: str
    account_id: str
    instance_type: str
    to_status: str
    at_us: int


@dataclass(frozen=True)
class HourlyItem:
    """Charge for one instance in one UTC clock hour."""

    account_id: str
    instance_id: str
    instance_type: str
    hour_start_us: int
    billed_us: int
    amount_micro: int


class PriceMissing(KeyError):
    """An instance type with billed time has no price: a configuration error, never billed as zero."""

    def __init__(self, instance_type: str) -> None:
        super().__init__(instance_type)
        self.instance_type = instance_type

    def __str__(self) -> str:
        return f"no price configured for instance type {self.instance_type!r}"


def hour_floor(us: int) -> int:
    """Start of the UTC clock hour that contains ``us``."""
    return us - us % US_PER_HOUR


def amount_micro(billed_us: int | Fraction, price_per_hour: Decimal) -> int:
    """Exact ``billed_us × price_per_hour / 1 h`` in micro-CNY, rounded half up (once, per item).

    ``billed_us`` may be a fraction: time already weighted by the statuses' shares of the price.
    """
    exact = Fraction(billed_us) * Fraction(price_per_hour) * MICRO_PER_CNY / US_PER_HOUR
    return _round_half_up(exact)


def _round_half_up(value: Fraction) -> int:
    if value < 0:
        return -_round_half_up(-value)
    return int(value + Fraction(1, 2))  # int() floors a non-negative Fraction


def group_by_instance(transitions: Iterable[TransitionRow]) -> dict[str, list[TransitionRow]]:
    """Rows per instance in log order (by ``at_us``; rows at the same instant keep their input order)."""
    groups: dict[str, list[TransitionRow]] = {}
    for row in transitions:
        groups.setdefault(row.instance_id, []).append(row)
    for rows in groups.values():
        rows.sort(key=lambda row: row.at_us)  # stable: the caller's id order breaks ties
    return groups


def billed_intervals(transitions: Iterable[TransitionRow], until_us: int) -> dict[str, list[Interval]]:
    """Per instance, the ``[start_us, end_us)`` spans spent in a billed status before ``until_us``.

    Consecutive billed statuses (Available → Attaching → InUse …) form one span; a span still
    open at the last row is closed at ``until_us``. Rows at or after ``until_us`` are ignored.
    Instances without billed time are absent from the result.
    """
    result: dict[str, list[Interval]] = {}
    for instance_id, rows in group_by_instance(transitions).items():
        spans = _merged(_spans_of_one_instance(rows, until_us))
        if spans:
            result[instance_id] = spans
    return result


def _spans_of_one_instance(rows: list[TransitionRow], until_us: int) -> list[PricedInterval]:
    """Billed spans, one per stay in a billed status, with that status's share of the price."""
    spans: list[PricedInterval] = []
    opened: tuple[int, Fraction] | None = None
    for row in rows:
        if row.at_us >= until_us:
            break
        if opened is not None:
            _add_span(spans, opened[0], row.at_us, opened[1])
        share = BILLED_SHARE.get(Status(row.to_status))
        opened = (row.at_us, share) if share else None
    if opened is not None:
        _add_span(spans, opened[0], until_us, opened[1])
    return spans


def _add_span(spans: list[PricedInterval], start_us: int, end_us: int, share: Fraction) -> None:
    if end_us > start_us:  # a status left in the same microsecond it was entered costs nothing
        spans.append((start_us, end_us, share))


def _merged(spans: list[PricedInterval]) -> list[Interval]:
    """Consecutive billed spans as one, whatever their shares."""
    merged: list[Interval] = []
    for start_us, end_us, _share in spans:
        if merged and merged[-1][1] == start_us:
            merged[-1] = (merged[-1][0], end_us)
        else:
            merged.append((start_us, end_us))
    return merged


def split_by_hour(start_us: int, end_us: int) -> list[tuple[int, int]]:
    """``[start_us, end_us)`` as ``(hour_start_us, billed_us)`` pieces, one per UTC hour touched."""
    pieces: list[tuple[int, int]] = []
    cursor = start_us
    while cursor < end_us:
        hour_start = hour_floor(cursor)
        piece_end = min(end_us, hour_start + US_PER_HOUR)
        pieces.append((hour_start, piece_end - cursor))
        cursor = piece_end
    return pieces


def billed_us_by_hour(spans: Iterable[Interval], since_us: int, until_us: int) -> dict[int, int]:
    """Billed microseconds per hour start, counting only time inside ``[since_us, until_us)``."""
    per_hour: dict[int, int] = {}
    for start_us, end_us in spans:
        for hour_start, billed in split_by_hour(max(start_us, since_us), min(end_us, until_us)):
            per_hour[hour_start] = per_hour.get(hour_start, 0) + billed
    return per_hour


def hourly_items(
    transitions: Iterable[TransitionRow],
    prices: Mapping[str, Decimal],
    since_us: int,
    until_us: int,
) -> list[HourlyItem]:
    """One :class:`HourlyItem` per instance per UTC hour with billed time inside ``[since_us, until_us)``.

    ``transitions`` must include, for every instance, its last row before ``since_us`` (the
    status it was in when the range began). ``prices`` maps instance type to CNY per hour.
    The ledger passes hour boundaries; other bounds give partial items (the running hour).
    Sorted by hour, then account, then instance.
    """
    rows_by_instance = group_by_instance(transitions)
    items: list[HourlyItem] = []
    for instance_id, rows in rows_by_instance.items():
        per_hour = _weighted_by_hour(_spans_of_one_instance(rows, until_us), since_us, until_us)
        if per_hour:
            items.extend(_items_of_one_instance(instance_id, rows[-1], per_hour, prices))
    items.sort(key=lambda item: (item.hour_start_us, item.account_id, item.instance_id))
    return items


def _weighted_by_hour(spans: Iterable[PricedInterval], since_us: int, until_us: int) -> dict[int, tuple[int, Fraction]]:
    """Per hour start: billed microseconds, and the same weighted by each status's share of the price."""
    per_hour: dict[int, tuple[int, Fraction]] = {}
    for start_us, end_us, share in spans:
        for hour_start, billed in split_by_hour(max(start_us, since_us), min(end_us, until_us)):
            total, weighted = per_hour.get(hour_start, (0, Fraction(0)))
            per_hour[hour_start] = (total + billed, weighted + billed * share)
    return per_hour


def _items_of_one_instance(
    instance_id: str, last_row: TransitionRow, per_hour: dict[int, tuple[int, Fraction]], prices: Mapping[str, Decimal]
) -> list[HourlyItem]:
    try:
        price = prices[last_row.instance_type]
    except KeyError:
        raise PriceMissing(last_row.instance_type) from None
    return [
        HourlyItem(
            account_id=last_row.account_id,
            instance_id=instance_id,
            instance_type=last_row.instance_type,
            hour_start_us=hour_start,
            billed_us=billed,
            amount_micro=amount_micro(weighted, price),
        )
        for hour_start, (billed, weighted) in sorted(per_hour.items())
    ]


def total_billed_us(transitions: Iterable[TransitionRow], since_us: int, until_us: int) -> int:
    """All instances' billed microseconds inside ``[since_us, until_us)``."""
    return sum(
        sum(billed_us_by_hour(spans, since_us, until_us).values())
        for spans in billed_intervals(transitions, until_us).values()
    )


def total_amount_micro(items: Iterable[HourlyItem]) -> int:
    """What the items charge together (the sum of per-item rounded amounts)."""
    return sum(item.amount_micro for item in items)


def amounts_by_account(items: Iterable[HourlyItem]) -> dict[str, int]:
    """Micro-CNY to charge each account for ``items``."""
    totals: dict[str, int] = {}
    for item in items:
        totals[item.account_id] = totals.get(item.account_id, 0) + item.amount_micro
    return totals
