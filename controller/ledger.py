"""The ledger: closes complete UTC hours into bill items and charges accounts for them.

:mod:`controller.billing` decides what is owed from the transition log; this module is its only
impure side. :func:`close_hours` runs in one write transaction:

1. read the :class:`~controller.tables.BillingCursor` (created at the hour of the first
   transition when missing); hours before ``billed_through_us`` are already closed;
2. read the transitions of ``[cursor, floor(now to the hour))`` plus each instance's last
   transition before that range when it left the instance billed;
3. insert one ``BillItem`` per instance and hour (UNIQUE(instance_id, hour_start_us) makes a
   second charge for an hour impossible), subtract the amounts from the accounts' balances
   (a balance may go below zero: the account is then in debt), and advance the cursor.

A second run in the same hour finds nothing to close. Two replicas racing on PostgreSQL: the
loser's insert of the same items fails on the UNIQUE constraint, its transaction rolls back,
and it reports an empty run. The read side serves the admin API and the CLI.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from controller.billing import (
    US_PER_HOUR,
    HourlyItem,
    amounts_by_account,
    hour_floor,
    hourly_items,
    total_amount_micro,
)
from controller.context import ControllerContext
from controller.errors import InvalidParameter
from controller.settings import ControllerSettings
from controller.states import BILLABLE
from controller.tables import Account, BillingCursor, BillItem, Transition

CURSOR_ID = 1


@dataclass(frozen=True)
class LedgerRun:
    """What one :func:`close_hours` call closed: hours ``[since_us, until_us)`` and their items."""

    since_us: int
    until_us: int
    items: tuple[HourlyItem, ...] = ()

    @property
    def hours_closed(self) -> int:
        return max(0, self.until_us - self.since_us) // US_PER_HOUR

    @property
    def charged_micro(self) -> int:
        return total_amount_micro(self.items)


@dataclass(frozen=True)
class RunningCharges:
    """An account's charges not yet closed by the ledger (shown to users, never deducted)."""

    account_id: str
    since_us: int
    until_us: int
    items: tuple[HourlyItem, ...] = ()

    @property
    def amount_micro(self) -> int:
        return total_amount_micro(self.items)


def price_table(settings: ControllerSettings) -> dict[str, Decimal]:
    """Instance type -> CNY per hour, from the configured instance-type table."""
    return {name: spec.price_per_hour for name, spec in settings.instance_types.items()}


def close_hours(ctx: ControllerContext, *, settle_us: int = 0) -> LedgerRun:
    """Close every complete UTC hour that ends at or before ``now - settle_us``.

    ``settle_us`` leaves time for a transition stamped just before an hour's end but committed
    just after it (its writer read the clock before waiting for the write lock).
    """
    now_us = ctx.clock.now_us()
    until_us = hour_floor(now_us - settle_us)
    prices = price_table(ctx.settings)
    try:
        with ctx.db.write() as session:
            since_us = _billed_through(session)
            if since_us is None or since_us >= until_us:
                return LedgerRun(since_us=until_us, until_us=until_us)
            items = hourly_items(billing_rows(session, since_us, until_us), prices, since_us, until_us)
            _write_items(session, items, now_us)
            _charge_accounts(session, amounts_by_account(items))
            _advance_cursor(session, until_us)
    except IntegrityError:
        if not _closed_through(ctx, until_us):
            raise
        return LedgerRun(since_us=until_us, until_us=until_us)  # another replica closed them first
    return LedgerRun(since_us=since_us, until_us=until_us, items=tuple(items))


def _closed_through(ctx: ControllerContext, until_us: int) -> bool:
    with ctx.db.read() as session:
        cursor = session.get(BillingCursor, CURSOR_ID)
    return cursor is not None and cursor.billed_through_us >= until_us


def _billed_through(session: Session) -> int | None:
    """The cursor (locked for this transaction), created when missing; None while the log is empty."""
    cursor = session.exec(select(BillingCursor).where(BillingCursor.id == CURSOR_ID).with_for_update()).first()
    if cursor is not None:
        return cursor.billed_through_us
    first_us = _first_transition_us(session)
    if first_us is None:
        return None
    session.add(BillingCursor(id=CURSOR_ID, billed_through_us=hour_floor(first_us)))
    session.flush()
    return hour_floor(first_us)


def _first_transition_us(session: Session) -> int | None:
    return session.exec(select(func.min(Transition.at_us))).one()


