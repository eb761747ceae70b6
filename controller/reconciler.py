"""The reconciler: gives every stuck instance a defined outcome, and keeps time-driven books.

One pass (``reconcile_once``) does, in order: heartbeat expiry (a lost node's instances become
Unavailable), deadlines of transitional states, closing of complete billing hours, and the
purge of nonces older than any signature window and of usage samples past their retention.
Every change goes through ``controller.lifecycle.apply`` with its reason, so a restart loses
nothing: the next pass finds the same facts in the database and acts on them.

:class:`ReconcilerThread` runs on every replica; only the one holding the reconciler lease
(``controller.leadership``) reconciles, and each of its writes is fenced by its term. A new term
(a start, a takeover, a lease that lapsed while the database was unwritable) first gives every
agent ``agent_absence_s`` to reach this process: until then nothing is declared lost or timed out,
since the time the control plane was away is not time an agent was silent.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from sqlalchemy import select, update

from controller.accounts import forget_nonces_before
from controller.agent_link.heartbeats import expire_heartbeats
from controller.clock import US_PER_S
from controller.context import ControllerContext
from controller.leadership import LeaseLost, Term, fence, hold_lease, replica_name
from controller.ledger import close_hours
from controller.observability.reconciler_lease import LEADING, PASSES
from controller.lifecycle import apply
from controller.states import TIMEOUT_EVENTS, Event, IllegalTransition, Status
from controller.tables import Attachment, Instance
from controller.usage_samples import forget_usage_before

log = logging.getLogger("eais.reconciler")


def deadlines(ctx: ControllerContext) -> dict[Status, tuple[float, Event]]:
    """Each transitional status, with how long it may last and the event that ends it then."""
    return {status: (ctx.settings.lifecycle.deadline_s(status), event) for status, event in TIMEOUT_EVENTS.items()}


@dataclass
class PassReport:
    lost_nodes: list[str] = field(default_factory=list)
    timed_out: list[tuple[str, str]] = field(default_factory=list)  # (instance id, event)
    hours_closed: int = 0
    nonces_forgotten: int = 0
    usage_samples_forgotten: int = 0


def time_out_stuck_instances(ctx: ControllerContext, term: Term | None = None) -> list[tuple[str, str]]:
    now = ctx.clock.now_us()
    outcomes: list[tuple[str, str]] = []
    for status, (limit_s, event) in deadlines(ctx).items():
        cutoff = now - round(limit_s * US_PER_S)
        with ctx.db.read() as session:
            stuck = session.execute(
                select(Instance.id).where(Instance.status == status.value, Instance.status_since_us <= cutoff)
            ).scalars().all()
        for instance_id in stuck:
            if _time_out(ctx, instance_id, status, event, limit_s, now, term):
                outcomes.append((instance_id, event.value))
    return outcomes


def _time_out(
    ctx: ControllerContext, instance_id: str, status: Status, event: Event, limit_s: float, now: int, term: Term | None
) -> bool:
    try:
        with ctx.db.write() as session:
            if term is not None:
                fence(session, term)
            instance = session.get(Instance, instance_id)
            if instance is None or instance.status != status.value:
                return False  # it moved on by itself since we looked
            waited = (now - instance.status_since_us) / US_PER_S
            reason = f"stuck in {status.value} for {waited:.0f}s (deadline {limit_s:g}s)"
            if instance.attachment_id and event in (Event.ATTACH_TIMEOUT, Event.DETACH_TIMEOUT):
                session.execute(update(Attachment).where(Attachment.id == instance.attachment_id)
                                .values(ended_us=now, end_reason=reason))
            apply(session, instance, event, now_us=now, reason=reason)
    except IllegalTransition:
        return False
    log.warning("%s: %s -> %s", instance_id, status.value, reason)
    return True


def reconcile_once(
    ctx: ControllerContext, *, close_billing: bool = True, term: Term | None = None, agents_may_be_lost: bool = True
) -> PassReport:
    """One pass; ``agents_may_be_lost=False`` (early in a term) skips heartbeat expiry and timeouts."""
    report = PassReport()
    if agents_may_be_lost:
        report.lost_nodes = expire_heartbeats(ctx, term)
        report.timed_out = time_out_stuck_instances(ctx, term)
    if close_billing:
        settle_us = round(ctx.settings.lifecycle.billing_settle_s * US_PER_S)
        report.hours_closed = close_hours(ctx, settle_us=settle_us).hours_closed
        ctx.db.refresh_statistics()
    window_us = round(ctx.settings.api.signature_window_s * US_PER_S)
    report.nonces_forgotten = forget_nonces_before(ctx, ctx.clock.now_us() - 2 * window_us)
    retention_us = round(ctx.settings.lifecycle.usage_retention_s * US_PER_S)
    report.usage_samples_forgotten = forget_usage_before(ctx, ctx.clock.now_us() - retention_us)
    return report


class ReconcilerThread(threading.Thread):
    """Every ``reconcile_interval_s``: hold (or wait for) the reconciler lease, and reconcile while it is held."""

    def __init__(self, ctx: ControllerContext, holder: str | None = None) -> None:
        super().__init__(name="eais-reconciler", daemon=True)
        self.ctx = ctx
        self.holder = holder or replica_name()
        self.term: Term | None = None
        self.leader = ""  # who holds the lease, as last seen
        self._term_started = 0.0
        self._stop_event = threading.Event()
        self.passes = 0

    def run(self) -> None:
        while not self._stop_event.wait(self.ctx.settings.lifecycle.reconcile_interval_s):
            self.tick()

    def tick(self) -> PassReport | None:
        """Renew or take the lease; one pass if this replica leads. The pass's report, or None."""
        life = self.ctx.settings.lifecycle
        term = self._renew(life.lease_ttl_s)
        if term is None:
            return None
        billing_every = max(1, round(life.billing_interval_s / max(life.reconcile_interval_s, 0.001)))
        settled = time.monotonic() - self._term_started >= life.agent_absence_s
        try:
            report = reconcile_once(self.ctx, close_billing=self.passes % billing_every == 0, term=term,
                                    agents_may_be_lost=settled)
            PASSES.inc()
            return report
        except LeaseLost as lost:
            log.warning("stopped reconciling: %s", lost)
            self.term = None
        except Exception:  # noqa: BLE001 - a failed pass is retried on the next tick
            log.exception("reconcile pass failed; retrying next tick")
        finally:
            self.passes += 1
        return None

    def _renew(self, ttl_s: float) -> Term | None:
        try:
            lease = hold_lease(self.ctx, self.holder, ttl_s)
        except Exception as error:  # noqa: BLE001 - no pass without a renewed lease; the next tick retries
            log.warning("cannot renew the reconciler lease (%s); not reconciling until it is renewed", error)
            LEADING.set(0)
            return None
        self.leader = lease.holder
        LEADING.set(1 if lease.mine else 0)
        if not lease.mine:
            if self.term is not None:
                log.warning("replica %s holds the reconciler lease now; this one stops reconciling", lease.holder)
            self.term = None
            return None
        if self.term is None or self.term.epoch != lease.epoch:
            self.term, self._term_started = Term(lease.name, lease.holder, lease.epoch), time.monotonic()
            log.info("this replica (%s) reconciles now (lease epoch %d); agents have %.0fs to report before any "
                     "is declared lost", self.holder, lease.epoch, self.ctx.settings.lifecycle.agent_absence_s)
        return self.term

    def stop(self) -> None:
        self._stop_event.set()
