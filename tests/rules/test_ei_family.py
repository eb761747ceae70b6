"""The EI family's rules: bind, start, stop, unbind, release, on the one transition table and apply().

Agent reports are applied through the same functions the agent link calls, so Start and Stop run
the real attach and detach machinery (StartingWorker -> InUse, StoppingWorker -> Bound).
"""

from __future__ import annotations

import threading
from fractions import Fraction

import pytest
from sqlmodel import select

from controller.agent_link import apply_node_report, apply_vm_report
from controller.agent_link.actual_state import ChannelReport, ChannelState, SlicePhase, SliceReport, WorkerState
from controller.agent_link.desired_state import node_desired_state, vm_desired_state
from controller.agent_link.heartbeats import expire_heartbeats
from controller.api.render import instance_json
from controller.billing import hourly_items
from controller.binding import attach_instance, detach_instance
from controller.ei_binding import bind_ei_instance, start_ei_instance, stop_ei_instance, unbind_ei_instance
from controller.errors import (
    ClientAlreadyBound,
    ClientNotFound,
    IdempotentParameterMismatch,
    InstanceNotFound,
    InvalidEaiStatus,
    InvalidInstanceType,
    WrongInstanceFamily,
)
from controller.ledger import close_hours, price_table
from controller.money import to_micro
from controller.provisioning import CreateRequest, create_instance
from controller.queries import InstanceFilter, describe_instances
from controller.reconciler import time_out_stuck_instances
from controller.release import delete_ei_instance, delete_instance, delete_instance_and_client
from controller.states import CATEGORY_EI, Event, Status
from controller.tables import Account, Attachment, ClientInstance, Instance, Node, Slice, Transition
from tests.fleet_rows import REGION, add_client, add_node
from tests.rules.lifecycle_steps import status_of, step

TYPE, SMALL = "eais.ei-a6.2xlarge", "eais.ei-a6.medium"
VM, VM2 = "i-vm1", "i-vm2"


@pytest.fixture
def fleet(ctx, account):
    add_node(ctx, slices={TYPE: 3, SMALL: 1})
    add_client(ctx, account.account_id, VM)
    add_client(ctx, account.account_id, VM2)


def create_ei(ctx, account_id, instance_type=TYPE) -> str:
    request = CreateRequest(region_id=REGION, instance_type=instance_type, vswitch_id="vsw-1", category=CATEGORY_EI)
    return create_instance(ctx, account_id, request, request_id="req-create")


def bindable(ctx, account_id, instance_type=TYPE) -> str:
    instance_id = create_ei(ctx, account_id, instance_type)
    apply_node_report(ctx, "node-1", [SliceReport(slice_of(ctx, instance_id), SlicePhase.READY, WorkerState.NONE,
                                                  instance_id=instance_id, memory_free=True)])
    return instance_id


def bind(ctx, account_id, instance_id=None, client=VM, instance_type=None) -> str:
    return bind_ei_instance(ctx, account_id, REGION, client, instance_id=instance_id, instance_type=instance_type,
                            request_id="req-bind")


def bound(ctx, account_id) -> str:
    instance_id = bindable(ctx, account_id)
    bind(ctx, account_id, instance_id)
    return instance_id


def started(ctx, account_id) -> tuple[str, str]:
    """An InUse EI instance, through StartEaisEi and both agents' reports; (instance, attachment)."""
    instance_id = bound(ctx, account_id)
    start_ei_instance(ctx, account_id, REGION, instance_id, request_id="req-start")
    attachment_id = row(ctx, instance_id).attachment_id
    apply_node_report(ctx, "node-1", [SliceReport(slice_of(ctx, instance_id), SlicePhase.READY, WorkerState.READY,
                                                  attachment_id=attachment_id, instance_id=instance_id)])
    apply_vm_report(ctx, VM, ChannelReport(attachment_id, ChannelState.PROVEN))
    return instance_id, attachment_id


def row(ctx, instance_id) -> Instance:
    with ctx.db.read() as session:
        return session.get(Instance, instance_id)


