"""What operators see of the fleet beyond the listings: slices and their use, agents' liveness, the reconciler lease.

Plain functions reading the database, shared by the admin API (``/admin/v1/slices``,
``/admin/v1/reconciler``) and the operator pages of the console.
"""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import select

from controller.api.admin_models import LeasePublic, SlicePublic, SliceUsagePublic
from controller.api.admin_reads import iso
from controller.context import ControllerContext
from controller.leadership import RECONCILER, current_lease
from controller.tables import Instance, Slice, UsageSample

RECENT_USAGE_S = 120  # a usage sample older than this says nothing about the slice now


def slices(ctx: ControllerContext, node_id: str | None = None) -> list[SlicePublic]:
    """Every slice (of one node, or all), with the instance on it and its latest usage sample."""
    query = select(Slice, Instance).outerjoin(Instance, Instance.id == Slice.instance_id).order_by(Slice.id)
    if node_id:
        query = query.where(Slice.node_id == node_id)
    with ctx.db.read() as session:
        rows = session.exec(query).all()
        usage = _latest_usage(session, [s.instance_id for s, _ in rows if s.instance_id], ctx.clock.now_us())
    return [SlicePublic(slice_id=s.id, node_id=s.node_id, instance_type=s.instance_type, gpu_index=s.gpu_index,
                        memory_mib=s.memory_mib, draining=s.draining, instance_id=s.instance_id,
                        instance_status=i.status if i else None, account_id=i.account_id if i else None,
                        client_instance_id=i.client_instance_id if i else None, usage=usage.get(s.instance_id))
            for s, i in rows]


def reconciler_lease(ctx: ControllerContext) -> LeasePublic | None:
    """Who holds the reconciler lease (the leading replica), or None before any replica took it."""
    lease = current_lease(ctx, RECONCILER)
    if lease is None:
        return None
    return LeasePublic(name=lease.name, holder=lease.holder, epoch=lease.epoch, acquired_at=iso(lease.acquired_us),
                       expires_at=iso(lease.expires_us), current=lease.expires_us >= ctx.clock.now_us())


def _latest_usage(session, instance_ids: list[str], now_us: int) -> dict[str, SliceUsagePublic]:
    if not instance_ids:
        return {}
    newest = (select(UsageSample.instance_id, func.max(UsageSample.at_us).label("at_us"))
              .where(UsageSample.instance_id.in_(instance_ids), UsageSample.at_us >= now_us - RECENT_USAGE_S * 1_000_000)
              .group_by(UsageSample.instance_id).subquery())
    samples = session.exec(select(UsageSample).join(
        newest, (newest.c.instance_id == UsageSample.instance_id) & (newest.c.at_us == UsageSample.at_us))).all()
    return {u.instance_id: SliceUsagePublic(at=iso(u.at_us), gpu_core_percent=u.gpu_core_percent,
                                            gpu_memory_percent=u.gpu_memory_percent, memory_used_mib=u.memory_used_mib,
                                            cpu_percent=u.cpu_percent, memory_percent=u.memory_percent)
            for u in samples}
