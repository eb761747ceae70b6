"""Billing as a pure function of hand-written and generated transition logs."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.billing import (
    US_PER_HOUR,
    HourlyItem,
    PriceMissing,
    amount_micro,
    amounts_by_account,
    billed_intervals,
    hour_floor,
    hourly_items,
    total_amount_micro,
    total_billed_us,
)
from controller.states import BILLABLE, BILLED_SHARE, TRANSITIONS, Status

DAY_US = 1_767_225_600 * 1_000_000  # 2026-01-01T00:00:00Z
MINUTE_US = 60 * 1_000_000
TYPE = "eais.ei-a6.4xlarge"
PRICES = {TYPE: Decimal("12.00"), "eais.ei-a6.medium": Decimal("0.75")}


@dataclass(frozen=True)
class Row:
    instance_id: str
    to_status: str
    at_us: int
    account_id: str = "acct-1"
    instance_type: str = TYPE


def at(hour: int, minute: int = 0, second: int = 0) -> int:
    return DAY_US + hour * US_PER_HOUR + minute * MINUTE_US + second * 1_000_000


def log(instance_id: str, *steps: tuple[Status, int], **fields: str) -> list[Row]:
    return [Row(instance_id, status.value, when, **fields) for status, when in steps]


def created_available_at(instance_id: str, when: int, **fields: str) -> list[Row]:
    return log(instance_id, (Status.PENDING, when), (Status.STARTING, when), (Status.AVAILABLE, when), **fields)


def test_instance_available_for_90_minutes_from_10_30_is_billed_30_minutes_at_10_and_60_at_11():
    rows = [*created_available_at("i-1", at(10, 30)), *log("i-1", (Status.RELEASED, at(12)))]

    items = hourly_items(rows, PRICES, at(0), at(24))

    assert [(i.hour_start_us, i.billed_us, i.amount_micro) for i in items] == [
        (at(10), 30 * MINUTE_US, 6_000_000),
        (at(11), 60 * MINUTE_US, 12_000_000),
    ]


def test_an_ei_instance_pays_the_reserve_share_while_bindable_or_bound_and_the_full_price_while_a_worker_may_run():
    rows = log("ei-1", (Status.CREATING, at(10)), (Status.BINDABLE, at(10, 6)), (Status.BOUND, at(10, 12)),
               (Status.STARTING_WORKER, at(10, 18)), (Status.IN_USE, at(10, 24)), (Status.STOPPING_WORKER, at(10, 36)),
               (Status.BOUND, at(10, 42)), (Status.RELEASED, at(11)))

    (item,) = hourly_items(rows, PRICES, at(0), at(24))

    # 30 min at 1/5 (Bindable 6, Bound 6, Bound again 18 once stopped) and 24 min at the full 12 CNY/h
    # (StartingWorker 6, InUse 12, StoppingWorker 6); Creating is free.
    assert item.billed_us == 54 * MINUTE_US
    assert item.amount_micro == 1_200_000 + 4_800_000


def test_stopping_an_ei_instance_saves_four_fifths_of_the_price_while_stopped():
    running = log("ei-1", (Status.IN_USE, at(10)), (Status.RELEASED, at(11)))
    stopped = log("ei-1", (Status.BOUND, at(10)), (Status.RELEASED, at(11)))

    (full,), (reserve,) = hourly_items(running, PRICES, at(0), at(24)), hourly_items(stopped, PRICES, at(0), at(24))

    assert (full.amount_micro, reserve.amount_micro) == (12_000_000, 2_400_000)
    assert full.billed_us == reserve.billed_us == US_PER_HOUR  # time billed at any share; the amount says which


def test_a_stopped_notebook_pays_the_reserve_share_and_stopping_the_full_price():
    rows = log("nb-1", (Status.IN_USE, at(10)), (Status.STOPPING, at(10, 30)), (Status.STOPPED, at(10, 31)),
               (Status.RELEASED, at(11, 31)))

    items = hourly_items(rows, PRICES, at(0), at(24))

    # hour 10: InUse 30 min + Stopping 1 min at 12 CNY/h, Stopped 29 min at 1/5; hour 11: Stopped 31 min at 1/5
    assert [(i.billed_us, i.amount_micro) for i in items] == [
        (60 * MINUTE_US, 6_200_000 + 1_160_000), (31 * MINUTE_US, 1_240_000)]


def test_items_carry_the_account_and_instance_type_of_the_log():
    rows = created_available_at("i-1", at(10), account_id="acct-9", instance_type="eais.ei-a6.medium")

    (item,) = hourly_items(rows, PRICES, at(10), at(11))

    assert item == HourlyItem("acct-9", "i-1", "eais.ei-a6.medium", at(10), US_PER_HOUR, 750_000)


def test_unavailable_time_is_not_billed():
    rows = [
        *created_available_at("i-1", at(10)),
        *log("i-1", (Status.UNAVAILABLE, at(10, 20)), (Status.RELEASED, at(11))),
    ]

    assert billed_intervals(rows, at(12)) == {"i-1": [(at(10), at(10, 20))]}


def test_pending_and_starting_time_is_not_billed():
    rows = log("i-1", (Status.PENDING, at(9)), (Status.STARTING, at(9, 30)), (Status.AVAILABLE, at(10)))

    assert billed_intervals(rows, at(11)) == {"i-1": [(at(10), at(11))]}


def test_instance_that_never_became_billable_has_no_items():
    rows = log("i-1", (Status.PENDING, at(9)), (Status.STARTING, at(9)), (Status.UNAVAILABLE, at(9, 10)))

    assert hourly_items(rows, PRICES, at(0), at(24)) == []


def test_reentering_available_after_unavailable_bills_again():
    rows = [
        *created_available_at("i-1", at(10)),
        *log("i-1", (Status.UNAVAILABLE, at(10, 15)), (Status.AVAILABLE, at(10, 45)), (Status.RELEASED, at(11))),
    ]

    (item,) = hourly_items(rows, PRICES, at(10), at(11))

    assert billed_intervals(rows, at(12)) == {"i-1": [(at(10), at(10, 15)), (at(10, 45), at(11))]}
    assert item.billed_us == 30 * MINUTE_US


def test_attach_and_detach_keep_one_billed_interval():
    rows = [
        *created_available_at("i-1", at(10)),
        *log("i-1", (Status.ATTACHING, at(10, 5)), (Status.IN_USE, at(10, 6)),
             (Status.DETACHING, at(10, 50)), (Status.AVAILABLE, at(10, 51)), (Status.RELEASED, at(10, 55))),
    ]

    assert billed_intervals(rows, at(11)) == {"i-1": [(at(10), at(10, 55))]}


def test_an_instance_still_billable_is_billed_up_to_until():
    rows = created_available_at("i-1", at(10, 30))

    assert billed_intervals(rows, at(10, 40)) == {"i-1": [(at(10, 30), at(10, 40))]}


def test_rows_at_or_after_until_are_ignored():
    rows = [*created_available_at("i-1", at(10)), *log("i-1", (Status.RELEASED, at(11)))]

    assert billed_intervals(rows, at(10, 30)) == {"i-1": [(at(10), at(10, 30))]}
    assert billed_intervals(rows, at(10)) == {}


def test_time_before_since_is_not_billed():
    rows = created_available_at("i-1", at(8, 30))

    items = hourly_items(rows, PRICES, at(10), at(12))

    assert [(i.hour_start_us, i.billed_us) for i in items] == [(at(10), US_PER_HOUR), (at(11), US_PER_HOUR)]


def test_status_left_in_the_same_microsecond_costs_nothing():
    rows = [*created_available_at("i-1", at(10)), *log("i-1", (Status.RELEASED, at(10)))]

    assert billed_intervals(rows, at(12)) == {}


def test_rows_given_out_of_time_order_are_billed_in_time_order():
    rows = [*log("i-1", (Status.RELEASED, at(11))), *created_available_at("i-1", at(10))]

    assert billed_intervals(rows, at(12)) == {"i-1": [(at(10), at(11))]}


def test_a_full_hour_costs_exactly_the_listed_price():
    assert amount_micro(US_PER_HOUR, Decimal("12.00")) == 12_000_000
    assert amount_micro(US_PER_HOUR, Decimal("0.75")) == 750_000


def test_price_arithmetic_is_exact_for_one_microsecond_and_one_second():
    assert amount_micro(1, Decimal("12.00")) == 0  # 1/300 micro-CNY
    assert amount_micro(1_000_000, Decimal("12.00")) == 3_333  # 3333.33 micro-CNY
    assert amount_micro(3_600_000_000 // 7, Decimal("3.00")) == 428_571  # 428571.4286 micro-CNY


def test_exact_halves_round_up():
    # at 0.75 CNY/h one micro-CNY is 4800 µs, so 2400 µs is exactly half a micro-CNY
    assert amount_micro(2_400, Decimal("0.75")) == 1
    assert amount_micro(7_200, Decimal("0.75")) == 2  # 1.5
    assert amount_micro(12_000, Decimal("0.75")) == 3  # 2.5: half up, not half even
    assert amount_micro(2_399, Decimal("0.75")) == 0


def test_rounding_happens_per_hourly_item_and_the_account_pays_their_sum():
    half_micro_us = 2_400  # at 0.75 CNY/h
    rows = log("i-1", (Status.AVAILABLE, at(11) - half_micro_us), (Status.RELEASED, at(11) + half_micro_us),
               instance_type="eais.ei-a6.medium")

    items = hourly_items(rows, PRICES, at(10), at(12))

    assert [i.amount_micro for i in items] == [1, 1]
    assert total_amount_micro(items) == 2  # rounding the whole 4800 µs at once would give 1


def test_instance_type_without_a_price_is_refused():
    rows = created_available_at("i-1", at(10), instance_type="eais.unknown")

    with pytest.raises(PriceMissing, match="eais.unknown"):
        hourly_items(rows, PRICES, at(10), at(11))


def test_amounts_are_summed_per_account():
    rows = [
        *created_available_at("i-1", at(10), account_id="a"),
        *created_available_at("i-2", at(10, 30), account_id="a"),
        *created_available_at("i-3", at(10), account_id="b", instance_type="eais.ei-a6.medium"),
    ]

    items = hourly_items(rows, PRICES, at(10), at(11))

    assert amounts_by_account(items) == {"a": 18_000_000, "b": 750_000}


# --- generated logs: random walks through the real transition table ---------------------------

GAPS_US = st.one_of(
    st.just(0),
    st.integers(1, 5 * 1_000_000),
    st.integers(1, 3 * US_PER_HOUR),
    st.sampled_from([US_PER_HOUR, 30 * MINUTE_US]),
)


@st.composite
def instance_walk(draw: st.DrawFn, instance_id: str, start_us: int) -> list[Row]:
    """One instance's log, drawn by following ``TRANSITIONS`` from creation."""
    account_id = draw(st.sampled_from(["a", "b"]))
    instance_type = draw(st.sampled_from(sorted(PRICES)))
    status, now, rows = None, start_us, []
    for _ in range(draw(st.integers(1, 14))):
        events = sorted(event for (source, event) in TRANSITIONS if source == status)
        if not events:
            break  # Released
        status = TRANSITIONS[(status, draw(st.sampled_from(events)))]
        rows.append(Row(instance_id, status.value, now, account_id, instance_type))
        now += draw(GAPS_US)
    return rows


