from __future__ import annotations

import threading

import pytest
from sqlmodel import select

from controller import binding
from controller.binding import attach_instance, detach_instance
from controller.errors import (
    ClientAlreadyBound,
    ClientForbidden,
    ClientNotFound,
    ClientTooSmall,
    ClientTypeError,
    ClientVpcMismatch,
    ClientVSwitchMismatch,
    EaisError,
    InstanceNotFound,
    InvalidEaiStatus,
)
from controller.provisioning import CreateRequest, create_instance
from controller.states import Event, Status
from controller.tables import Attachment, Instance
from tests.fleet_rows import REGION, add_client, add_node
from tests.rules.lifecycle_steps import status_of, step

TYPE = "eais.ei-a6.2xlarge"


def available_instance(ctx, account_id, **kw) -> str:
    instance_id = create_instance(ctx, account_id, CreateRequest(region_id=REGION, instance_type=TYPE, **kw),
                                  request_id="req")
    step(ctx, instance_id, Event.SLICE_READY)
    return instance_id


@pytest.fixture
def fleet(ctx, account):
    add_node(ctx, slices={TYPE: 4})
    add_client(ctx, account.account_id, "i-vm1")
    add_client(ctx, account.account_id, "i-vm2")


def attach(ctx, account_id, instance_id, client_id):
    attach_instance(ctx, account_id, REGION, instance_id, client_id, request_id="req")


def test_attach_moves_an_available_instance_to_attaching_with_credentials(ctx, account, fleet):
    instance_id = available_instance(ctx, account.account_id)
    attach(ctx, account.account_id, instance_id, "i-vm1")
    with ctx.db.read() as session:
        instance = session.get(Instance, instance_id)
        attachment = session.get(Attachment, instance.attachment_id)
    assert (instance.status, instance.client_instance_id) == (Status.ATTACHING, "i-vm1")
    assert attachment.client_instance_id == "i-vm1" and ctx.box.open(attachment.token_ciphertext)


def test_attach_is_refused_unless_the_instance_is_available(ctx, account, fleet):
    instance_id = create_instance(ctx, account.account_id, CreateRequest(region_id=REGION, instance_type=TYPE),
                                  request_id="req")
    with pytest.raises(InvalidEaiStatus):
        attach(ctx, account.account_id, instance_id, "i-vm1")


def test_a_client_instance_holds_at_most_one_instance(ctx, account, fleet):
    first, second = available_instance(ctx, account.account_id), available_instance(ctx, account.account_id)
    attach(ctx, account.account_id, first, "i-vm1")
    with pytest.raises(ClientAlreadyBound):
        attach(ctx, account.account_id, second, "i-vm1")
    assert status_of(ctx, second) == Status.AVAILABLE


def test_an_instance_binds_to_at_most_one_client(ctx, account, fleet):
    instance_id = available_instance(ctx, account.account_id)
    attach(ctx, account.account_id, instance_id, "i-vm1")
    with pytest.raises(InvalidEaiStatus):
        attach(ctx, account.account_id, instance_id, "i-vm2")


def test_another_accounts_client_is_forbidden(ctx, account, other_account, fleet):
    add_client(ctx, other_account.account_id, "i-theirs")
    instance_id = available_instance(ctx, account.account_id)
    with pytest.raises(ClientForbidden):
        attach(ctx, account.account_id, instance_id, "i-theirs")
    with pytest.raises(ClientForbidden):
        attach(ctx, account.account_id, instance_id, "i-does-not-exist")


def test_another_accounts_instance_is_not_found(ctx, account, other_account, fleet):
    add_client(ctx, other_account.account_id, "i-theirs")
    instance_id = available_instance(ctx, account.account_id)
    with pytest.raises(InstanceNotFound):
        attach(ctx, other_account.account_id, instance_id, "i-theirs")


def test_client_in_another_region_is_refused(ctx, account, fleet):
    add_client(ctx, account.account_id, "i-bj", region="cn-beijing", zone="cn-beijing-a")
    instance_id = available_instance(ctx, account.account_id)
    with pytest.raises(ClientNotFound, match="cn-beijing"):
        attach(ctx, account.account_id, instance_id, "i-bj")


