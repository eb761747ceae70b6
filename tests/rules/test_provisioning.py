from __future__ import annotations

from decimal import Decimal

import pytest
from sqlmodel import select

from controller.accounts import create_account
from controller.errors import (
    IdempotentParameterMismatch,
    InDebt,
    InvalidInstanceType,
    InvalidRegion,
    NoPermission,
    NoResources,
    VSwitchNotFound,
)
from controller.provisioning import CreateRequest, create_instance
from controller.states import Status
from controller.tables import Instance, Slice, Transition
from tests.fleet_rows import REGION, add_client, add_node

TYPE = "eais.ei-a6.2xlarge"


def create(ctx, account_id, **kw):
    return create_instance(ctx, account_id, CreateRequest(region_id=kw.pop("region_id", REGION),
                                                          instance_type=kw.pop("instance_type", TYPE), **kw),
                           request_id="req")


def test_create_reserves_a_slice_and_logs_the_creation(ctx, account):
    add_node(ctx)
    instance_id = create(ctx, account.account_id, name="web-1")
    with ctx.db.read() as session:
        instance = session.get(Instance, instance_id)
        claimed = session.exec(select(Slice).where(Slice.instance_id == instance_id)).one()
        log = session.exec(select(Transition).where(Transition.instance_id == instance_id)).all()
    assert instance.status == Status.PENDING
    assert instance.slice_id == claimed.id
    assert [(t.from_status, t.to_status, t.event) for t in log] == [(None, "Pending", "create")]


def test_create_in_an_unserved_region_is_refused(ctx, account):
    with pytest.raises(InvalidRegion):
        create(ctx, account.account_id, region_id="us-west-1")


def test_create_with_an_unknown_type_is_refused(ctx, account):
    add_node(ctx)
    with pytest.raises(InvalidInstanceType):
        create(ctx, account.account_id, instance_type="eais.ei-a6.huge")


def test_create_without_free_slices_is_refused_with_no_resources(ctx, account):
    add_node(ctx, slices={TYPE: 1})
    create(ctx, account.account_id)
    with pytest.raises(NoResources):
        create(ctx, account.account_id)


def test_create_only_uses_online_nodes_in_the_region(ctx, account):
    add_node(ctx, "node-off", online=False)
    add_node(ctx, "node-bj", region="cn-beijing", zone="cn-beijing-a")
    with pytest.raises(NoResources):
        create(ctx, account.account_id)


def test_unverified_account_cannot_create(ctx):
    add_node(ctx)
    unverified = create_account(ctx, "bob", balance=Decimal(500), real_name_verified=False)
    with pytest.raises(NoPermission):
        create(ctx, unverified.account_id)


@pytest.mark.parametrize("balance", ["99.99", "-5"])
def test_account_below_the_minimum_balance_cannot_create(ctx, balance):
    add_node(ctx)
    poor = create_account(ctx, "carol", balance=Decimal(balance), real_name_verified=True)
    with pytest.raises(InDebt):
        create(ctx, poor.account_id)


def test_refused_create_leaves_no_trace(ctx):
    add_node(ctx)
    poor = create_account(ctx, "dave", balance=Decimal(1), real_name_verified=True)
    with pytest.raises(InDebt):
        create(ctx, poor.account_id)
    with ctx.db.read() as session:
        assert session.exec(select(Instance)).all() == []
        assert session.exec(select(Slice).where(Slice.instance_id.is_not(None))).all() == []


def test_same_client_token_and_parameters_give_the_same_instance(ctx, account):
    add_node(ctx)
    first = create(ctx, account.account_id, client_token="tok-1", name="same")
    second = create(ctx, account.account_id, client_token="tok-1", name="same")
    assert first == second
    with ctx.db.read() as session:
        assert len(session.exec(select(Instance)).all()) == 1


def test_same_client_token_with_other_parameters_is_a_mismatch(ctx, account):
    add_node(ctx)
    create(ctx, account.account_id, client_token="tok-1", name="one")
    with pytest.raises(IdempotentParameterMismatch):
        create(ctx, account.account_id, client_token="tok-1", name="two")


def test_client_tokens_are_per_account(ctx, account, other_account):
    add_node(ctx)
    mine = create(ctx, account.account_id, client_token="tok-1")
    theirs = create(ctx, other_account.account_id, client_token="tok-1")
    assert mine != theirs


def test_vswitch_must_be_one_the_account_uses_in_the_region(ctx, account):
    add_node(ctx)
    add_client(ctx, account.account_id, vpc="vpc-9", vswitch="vsw-9")
    with pytest.raises(VSwitchNotFound):
        create(ctx, account.account_id, vswitch_id="vsw-unknown")
    instance_id = create(ctx, account.account_id, vswitch_id="vsw-9")
    with ctx.db.read() as session:
        assert session.get(Instance, instance_id).vpc_id == "vpc-9"
