"""Fleet and billing figures read from the database at each scrape (two statements, small or indexed).

Instances by status and type (every pair reported, zeros too, so a series never vanishes);
accounts, how many are in debt, the sum of balances and of debts; the amount billed for the last
closed hour and how far billing has closed (alert when it falls behind). No per-account series:
their number is unbounded; the admin API has them. The total ever billed is not here either:
summing every bill item at each scrape does not stay cheap; ``sum_over_time`` of the hourly figure does.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from controller.billing import US_PER_HOUR
from controller.context import ControllerContext
from controller.errors import EaisError
from controller.ledger import CURSOR_ID
from controller.money import CURRENCY, MICRO
from controller.observability.registry import scrape_source
from controller.states import Status
from controller.tables import Account, BillingCursor, BillItem, Instance

log = logging.getLogger("eais.metrics")
LISTED_STATUSES = [s for s in Status if s is not Status.RELEASED]


@scrape_source
def stored_state(ctx: ControllerContext) -> Iterator[Metric]:
    try:
        with ctx.db.read_connection() as conn:
            counts = conn.execute(_INSTANCE_COUNTS).all()
            money = conn.execute(_MONEY).one()
    except (EaisError, SQLAlchemyError) as error:
        log.warning("metrics: cannot read the database: %s", error)
        yield _gauge("eais_database_up", "1 when /metrics could read the database", 0)
        return
    yield _gauge("eais_database_up", "1 when /metrics could read the database", 1)
    yield _instances(ctx, {(status, kind): n for status, kind, n in counts})
    accounts, in_debt, balance_micro, debt_micro, closed_through_us, last_hour_micro = money
    yield _gauge("eais_accounts", "Accounts", accounts)
    yield _gauge("eais_accounts_in_debt", "Accounts whose balance is below zero (they cannot create instances)", in_debt)
    yield _cny("eais_account_balance_cny", "Sum of all account balances", balance_micro)
    yield _cny("eais_account_debt_cny", "Sum of what accounts in debt owe", debt_micro)
    yield _cny("eais_billed_last_closed_hour_cny", "Amount billed for the last closed UTC hour", last_hour_micro)
    if closed_through_us is not None:
        yield _gauge("eais_billing_closed_through_timestamp_seconds",
                     "Billing has closed every hour before this time (Unix seconds)", closed_through_us / 1e6)


_cursor = select(BillingCursor.billed_through_us).where(BillingCursor.id == CURSOR_ID).scalar_subquery()
_INSTANCE_COUNTS = (select(Instance.status, Instance.instance_type, func.count())
                    .where(Instance.status != Status.RELEASED).group_by(Instance.status, Instance.instance_type))
_MONEY = select(
    select(func.count()).select_from(Account).scalar_subquery(),
    select(func.count()).select_from(Account).where(Account.balance_micro < 0).scalar_subquery(),
    select(func.coalesce(func.sum(Account.balance_micro), 0)).scalar_subquery(),
    select(func.coalesce(func.sum(-Account.balance_micro), 0)).where(Account.balance_micro < 0).scalar_subquery(),
    _cursor,
    select(func.coalesce(func.sum(BillItem.amount_micro), 0))
    .where(BillItem.hour_start_us == _cursor - US_PER_HOUR).scalar_subquery(),
)


def _instances(ctx: ControllerContext, counts: dict[tuple[str, str], int]) -> GaugeMetricFamily:
    family = GaugeMetricFamily("eais_instances", "EAIS instances by status and type (Released ones are not counted)",
                               labels=["status", "instance_type"])
    kinds = sorted(set(ctx.settings.instance_types) | {kind for _, kind in counts})
    for status in LISTED_STATUSES:
        for kind in kinds:
            family.add_metric([status.value, kind], counts.get((status.value, kind), 0))
    return family


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _cny(name: str, documentation: str, micro: int) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, f"{documentation}, in CNY", labels=["currency"])
    family.add_metric([CURRENCY], float(micro) / float(MICRO))
    return family