def slice_of(ctx, instance_id) -> str:
    return row(ctx, instance_id).slice_id


def attachment(ctx, attachment_id) -> Attachment:
    with ctx.db.read() as session:
        return session.get(Attachment, attachment_id)


def shown(ctx, account_id, **filters) -> list[tuple[str, str, str]]:
    page = describe_instances(ctx, account_id, InstanceFilter(region_id=REGION, **filters), 1, 50)
    return [(f["ElasticAcceleratedInstanceId"], f["Status"], f["Category"]) for f in map(instance_json, page.views)]


def test_create_ei_starts_in_creating_and_becomes_bindable_when_its_slice_is_ready(ctx, account, fleet):
    instance_id = create_ei(ctx, account.account_id)
    assert (status_of(ctx, instance_id), row(ctx, instance_id).category) == (Status.CREATING, "ei")

    instance_id = bindable(ctx, account.account_id)

    assert status_of(ctx, instance_id) == Status.BINDABLE
    assert row(ctx, instance_id).started_us is not None
    assert (instance_id, "Bindable", "ei") in shown(ctx, account.account_id)


def test_attach_by_id_binds_the_vm_without_a_worker_or_an_attachment(ctx, account, fleet):
    instance_id = bindable(ctx, account.account_id)

    assert bind(ctx, account.account_id, instance_id) == instance_id

    instance = row(ctx, instance_id)
    assert (instance.status, instance.client_instance_id, instance.attachment_id) == (Status.BOUND, VM, None)
    assert vm_desired_state(ctx, VM).attachment is None  # no data path: the VM agent refuses TF calls
    served = [s for s in node_desired_state(ctx, "node-1").slices if s.instance_id == instance_id]
    assert served[0].attachment is None  # no worker


def test_attach_by_type_binds_the_oldest_bindable_instance_of_that_type(ctx, clock, account, fleet):
    small = bindable(ctx, account.account_id, SMALL)
    clock.advance(1)
    first = bindable(ctx, account.account_id)
    clock.advance(1)
    bindable(ctx, account.account_id)

    assert bind(ctx, account.account_id, instance_type=TYPE) == first
    assert bind(ctx, account.account_id, client=VM2) == small  # no type: the oldest of any type


def test_attach_by_type_without_a_bindable_instance_is_refused(ctx, account, fleet):
    bound(ctx, account.account_id)
    with pytest.raises(InstanceNotFound, match="no Bindable EI instance of type"):
        bind(ctx, account.account_id, client=VM2, instance_type=TYPE)
    with pytest.raises(InvalidInstanceType):
        bind(ctx, account.account_id, client=VM2, instance_type="eais.ei-a6.huge")


def test_attach_by_type_never_takes_an_eai_instance_or_another_accounts(ctx, account, other_account, fleet):
    eai = create_instance(ctx, account.account_id, CreateRequest(region_id=REGION, instance_type=TYPE), request_id="r")
    step(ctx, eai, Event.SLICE_READY)
    add_client(ctx, other_account.account_id, "i-other")
    bindable(ctx, other_account.account_id)
    with pytest.raises(InstanceNotFound):
        bind(ctx, account.account_id, instance_type=TYPE)


def test_start_runs_the_attach_machinery_and_lands_in_use(ctx, account, fleet):
    instance_id = bound(ctx, account.account_id)

    start_ei_instance(ctx, account.account_id, REGION, instance_id, request_id="req-start")

    instance = row(ctx, instance_id)
    assert instance.status == Status.STARTING_WORKER and instance.attachment_id
    grant = vm_desired_state(ctx, VM).attachment
    assert grant.status is Status.STARTING_WORKER and grant.token  # the VM opens and proves the channel
    assert (instance_id, "Bound", "ei") in shown(ctx, account.account_id)  # documented name until InUse
    assert [i for i, *_ in shown(ctx, account.account_id, status="Bound")] == [instance_id]

    attachment_id = instance.attachment_id
    apply_node_report(ctx, "node-1", [SliceReport(slice_of(ctx, instance_id), SlicePhase.READY, WorkerState.READY,
                                                  attachment_id=attachment_id, instance_id=instance_id)])
    apply_vm_report(ctx, VM, ChannelReport(attachment_id, ChannelState.PROVEN))

    assert status_of(ctx, instance_id) == Status.IN_USE
    assert vm_desired_state(ctx, VM).attachment.token