@st.composite
def generated_logs(draw: st.DrawFn) -> list[Row]:
    count = draw(st.integers(1, 4))
    walks = [draw(instance_walk(f"i-{n}", DAY_US + draw(st.integers(0, 4 * US_PER_HOUR)))) for n in range(count)]
    return sorted((row for walk in walks for row in walk), key=lambda row: row.at_us)  # the log's order


@st.composite
def logs_with_hour_range(draw: st.DrawFn) -> tuple[list[Row], int, int]:
    rows = draw(generated_logs())
    since = DAY_US + draw(st.integers(-1, 6)) * US_PER_HOUR
    until = since + draw(st.integers(0, 40)) * US_PER_HOUR
    return rows, since, until


@st.composite
def logs_with_any_range(draw: st.DrawFn) -> tuple[list[Row], int, int]:
    rows = draw(generated_logs())
    since = DAY_US + draw(st.integers(-US_PER_HOUR, 30 * US_PER_HOUR))
    until = since + draw(st.integers(0, 30 * US_PER_HOUR))
    return rows, since, until


def independently_weighted_us(rows: list[Row], since: int, until: int) -> dict[tuple[str, int], Fraction]:
    """Per (instance, hour): billed microseconds times each status's share of the price, walked microsecond-free."""
    weighted: dict[tuple[str, int], Fraction] = {}
    for instance_id in {row.instance_id for row in rows}:
        own = [row for row in rows if row.instance_id == instance_id]
        ends = [row.at_us for row in own[1:]] + [until]
        for row, end in zip(own, ends, strict=True):
            share = BILLED_SHARE.get(Status(row.to_status), Fraction(0))
            cursor, stop = max(row.at_us, since), min(end, until)
            while cursor < stop:
                hour = hour_floor(cursor)
                piece = min(stop, hour + US_PER_HOUR) - cursor
                weighted[(instance_id, hour)] = weighted.get((instance_id, hour), Fraction(0)) + piece * share
                cursor += piece
    return weighted


