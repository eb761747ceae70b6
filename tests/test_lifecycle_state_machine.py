"""The lifecycle as a state machine: random API calls, agent reports and clock steps on a real SQLite file.

Each run opens a fresh controller (SQLite in a temporary directory, a FakeClock, short deadlines,
no billing settle time) with two nodes (three slices) and three VMs, maybe starts from up to three
instances already brought to some status, then draws steps: CreateEai (sometimes repeating a
ClientToken), AttachEai, DetachEai, DeleteEai with and without Force, DeleteEaiAll; node and VM
reports through the real actual-state functions (progress, stale, failed, refused, made for an
earlier picture of the slice: idle, or the instance it served before); agents falling
silent and coming back (re-register or heartbeat); clock steps from none to two hours, some landing
exactly on the hour; reconciler passes or their parts (heartbeat expiry, timeouts, close_hours).

The machine keeps its own model, written from product-rules.md §3 and the module docstrings, not
from ``controller.states``: every rule says which status it expects each instance to move to, and
every clock step adds the elapsed time to each instance the model holds in a billed status.
After every step it checks that

1. billing over the log (``controller.billing``) and the ledger's closed items (and the running,
   unclosed ones) equal the model's billed time, per instance and per UTC hour, never negative;
2. closed items sum to the model's time up to the ledger's cursor, and their amounts to the
   account's balance decrease;
3. each instance's log is a chain through ``TRANSITIONS`` ending at its status, and is exactly
   the sequence of (from, event, to) the model expected;
4. binding is one-to-one with a live attachment, no slice holds two instances, and the model's
   statuses, slices, bindings and agent liveness match the database.

Refused calls must raise the documented error and leave the log as it was.
"""

from __future__ import annotations

import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from sqlalchemy import func
from sqlmodel import select

from controller.accounts import create_account
from controller.agent_link import apply_node_report, apply_vm_report, expire_heartbeats
from controller.agent_link.actual_state import ChannelReport, ChannelState, SlicePhase, SliceReport, WorkerState
from controller.agent_link.heartbeat_book import HeartbeatBook
from controller.agent_link.registration import register_node, register_vm
from controller.agent_link.registration_rules import NodeInfo, SliceOfferInfo, VmInfo
from controller.agent_link.sessions import AgentIdentity, AgentKind, current_session_hashes
from controller.billing import billed_intervals, hourly_items, total_billed_us
from controller.binding import attach_instance, detach_instance
from controller.clock import US_PER_S, FakeClock
from controller.context import ControllerContext
from controller.errors import (
    ClientAlreadyBound,
    ClientForbidden,
    ClientNotFound,
    EaisError,
    IdempotentParameterMismatch,
    InstanceNotFound,
    InvalidEaiStatus,
    InvalidParameter,
    NoPermission,
    NoResources,
)
from controller.ledger import account_summary, bill_items, close_hours, price_table, running_charges
from controller.provisioning import CreateRequest, create_instance
from controller.reconciler import reconcile_once, time_out_stuck_instances
from controller.release import delete_instance, delete_instance_and_client
from controller.settings import load_settings
from controller.states import TRANSITIONS, Event, Status
from controller.tables import Attachment, ClientInstance, Instance, Node, Slice, Transition

P, S, A, AT, U, D, X, R = (
    Status.PENDING, Status.STARTING, Status.AVAILABLE, Status.ATTACHING,
    Status.IN_USE, Status.DETACHING, Status.UNAVAILABLE, Status.RELEASED,
)
# Written out from product-rules.md §3 rather than imported, so the model does not share the code's table.
BILLED = frozenset({A, AT, U, D})
HOLDS_CLIENT = frozenset({AT, U, D})
LOST_WITH_NODE = frozenset({S, A, AT, U, D})

REGION, ZONE, XLARGE = "cn-hangzhou", "cn-hangzhou-a", "eais.ei-a6.xlarge"
NODES = {"node-a": ("0", "1"), "node-b": ("0",)}  # three slices: capacity runs out
VMS = ("i-vm-a", "i-vm-b", "i-vm-c")
US_PER_HOUR = 3600 * US_PER_S
INTERVAL_S, GRACE_S = 60, 30
DEADLINES_S = {P: 120, S: 300, AT: 120, D: 120}
LIFECYCLE = {
    "pending_deadline_s": DEADLINES_S[P], "starting_deadline_s": DEADLINES_S[S],
    "attaching_deadline_s": DEADLINES_S[AT], "detaching_deadline_s": DEADLINES_S[D],
    "heartbeat_interval_s": INTERVAL_S, "heartbeat_jitter_s": 0, "heartbeat_grace_s": GRACE_S,
    "billing_settle_s": 0,
}
START_US = FakeClock().now_us() + 17 * 60 * US_PER_S + 123_000  # off the hour; millisecond steps can land on one
BALANCE_MICRO = 100_000 * 1_000_000


def node_info(node_id: str) -> NodeInfo:
    offers = tuple(SliceOfferInfo(local_id, XLARGE, 0, 8192) for local_id in NODES[node_id])
    return NodeInfo(node_id, f"{node_id}.test", REGION, ZONE, f"{node_id}.test:7000", "simulated",
                    "simulated (no accelerator)", "2.16.1", offers)


def vm_info(vm_id: str) -> VmInfo:
    return VmInfo(vm_id, REGION, ZONE, "vpc-test", "vsw-test", "ECS", vm_id, "ecs.g7.large", 2, 8192, "")


def open_context(root: Path) -> tuple[ControllerContext, FakeClock]:
    settings = load_settings(db_url=f"sqlite:///{root}/controller.db", state_dir=root / "state", lifecycle=LIFECYCLE)
    clock = FakeClock(START_US)
    return ControllerContext.open(settings, clock), clock