def test_client_in_another_vpc_or_vswitch_is_refused(ctx, account, fleet):
    instance_id = available_instance(ctx, account.account_id, vswitch_id="vsw-1")
    add_client(ctx, account.account_id, "i-vpc2", vpc="vpc-2", vswitch="vsw-1")
    add_client(ctx, account.account_id, "i-vsw2", vpc="vpc-1", vswitch="vsw-2")
    with pytest.raises(ClientVpcMismatch):
        attach(ctx, account.account_id, instance_id, "i-vpc2")
    with pytest.raises(ClientVSwitchMismatch):
        attach(ctx, account.account_id, instance_id, "i-vsw2")


@pytest.mark.parametrize(("vcpu", "memory_mib"), [(0, 4096), (2, 2047)])
def test_client_smaller_than_one_vcpu_and_two_gib_is_refused(ctx, account, fleet, vcpu, memory_mib):
    add_client(ctx, account.account_id, "i-tiny", vcpu=vcpu, memory_mib=memory_mib)
    instance_id = available_instance(ctx, account.account_id)
    with pytest.raises(ClientTooSmall):
        attach(ctx, account.account_id, instance_id, "i-tiny")


def test_client_that_is_not_a_vm_is_refused(ctx, account, fleet):
    add_client(ctx, account.account_id, "i-bare", kind="BareMetal")
    instance_id = available_instance(ctx, account.account_id)
    with pytest.raises(ClientTypeError):
        attach(ctx, account.account_id, instance_id, "i-bare")


def test_detach_needs_in_use_and_keeps_the_binding_until_detached(ctx, account, fleet):
    instance_id = available_instance(ctx, account.account_id)
    with pytest.raises(InvalidEaiStatus):
        detach_instance(ctx, account.account_id, REGION, instance_id, request_id="req")
    attach(ctx, account.account_id, instance_id, "i-vm1")
    step(ctx, instance_id, Event.ATTACH_READY)
    detach_instance(ctx, account.account_id, REGION, instance_id, request_id="req")
    with ctx.db.read() as session:
        instance = session.get(Instance, instance_id)
    assert (instance.status, instance.client_instance_id) == (Status.DETACHING, "i-vm1")
    step(ctx, instance_id, Event.DETACH_DONE)
    with ctx.db.read() as session:
        assert session.get(Instance, instance_id).client_instance_id is None


def _race(calls):
    barrier = threading.Barrier(len(calls))
    outcomes: list[object] = [None] * len(calls)

    def run(index, call):
        barrier.wait()
        try:
            call()
            outcomes[index] = "ok"
        except EaisError as error:
            outcomes[index] = error.code

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def test_concurrent_attaches_of_two_instances_to_one_vm_let_exactly_one_win(ctx, account, fleet):
    for _ in range(5):
        a, b = available_instance(ctx, account.account_id), available_instance(ctx, account.account_id)
        outcomes = _race([lambda a=a: attach(ctx, account.account_id, a, "i-vm1"),
                          lambda b=b: attach(ctx, account.account_id, b, "i-vm1")])
        assert sorted(map(str, outcomes)) == ["InvalidClientInstanceId.AlreadyBound", "ok"]
        winner = a if outcomes[0] == "ok" else b
        step(ctx, winner, Event.ATTACH_FAILED)
        for instance_id in (a, b):
            with ctx.db.write() as session:
                from controller.release import _release

                _release(ctx, session, session.get(Instance, instance_id), reason="cleanup", request_id="r")
        add_node(ctx, f"node-extra-{_}", slices={TYPE: 2})


def test_concurrent_attaches_of_one_instance_to_two_vms_let_exactly_one_win(ctx, account, fleet):
    instance_id = available_instance(ctx, account.account_id)
    outcomes = _race([lambda: attach(ctx, account.account_id, instance_id, "i-vm1"),
                      lambda: attach(ctx, account.account_id, instance_id, "i-vm2")])
    assert sorted(map(str, outcomes)) == ["InvalidEaiStatus", "ok"]
    with ctx.db.read() as session:
        assert len(session.exec(select(Attachment)).all()) == 1


def test_the_database_refuses_a_second_binding_even_without_the_python_check(ctx, account, fleet, monkeypatch):
    first, second = available_instance(ctx, account.account_id), available_instance(ctx, account.account_id)
    attach(ctx, account.account_id, first, "i-vm1")
    monkeypatch.setattr(binding, "refuse_bound_client", lambda session, client_id: None)
    with pytest.raises(ClientAlreadyBound):
        attach(ctx, account.account_id, second, "i-vm1")
    assert status_of(ctx, second) == Status.AVAILABLE