def test_stop_runs_the_detach_machinery_back_to_bound_keeping_the_binding(ctx, account, fleet):
    instance_id, attachment_id = started(ctx, account.account_id)

    stop_ei_instance(ctx, account.account_id, REGION, instance_id, request_id="req-stop")

    assert status_of(ctx, instance_id) == Status.STOPPING_WORKER
    assert (instance_id, "InUse", "ei") in shown(ctx, account.account_id)  # documented name until Bound
    assert vm_desired_state(ctx, VM).attachment.token == ""  # the token is withdrawn at once
    apply_node_report(ctx, "node-1", [SliceReport(slice_of(ctx, instance_id), SlicePhase.READY, WorkerState.NONE,
                                                  instance_id=instance_id, memory_free=True)])
    assert status_of(ctx, instance_id) == Status.STOPPING_WORKER  # the VM has not closed its channel yet
    apply_vm_report(ctx, VM, ChannelReport(attachment_id, ChannelState.CLOSED))

    instance = row(ctx, instance_id)
    assert (instance.status, instance.client_instance_id, instance.attachment_id) == (Status.BOUND, VM, None)
    assert attachment(ctx, attachment_id).ended_us is not None


def test_a_stopped_instance_starts_again_with_a_fresh_attachment(ctx, account, fleet):
    instance_id, first = started(ctx, account.account_id)
    stop_ei_instance(ctx, account.account_id, REGION, instance_id, request_id="req-stop")
    apply_node_report(ctx, "node-1", [SliceReport(slice_of(ctx, instance_id), SlicePhase.READY, WorkerState.NONE,
                                                  instance_id=instance_id, memory_free=True)])
    apply_vm_report(ctx, VM, ChannelReport(first, ChannelState.CLOSED))

    start_ei_instance(ctx, account.account_id, REGION, instance_id, request_id="req-start-2")

    assert row(ctx, instance_id).attachment_id not in (None, first)


def test_detach_unbinds_a_bound_instance_at_once(ctx, account, fleet):
    instance_id = bound(ctx, account.account_id)

    unbind_ei_instance(ctx, account.account_id, REGION, instance_id, request_id="req-detach")

    instance = row(ctx, instance_id)
    assert (instance.status, instance.client_instance_id) == (Status.BINDABLE, None)
    bind(ctx, account.account_id, instance_id, client=VM2)  # and it can be bound to another VM


@pytest.mark.parametrize(("action", "state"), [
    ("attach", "creating"), ("attach", "bound"), ("attach", "in_use"),
    ("start", "creating"), ("start", "bindable"), ("start", "in_use"), ("start", "starting"),
    ("stop", "bindable"), ("stop", "bound"), ("stop", "starting"), ("stop", "stopping"),
    ("detach", "bindable"), ("detach", "in_use"), ("detach", "starting"), ("detach", "stopping"),
    ("delete", "creating"), ("delete", "bound"), ("delete", "in_use"), ("delete", "stopping"),
])
def test_every_wrong_state_is_refused_with_invalid_eai_status_and_changes_nothing(ctx, account, fleet, action, state):
    instance_id = instance_in(ctx, account.account_id, state)
    before = status_of(ctx, instance_id)
    call = {
        "attach": lambda: bind(ctx, account.account_id, instance_id, client=VM2),
        "start": lambda: start_ei_instance(ctx, account.account_id, REGION, instance_id, request_id="r"),
        "stop": lambda: stop_ei_instance(ctx, account.account_id, REGION, instance_id, request_id="r"),
        "detach": lambda: unbind_ei_instance(ctx, account.account_id, REGION, instance_id, request_id="r"),
        "delete": lambda: delete_ei_instance(ctx, account.account_id, REGION, instance_id, force=False, request_id="r"),
    }[action]
    with pytest.raises(InvalidEaiStatus) as refused:
        call()
    assert status_of(ctx, instance_id) == before
    if state in ("starting", "stopping") and action != "delete":
        assert "in progress" in refused.value.message