def amount_micro(billed_us: int, price_micro_per_hour: int) -> int:
    """billed × price / 1 h, rounded half up once per hourly item (billing.py's documented rule)."""
    return (2 * billed_us * price_micro_per_hour + US_PER_HOUR) // (2 * US_PER_HOUR)


def hour_of(us: int) -> int:
    return us - us % US_PER_HOUR


# What a node agent can say about one slice; the attachment and the instance (the one its desired
# state names, empty while the slice is idle or released) are filled in per report.
NODE_SAYS: dict[str, Callable[[str, str, str], SliceReport]] = {
    "preparing": lambda s, a, i: SliceReport(s, SlicePhase.PREPARING, WorkerState.NONE, instance_id=i),
    "ready_free": lambda s, a, i: SliceReport(s, SlicePhase.READY, WorkerState.NONE, memory_free=True, instance_id=i),
    "ready_memory_busy": lambda s, a, i: SliceReport(s, SlicePhase.READY, WorkerState.NONE, instance_id=i),
    "worker_starting": lambda s, a, i: SliceReport(s, SlicePhase.READY, WorkerState.STARTING, attachment_id=a,
                                                   instance_id=i),
    "worker_ready": lambda s, a, i: SliceReport(s, SlicePhase.READY, WorkerState.READY, attachment_id=a,
                                                instance_id=i),
    "worker_failed": lambda s, a, i: SliceReport(s, SlicePhase.READY, WorkerState.FAILED, attachment_id=a,
                                                 instance_id=i, failure_reason="worker exited"),
    "worker_stopping": lambda s, a, i: SliceReport(s, SlicePhase.READY, WorkerState.STOPPING, attachment_id=a,
                                                   instance_id=i),
}
CHANNELS = (ChannelState.PROVEN, ChannelState.FAILED, ChannelState.CLOSED)

# Clock steps in µs, or to an edge: the next UTC hour, or the next moment something becomes due
# (a transitional deadline, a silent agent's deadline + grace), or one microsecond before that.
TO_NEXT_HOUR, TO_NEXT_DUE, JUST_BEFORE_NEXT_DUE = "to the next hour", "to the next due", "just before the next due"
CLOCK_STEPS = st.one_of(
    st.sampled_from([0, TO_NEXT_HOUR, TO_NEXT_DUE, JUST_BEFORE_NEXT_DUE]),
    st.integers(1, 59).map(lambda s: s * US_PER_S),
    st.integers(60, 900).map(lambda s: s * US_PER_S),
    st.integers(900, 7200).map(lambda s: s * US_PER_S),
    st.integers(1, 5_000_000).map(lambda ms: ms * 1000),
)
PICK = st.integers(0, 63)
RECONCILER_PARTS = ["nothing", "whole pass", "heartbeat expiry", "timeouts", "ledger"]
FITTING = st.sampled_from([True, True, True, False])  # mostly an instance the call fits


@dataclass
class ModelInstance:
    id: str
    slice_id: str | None
    status: Status = P
    since_us: int = 0
    client: str | None = None
    attachment: str | None = None
    node_ready: bool = False
    vm_ready: bool = False
    past_attachments: list[str] = field(default_factory=list)
    log: list[tuple[Status | None, Event, Status]] = field(default_factory=list)
    billed_by_hour: dict[int, int] = field(default_factory=dict)

    @property
    def node_id(self) -> str | None:
        return self.slice_id.split("/", 1)[0] if self.slice_id else None


@dataclass
class ModelAgent:
    deadline_us: int
    online: bool = True
    silent: bool = False  # stopped talking: no heartbeats, no reports


@dataclass
class ModelSlice:
    holder: str | None = None
    draining: bool = False
    released: str | None = None  # the instance it held last, for reports made before the node saw the release


def pick(items: list, index: int):  # noqa: ANN201 - one of ``items``, chosen by a drawn integer
    return items[index % len(items)]


class LifecycleMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.root = Path(tempfile.mkdtemp(prefix="eais-lifecycle-"))
        self.ctx, self.clock = open_context(self.root)
        self.heartbeats = HeartbeatBook(self.ctx)
        self.account = create_account(self.ctx, "alice", balance=Decimal(BALANCE_MICRO) / 1_000_000,
                                      real_name_verified=True).account_id
        for node_id in NODES:
            register_node(self.ctx, node_info(node_id))
        for vm_id in VMS:
            register_vm(self.ctx, vm_info(vm_id), self.account)
        self.price_micro = int(price_table(self.ctx.settings)[XLARGE] * 1_000_000)
        # The model.
        self.now = START_US
        self.nodes = {n: ModelAgent(self.now + INTERVAL_S * US_PER_S) for n in NODES}
        self.vms = {v: ModelAgent(self.now + INTERVAL_S * US_PER_S) for v in VMS}
        self.slices = {f"{n}/{local}": ModelSlice() for n, ids in NODES.items() for local in ids}
        self.instances: dict[str, ModelInstance] = {}
        # Ids are random: the model orders instances and attachments by creation, never by id, so
        # that Hypothesis replays a run exactly.
        self.attachments: dict[str, tuple[str, str]] = {}  # id -> (instance, VM)
        self.tokens: dict[str, tuple[str, str]] = {}  # ClientToken -> (name, instance)
        self.first_us: int | None = None
        self.cursor_us: int | None = None

    def teardown(self) -> None:
        self.ctx.db.dispose()
        shutil.rmtree(self.root, ignore_errors=True)

    # ---- the model's bookkeeping ------------------------------------------------------------

    def _move(self, inst: ModelInstance, event: Event, to: Status) -> None:
        inst.log.append((inst.status if inst.log else None, event, to))
        inst.status, inst.since_us = to, self.now
        if self.first_us is None:
            self.first_us = self.now
        if to not in HOLDS_CLIENT:
            inst.client = inst.attachment = None
            inst.node_ready = inst.vm_ready = False
        if to is R:
            self.slices[inst.slice_id] = ModelSlice(holder=None, draining=True, released=inst.id)
            inst.slice_id = None

    def _bill(self, start_us: int, end_us: int) -> None:
        for inst in self.instances.values():
            if inst.status not in BILLED:
                continue
            cursor = start_us
            while cursor < end_us:
                piece_end = min(end_us, hour_of(cursor) + US_PER_HOUR)
                hour = hour_of(cursor)
                inst.billed_by_hour[hour] = inst.billed_by_hour.get(hour, 0) + piece_end - cursor
                cursor = piece_end

    def _live(self) -> list[ModelInstance]:
        return [i for i in self.instances.values() if i.status is not R]

    def _free_slices(self) -> list[str]:
        return sorted(s for s, m in self.slices.items()
                      if m.holder is None and not m.draining and self.nodes[s.split("/")[0]].online)

    def _speaking_slices(self) -> list[str]:
        return sorted(s for s in self.slices if not self.nodes[s.split("/")[0]].silent)

    def _log_length(self) -> int:
        with self.ctx.db.read() as session:
            return session.exec(select(func.count(Transition.id))).one()

    def _refused(self, error: type[EaisError], call: Callable[[], object]) -> None:
        before = self._log_length()
        with pytest.raises(EaisError) as refusal:
            call()
        assert type(refusal.value) is error, f"expected {error.__name__}, got {refusal.value!r}"
        assert refusal.value.code  # a documented EAIS code (the error table has an entry)
        assert self._log_length() == before, f"a refused call ({error.__name__}) changed the log"

    # ---- API calls ---------------------------------------------------------------------------

    def _target(self, index: int, fitting: bool, fits: Callable[[ModelInstance], bool]) -> ModelInstance:
        """An instance for a call: one the call fits when asked for and there is one, else any."""
        candidates = [i for i in self.instances.values() if fits(i)] if fitting else []
        return pick(candidates or list(self.instances.values()), index)

    @rule(token=st.sampled_from([None, None, "tok-1", "tok-2"]), name=st.sampled_from(["", "trainer"]))
    def create(self, token: str | None, name: str) -> None:
        request = CreateRequest(region_id=REGION, instance_type=XLARGE, name=name, client_token=token)
        call = partial(create_instance, self.ctx, self.account, request, request_id="req-create")
        if token in self.tokens:
            known_name, known_id = self.tokens[token]
            if known_name != name:
                self._refused(IdempotentParameterMismatch, call)
            else:
                before = self._log_length()
                assert call() == known_id
                assert self._log_length() == before
            return
        free = self._free_slices()
        if not free:
            self._refused(NoResources, call)
            return
        instance_id = call()
        assert instance_id not in self.instances
        inst = self.instances[instance_id] = ModelInstance(instance_id, free[0])
        self.slices[free[0]].holder = instance_id
        self._move(inst, Event.CREATE, P)
        if token is not None:
            self.tokens[token] = (name, instance_id)

    @precondition(lambda self: self.instances)
    @rule(index=PICK, fitting=FITTING, vm_id=st.sampled_from(VMS))
    def attach(self, index: int, fitting: bool, vm_id: str) -> None:
        self._attach(self._target(index, fitting, lambda i: i.status is A), vm_id)

    def _attach(self, inst: ModelInstance, vm_id: str) -> None:
        call = partial(attach_instance, self.ctx, self.account, REGION, inst.id, vm_id, request_id="req-attach")
        if inst.status is R:
            self._refused(InstanceNotFound, call)
        elif not self.vms[vm_id].online:
            self._refused(ClientNotFound, call)
        elif inst.status is not A:
            self._refused(InvalidEaiStatus, call)
        elif any(other.client == vm_id for other in self.instances.values()):
            self._refused(ClientAlreadyBound, call)
        else:
            call()
            with self.ctx.db.read() as session:
                attachment_id = session.get(Instance, inst.id).attachment_id
            self._move(inst, Event.ATTACH, AT)
            inst.client, inst.attachment = vm_id, attachment_id
            inst.past_attachments.append(attachment_id)
            self.attachments[attachment_id] = (inst.id, vm_id)

    @precondition(lambda self: self.instances)
    @rule(index=PICK, fitting=FITTING)
    def detach(self, index: int, fitting: bool) -> None:
        self._detach(self._target(index, fitting, lambda i: i.status is U))

    def _detach(self, inst: ModelInstance) -> None:
        call = partial(detach_instance, self.ctx, self.account, REGION, inst.id, request_id="req-detach")
        if inst.status is R:
            self._refused(InstanceNotFound, call)
        elif inst.status is not U:
            self._refused(InvalidEaiStatus, call)
        else:
            call()
            self._move(inst, Event.DETACH, D)

    @precondition(lambda self: self.instances)
    @rule(index=PICK, fitting=FITTING, how=st.sampled_from(["DeleteEai", "DeleteEai Force", "DeleteEaiAll", *VMS]))
    def delete(self, index: int, fitting: bool, how: str) -> None:
        """DeleteEai with or without Force, or DeleteEaiAll without or with a ClientInstanceId."""
        inst = self._target(index, fitting, lambda i: i.status is not R)
        if how in ("DeleteEai", "DeleteEai Force"):
            force = how.endswith("Force")
            call = partial(delete_instance, self.ctx, self.account, REGION, inst.id, force=force, request_id="req-del")
            allowed = inst.status in (A, U, X) or (force and inst.status in (P, S, AT, D))
            refusal: type[EaisError] = InvalidEaiStatus
        else:
            client_id = None if how == "DeleteEaiAll" else how
            call = partial(delete_instance_and_client, self.ctx, self.account, REGION, inst.id, client_id,
                           request_id="req-delall")
            allowed, refusal = not client_id or inst.client in (None, client_id), ClientForbidden
        if inst.status is R:
            self._refused(InstanceNotFound, call)
        elif not allowed:
            self._refused(refusal, call)
        else:
            call()
            self._move(inst, Event.RELEASE, R)

    # ---- agent reports -----------------------------------------------------------------------

    def _node_report(self, slice_id: str, says: str, attachment_id: str, instance_id: str | None = None) -> None:
        """``instance_id`` None: the one the slice's desired state names now (its holder, or none)."""
        named = (self.slices[slice_id].holder or "") if instance_id is None else instance_id
        report = NODE_SAYS[says](slice_id, attachment_id, named)
        apply_node_report(self.ctx, slice_id.split("/")[0], [report])
        self._model_node_report(slice_id, report)

    def _earlier_picture(self, slice_id: str) -> str:
        """The instance a report made before the node's last desired state names: none for a held slice (made while
        idle), the released instance for a free or draining one (made while it still served that instance)."""
        held = self.slices[slice_id]
        return "" if held.holder else (held.released or "")

    def _model_node_report(self, slice_id: str, report: SliceReport) -> None:
        held = self.slices[slice_id]
        free = report.worker is WorkerState.NONE and report.memory_free
        inst = self.instances[held.holder] if held.holder else None
        if held.draining or inst is None:
            if free and held.draining and not report.instance_id:
                held.draining = False  # the node freed the released slice's memory: capacity again
            return
        if report.instance_id != inst.id:
            return  # made for an earlier picture of the slice (idle, or another instance): stale
        ready = report.phase is SlicePhase.READY
        if inst.status is P and report.phase is SlicePhase.PREPARING:
            self._move(inst, Event.SLICE_PREPARING, S)
        elif inst.status in (P, S) and ready:
            self._move(inst, Event.SLICE_READY, A)
        elif inst.status is X and ready and free and self.nodes[inst.node_id].online:
            self._move(inst, Event.NODE_RECOVERED, A)
        elif inst.status is AT and report.worker in (WorkerState.READY, WorkerState.FAILED):
            if report.attachment_id != inst.attachment:
                return  # stale
            if report.worker is WorkerState.FAILED:
                self._move(inst, Event.ATTACH_FAILED, A)
                return
            inst.node_ready = True
            if inst.vm_ready:
                self._move(inst, Event.ATTACH_READY, U)
        elif inst.status is D and free:
            inst.node_ready = False
            if not inst.vm_ready or not self.vms[inst.client].online:
                self._move(inst, Event.DETACH_DONE, A)

    def _vm_report(self, vm_id: str, attachment_id: str, channel: ChannelState) -> None:
        instance_id, owner = self.attachments[attachment_id]
        call = partial(apply_vm_report, self.ctx, vm_id, ChannelReport(attachment_id, channel, "reset"))
        if owner != vm_id:
            self._refused(NoPermission, call)
            return
        call()
        inst = self.instances[instance_id]
        if inst.attachment != attachment_id:
            return  # stale: the binding it names has ended
        if channel is ChannelState.FAILED and inst.status is AT:
            self._move(inst, Event.ATTACH_FAILED, A)
        elif channel is ChannelState.PROVEN and inst.status is AT:
            inst.vm_ready = True
            if inst.node_ready:
                self._move(inst, Event.ATTACH_READY, U)
        elif channel is ChannelState.CLOSED and inst.status is D:
            inst.vm_ready = False
            if not inst.node_ready:
                self._move(inst, Event.DETACH_DONE, A)

    def _node_progress(self, slice_id: str) -> str | None:
        """What a healthy node would say next about this slice, when that moves something."""
        held = self.slices[slice_id]
        inst = self.instances[held.holder] if held.holder else None
        if self.nodes[slice_id.split("/")[0]].silent or (inst is None and not held.draining):
            return None
        if inst is None:
            return "ready_free"
        if inst.status is AT and inst.node_ready:
            return None
        return {P: "preparing", S: "ready_free", AT: "worker_ready", D: "ready_free", X: "ready_free"}.get(inst.status)

    def _vm_progress(self, attachment_id: str) -> ChannelState | None:
        """What a healthy VM would say next about this attachment, when that moves something."""
        inst = self.instances[self.attachments[attachment_id][0]]
        if inst.attachment != attachment_id or self.vms[inst.client].silent:
            return None
        if inst.status is AT and not inst.vm_ready:
            return ChannelState.PROVEN
        return ChannelState.CLOSED if inst.status is D and inst.vm_ready else None

    def _progress(self) -> list[tuple[str, str]]:
        return [("node", s) for s in sorted(self.slices) if self._node_progress(s)] + [
            ("vm", a) for a in self.attachments if self._vm_progress(a)]

    def _report_progress(self, side: str, subject: str, skip_starting: bool = False) -> None:
        if side == "vm":
            channel = self._vm_progress(subject)
            if channel:
                self._vm_report(self.attachments[subject][1], subject, channel)
            return
        says = self._node_progress(subject)
        if says == "preparing" and skip_starting:
            says = "ready_free"  # a node that prepares instantly skips Starting
        if says:
            self._node_report(subject, says, self._current_attachment(subject))

    def _current_attachment(self, slice_id: str) -> str:
        holder = self.slices[slice_id].holder
        return (self.instances[holder].attachment or "") if holder else ""

    @precondition(lambda self: self._progress())
    @rule(index=PICK, everyone=st.booleans(), skip_starting=st.booleans())
    def agents_report_progress(self, index: int, everyone: bool, skip_starting: bool) -> None:
        """What healthy agents say next: one report that moves something, or every agent in turn."""
        for side, subject in self._progress() if everyone else [pick(self._progress(), index)]:
            self._report_progress(side, subject, skip_starting)

    @precondition(lambda self: any(not self.nodes[n].silent for n in NODES))
    @rule(index=PICK, says=st.sampled_from([*sorted(NODE_SAYS), "whole inventory free", "another node's slice"]),
          stale=st.booleans(), earlier_picture=st.sampled_from([False, False, True]))
    def node_reports(self, index: int, says: str, stale: bool, earlier_picture: bool) -> None:
        """Anything a node may say about one of its slices, all of them, or (refused) another node's; maybe a
        report made for an earlier picture of the slice that arrives late (the create/release races)."""
        slice_id = pick(self._speaking_slices(), index)
        node_id = slice_id.split("/")[0]
        if says == "another node's slice":
            reporter = next(n for n in sorted(NODES) if n != node_id)
            report = NODE_SAYS["ready_free"](slice_id, "", "")
            self._refused(NoPermission, lambda: apply_node_report(self.ctx, reporter, [report]))
            return
        if says == "whole inventory free":
            slice_ids = [s for s in sorted(self.slices) if s.startswith(f"{node_id}/")]
            reports = [NODE_SAYS["ready_free"](s, "", self.slices[s].holder or "") for s in slice_ids]
            apply_node_report(self.ctx, node_id, reports)
            for one_slice, report in zip(slice_ids, reports, strict=True):
                self._model_node_report(one_slice, report)
            return
        attachment_id = self._current_attachment(slice_id)
        if stale:  # an earlier attachment of this slice's instance, or none at all
            holder = self.slices[slice_id].holder
            old = [a for a in (self.instances[holder].past_attachments if holder else []) if a != attachment_id]
            attachment_id = old[-1] if old else ""
        self._node_report(slice_id, says, attachment_id, self._earlier_picture(slice_id) if earlier_picture else None)

    @precondition(lambda self: self.attachments and any(not v.silent for v in self.vms.values()))
    @rule(index=PICK, vm_index=PICK, channel=st.sampled_from(CHANNELS),
          about=st.sampled_from(["own", "own", "own", "another VM's", "no attachment"]))
    def vm_reports(self, index: int, vm_index: int, channel: ChannelState, about: str) -> None:
        """A channel report about an attachment: its own (maybe ended), another VM's or none (refused)."""
        speaking = [v for v, m in self.vms.items() if not m.silent]
        if about == "no attachment":
            vm_id = pick(speaking, vm_index)
            self._refused(InvalidParameter, lambda: apply_vm_report(self.ctx, vm_id, ChannelReport("", channel)))
            return
        attachment_id = pick(list(self.attachments), index)
        owner = self.attachments[attachment_id][1]
        vm_id = owner if about == "own" and owner in speaking else pick(speaking, vm_index)
        self._vm_report(vm_id, attachment_id, channel)

    # ---- agents fall silent and come back ---------------------------------------------------

    def _agent(self, agent_id: str) -> tuple[AgentKind, ModelAgent]:
        return (AgentKind.NODE, self.nodes[agent_id]) if agent_id in NODES else (AgentKind.VM, self.vms[agent_id])

    @rule(index=PICK, whose=st.sampled_from(["an instance's node", "a bound VM", "any agent"]))
    def agent_falls_silent(self, index: int, whose: str) -> None:
        """It stops beating and reporting; the first expiry after its deadline and grace notices."""
        candidates = {
            "an instance's node": sorted({i.node_id for i in self._live()}),
            "a bound VM": sorted({i.client for i in self._live() if i.client}),
        }.get(whose) or [*sorted(NODES), *VMS]
        self._agent(pick(candidates, index))[1].silent = True

    @precondition(lambda self: any(m.online and not m.silent for m in self.nodes.values()))
    @rule(index=PICK)
    def a_node_is_lost(self, index: int) -> None:
        """A node (preferably one serving a bound instance) falls silent, and the first heartbeat
        expiry after its deadline and grace period runs."""
        talking = [n for n, m in self.nodes.items() if m.online and not m.silent]
        serving = sorted({i.node_id for i in self._live() if i.client} & set(talking))
        node_id = pick(serving or talking, index)
        model = self.nodes[node_id]
        model.silent = True
        self.time_passes(max(0, model.deadline_us + GRACE_S * US_PER_S + 1 - self.now), "heartbeat expiry")
        assert not model.online

    @precondition(lambda self: any(m.silent for m in [*self.nodes.values(), *self.vms.values()]))
    @rule(index=PICK, reregister=st.booleans())
    def agent_comes_back(self, index: int, reregister: bool) -> None:
        """A silent agent registers again, or just beats again."""
        agent_id = pick([a for a in [*sorted(NODES), *VMS] if self._agent(a)[1].silent], index)
        kind, model = self._agent(agent_id)
        if reregister and kind is AgentKind.NODE:
            register_node(self.ctx, node_info(agent_id))
        elif reregister:
            register_vm(self.ctx, vm_info(agent_id), self.account)
        else:
            self._beat(kind, agent_id)
        model.online, model.silent, model.deadline_us = True, False, self.now + INTERVAL_S * US_PER_S

    def _beat(self, kind: AgentKind, agent_id: str) -> None:
        """A heartbeat as the agent link takes it: answered into the book, then the book flushed."""
        session_hash = current_session_hashes(self.ctx, [(kind.value, agent_id)])[(kind.value, agent_id)]
        self.heartbeats.beat(AgentIdentity(kind, agent_id), session_hash)
        assert self.heartbeats.flush() == 1

    # ---- time, the reconciler, the ledger ----------------------------------------------------

    def _next_due_us(self) -> int:
        """The next moment a timeout or a heartbeat expiry becomes due (or the next hour, if sooner)."""
        dues = [hour_of(self.now) + US_PER_HOUR]
        dues += [i.since_us + DEADLINES_S[i.status] * US_PER_S for i in self._live() if i.status in DEADLINES_S]
        dues += [m.deadline_us + GRACE_S * US_PER_S + 1  # expiry needs deadline < now - grace
                 for m in [*self.nodes.values(), *self.vms.values()] if m.online and m.silent]
        return min(due for due in dues if due > self.now)

    @rule(step=CLOCK_STEPS, then=st.sampled_from(RECONCILER_PARTS))
    def time_passes(self, step: int | str, then: str) -> None:
        """The clock moves (healthy agents beat once, at the end), then the reconciler may run:
        a whole pass, or one of its parts on its own (close_hours with no settling time)."""
        step_us = {
            TO_NEXT_HOUR: lambda: hour_of(self.now) + US_PER_HOUR - self.now,
            TO_NEXT_DUE: lambda: self._next_due_us() - self.now,
            JUST_BEFORE_NEXT_DUE: lambda: self._next_due_us() - 1 - self.now,
        }.get(step, lambda: step)()
        self._bill(self.now, self.now + step_us)
        self.clock.advance(step_us / US_PER_S)
        self.now += step_us
        assert self.clock.now_us() == self.now
        if step_us:
            for kind, agents in ((AgentKind.NODE, self.nodes), (AgentKind.VM, self.vms)):
                for agent_id, model in agents.items():
                    if not model.silent:
                        self._beat(kind, agent_id)
                        model.online, model.deadline_us = True, self.now + INTERVAL_S * US_PER_S
        run = {"whole pass": reconcile_once, "heartbeat expiry": expire_heartbeats,
               "timeouts": time_out_stuck_instances, "ledger": lambda ctx: close_hours(ctx, settle_us=0)}.get(then)
        if run is not None:
            run(self.ctx)
        if then in ("whole pass", "heartbeat expiry"):
            self._model_expiry()
        if then in ("whole pass", "timeouts"):
            self._model_timeouts()
        if then in ("whole pass", "ledger"):
            self._model_close_hours()

    @rule(when=st.sampled_from([TO_NEXT_DUE, JUST_BEFORE_NEXT_DUE]))
    def reconciler_wakes_at_the_edge(self, when: str) -> None:
        """A whole pass at the first moment something is due, or one microsecond before it."""
        self.time_passes(when, "whole pass")

    def _model_expiry(self) -> None:
        cutoff = self.now - GRACE_S * US_PER_S
        for node_id, model in sorted(self.nodes.items()):
            if model.online and model.deadline_us < cutoff:
                model.online = False
                for inst in self._live():
                    if inst.node_id == node_id and inst.status in LOST_WITH_NODE:
                        self._move(inst, Event.NODE_LOST, X)
        for vm_id, model in sorted(self.vms.items()):
            if model.online and model.deadline_us < cutoff:
                model.online = False
                for inst in self._live():  # a silent VM cannot close its channel: a freed node is enough
                    if inst.client == vm_id and inst.status is D and not inst.node_ready:
                        self._move(inst, Event.DETACH_DONE, A)

    def _model_timeouts(self) -> None:
        outcomes = {P: (Event.START_TIMEOUT, X), S: (Event.START_TIMEOUT, X),
                    AT: (Event.ATTACH_TIMEOUT, A), D: (Event.DETACH_TIMEOUT, X)}
        for status, (event, to) in outcomes.items():
            for inst in self._live():
                if inst.status is status and self.now - inst.since_us >= DEADLINES_S[status] * US_PER_S:
                    self._move(inst, event, to)

    def _model_close_hours(self) -> None:
        if self.first_us is not None:
            self.cursor_us = max(self.cursor_us or hour_of(self.first_us), hour_of(self.now))

    # ---- a fleet to start from ---------------------------------------------------------------

    @initialize(statuses=st.lists(st.sampled_from([P, S, A, AT, U, D]), min_size=1, max_size=len(VMS)))
    def a_fleet_to_start_from(self, statuses: list[Status]) -> None:
        """Up to three instances, each brought to a drawn status by the same calls the rules make."""
        for vm_id, wanted in zip(VMS, statuses, strict=False):
            self.bring_to(wanted, vm_id)

    def bring_to(self, wanted: Status, vm_id: str) -> ModelInstance:
        """A new instance in ``wanted`` (Pending … Detaching), bound to ``vm_id`` if that needs a client."""
        self.create(None, "")
        inst = list(self.instances.values())[-1]
        path = [P, S, A, AT, U, D]
        for reached in path[1 : path.index(wanted) + 1]:
            if reached is S:
                self._node_report(inst.slice_id, "preparing", "")
            elif reached is A:
                self._node_report(inst.slice_id, "ready_free", "")
            elif reached is AT:
                self._attach(inst, vm_id)
            elif reached is U:
                self._node_report(inst.slice_id, "worker_ready", inst.attachment)
                self._vm_report(vm_id, inst.attachment, ChannelState.PROVEN)
            else:
                self._detach(inst)
        assert inst.status is wanted
        return inst

    # ---- checks ------------------------------------------------------------------------------

    @invariant()
    def database_agrees_with_the_model(self) -> None:
        with self.ctx.db.read() as session:
            rows = list(session.exec(select(Transition).order_by(Transition.id)).all())
            instances = {i.id: i for i in session.exec(select(Instance)).all()}
            slices = {s.id: s for s in session.exec(select(Slice)).all()}
            attachments = {a.id: a for a in session.exec(select(Attachment)).all()}
            nodes = {n.id: n.online for n in session.exec(select(Node)).all()}
            vms = {v.id: v.online for v in session.exec(select(ClientInstance)).all()}
        self._check_log(rows, instances)
        self._check_bindings(instances, attachments)
        self._check_capacity(instances, slices, nodes, vms)
        self._check_billing_over_the_log(rows)
        self._check_ledger()

    def _check_log(self, rows: list[Transition], instances: dict[str, Instance]) -> None:
        assert set(instances) == set(self.instances)
        by_instance: dict[str, list[Transition]] = {}
        for row in rows:
            by_instance.setdefault(row.instance_id, []).append(row)
        for instance_id, inst in self.instances.items():
            chain = by_instance.get(instance_id, [])
            assert chain and (chain[0].from_status, chain[0].event) == (None, Event.CREATE)
            for before, after in zip(chain, chain[1:], strict=False):
                assert after.from_status == before.to_status, f"{instance_id}: the log skips a status"
                assert after.at_us >= before.at_us
            for row in chain:
                from_status = Status(row.from_status) if row.from_status else None
                assert TRANSITIONS.get((from_status, Event(row.event))) == Status(row.to_status), (
                    f"{instance_id}: {row.from_status} --{row.event}--> {row.to_status} is not in the table")
            assert instances[instance_id].status == chain[-1].to_status
            assert instances[instance_id].status == inst.status, f"{instance_id}: model says {inst.status}"
            assert instances[instance_id].status_since_us == inst.since_us == chain[-1].at_us
            logged = [(Status(r.from_status) if r.from_status else None, Event(r.event), Status(r.to_status))
                      for r in chain]
            assert logged == inst.log, f"{instance_id}: the log is not the sequence the model expected"

    def _check_bindings(self, instances: dict[str, Instance], attachments: dict[str, Attachment]) -> None:
        clients = Counter(i.client_instance_id for i in instances.values() if i.client_instance_id)
        assert all(n == 1 for n in clients.values()), f"a client holds two instances: {clients}"
        open_attachments = [a for a in attachments.values() if a.ended_us is None]
        assert all(n == 1 for n in Counter(a.client_instance_id for a in open_attachments).values())
        for attachment in open_attachments:
            holder = instances[attachment.instance_id]
            assert holder.attachment_id == attachment.id, f"open attachment {attachment.id} binds nothing"
        for instance_id, row in instances.items():
            inst = self.instances[instance_id]
            assert (row.client_instance_id, row.attachment_id) == (inst.client, inst.attachment)
            if Status(row.status) in HOLDS_CLIENT:
                attachment = attachments[row.attachment_id]
                assert attachment.ended_us is None and attachment.instance_id == instance_id
                assert attachment.client_instance_id == row.client_instance_id
                assert (attachment.node_ready_us is not None, attachment.vm_ready_us is not None) == (
                    inst.node_ready, inst.vm_ready)
            else:
                assert row.client_instance_id is None and row.attachment_id is None

    def _check_capacity(self, instances: dict[str, Instance], slices: dict[str, Slice],
                        nodes: dict[str, bool], vms: dict[str, bool]) -> None:
        held = Counter(s.instance_id for s in slices.values() if s.instance_id)
        assert all(n == 1 for n in held.values()), f"a slice is double-booked: {held}"
        assert {s: (row.instance_id, row.draining) for s, row in slices.items()} == {
            s: (m.holder, m.draining) for s, m in self.slices.items()}
        for instance_id, row in instances.items():
            assert row.slice_id == self.instances[instance_id].slice_id
            if row.slice_id:
                assert slices[row.slice_id].instance_id == instance_id
        assert nodes == {n: m.online for n, m in self.nodes.items()}
        assert vms == {v: m.online for v, m in self.vms.items()}

    def _model_hours(self, before_us: int | None = None) -> dict[tuple[str, int], int]:
        return {(inst.id, hour): billed for inst in self.instances.values()
                for hour, billed in inst.billed_by_hour.items()
                if billed > 0 and (before_us is None or hour < before_us)}

    def _check_billing_over_the_log(self, rows: list[Transition]) -> None:
        expected = self._model_hours()
        assert all(billed > 0 for billed in expected.values())
        per_instance = {i.id: sum(i.billed_by_hour.values()) for i in self.instances.values()}
        spans = billed_intervals(rows, self.now)
        assert all(start < end for pieces in spans.values() for start, end in pieces)
        assert {i: sum(e - s for s, e in pieces) for i, pieces in spans.items()} == {
            i: t for i, t in per_instance.items() if t > 0}
        if self.first_us is None:
            return
        since = hour_of(self.first_us)
        assert total_billed_us(rows, since, self.now) == sum(per_instance.values())
        items = hourly_items(rows, price_table(self.ctx.settings), since, self.now)
        assert {(item.instance_id, item.hour_start_us): item.billed_us for item in items} == expected

    def _check_ledger(self) -> None:
        closed = self._model_hours(self.cursor_us) if self.cursor_us is not None else {}
        items = bill_items(self.ctx, account_id=self.account)
        assert {(item.instance_id, item.hour_start_us): item.billed_us for item in items} == closed
        assert sum(item.billed_us for item in items) == sum(closed.values())
        assert all(item.billed_us > 0 and item.amount_micro >= 0 for item in items)
        charged = sum(amount_micro(billed, self.price_micro) for billed in closed.values())
        assert all(item.amount_micro == amount_micro(item.billed_us, self.price_micro) for item in items)
        summary = account_summary(self.ctx, self.account)
        assert summary["charged_micro"] == charged == sum(item.amount_micro for item in items)
        assert summary["balance_micro"] == BALANCE_MICRO - charged
        assert summary["billed_through_us"] == self.cursor_us
        running = running_charges(self.ctx, self.account)  # the rest, shown to users but not yet charged
        assert {(item.instance_id, item.hour_start_us): item.billed_us for item in running.items} == {
            key: billed for key, billed in self._model_hours().items() if key not in closed}


