"""The ledger on a real database: closing hours, charging balances, reading bills.

``ctx`` and ``clock`` come from ``tests/conftest.py``: each test runs on SQLite, and on PostgreSQL
when ``EAIS_TEST_PG_URL`` is set. The fake clock starts at 2026-01-01T00:00:00Z.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlmodel import select

from controller.accounts import create_account
from controller.billing import US_PER_HOUR, hourly_items
from controller.clock import FakeClock
from controller.context import ControllerContext
from controller.errors import InvalidParameter
from controller.ids import new_instance_id
from controller.ledger import (
    account_summary,
    bill_items,
    close_hours,
    price_table,
    running_charges,
)
from controller.lifecycle import apply
from controller.states import Event
from controller.tables import Account, BillingCursor, Instance, Transition

DAY_US = FakeClock().now_us()  # 2026-01-01T00:00:00Z
MINUTE_US = 60 * 1_000_000
LARGE = "eais.ei-a6.4xlarge"  # 12.00 CNY/h
MEDIUM = "eais.ei-a6.medium"  # 0.75 CNY/h


def at(hour: int, minute: int = 0) -> int:
    return DAY_US + hour * US_PER_HOUR + minute * MINUTE_US


def move_to(clock: FakeClock, when_us: int) -> None:
    clock.advance((when_us - clock.now_us()) / 1_000_000)


def new_account(ctx: ControllerContext, name: str = "alice", balance: str = "100") -> str:
    return create_account(ctx, name, balance=Decimal(balance), real_name_verified=True).account_id


def new_instance(ctx: ControllerContext, account_id: str, instance_type: str = LARGE) -> str:
    now = ctx.clock.now_us()
    instance = Instance(id=new_instance_id(), account_id=account_id, region_id="cn-hangzhou",
                        instance_type=instance_type, status="", status_since_us=now, created_us=now)
    with ctx.db.write() as session:
        apply(session, instance, Event.CREATE, now_us=now)
    return instance.id


def step(ctx: ControllerContext, instance_id: str, *events: Event) -> None:
    with ctx.db.write() as session:
        instance = session.get(Instance, instance_id)
        for event in events:
            apply(session, instance, event, now_us=ctx.clock.now_us())


def available_instance(ctx: ControllerContext, account_id: str, instance_type: str = LARGE) -> str:
    instance_id = new_instance(ctx, account_id, instance_type)
    step(ctx, instance_id, Event.SLICE_PREPARING, Event.SLICE_READY)
    return instance_id


def balance_micro(ctx: ControllerContext, account_id: str) -> int:
    with ctx.db.read() as session:
        return session.get(Account, account_id).balance_micro


def test_close_hours_writes_one_item_per_instance_and_hour(ctx, clock):
    account_id = new_account(ctx)
    move_to(clock, at(10, 30))
    instance_id = available_instance(ctx, account_id)
    move_to(clock, at(12))
    step(ctx, instance_id, Event.RELEASE)
    move_to(clock, at(12, 5))

    run = close_hours(ctx)

    items = bill_items(ctx)
    assert [(i.instance_id, i.hour_start_us, i.billed_us, i.amount_micro) for i in items] == [
        (instance_id, at(10), 30 * MINUTE_US, 6_000_000),
        (instance_id, at(11), 60 * MINUTE_US, 12_000_000),
    ]
    assert (run.since_us, run.until_us, run.hours_closed, run.charged_micro) == (at(10), at(12), 2, 18_000_000)


def test_close_hours_deducts_the_charges_from_the_balance(ctx, clock):
    account_id = new_account(ctx, balance="100")
    other_id = new_account(ctx, "bob", balance="50")
    move_to(clock, at(10))
    available_instance(ctx, account_id, LARGE)
    available_instance(ctx, other_id, MEDIUM)
    move_to(clock, at(12, 1))

    close_hours(ctx)

    assert balance_micro(ctx, account_id) == 100_000_000 - 2 * 12_000_000
    assert balance_micro(ctx, other_id) == 50_000_000 - 2 * 750_000


def test_second_run_in_the_same_hour_changes_nothing(ctx, clock):
    account_id = new_account(ctx)
    move_to(clock, at(10))
    available_instance(ctx, account_id)
    move_to(clock, at(11, 1))
    close_hours(ctx)
    move_to(clock, at(11, 59))

    again = close_hours(ctx)

    assert again.items == () and again.hours_closed == 0
    assert len(bill_items(ctx)) == 1
    assert balance_micro(ctx, account_id) == 100_000_000 - 12_000_000


def test_an_instance_billed_before_the_range_is_charged_in_later_runs(ctx, clock):
    account_id = new_account(ctx)
    move_to(clock, at(10, 30))
    instance_id = available_instance(ctx, account_id)
    move_to(clock, at(11, 5))
    close_hours(ctx)
    move_to(clock, at(13, 5))

    run = close_hours(ctx)

    assert [(i.instance_id, i.hour_start_us, i.billed_us) for i in run.items] == [
        (instance_id, at(11), US_PER_HOUR),
        (instance_id, at(12), US_PER_HOUR),
    ]


def test_unavailable_and_released_time_is_not_charged(ctx, clock):
    account_id = new_account(ctx)
    move_to(clock, at(10))
    instance_id = available_instance(ctx, account_id)
    move_to(clock, at(10, 10))
    step(ctx, instance_id, Event.NODE_LOST)
    move_to(clock, at(10, 40))
    step(ctx, instance_id, Event.NODE_RECOVERED)
    move_to(clock, at(10, 50))
    step(ctx, instance_id, Event.RELEASE)
    move_to(clock, at(14))

    close_hours(ctx)

    assert [(i.hour_start_us, i.billed_us) for i in bill_items(ctx)] == [(at(10), 20 * MINUTE_US)]


def test_an_account_can_go_into_debt(ctx, clock):
    account_id = new_account(ctx, balance="10")
    move_to(clock, at(10))
    available_instance(ctx, account_id, LARGE)
    move_to(clock, at(12))

    close_hours(ctx)

    summary = account_summary(ctx, account_id)
    assert summary["balance_micro"] == 10_000_000 - 24_000_000
    assert summary["in_debt"] is True
    assert (summary["charged_micro"], summary["item_count"]) == (24_000_000, 2)
    assert summary["billed_through_us"] == at(12)


def test_running_charges_show_the_open_hour_without_deducting_it(ctx, clock):
    account_id = new_account(ctx)
    move_to(clock, at(10))
    instance_id = available_instance(ctx, account_id)
    move_to(clock, at(11, 15))
    close_hours(ctx)

    running = running_charges(ctx, account_id, clock.now_us())

    assert [(i.instance_id, i.hour_start_us, i.billed_us) for i in running.items] == [
        (instance_id, at(11), 15 * MINUTE_US),
    ]
    assert running.amount_micro == 3_000_000
    assert balance_micro(ctx, account_id) == 100_000_000 - 12_000_000


def test_running_charges_include_hours_the_ledger_has_not_closed_yet(ctx, clock):
    account_id = new_account(ctx)
    move_to(clock, at(10, 30))
    available_instance(ctx, account_id)
    move_to(clock, at(11, 30))

    running = running_charges(ctx, account_id)

    assert [(i.hour_start_us, i.billed_us) for i in running.items] == [
        (at(10), 30 * MINUTE_US),
        (at(11), 30 * MINUTE_US),
    ]
    assert (running.since_us, running.until_us) == (at(10), at(11, 30))


def test_running_charges_show_only_the_accounts_own_instances(ctx, clock):
    alice, bob = new_account(ctx, "alice"), new_account(ctx, "bob")
    move_to(clock, at(10))
    available_instance(ctx, alice)
    bobs = available_instance(ctx, bob, MEDIUM)
    move_to(clock, at(10, 30))

    running = running_charges(ctx, bob)

    assert [(i.instance_id, i.amount_micro) for i in running.items] == [(bobs, 375_000)]


def test_an_empty_log_closes_nothing_and_creates_no_cursor(ctx, clock):
    new_account(ctx)
    move_to(clock, at(5))

    run = close_hours(ctx)

    assert run.items == () and run.hours_closed == 0
    with ctx.db.read() as session:
        assert session.get(BillingCursor, 1) is None


def test_bill_items_filter_by_account_instance_and_hour(ctx, clock):
    alice, bob = new_account(ctx, "alice"), new_account(ctx, "bob")
    move_to(clock, at(10))
    first = available_instance(ctx, alice)
    second = available_instance(ctx, alice, MEDIUM)
    available_instance(ctx, bob)
    move_to(clock, at(13))
    close_hours(ctx)

    by_account = bill_items(ctx, account_id=alice)
    by_instance = bill_items(ctx, instance_id=second)
    by_hour = bill_items(ctx, account_id=alice, instance_id=first, since_us=at(11), until_us=at(12))

    assert {i.instance_id for i in by_account} == {first, second} and len(by_account) == 6
    assert [i.hour_start_us for i in by_instance] == [at(10), at(11), at(12)]
    assert [(i.instance_id, i.hour_start_us) for i in by_hour] == [(first, at(11))]


def test_summary_of_an_unknown_account_is_an_invalid_parameter(ctx):
    with pytest.raises(InvalidParameter) as caught:
        account_summary(ctx, "acc-nobody")

    assert caught.value.code == "InvalidParameter.AccountId"


def test_hourly_runs_charge_exactly_what_the_whole_log_says(ctx, clock):
    account_id = new_account(ctx)
    move_to(clock, at(9, 50))
    instance_id = available_instance(ctx, account_id)
    schedule = [
        (at(10, 5), Event.ATTACH), (at(10, 6), Event.ATTACH_READY), (at(11, 20), Event.NODE_LOST),
        (at(12, 45), Event.NODE_RECOVERED), (at(13, 0), Event.ATTACH), (at(13, 0), Event.ATTACH_TIMEOUT),
        (at(14, 30), Event.ATTACH), (at(14, 31), Event.ATTACH_READY), (at(15, 10), Event.DETACH),
        (at(15, 11), Event.DETACH_DONE), (at(16, 40), Event.RELEASE),
    ]
    for when, event in schedule:
        if when // US_PER_HOUR != clock.now_us() // US_PER_HOUR:
            move_to(clock, when - when % US_PER_HOUR)
            close_hours(ctx)
        move_to(clock, when)
        step(ctx, instance_id, event)
    move_to(clock, at(18))
    close_hours(ctx)

    with ctx.db.read() as session:
        log = session.exec(select(Transition).order_by(Transition.at_us, Transition.id)).all()
    expected = hourly_items(log, price_table(ctx.settings), at(9), at(18))
    closed = [(i.hour_start_us, i.billed_us, i.amount_micro) for i in bill_items(ctx)]
    assert closed == [(i.hour_start_us, i.billed_us, i.amount_micro) for i in expected]
    assert balance_micro(ctx, account_id) == 100_000_000 - sum(i.amount_micro for i in expected)
