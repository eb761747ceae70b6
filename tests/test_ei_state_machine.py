"""The EI family as a state machine: random EI actions, agent reports and clock steps on a real SQLite file.

The model is written from the README's EI lifecycle, not from ``controller.states``: each rule says what
each instance should become, and each clock step adds the elapsed time, weighted by the status's share of
the price (Bindable and Bound 1/5, StartingWorker, InUse and StoppingWorker in full), to a running bill.
After every step: the database's statuses and bindings are the model's, each log is a chain through the
table, binding is one-to-one, and billing over the log charges what the model owes (per item rounding).
"""

from __future__ import annotations

import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from functools import partial
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from sqlmodel import select

from controller.accounts import create_account
from controller.agent_link import apply_node_report, apply_vm_report
from controller.agent_link.actual_state import ChannelReport, ChannelState, SlicePhase, SliceReport, WorkerState
from controller.billing import hourly_items
from controller.clock import US_PER_S, FakeClock
from controller.context import ControllerContext
from controller.ei_binding import bind_ei_instance, start_ei_instance, stop_ei_instance, unbind_ei_instance
from controller.errors import ClientAlreadyBound, EaisError, InvalidEaiStatus, NoResources
from controller.ledger import price_table
from controller.provisioning import CreateRequest, create_instance
from controller.reconciler import time_out_stuck_instances
from controller.release import delete_ei_instance
from controller.settings import load_settings
from controller.states import CATEGORY_EI, TRANSITIONS, Event, Status
from controller.tables import Instance, Transition
from tests.fleet_rows import REGION, add_client, add_node

TYPE = "eais.ei-a6.xlarge"
VMS = ("i-vm-a", "i-vm-b", "i-vm-c")
CREATING, BINDABLE, BOUND, IN_USE = "Creating", "Bindable", "Bound", "InUse"
STARTING, STOPPING, UNAVAILABLE, RELEASED = "StartingWorker", "StoppingWorker", "Unavailable", "Released"
SHARE = {BINDABLE: Fraction(1, 5), BOUND: Fraction(1, 5), STARTING: Fraction(1), IN_USE: Fraction(1), STOPPING: Fraction(1)}
HOLDS_CLIENT = {BOUND, STARTING, IN_USE, STOPPING}
DEADLINES_S = {CREATING: 300, STARTING: 120, STOPPING: 90}
TIMEOUT_TO = {CREATING: UNAVAILABLE, STARTING: BOUND, STOPPING: UNAVAILABLE}
PICK = st.integers(0, 63)


@dataclass
class ModelEi:
    id: str
    slice_id: str
    status: str = CREATING
    since_us: int = 0
    client: str | None = None
    node_ready: bool = False
    vm_ready: bool = False


class EiMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.root = Path(tempfile.mkdtemp(prefix="eais-ei-"))
        self.clock = FakeClock()
        lifecycle = {"starting_deadline_s": DEADLINES_S[CREATING], "attaching_deadline_s": DEADLINES_S[STARTING],
                     "detaching_deadline_s": DEADLINES_S[STOPPING]}
        settings_ = load_settings(db_url=f"sqlite:///{self.root}/c.db", state_dir=self.root / "state", lifecycle=lifecycle)
        self.ctx = ControllerContext.open(settings_, self.clock)
        self.account = create_account(self.ctx, "alice", balance=Decimal(100_000), real_name_verified=True).account_id
        add_node(self.ctx, slices={TYPE: 3})
        for vm in VMS:
            add_client(self.ctx, self.account, vm)
        self.instances: dict[str, ModelEi] = {}
        self.owed_micro = Fraction(0)  # exact, before any rounding
        self.price_micro = Fraction(price_table(self.ctx.settings)[TYPE]) * 1_000_000

    def teardown(self) -> None:
        self.ctx.db.dispose()
        shutil.rmtree(self.root, ignore_errors=True)

    def _move(self, inst: ModelEi, to: str) -> None:
        inst.status, inst.since_us = to, self.clock.now_us()
        inst.node_ready = inst.vm_ready = False
        if to not in HOLDS_CLIENT:
            inst.client = None

    def _live(self) -> list[ModelEi]:
        return [i for i in self.instances.values() if i.status != RELEASED]

    def _refused(self, error: type[EaisError], call) -> None:
        with pytest.raises(error):
            call()

    def _pick(self, index: int) -> ModelEi:
        live = self._live()
        return live[index % len(live)]

    @rule()
    def create(self) -> None:
        request = CreateRequest(region_id=REGION, instance_type=TYPE, vswitch_id="vsw-1", category=CATEGORY_EI)
        call = partial(create_instance, self.ctx, self.account, request, request_id="r")
        if len(self.instances) >= 3:  # three slices; a released one stays draining (no node frees it here)
            self._refused(NoResources, call)
            return
        instance_id = call()
        with self.ctx.db.read() as session:
            slice_id = session.get(Instance, instance_id).slice_id
        self.instances[instance_id] = ModelEi(instance_id, slice_id, since_us=self.clock.now_us())

    @precondition(lambda self: self._live())
    @rule(index=PICK, vm=st.sampled_from(VMS))
    def bind(self, index: int, vm: str) -> None:
        inst = self._pick(index)
        call = partial(bind_ei_instance, self.ctx, self.account, REGION, vm, instance_id=inst.id, instance_type=None,
                       request_id="r")
        if inst.status != BINDABLE:
            self._refused(InvalidEaiStatus, call)
        elif any(i.client == vm for i in self._live()):
            self._refused(ClientAlreadyBound, call)
        else:
            call()
            self._move(inst, BOUND)
            inst.client = vm

    @precondition(lambda self: self._live())
    @rule(index=PICK, action=st.sampled_from(["start", "stop", "unbind"]))
    def act(self, index: int, action: str) -> None:
        inst = self._pick(index)
        function, wanted, to = {"start": (start_ei_instance, BOUND, STARTING), "stop": (stop_ei_instance, IN_USE, STOPPING),
                                "unbind": (unbind_ei_instance, BOUND, BINDABLE)}[action]
        call = partial(function, self.ctx, self.account, REGION, inst.id, request_id="r")
        if inst.status != wanted:
            self._refused(InvalidEaiStatus, call)
            return
        call()
        client = inst.client
        self._move(inst, to)
        inst.client = client if to in HOLDS_CLIENT else None

    @precondition(lambda self: self._live())
    @rule(index=PICK, force=st.booleans())
    def delete(self, index: int, force: bool) -> None:
        inst = self._pick(index)
        call = partial(delete_ei_instance, self.ctx, self.account, REGION, inst.id, force=force, request_id="r")
        if inst.status != BINDABLE and not force:
            self._refused(InvalidEaiStatus, call)
            return
        call()
        self._move(inst, RELEASED)

    @precondition(lambda self: self._live())
    @rule(index=PICK)
    def node_reports_progress(self, index: int) -> None:
        inst = self._pick(index)
        with self.ctx.db.read() as session:
            attachment_id = session.get(Instance, inst.id).attachment_id or ""
        if inst.status in (CREATING, STOPPING, UNAVAILABLE):
            report = SliceReport(inst.slice_id, SlicePhase.READY, WorkerState.NONE, instance_id=inst.id, memory_free=True)
        elif inst.status == STARTING:
            report = SliceReport(inst.slice_id, SlicePhase.READY, WorkerState.READY, attachment_id=attachment_id,
                                 instance_id=inst.id)
        else:
            return
        apply_node_report(self.ctx, "node-1", [report])
        if inst.status in (CREATING, UNAVAILABLE):
            self._move(inst, BINDABLE)
        elif inst.status == STARTING:
            inst.node_ready = True
            self._maybe_done(inst)
        else:
            inst.node_ready = True  # here: "memory free" seen
            self._maybe_done(inst)

    @precondition(lambda self: any(i.status in (STARTING, STOPPING) for i in self._live()))
    @rule(index=PICK)
    def vm_reports_progress(self, index: int) -> None:
        moving = [i for i in self._live() if i.status in (STARTING, STOPPING)]
        inst = moving[index % len(moving)]
        with self.ctx.db.read() as session:
            attachment_id = session.get(Instance, inst.id).attachment_id
        channel = ChannelState.PROVEN if inst.status == STARTING else ChannelState.CLOSED
        apply_vm_report(self.ctx, inst.client, ChannelReport(attachment_id, channel))
        inst.vm_ready = True
        self._maybe_done(inst)

    def _maybe_done(self, inst: ModelEi) -> None:
        if inst.node_ready and inst.vm_ready:
            client = inst.client
            self._move(inst, IN_USE if inst.status == STARTING else BOUND)
            inst.client = client

    @rule(seconds=st.sampled_from([0, 1, 59, 61, 91, 121, 301, 3600]), reconcile=st.booleans())
    def time_passes(self, seconds: int, reconcile: bool) -> None:
        for inst in self._live():
            self.owed_micro += seconds * US_PER_S * SHARE.get(inst.status, Fraction(0)) * self.price_micro / (3600 * US_PER_S)
        self.clock.advance(seconds)
        if not reconcile:
            return
        time_out_stuck_instances(self.ctx)
        for inst in self._live():
            if inst.status in DEADLINES_S and self.clock.now_us() - inst.since_us >= DEADLINES_S[inst.status] * US_PER_S:
                client = inst.client
                self._move(inst, TIMEOUT_TO[inst.status])
                inst.client = client if inst.status in HOLDS_CLIENT else None

    @precondition(lambda self: any(i.status in DEADLINES_S for i in self._live()))
    @rule(seconds=st.sampled_from(sorted(DEADLINES_S.values())))
    def agents_stay_silent_past_a_deadline(self, seconds: int) -> None:
        self.time_passes(seconds, True)

    @invariant()
    def database_agrees_with_the_model(self) -> None:
        with self.ctx.db.read() as session:
            rows = list(session.exec(select(Transition).order_by(Transition.id)).all())
            found = {i.id: i for i in session.exec(select(Instance)).all()}
        assert {i: (r.status, r.client_instance_id) for i, r in found.items()} == {
            i: (m.status, m.client) for i, m in self.instances.items()}
        clients = Counter(r.client_instance_id for r in found.values() if r.client_instance_id)
        assert all(n == 1 for n in clients.values())
        for row in rows:
            source = Status(row.from_status) if row.from_status else None
            assert TRANSITIONS.get((source, Event(row.event))) == Status(row.to_status)
        if rows:
            items = hourly_items(rows, price_table(self.ctx.settings), 0, self.clock.now_us())
            assert abs(sum(i.amount_micro for i in items) - self.owed_micro) <= Fraction(len(items), 2)


EiMachine.TestCase.settings = settings(max_examples=40, stateful_step_count=30, deadline=None,
                                       suppress_health_check=[HealthCheck.too_slow])
test_the_ei_family_behaves_as_its_model = pytest.mark.sqlite_only(EiMachine.TestCase)
