"""Notebooks as a state machine: random CreateEaiJupyter / StartEaiJupyter / StopEaiJupyter / DeleteEai calls,
agent reports in any order (worker, channel, server), servers that fail, and clock steps with the reconciler's
timeouts, on a real SQLite file.

The model is written from the README's notebook rules, not from ``controller.states``. After every step:
statuses and hosting VMs match the database, each instance's log is the sequence of (from, event, to) the
model expected, billing over the log equals the model's billed time and amount (Available, Attaching, InUse,
Stopping at the full price; Stopped at the reserve share, 1/5), JupyterUrl is shown exactly while InUse, and each VM is told to serve exactly the notebooks
that are Attaching or InUse on it.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from functools import partial
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from sqlmodel import select

from controller.accounts import create_account
from controller.agent_link.actual_state import (
    ChannelReport,
    ChannelState,
    SlicePhase,
    SliceReport,
    WorkerState,
    apply_node_report,
    apply_vm_report,
)
from controller.agent_link.desired_state import vm_desired_state
from controller.agent_link.notebook_reports import NotebookReport, ServerState, apply_notebook_reports
from controller.billing import amount_micro, billed_intervals, hourly_items
from controller.clock import US_PER_S, FakeClock
from controller.context import ControllerContext
from controller.errors import EaisError, InstanceNotFound, InvalidEaiStatus, NoResources
from controller.notebooks import create_notebook, start_notebook, stop_notebook
from controller.provisioning import CreateRequest
from controller.queries import InstanceFilter, describe_instances
from controller.reconciler import time_out_stuck_instances
from controller.release import delete_instance
from controller.settings import load_settings
from controller.states import Event, Status
from controller.tables import Instance, Transition
from tests.fleet_rows import REGION, add_client, add_node

P, A, AT, U, X, R = Status.PENDING, Status.AVAILABLE, Status.ATTACHING, Status.IN_USE, Status.UNAVAILABLE, Status.RELEASED
STOPPING, STOPPED = Status.STOPPING, Status.STOPPED
FULL_PRICE = frozenset({A, AT, U, STOPPING})
RESERVE = frozenset({STOPPED})  # the slice stays held for the notebook: 1/5 of the price
PRICE = Decimal("3600")  # CNY per hour: one micro-CNY per billed microsecond
TYPE = "eais.ei-a6.2xlarge"
VMS = ("i-nb-a", "i-nb-b")
SLICES = 3
DEADLINES_S = {P: 120, AT: 120, STOPPING: 120}
TIMEOUT_TO = {P: (Event.START_TIMEOUT, X), AT: (Event.ATTACH_TIMEOUT, A), STOPPING: (Event.DETACH_TIMEOUT, X)}
LIFECYCLE = {"pending_deadline_s": DEADLINES_S[P], "attaching_deadline_s": DEADLINES_S[AT],
             "stopping_deadline_s": DEADLINES_S[STOPPING], "billing_settle_s": 0}
URL = "http://10.1.1.1:8888/"
PICK = st.integers(0, 31)


@dataclass
class ModelNotebook:
    id: str
    vm: str
    status: Status = P
    since_us: int = 0
    done: set[str] = field(default_factory=set)  # of worker / channel / server while Attaching; node / channel while Stopping
    log: list[tuple[Status | None, Event, Status]] = field(default_factory=list)
    full_us: int = 0
    reserve_us: int = 0


class NotebookMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.root = Path(tempfile.mkdtemp(prefix="eais-notebooks-"))
        self.clock = FakeClock()
        config = load_settings(db_url=f"sqlite:///{self.root}/c.db", state_dir=self.root / "state", lifecycle=LIFECYCLE)
        self.ctx = ControllerContext.open(config, self.clock)
        self.account = create_account(self.ctx, "nb", balance=Decimal(100_000), real_name_verified=True).account_id
        add_node(self.ctx, slices={TYPE: SLICES})
        for vm in VMS:
            add_client(self.ctx, self.account, vm)
        self.notebooks: dict[str, ModelNotebook] = {}
        self.draining: list[str] = []  # slices of released notebooks until the node frees them
        self.counting = True

    def teardown(self) -> None:
        self.ctx.db.dispose()
        shutil.rmtree(self.root, ignore_errors=True)

    # ---- model bookkeeping ---------------------------------------------------------------------

    def _move(self, nb: ModelNotebook, how: Event, to: Status) -> None:
        nb.log.append((nb.status if nb.log else None, how, to))
        nb.status, nb.since_us, nb.done = to, self.clock.now_us(), set()
        if self.counting:
            event(f"reached {to.value} by {how.value}")  # --hypothesis-show-statistics: what the runs reached

    def _live(self) -> list[ModelNotebook]:
        return [nb for nb in self.notebooks.values() if nb.status is not R]

    def _pick(self, index: int) -> ModelNotebook:
        return list(self.notebooks.values())[index % len(self.notebooks)]

    def _refused(self, error: type[EaisError], call) -> None:
        with pytest.raises(error):
            call()

    def _row(self, nb: ModelNotebook) -> Instance:
        with self.ctx.db.read() as session:
            return session.get(Instance, nb.id)

    # ---- API calls ---------------------------------------------------------------------------------

    @rule()
    def create(self) -> None:
        request = CreateRequest(region_id=REGION, instance_type=TYPE, vswitch_id="vsw-1", category="jupyter")
        call = partial(create_notebook, self.ctx, self.account, request, request_id="r")
        hosting = {nb.vm for nb in self._live()}
        free_vms = [vm for vm in VMS if vm not in hosting]
        if not free_vms or len(self._live()) + len(self.draining) >= SLICES:
            self._refused(NoResources, call)
            return
        instance_id = call()
        nb = self.notebooks[instance_id] = ModelNotebook(instance_id, free_vms[0])
        self._move(nb, Event.CREATE, P)

    @precondition(lambda self: self.notebooks)
    @rule(index=PICK)
    def stop(self, index: int) -> None:
        nb = self._pick(index)
        call = partial(stop_notebook, self.ctx, self.account, REGION, nb.id, request_id="r")
        if nb.status is R:
            self._refused(InstanceNotFound, call)
        elif nb.status in (STOPPING, STOPPED):
            call()
        elif nb.status in (U, A):
            call()
            self._move(nb, Event.NOTEBOOK_STOP, STOPPING if nb.status is U else STOPPED)
        else:
            self._refused(InvalidEaiStatus, call)

    @precondition(lambda self: self.notebooks)
    @rule(index=PICK)
    def start(self, index: int) -> None:
        nb = self._pick(index)
        call = partial(start_notebook, self.ctx, self.account, REGION, nb.id, request_id="r")
        if nb.status is R:
            self._refused(InstanceNotFound, call)
        elif nb.status in (AT, U):
            call()
        elif nb.status in (STOPPED, A):
            call()
            self._move(nb, Event.ATTACH, AT)
        else:
            self._refused(InvalidEaiStatus, call)

    @precondition(lambda self: self.notebooks)
    @rule(index=PICK, force=st.booleans())
    def delete(self, index: int, force: bool) -> None:
        nb = self._pick(index)
        call = partial(delete_instance, self.ctx, self.account, REGION, nb.id, force=force, request_id="r")
        allowed = nb.status in (A, U, X, STOPPED) or (force and nb.status in (P, AT, STOPPING))
        if nb.status is R:
            self._refused(InstanceNotFound, call)
        elif not allowed:
            self._refused(InvalidEaiStatus, call)
        else:
            slice_id = self._row(nb).slice_id
            call()
            self._move(nb, Event.RELEASE, R)
            self.draining.append(slice_id)

    # ---- agents --------------------------------------------------------------------------------

    @precondition(lambda self: self._live())
    @rule(index=PICK, which=st.integers(0, 2), reports=st.integers(1, 4))
    def agents_report_progress(self, index: int, which: int, reports: int) -> None:
        """The next reports of healthy agents about a live notebook: parts still missing, in any order."""
        live = self._live()
        nb = live[index % len(live)]
        for _ in range(reports):
            self._next_report(nb, which)

    def _next_report(self, nb: ModelNotebook, which: int) -> None:
        row = self._row(nb)
        if nb.status is P:
            apply_node_report(self.ctx, "node-1", [SliceReport(row.slice_id, SlicePhase.READY, WorkerState.NONE,
                                                               instance_id=nb.id)])
            self._move(nb, Event.SLICE_READY, A)
            self._move(nb, Event.ATTACH, AT)  # its VM is bound at once
        elif nb.status is AT:
            part = sorted({"worker", "channel", "server"} - nb.done)[which % (3 - len(nb.done))]
            self._report(nb, row, part)
            nb.done.add(part)
            if nb.done == {"worker", "channel", "server"}:
                self._move(nb, Event.ATTACH_READY, U)
        elif nb.status is STOPPING:
            part = sorted({"node", "channel", "server"} - nb.done)[which % (3 - len(nb.done))]
            self._report(nb, row, part)
            nb.done.add(part)
            if {"node", "channel"} <= nb.done:  # the server's NONE only clears the URL
                self._move(nb, Event.DETACH_DONE, STOPPED)

    def _report(self, nb: ModelNotebook, row: Instance, part: str) -> None:
        attachment_id = row.attachment_id
        if part == "worker":
            apply_node_report(self.ctx, "node-1", [SliceReport(row.slice_id, SlicePhase.READY, WorkerState.READY,
                                                               attachment_id=attachment_id, instance_id=nb.id)])
        elif part == "node":
            apply_node_report(self.ctx, "node-1", [SliceReport(row.slice_id, SlicePhase.READY, WorkerState.NONE,
                                                               memory_free=True, instance_id=nb.id)])
        elif part == "channel":
            channel = ChannelState.PROVEN if nb.status is AT else ChannelState.CLOSED
            apply_vm_report(self.ctx, nb.vm, ChannelReport(attachment_id, channel))
        else:
            state, url = (ServerState.READY, URL) if nb.status is AT else (ServerState.NONE, "")
            apply_notebook_reports(self.ctx, nb.vm, [NotebookReport(nb.id, state, url, attachment_id)])

    @precondition(lambda self: any(nb.status is AT for nb in self.notebooks.values()))
    @rule(index=PICK)
    def server_fails_to_start(self, index: int) -> None:
        nb = [nb for nb in self.notebooks.values() if nb.status is AT][index % sum(
            nb.status is AT for nb in self.notebooks.values())]
        attachment_id = self._row(nb).attachment_id
        apply_notebook_reports(self.ctx, nb.vm, [NotebookReport(nb.id, ServerState.FAILED, "", attachment_id, "boom")])
        self._move(nb, Event.ATTACH_FAILED, A)

    @precondition(lambda self: self.draining)
    @rule()
    def node_frees_released_slices(self) -> None:
        apply_node_report(self.ctx, "node-1", [SliceReport(s, SlicePhase.READY, WorkerState.NONE, memory_free=True)
                                               for s in self.draining])
        self.draining.clear()

    @rule(seconds=st.sampled_from([1, 1, 5, 5, 30, 30, 90, 121, 3600]))
    def time_passes(self, seconds: int) -> None:
        for nb in self.notebooks.values():
            if nb.status in FULL_PRICE:
                nb.full_us += seconds * US_PER_S
            elif nb.status in RESERVE:
                nb.reserve_us += seconds * US_PER_S
        self.clock.advance(seconds)
        time_out_stuck_instances(self.ctx)
        for nb in self.notebooks.values():
            deadline = DEADLINES_S.get(nb.status)
            if deadline is not None and self.clock.now_us() - nb.since_us >= deadline * US_PER_S:
                self._move(nb, *TIMEOUT_TO[nb.status])

    # ---- invariants ----------------------------------------------------------------------------

    @invariant()
    def database_agrees_with_the_model(self) -> None:
        with self.ctx.db.read() as session:
            log = list(session.exec(select(Transition).order_by(Transition.id)).all())
        now = self.clock.now_us()
        billed = billed_intervals(log, until_us=now)
        items = hourly_items(log, {TYPE: PRICE}, 0, now)
        for nb in self.notebooks.values():
            row = self._row(nb)
            assert row.status == nb.status, (nb.id, row.status, nb.status, nb.log)
            assert row.client_instance_id == (nb.vm if nb.status in (AT, U, STOPPING) else None)
            own = [(t.from_status, t.event, t.to_status) for t in log if t.instance_id == nb.id]
            assert own == [(f.value if f else None, e.value, t.value) for f, e, t in nb.log]
            assert sum(end - start for start, end in billed.get(nb.id, [])) == nb.full_us + nb.reserve_us, nb.log
            own_items = [i for i in items if i.instance_id == nb.id]
            expected = amount_micro(nb.full_us + Fraction(nb.reserve_us, 5), PRICE)
            assert abs(sum(i.amount_micro for i in own_items) - expected) <= len(own_items), nb.log  # rounded per item

    @invariant()
    def the_url_is_shown_exactly_while_in_use_and_vms_serve_exactly_what_is_starting_or_running(self) -> None:
        page = describe_instances(self.ctx, self.account, InstanceFilter(region_id=REGION), 1, 200)
        urls = {view.instance.id: view.jupyter_url for view in page.views}
        for nb in self._live():
            assert bool(urls[nb.id]) == (nb.status is U), (nb.status, urls[nb.id])
        for vm in VMS:
            serving = {n.instance_id for n in vm_desired_state(self.ctx, vm).notebooks if n.serve}
            assert serving == {nb.id for nb in self._live() if nb.vm == vm and nb.status in (AT, U)}


NotebookMachine.TestCase.settings = settings(
    max_examples=50, stateful_step_count=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TestNotebookStateMachine = NotebookMachine.TestCase


def test_the_machine_walks_a_notebook_through_its_whole_life():
    machine = NotebookMachine()
    machine.counting = False  # not inside a Hypothesis run
    try:
        machine.create()
        machine.agents_report_progress(0, 1, 4)
        assert [nb.status for nb in machine.notebooks.values()] == [U]
        machine.the_url_is_shown_exactly_while_in_use_and_vms_serve_exactly_what_is_starting_or_running()
        machine.time_passes(3600)
        machine.stop(0)
        machine.agents_report_progress(0, 2, 3)
        machine.time_passes(3600)  # Stopped: billed at the reserve share
        machine.database_agrees_with_the_model()
        machine.start(0)
        machine.agents_report_progress(0, 0, 3)
        machine.delete(0, False)
        machine.node_frees_released_slices()
        machine.create()
        statuses = [nb.status for nb in machine.notebooks.values()]
        assert statuses == [R, P]
        machine.database_agrees_with_the_model()
        machine.the_url_is_shown_exactly_while_in_use_and_vms_serve_exactly_what_is_starting_or_running()
    finally:
        machine.teardown()
