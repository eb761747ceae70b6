"""What ``eais-controller bill`` and the admin API show: items, balances and the open hour, per account."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from controller import ledger
from controller.accounts import list_accounts
from controller.clock import to_datetime
from controller.context import ControllerContext
from controller.money import from_micro


def _iso(us: int) -> str:
    return to_datetime(us).strftime("%Y-%m-%d %H:%M UTC")


def bill_report(ctx: ControllerContext, *, account_id: str | None = None, instance_id: str | None = None) -> dict:
    """Bill items plus, per account, balance, debt and the not yet closed charges (money as decimal text)."""
    items = ledger.bill_items(ctx, account_id=account_id, instance_id=instance_id)
    accounts = [a for a in list_accounts(ctx) if account_id in (None, a.id)]
    return {
        "Items": [{"AccountId": i.account_id, "InstanceId": i.instance_id, "InstanceType": i.instance_type,
                   "HourStart": _iso(i.hour_start_us), "BilledSeconds": round(i.billed_us / 1e6, 3),
                   "Amount": str(from_micro(i.amount_micro))} for i in items],
        "Accounts": [{"AccountId": a.id, "Name": a.name, "Balance": str(from_micro(a.balance_micro)),
                      "InDebt": a.balance_micro < 0,
                      "OpenCharges": str(from_micro(ledger.running_charges(ctx, a.id).amount_micro))}
                     for a in accounts],
    }


def print_bill_report(report: dict, console: Console) -> None:
    items = Table(title="Bill items (one per instance and clock hour)")
    for column in ("Hour", "Account", "Instance", "Type", "Seconds", "Amount (CNY)"):
        items.add_column(column, justify="right" if column in ("Seconds", "Amount (CNY)") else "left")
    for i in report["Items"]:
        items.add_row(i["HourStart"], i["AccountId"], i["InstanceId"], i["InstanceType"], f"{i['BilledSeconds']:.0f}", i["Amount"])
    console.print(items if report["Items"] else "No closed hours billed yet.")
    accounts = Table(title="Accounts")
    for column in ("Account", "Name", "Balance (CNY)", "In debt", "This hour so far (CNY)"):
        accounts.add_column(column)
    for a in report["Accounts"]:
        accounts.add_row(a["AccountId"], a["Name"], a["Balance"], "yes" if a["InDebt"] else "no", a["OpenCharges"])
    console.print(accounts)
