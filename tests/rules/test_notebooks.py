"""Notebook rules (CreateEaiJupyter, StartEaiJupyter, StopEaiJupyter, DeleteEai of a notebook) with the reports
the agents would send, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from sqlmodel import select

from controller.agent_link.actual_state import ChannelReport, ChannelState, WorkerState, apply_vm_report
from controller.agent_link.desired_state import vm_desired_state
from controller.agent_link.notebook_reports import ServerState
from controller.billing import hourly_items
from controller.binding import attach_instance, detach_instance
from controller.clock import US_PER_S
from controller.errors import ClientNotFound, InstanceNotFound, InvalidEaiStatus, InvalidInstanceType, NoPermission, NoResources
from controller.notebooks import create_notebook, start_notebook, stop_notebook
from controller.provisioning import CreateRequest, create_instance
from controller.queries import InstanceFilter, describe_instances
from controller.reconciler import time_out_stuck_instances
from controller.release import delete_instance
from controller.states import Status
from controller.tables import ClientInstance, Instance, Notebook, Transition
from tests.fleet_rows import REGION, add_client, add_node
from tests.rules.notebook_steps import URL, let_go, row, run_to_in_use, server, slice_ready

TYPE = "eais.ei-a6.2xlarge"


@pytest.fixture
def fleet(ctx, account):
    add_node(ctx, slices={TYPE: 3, "eais.ei-a6.xlarge": 1})
    add_client(ctx, account.account_id, "i-vm1")


def new_notebook(ctx, account_id, **kw) -> str:
    request = CreateRequest(region_id=REGION, instance_type=kw.pop("instance_type", TYPE), vswitch_id="vsw-1",
                            security_group_id="sg-1", category="jupyter", **kw)
    return create_notebook(ctx, account_id, request, request_id="req")


def notebook_row(ctx, instance_id) -> Notebook | None:
    with ctx.db.read() as session:
        return session.get(Notebook, instance_id)


def transitions(ctx, instance_id) -> list[Transition]:
    with ctx.db.read() as session:
        return list(session.exec(select(Transition).where(Transition.instance_id == instance_id)
                                 .order_by(Transition.id)).all())


def jupyter_url(ctx, account_id, instance_id) -> str:
    page = describe_instances(ctx, account_id, InstanceFilter(region_id=REGION, instance_ids=[instance_id]), 1, 20)
    return page.views[0].jupyter_url if page.views else "(not listed)"


def test_create_makes_a_jupyter_instance_hosted_by_a_free_vm_of_the_vswitch(ctx, account, fleet):
    instance_id = new_notebook(ctx, account.account_id, environment=(("A", "1"),))
    instance, notebook = row(ctx, instance_id), notebook_row(ctx, instance_id)
    assert (instance.category, instance.status, instance.instance_type) == ("jupyter", Status.PENDING, TYPE)
    assert notebook.client_instance_id == "i-vm1" and json.loads(notebook.environment_json) == [["A", "1"]]
    assert ctx.box.open(notebook.token_ciphertext)


def test_only_the_2xlarge_type_runs_a_notebook(ctx, account, fleet):
    with pytest.raises(InvalidInstanceType, match="eais.ei-a6.2xlarge"):
        new_notebook(ctx, account.account_id, instance_type="eais.ei-a6.xlarge")


def test_without_a_free_vm_in_the_vswitch_create_answers_no_resources_and_takes_no_slice(ctx, account, fleet):
    busy = create_instance(ctx, account.account_id, CreateRequest(region_id=REGION, instance_type=TYPE), request_id="r")
    slice_ready(ctx, busy)
    attach_instance(ctx, account.account_id, REGION, busy, "i-vm1", request_id="r")
    with pytest.raises(NoResources, match="vsw-1"):
        new_notebook(ctx, account.account_id)
    with ctx.db.read() as session:
        assert len(session.exec(select(Instance)).all()) == 1


def test_a_vm_hosts_one_notebook(ctx, account, fleet):
    new_notebook(ctx, account.account_id)
    with pytest.raises(NoResources):
        new_notebook(ctx, account.account_id)


def test_slice_ready_binds_the_notebook_vm_and_in_use_waits_for_the_server(ctx, account, fleet):
    instance_id = new_notebook(ctx, account.account_id)
    slice_ready(ctx, instance_id)
    assert (row(ctx, instance_id).status, row(ctx, instance_id).client_instance_id) == (Status.ATTACHING, "i-vm1")
    attachment_id = row(ctx, instance_id).attachment_id
    slice_ready(ctx, instance_id, worker=WorkerState.READY, attachment_id=attachment_id)
    apply_vm_report(ctx, "i-vm1", ChannelReport(attachment_id, ChannelState.PROVEN))
    assert row(ctx, instance_id).status == Status.ATTACHING  # worker and channel ready, server not yet
    server(ctx, instance_id)
    assert row(ctx, instance_id).status == Status.IN_USE


def test_a_server_ready_first_is_remembered_until_worker_and_channel_are_ready(ctx, account, fleet):
    instance_id = new_notebook(ctx, account.account_id)
    run_to_in_use(ctx, instance_id, server_first=True)
    assert row(ctx, instance_id).status == Status.IN_USE


def test_a_server_that_fails_to_start_fails_the_attach_with_the_vm_reason(ctx, account, fleet):
    instance_id = new_notebook(ctx, account.account_id)
    slice_ready(ctx, instance_id)
    server(ctx, instance_id, ServerState.FAILED)
    assert row(ctx, instance_id).status == Status.AVAILABLE
    last = transitions(ctx, instance_id)[-1]
    assert "could not start the notebook server: boom" in last.reason


def test_jupyter_url_carries_the_token_only_while_in_use_and_only_for_the_owner(ctx, account, other_account, fleet):
    instance_id = new_notebook(ctx, account.account_id)
    slice_ready(ctx, instance_id)
    assert jupyter_url(ctx, account.account_id, instance_id) == ""
    run_to_in_use(ctx, instance_id)
    token = ctx.box.open(notebook_row(ctx, instance_id).token_ciphertext)
    assert jupyter_url(ctx, account.account_id, instance_id) == f"{URL}?token={token}"
    assert jupyter_url(ctx, other_account.account_id, instance_id) == "(not listed)"
    stop_notebook(ctx, account.account_id, REGION, instance_id, request_id="r")
    assert jupyter_url(ctx, account.account_id, instance_id) == ""


def test_stop_releases_the_worker_and_bills_stopped_at_the_reserve_share_then_start_binds_the_same_vm(ctx, account, fleet, clock):
    instance_id = new_notebook(ctx, account.account_id)
    run_to_in_use(ctx, instance_id)
    clock.advance(60)
    stop_notebook(ctx, account.account_id, REGION, instance_id, request_id="r")
    assert row(ctx, instance_id).status == Status.STOPPING
    assert vm_desired_state(ctx, "i-vm1").notebooks[0].serve is False
    clock.advance(1)
    let_go(ctx, instance_id)
    stopped = row(ctx, instance_id)
    assert (stopped.status, stopped.client_instance_id, stopped.slice_id is not None) == (Status.STOPPED, None, True)
    clock.advance(3600)
    log = transitions(ctx, instance_id)
    stopped_hour = hourly_items(log, {TYPE: Decimal("12")}, log[-1].at_us, log[-1].at_us + 3600 * US_PER_S)
    assert sum(i.billed_us for i in stopped_hour) == 3600 * US_PER_S
    assert abs(sum(i.amount_micro for i in stopped_hour) - 2_400_000) <= 1  # 1/5 of 12 CNY/h (rounded per item)
    start_notebook(ctx, account.account_id, REGION, instance_id, request_id="r")
    assert (row(ctx, instance_id).status, row(ctx, instance_id).client_instance_id) == (Status.ATTACHING, "i-vm1")
    run_to_in_use(ctx, instance_id)
    assert row(ctx, instance_id).status == Status.IN_USE


def test_start_and_stop_repeated_change_nothing(ctx, account, fleet):
    instance_id = new_notebook(ctx, account.account_id)
    run_to_in_use(ctx, instance_id)
    start_notebook(ctx, account.account_id, REGION, instance_id, request_id="r")
    assert row(ctx, instance_id).status == Status.IN_USE
    stop_notebook(ctx, account.account_id, REGION, instance_id, request_id="r")
    stop_notebook(ctx, account.account_id, REGION, instance_id, request_id="r")
    assert row(ctx, instance_id).status == Status.STOPPING


def test_a_notebook_whose_start_failed_can_be_stopped_at_once(ctx, account, fleet):
    instance_id = new_notebook(ctx, account.account_id)
    slice_ready(ctx, instance_id)
    server(ctx, instance_id, ServerState.FAILED)
    stop_notebook(ctx, account.account_id, REGION, instance_id, request_id="r")
    assert row(ctx, instance_id).status == Status.STOPPED


def test_start_with_the_notebook_vm_offline_names_the_vm(ctx, account, fleet):
    instance_id = new_notebook(ctx, account.account_id)
    run_to_in_use(ctx, instance_id)
    stop_notebook(ctx, account.account_id, REGION, instance_id, request_id="r")
    let_go(ctx, instance_id)
    with ctx.db.write() as session:
        session.get(ClientInstance, "i-vm1").online = False
    with pytest.raises(ClientNotFound, match="i-vm1"):
        start_notebook(ctx, account.account_id, REGION, instance_id, request_id="r")


def test_attach_and_detach_refuse_a_notebook_and_start_stop_refuse_an_ordinary_instance(ctx, account, fleet):
    notebook_id = new_notebook(ctx, account.account_id)
    run_to_in_use(ctx, notebook_id)
    with pytest.raises(InvalidEaiStatus, match="StopEaiJupyter"):
        detach_instance(ctx, account.account_id, REGION, notebook_id, request_id="r")
    plain = create_instance(ctx, account.account_id, CreateRequest(region_id=REGION, instance_type=TYPE), request_id="r")
    for action in (start_notebook, stop_notebook):
        with pytest.raises(InvalidEaiStatus, match="not a notebook"):
            action(ctx, account.account_id, REGION, plain, request_id="r")


def test_another_account_cannot_start_stop_or_delete_a_notebook(ctx, account, other_account, fleet):
    instance_id = new_notebook(ctx, account.account_id)
    for action in (start_notebook, stop_notebook):
        with pytest.raises(InstanceNotFound):
            action(ctx, other_account.account_id, REGION, instance_id, request_id="r")


def test_a_vm_cannot_report_another_vms_notebook(ctx, account, fleet):
    add_client(ctx, account.account_id, "i-vm2")
    instance_id = new_notebook(ctx, account.account_id)
    slice_ready(ctx, instance_id)
    with pytest.raises(NoPermission):
        server(ctx, instance_id, vm="i-vm2")


def test_delete_removes_the_notebook_and_its_token_and_the_vm_stops_listing_it(ctx, account, fleet):
    instance_id = new_notebook(ctx, account.account_id)
    run_to_in_use(ctx, instance_id)
    desired = vm_desired_state(ctx, "i-vm1").notebooks
    assert [(n.instance_id, n.serve, bool(n.token)) for n in desired] == [(instance_id, True, True)]
    delete_instance(ctx, account.account_id, REGION, instance_id, force=False, request_id="r")
    assert notebook_row(ctx, instance_id) is None and row(ctx, instance_id).status == Status.RELEASED
    assert vm_desired_state(ctx, "i-vm1").notebooks == ()


def test_a_stopping_notebook_needs_force_to_be_deleted_and_a_stopped_one_does_not(ctx, account, fleet):
    instance_id = new_notebook(ctx, account.account_id)
    run_to_in_use(ctx, instance_id)
    stop_notebook(ctx, account.account_id, REGION, instance_id, request_id="r")
    with pytest.raises(InvalidEaiStatus, match="Force"):
        delete_instance(ctx, account.account_id, REGION, instance_id, force=False, request_id="r")
    let_go(ctx, instance_id)
    delete_instance(ctx, account.account_id, REGION, instance_id, force=False, request_id="r")
    assert row(ctx, instance_id).status == Status.RELEASED


def test_the_same_client_token_returns_the_same_notebook(ctx, account, fleet):
    first = new_notebook(ctx, account.account_id, client_token="nb-1")
    assert new_notebook(ctx, account.account_id, client_token="nb-1") == first


def test_a_notebook_stuck_stopping_times_out_to_unavailable_unbilled(ctx, account, fleet, clock):
    instance_id = new_notebook(ctx, account.account_id)
    run_to_in_use(ctx, instance_id)
    stop_notebook(ctx, account.account_id, REGION, instance_id, request_id="r")
    clock.advance(ctx.settings.lifecycle.stopping_deadline_s + 1)
    time_out_stuck_instances(ctx)
    assert row(ctx, instance_id).status == Status.UNAVAILABLE
    assert "stuck in Stopping" in transitions(ctx, instance_id)[-1].reason