def independently_billed_us(rows: list[Row], since: int, until: int) -> int:
    """Each row's status lasts until the instance's next row (or forever); sum the billed overlap."""
    total = 0
    for instance_id in {row.instance_id for row in rows}:
        own = [row for row in rows if row.instance_id == instance_id]
        ends = [row.at_us for row in own[1:]] + [until]
        for row, end in zip(own, ends, strict=True):
            if Status(row.to_status) in BILLABLE:
                total += max(0, min(end, until) - max(row.at_us, since))
    return total


@given(logs_with_any_range())
def test_items_add_up_to_the_billed_time_of_the_walk(case):
    rows, since, until = case

    items = hourly_items(rows, PRICES, since, until)

    expected = independently_billed_us(rows, since, until)
    assert sum(item.billed_us for item in items) == expected
    assert total_billed_us(rows, since, until) == expected


@given(logs_with_any_range())
def test_every_item_is_positive_and_fits_in_its_hour(case):
    rows, since, until = case

    items = hourly_items(rows, PRICES, since, until)

    assert len({(i.instance_id, i.hour_start_us) for i in items}) == len(items)
    for item in items:
        assert item.hour_start_us == hour_floor(item.hour_start_us)
        assert hour_floor(since) <= item.hour_start_us < until
        assert 0 < item.billed_us <= US_PER_HOUR
        assert item.amount_micro >= 0


@given(logs_with_any_range())
def test_amounts_are_the_items_rounded_prices_and_stay_within_half_a_micro_each(case):
    rows, since, until = case

    items = hourly_items(rows, PRICES, since, until)

    weighted = independently_weighted_us(rows, since, until)
    exact = sum(weighted[(i.instance_id, i.hour_start_us)] * Fraction(PRICES[i.instance_type]) / 3600 for i in items)
    assert all(i.amount_micro == amount_micro(weighted[(i.instance_id, i.hour_start_us)], PRICES[i.instance_type])
               for i in items)
    assert abs(total_amount_micro(items) - exact) <= Fraction(len(items), 2)
    assert sum(amounts_by_account(items).values()) == total_amount_micro(items)


@given(logs_with_hour_range(), st.integers(0, 40))
def test_closing_hours_in_two_runs_gives_the_same_items_as_one_run(case, split_hours):
    rows, since, until = case
    middle = min(until, since + split_hours * US_PER_HOUR)

    whole = hourly_items(rows, PRICES, since, until)
    parts = hourly_items(rows, PRICES, since, middle) + hourly_items(rows, PRICES, middle, until)

    assert Counter(parts) == Counter(whole)