def instance_in(ctx, account_id, state) -> str:
    if state == "creating":
        return create_ei(ctx, account_id)
    if state == "bindable":
        return bindable(ctx, account_id)
    if state == "bound":
        return bound(ctx, account_id)
    instance_id, _ = started(ctx, account_id)
    if state == "starting":
        step(ctx, instance_id, Event.STOP)
        step(ctx, instance_id, Event.DETACH_DONE)
        start_ei_instance(ctx, account_id, REGION, instance_id, request_id="r")
    if state == "stopping":
        stop_ei_instance(ctx, account_id, REGION, instance_id, request_id="r")
    return instance_id


@pytest.mark.parametrize("state", ["creating", "bindable", "bound", "in_use", "starting", "stopping"])
def test_delete_with_force_releases_from_any_status_ending_the_binding_and_the_worker(ctx, account, fleet, state):
    instance_id = instance_in(ctx, account.account_id, state)
    attachment_id = row(ctx, instance_id).attachment_id

    delete_ei_instance(ctx, account.account_id, REGION, instance_id, force=True, request_id="req-delete")

    instance = row(ctx, instance_id)
    assert (instance.status, instance.client_instance_id, instance.slice_id) == (Status.RELEASED, None, None)
    if attachment_id:
        assert attachment(ctx, attachment_id).ended_us is not None
    with ctx.db.read() as session:
        assert session.get(Slice, f"node-1/{TYPE}/0").draining


def test_delete_without_force_releases_a_bindable_instance(ctx, account, fleet):
    instance_id = bindable(ctx, account.account_id)
    delete_ei_instance(ctx, account.account_id, REGION, instance_id, force=False, request_id="req-delete")
    assert status_of(ctx, instance_id) == Status.RELEASED


def test_each_familys_actions_refuse_the_other_familys_instances(ctx, account, fleet):
    ei = bindable(ctx, account.account_id)
    eai = create_instance(ctx, account.account_id, CreateRequest(region_id=REGION, instance_type=TYPE), request_id="r")
    step(ctx, eai, Event.SLICE_READY)
    refusals = [
        lambda: attach_instance(ctx, account.account_id, REGION, ei, VM, request_id="r"),
        lambda: detach_instance(ctx, account.account_id, REGION, ei, request_id="r"),
        lambda: delete_instance(ctx, account.account_id, REGION, ei, force=True, request_id="r"),
        lambda: delete_instance_and_client(ctx, account.account_id, REGION, ei, None, request_id="r"),
        lambda: bind(ctx, account.account_id, eai),
        lambda: start_ei_instance(ctx, account.account_id, REGION, eai, request_id="r"),
        lambda: stop_ei_instance(ctx, account.account_id, REGION, eai, request_id="r"),
        lambda: unbind_ei_instance(ctx, account.account_id, REGION, eai, request_id="r"),
        lambda: delete_ei_instance(ctx, account.account_id, REGION, eai, force=True, request_id="r"),
    ]
    for refuse in refusals:
        with pytest.raises(WrongInstanceFamily):
            refuse()
    assert (status_of(ctx, ei), status_of(ctx, eai)) == (Status.BINDABLE, Status.AVAILABLE)