def billing_rows(
    session: Session, since_us: int, until_us: int, account_id: str | None = None
) -> list[Transition]:
    """The rows billing needs for ``[since_us, until_us)``.

    Those inside the range, plus each instance's last row before it when that row left the
    instance in a billed status (the status it carried into the range).
    """
    in_range = select(Transition).where(Transition.at_us >= since_us, Transition.at_us < until_us)
    if account_id is not None:
        in_range = in_range.where(Transition.account_id == account_id)
    in_range = in_range.order_by(Transition.instance_id, Transition.at_us, Transition.id)
    return [*_billed_at_start(session, since_us, account_id), *session.exec(in_range).all()]


def _billed_at_start(session: Session, since_us: int, account_id: str | None) -> list[Transition]:
    latest_first = (Transition.at_us.desc(), Transition.id.desc())
    ranked = select(
        Transition.id,
        func.row_number().over(partition_by=Transition.instance_id, order_by=latest_first).label("rank"),
    ).where(Transition.at_us < since_us)
    if account_id is not None:
        ranked = ranked.where(Transition.account_id == account_id)
    last = ranked.subquery()
    query = (
        select(Transition)
        .join(last, last.c.id == Transition.id)
        .where(last.c.rank == 1, Transition.to_status.in_([status.value for status in BILLABLE]))
    )
    return list(session.exec(query).all())


def _write_items(session: Session, items: list[HourlyItem], now_us: int) -> None:
    session.add_all(
        BillItem(
            account_id=item.account_id,
            instance_id=item.instance_id,
            instance_type=item.instance_type,
            hour_start_us=item.hour_start_us,
            billed_us=item.billed_us,
            amount_micro=item.amount_micro,
            created_us=now_us,
        )
        for item in items
    )
    session.flush()


def _charge_accounts(session: Session, amounts: dict[str, int]) -> None:
    for account_id, amount in sorted(amounts.items()):  # one lock order for every writer
        session.execute(
            update(Account)
            .where(Account.id == account_id)
            .values(balance_micro=Account.balance_micro - amount)
            .execution_options(synchronize_session=False)
        )


def _advance_cursor(session: Session, until_us: int) -> None:
    session.execute(
        update(BillingCursor).where(BillingCursor.id == CURSOR_ID).values(billed_through_us=until_us)
    )


def bill_items(
    ctx: ControllerContext,
    account_id: str | None = None,
    instance_id: str | None = None,
    since_us: int | None = None,
    until_us: int | None = None,
) -> list[BillItem]:
    """Closed items, oldest hour first; ``since_us``/``until_us`` bound ``hour_start_us`` as ``[since, until)``."""
    query = select(BillItem)
    if account_id is not None:
        query = query.where(BillItem.account_id == account_id)
    if instance_id is not None:
        query = query.where(BillItem.instance_id == instance_id)
    if since_us is not None:
        query = query.where(BillItem.hour_start_us >= since_us)
    if until_us is not None:
        query = query.where(BillItem.hour_start_us < until_us)
    with ctx.db.read() as session:
        return list(session.exec(query.order_by(BillItem.hour_start_us, BillItem.instance_id)).all())


def account_summary(ctx: ControllerContext, account_id: str) -> dict[str, object]:
    """Balance, debt, and what the ledger has charged so far (closed hours only)."""
    with ctx.db.read() as session:
        account = session.get(Account, account_id)
        if account is None:
            raise InvalidParameter(f"No account {account_id!r}.", detail="AccountId")
        charged, count = session.exec(
            select(func.coalesce(func.sum(BillItem.amount_micro), 0), func.count(BillItem.id))
            .where(BillItem.account_id == account_id)
        ).one()
        cursor = session.get(BillingCursor, CURSOR_ID)
    return {
        "account_id": account_id,
        "balance_micro": account.balance_micro,
        "in_debt": account.balance_micro < 0,
        "charged_micro": int(charged),
        "item_count": int(count),
        "billed_through_us": cursor.billed_through_us if cursor else None,
    }


def running_charges(ctx: ControllerContext, account_id: str, now_us: int | None = None) -> RunningCharges:
    """Price the account's time from the ledger's cursor to ``now_us`` (the open hour and any
    complete hour not yet closed). Partial hours are rounded like closed ones, per item."""
    until_us = ctx.clock.now_us() if now_us is None else now_us
    with ctx.db.read() as session:
        cursor = session.get(BillingCursor, CURSOR_ID)
        first_us = cursor.billed_through_us if cursor else _first_transition_us(session)
        if first_us is None or hour_floor(first_us) >= until_us:
            return RunningCharges(account_id=account_id, since_us=until_us, until_us=until_us)
        since_us = hour_floor(first_us)
        rows = billing_rows(session, since_us, until_us, account_id)
    items = hourly_items(rows, price_table(ctx.settings), since_us, until_us)
    return RunningCharges(account_id=account_id, since_us=since_us, until_us=until_us, items=tuple(items))
