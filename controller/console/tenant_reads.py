"""What a tenant may read beyond the EAIS actions: their VMs, an instance's history, their bill.

Plain functions over the database, scoped to one account: another account's rows are never read
(an instance of another account is reported exactly like a missing one, as the API does). The
console pages and the signed tenant routes (``/tenant/v1``) both call them.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import select

from controller import ledger
from controller.accounts import existing_account
from controller.api.admin_reads import agent_state
from controller.billing import HourlyItem
from controller.context import ControllerContext
from controller.ownership import visible_instance
from controller.tables import ClientInstance, Instance, Transition

MAX_BILL_ITEMS = 2000  # closed hours shown, newest first: about 83 instance-days


@dataclass(frozen=True)
class ClientVm:
    """One of the account's client instances (a VM its agent registered) as the console offers it for attaching."""

    id: str
    name: str
    zone_id: str
    vpc_id: str
    vswitch_id: str
    vcpu: int
    memory_mib: int
    agent: str  # online, late or offline
    holds: str  # the instance bound to it, "" when none


@dataclass(frozen=True)
class HistoryRow:
    at_us: int
    from_status: str | None
    to_status: str
    event: str
    reason: str
    request_id: str | None


@dataclass(frozen=True)
class TenantBill:
    account_id: str
    account_name: str
    balance_micro: int
    min_balance_to_create_micro: int
    closed: list[HourlyItem]  # newest hour first
    running: list[HourlyItem]  # not yet closed by the ledger: the running hour (and any hour still settling)

    @property
    def running_micro(self) -> int:
        return sum(item.amount_micro for item in self.running)

    @property
    def in_debt(self) -> bool:
        return self.balance_micro < 0


def client_vms(ctx: ControllerContext, account_id: str, region_id: str) -> list[ClientVm]:
    query = (select(ClientInstance, Instance.id).outerjoin(Instance, Instance.client_instance_id == ClientInstance.id)
             .where(ClientInstance.account_id == account_id, ClientInstance.region_id == region_id)
             .order_by(ClientInstance.id))
    with ctx.db.read() as session:
        rows = session.exec(query).all()
    now_us = ctx.clock.now_us()
    return [ClientVm(vm.id, vm.name, vm.zone_id, vm.vpc_id, vm.vswitch_id, vm.vcpu, vm.memory_mib,
                     agent_state(vm, now_us), holds or "") for vm, holds in rows]


def instance_history(ctx: ControllerContext, account_id: str, instance_id: str) -> list[HistoryRow]:
    """Every status change of the caller's instance, oldest first (InvalidParameter.InstanceId.NotFound otherwise)."""
    with ctx.db.read() as session:
        visible_instance(session, account_id, None, instance_id)
        rows = session.exec(select(Transition).where(Transition.instance_id == instance_id)
                            .order_by(Transition.at_us, Transition.id)).all()
    return [HistoryRow(t.at_us, t.from_status, t.to_status, t.event, t.reason, t.request_id) for t in rows]


def tenant_bill(ctx: ControllerContext, account_id: str) -> TenantBill:
    account = existing_account(ctx, account_id)
    closed = ledger.bill_items(ctx, account_id=account_id)[-MAX_BILL_ITEMS:]
    running = ledger.running_charges(ctx, account_id)
    minimum = ctx.settings.accounts.min_balance_to_create
    return TenantBill(account_id, account.name, account.balance_micro, int(minimum * 1_000_000),
                      closed=[_item(i) for i in reversed(closed)],
                      running=sorted(running.items, key=lambda i: (-i.hour_start_us, i.instance_id)))


def default_region(ctx: ControllerContext, account_id: str) -> str:
    """Where the account has its newest instance, else its first VM, else the first configured region."""
    with ctx.db.read() as session:
        newest = session.exec(select(Instance.region_id).where(Instance.account_id == account_id)
                              .order_by(Instance.created_us.desc()).limit(1)).first()
        vm = session.exec(select(ClientInstance.region_id).where(ClientInstance.account_id == account_id)
                          .order_by(ClientInstance.registered_us).limit(1)).first()
    return newest or vm or ctx.settings.regions[0].region_id


def _item(row) -> HourlyItem:
    return HourlyItem(row.account_id, row.instance_id, row.instance_type, row.hour_start_us, row.billed_us,
                      row.amount_micro)