def test_binding_is_one_to_one_across_both_families(ctx, account, fleet):
    eai = create_instance(ctx, account.account_id, CreateRequest(region_id=REGION, instance_type=TYPE), request_id="r")
    step(ctx, eai, Event.SLICE_READY)
    attach_instance(ctx, account.account_id, REGION, eai, VM, request_id="r")
    ei = bindable(ctx, account.account_id)

    with pytest.raises(ClientAlreadyBound):
        bind(ctx, account.account_id, ei, client=VM)
    bind(ctx, account.account_id, ei, client=VM2)
    with pytest.raises(ClientAlreadyBound):  # and the EI binding holds VM2 against AttachEai
        other = create_instance(ctx, account.account_id, CreateRequest(region_id=REGION, instance_type=TYPE),
                                request_id="r2")
        step(ctx, other, Event.SLICE_READY)
        attach_instance(ctx, account.account_id, REGION, other, VM2, request_id="r")


def test_start_is_refused_while_the_bound_vm_is_offline(ctx, account, fleet):
    instance_id = bound(ctx, account.account_id)
    with ctx.db.write() as session:
        session.get(ClientInstance, VM).online = False
    with pytest.raises(ClientNotFound):
        start_ei_instance(ctx, account.account_id, REGION, instance_id, request_id="r")
    assert status_of(ctx, instance_id) == Status.BOUND


def test_a_lost_channel_makes_an_in_use_ei_instance_unavailable_then_bindable_again(ctx, account, fleet):
    instance_id, attachment_id = started(ctx, account.account_id)

    apply_vm_report(ctx, VM, ChannelReport(attachment_id, ChannelState.BROKEN, "gateway refused"))

    instance = row(ctx, instance_id)
    assert (instance.status, instance.client_instance_id) == (Status.UNAVAILABLE, None)
    apply_node_report(ctx, "node-1", [SliceReport(slice_of(ctx, instance_id), SlicePhase.READY, WorkerState.NONE,
                                                  instance_id=instance_id, memory_free=True)])
    assert status_of(ctx, instance_id) == Status.BINDABLE  # its own family's status, never Available


@pytest.mark.parametrize("state", ["creating", "bindable", "bound", "in_use", "starting", "stopping"])
def test_a_lost_node_makes_its_ei_instances_unavailable_unbound(ctx, clock, account, fleet, state):
    instance_id = instance_in(ctx, account.account_id, state)
    with ctx.db.write() as session:
        session.get(Node, "node-1").heartbeat_deadline_us = clock.now_us() - 3_600_000_000

    expire_heartbeats(ctx)

    instance = row(ctx, instance_id)
    assert (instance.status, instance.client_instance_id, instance.attachment_id) == (Status.UNAVAILABLE, None, None)


def test_stuck_start_falls_back_to_bound_keeping_the_binding(ctx, clock, account, fleet):
    instance_id = instance_in(ctx, account.account_id, "starting")
    attachment_id = row(ctx, instance_id).attachment_id
    clock.advance(ctx.settings.lifecycle.attaching_deadline_s + 1)

    assert (instance_id, Event.ATTACH_TIMEOUT.value) in time_out_stuck_instances(ctx)

    assert (status_of(ctx, instance_id), row(ctx, instance_id).client_instance_id) == (Status.BOUND, VM)
    assert attachment(ctx, attachment_id).ended_us is not None


def test_stuck_stop_becomes_unavailable_not_bound(ctx, clock, account, fleet):
    instance_id = instance_in(ctx, account.account_id, "stopping")
    clock.advance(ctx.settings.lifecycle.detaching_deadline_s + 1)

    assert (instance_id, Event.DETACH_TIMEOUT.value) in time_out_stuck_instances(ctx)

    assert status_of(ctx, instance_id) == Status.UNAVAILABLE  # memory never confirmed free: not handed out


def test_stuck_creating_becomes_unavailable(ctx, clock, account, fleet):
    instance_id = create_ei(ctx, account.account_id)
    clock.advance(ctx.settings.lifecycle.starting_deadline_s + 1)
    assert (instance_id, Event.START_TIMEOUT.value) in time_out_stuck_instances(ctx)
    assert status_of(ctx, instance_id) == Status.UNAVAILABLE