LifecycleMachine.TestCase.settings = settings(
    max_examples=40, stateful_step_count=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
TestLifecycleStateMachine = LifecycleMachine.TestCase


# ---- cases the machine found worth pinning down ------------------------------------------------


@pytest.fixture
def life() -> Iterator[LifecycleMachine]:
    """One machine driven by hand: the same rules, checks and model, in a fixed order."""
    machine = LifecycleMachine()
    yield machine
    machine.teardown()


def test_node_lost_while_in_use_stops_billing_at_the_loss(life: LifecycleMachine) -> None:
    inst = life.bring_to(U, VMS[0])
    life.time_passes(10 * 60 * US_PER_S, "nothing")
    life.agent_falls_silent(0, "an instance's node")
    life.time_passes(5 * 60 * US_PER_S, "nothing")

    life.time_passes(0, "heartbeat expiry")
    life.time_passes(2 * 3600 * US_PER_S, "nothing")
    life.time_passes(0, "whole pass")

    assert inst.status is X and inst.client is None
    assert sum(inst.billed_by_hour.values()) == 15 * 60 * US_PER_S
    life.database_agrees_with_the_model()


def test_detach_timeout_leaves_the_instance_unavailable_and_unbilled_until_the_node_frees_it(
    life: LifecycleMachine,
) -> None:
    inst = life.bring_to(D, VMS[0])
    life.time_passes((DEADLINES_S[D] + 1) * US_PER_S, "nothing")

    life.time_passes(0, "timeouts")
    life.time_passes(3600 * US_PER_S, "nothing")
    assert inst.status is X
    life.agents_report_progress(0, everyone=True, skip_starting=False)  # the node confirms the memory free
    life.time_passes(60 * US_PER_S, "nothing")
    life.time_passes(0, "ledger")

    assert inst.status is A
    assert [event for _, event, _ in inst.log][-2:] == [Event.DETACH_TIMEOUT, Event.NODE_RECOVERED]
    assert sum(inst.billed_by_hour.values()) == (DEADLINES_S[D] + 1 + 60) * US_PER_S
    life.database_agrees_with_the_model()


def test_a_released_slice_is_not_reused_until_its_node_confirms_the_memory_free(life: LifecycleMachine) -> None:
    first = life.bring_to(P, VMS[0])
    for _ in range(len(life.slices) - 1):
        life.create(None, "")
    life.delete(0, False, "DeleteEai Force")
    assert first.status is R

    life.create(None, "")  # refused (NoResources): the released slice is still draining
    assert len(life.instances) == len(life.slices)
    life.node_reports(0, "whole inventory free", stale=False, earlier_picture=False)
    life.create("tok-1", "")

    assert len(life.instances) == len(life.slices) + 1
    life.database_agrees_with_the_model()


def test_a_ready_the_node_made_for_the_idle_slice_arriving_after_create_does_not_skip_starting(
    life: LifecycleMachine,
) -> None:
    inst = life.bring_to(P, VMS[0])

    life.node_reports(0, "ready_free", stale=False, earlier_picture=True)
    assert inst.status is P
    life.agents_report_progress(0, everyone=True, skip_starting=False)

    assert inst.status is S
    life.database_agrees_with_the_model()


def test_a_detach_finishes_without_a_silent_vm_once_the_node_has_freed_the_memory(life: LifecycleMachine) -> None:
    inst = life.bring_to(D, VMS[0])
    # the node let go; the VM never reports its channel closed
    life.node_reports(0, "ready_free", stale=False, earlier_picture=False)
    assert inst.status is D

    life.agent_falls_silent(0, "a bound VM")
    life.time_passes((INTERVAL_S + GRACE_S + 1) * US_PER_S, "heartbeat expiry")

    assert inst.status is A and inst.client is None
    assert [event for _, event, _ in inst.log][-1] is Event.DETACH_DONE
    life.database_agrees_with_the_model()


def test_an_instance_released_exactly_on_the_hour_is_charged_for_the_hour_before_only(life: LifecycleMachine) -> None:
    inst = life.bring_to(A, VMS[0])
    available_us = life.now
    life.time_passes(TO_NEXT_HOUR, "ledger")
    life.delete(0, False, "DeleteEai")
    life.time_passes(TO_NEXT_HOUR, "ledger")

    assert inst.billed_by_hour == {hour_of(available_us): hour_of(available_us) + US_PER_HOUR - available_us}
    assert len(bill_items(life.ctx, account_id=life.account)) == 1
    life.database_agrees_with_the_model()
