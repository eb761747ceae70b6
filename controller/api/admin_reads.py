"""What the admin API shows, read from the database: plain functions, so tests call them without a server."""

from __future__ import annotations

from sqlmodel import select

from controller import ledger
from controller.accounts import list_accounts
from controller.api.admin_models import AccountPublic, BillItemPublic, ClientInstancePublic, NodePublic, TransitionPublic
from controller.clock import to_datetime
from controller.context import ControllerContext
from controller.errors import InstanceNotFound
from controller.money import from_micro
from controller.tables import Account, AgentPresence, ClientInstance, Instance, Node, Slice, Transition

ONLINE, LATE, OFFLINE = "online", "late", "offline"


def iso(us: int) -> str:
    return to_datetime(us).isoformat().replace("+00:00", "Z")


def agent_state(presence: AgentPresence, now_us: int) -> str:
    """online; late (its heartbeat deadline passed, not yet declared lost); offline (declared lost)."""
    if not presence.online:
        return OFFLINE
    return LATE if presence.heartbeat_deadline_us < now_us else ONLINE


def account_public(account: Account) -> AccountPublic:
    return AccountPublic(account_id=account.id, name=account.name, balance=from_micro(account.balance_micro),
                         in_debt=account.balance_micro < 0, real_name_verified=account.real_name_verified,
                         created_at=iso(account.created_us))


def accounts(ctx: ControllerContext) -> list[AccountPublic]:
    return [account_public(a) for a in list_accounts(ctx)]


def nodes(ctx: ControllerContext) -> list[NodePublic]:
    with ctx.db.read() as session:
        rows = session.exec(select(Node).order_by(Node.id)).all()
        slices = session.exec(select(Slice)).all()
    now_us = ctx.clock.now_us()
    return [_node_public(n, [s for s in slices if s.node_id == n.id], now_us) for n in rows]


def client_instances(ctx: ControllerContext, account_id: str | None) -> list[ClientInstancePublic]:
    query = select(ClientInstance).order_by(ClientInstance.id)
    if account_id:
        query = query.where(ClientInstance.account_id == account_id)
    with ctx.db.read() as session:
        rows = session.exec(query).all()
    fields = {"account_id", "region_id", "zone_id", "vpc_id", "vswitch_id", "vcpu", "memory_mib", "online"}
    now_us = ctx.clock.now_us()
    return [ClientInstancePublic(client_instance_id=c.id, last_seen_at=iso(c.last_seen_us), agent=agent_state(c, now_us),
                                 **c.model_dump(include=fields))
            for c in rows]


def transitions(ctx: ControllerContext, instance_id: str) -> list[TransitionPublic]:
    with ctx.db.read() as session:
        if session.get(Instance, instance_id) is None:
            raise InstanceNotFound(f"No instance {instance_id!r}.")
        rows = session.exec(select(Transition).where(Transition.instance_id == instance_id)
                            .order_by(Transition.at_us, Transition.id)).all()
    fields = {"from_status", "to_status", "event", "reason", "request_id"}
    return [TransitionPublic(at=iso(t.at_us), **t.model_dump(include=fields)) for t in rows]


def bill_items(ctx: ControllerContext, account_id: str | None, instance_id: str | None, limit: int) -> list[BillItemPublic]:
    items = ledger.bill_items(ctx, account_id=account_id, instance_id=instance_id)[:limit]
    return [BillItemPublic(account_id=i.account_id, instance_id=i.instance_id, instance_type=i.instance_type,
                           hour_start=iso(i.hour_start_us), billed_seconds=i.billed_us / 1e6,
                           amount=from_micro(i.amount_micro)) for i in items]


def _node_public(node: Node, slices: list[Slice], now_us: int) -> NodePublic:
    free = sum(1 for s in slices if s.instance_id is None and not s.draining)
    return NodePublic(node_id=node.id, region_id=node.region_id, zone_id=node.zone_id, hostname=node.hostname,
                      backend=node.backend, accelerator_model=node.accelerator_model, online=node.online,
                      agent=agent_state(node, now_us),
                      slices_total=len(slices), slices_free=free, last_seen_at=iso(node.last_seen_us))