def test_the_ledger_charges_an_ei_instance_what_its_log_says(ctx, clock, account, fleet):
    instance_id = bindable(ctx, account.account_id)
    clock.advance(600)
    bind(ctx, account.account_id, instance_id)
    clock.advance(600)
    start_ei_instance(ctx, account.account_id, REGION, instance_id, request_id="r")
    step(ctx, instance_id, Event.ATTACH_READY)
    clock.advance(1200)
    stop_ei_instance(ctx, account.account_id, REGION, instance_id, request_id="r")
    step(ctx, instance_id, Event.DETACH_DONE)
    clock.advance(3 * 3600)

    run = close_hours(ctx)

    with ctx.db.read() as session:
        rows = list(session.exec(select(Transition).where(Transition.instance_id == instance_id)))
        balance = session.get(Account, account.account_id).balance_micro
    expected = hourly_items(rows, price_table(ctx.settings), run.since_us, run.until_us)
    assert [(i.hour_start_us, i.billed_us, i.amount_micro) for i in run.items] == \
        [(i.hour_start_us, i.billed_us, i.amount_micro) for i in expected]
    price = ctx.settings.instance_types[TYPE].price_per_hour
    reserve_us = 1200 * 1_000_000 + run.until_us - rows[-1].at_us  # Bindable, Bound, then Bound again once stopped
    exact_micro = (Fraction(reserve_us, 5) + 1200 * 1_000_000) * Fraction(price) / 3600  # InUse 1200 s at the full price
    assert abs(sum(i.amount_micro for i in run.items) - exact_micro) <= len(run.items)
    assert balance == to_micro(1000) - run.charged_micro


def test_two_concurrent_attaches_by_type_bind_two_different_instances(ctx, account, fleet):
    first, second = bindable(ctx, account.account_id), bindable(ctx, account.account_id)
    results: dict[str, object] = {}
    barrier = threading.Barrier(2)

    def attach_by_type(client: str) -> None:
        barrier.wait()
        try:
            results[client] = bind(ctx, account.account_id, client=client, instance_type=TYPE)
        except Exception as error:  # noqa: BLE001 - reported below
            results[client] = error

    threads = [threading.Thread(target=attach_by_type, args=(vm,)) for vm in (VM, VM2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert sorted(map(str, results.values())) == sorted([first, second]), results
    assert {row(ctx, first).client_instance_id, row(ctx, second).client_instance_id} == {VM, VM2}


def test_create_ei_with_a_client_token_is_idempotent_and_apart_from_create_eai_tokens(ctx, account, fleet):
    def create(category: str, name: str = "") -> str:
        request = CreateRequest(region_id=REGION, instance_type=TYPE, vswitch_id="vsw-1", name=name,
                                client_token="tok-1", category=category)
        return create_instance(ctx, account.account_id, request, request_id="r")

    first = create(CATEGORY_EI)
    assert create(CATEGORY_EI) == first  # the same request again: the same instance, nothing new
    eai = create("eais")  # the same token for CreateEai is another request
    assert eai != first and row(ctx, eai).category == "eais" and row(ctx, first).category == "ei"
    with pytest.raises(IdempotentParameterMismatch):
        create(CATEGORY_EI, name="other")


def test_attach_by_type_skips_bindable_instances_the_client_cannot_reach(ctx, clock, account, fleet):
    add_client(ctx, account.account_id, "i-other-net", vpc="vpc-2", vswitch="vsw-2")
    elsewhere = create_instance(ctx, account.account_id, CreateRequest(
        region_id=REGION, instance_type=TYPE, vswitch_id="vsw-2", category=CATEGORY_EI), request_id="r")
    step(ctx, elsewhere, Event.SLICE_READY)
    clock.advance(1)
    here = bindable(ctx, account.account_id)  # newer, but in the client's vSwitch

    assert bind(ctx, account.account_id, instance_type=TYPE) == here
    with pytest.raises(InstanceNotFound, match="vsw-1"):
        bind(ctx, account.account_id, client=VM2, instance_type=TYPE)
    assert status_of(ctx, elsewhere) == Status.BINDABLE
