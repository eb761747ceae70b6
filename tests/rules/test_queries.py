from __future__ import annotations

from sqlalchemy import func, select

from controller.provisioning import CreateRequest, create_instance
from controller.queries import InstanceFilter, describe_instances
from controller.release import delete_instance
from controller.states import Event
from controller.tables import Instance
from tests.fleet_rows import REGION, add_node
from tests.rules.lifecycle_steps import step

TYPE = "eais.ei-a6.2xlarge"


def test_unfiltered_total_count_matches_the_rows_after_creates_and_releases(ctx, account, other_account):
    add_node(ctx, slices={TYPE: 8})
    mine = [create_instance(ctx, account.account_id, CreateRequest(region_id=REGION, instance_type=TYPE), request_id="r")
            for _ in range(5)]
    create_instance(ctx, other_account.account_id, CreateRequest(region_id=REGION, instance_type=TYPE), request_id="r")
    for instance_id in mine[:2]:
        step(ctx, instance_id, Event.SLICE_READY)
        delete_instance(ctx, account.account_id, REGION, instance_id, force=False, request_id="r")
    page = describe_instances(ctx, account.account_id, InstanceFilter(region_id=REGION), 1, 2)
    with ctx.db.read() as session:
        rows = session.execute(select(func.count()).select_from(Instance).where(
            Instance.account_id == account.account_id, Instance.status != "Released")).scalar_one()
    assert page.total == rows == 3
    assert len(page.views) == 2


def test_pages_are_newest_first_and_do_not_overlap(ctx, account, clock):
    add_node(ctx, slices={TYPE: 5})
    made = []
    for _ in range(5):
        made.append(create_instance(ctx, account.account_id, CreateRequest(region_id=REGION, instance_type=TYPE), request_id="r"))
        clock.advance(1)
    pages = [describe_instances(ctx, account.account_id, InstanceFilter(region_id=REGION), n, 2) for n in (1, 2, 3)]
    listed = [view.instance.id for page in pages for view in page.views]
    assert listed == list(reversed(made))


def test_page_past_the_end_is_empty_with_the_true_total(ctx, account):
    add_node(ctx, slices={TYPE: 1})
    create_instance(ctx, account.account_id, CreateRequest(region_id=REGION, instance_type=TYPE), request_id="r")
    page = describe_instances(ctx, account.account_id, InstanceFilter(region_id=REGION), 9, 20)
    assert (page.views, page.total) == ([], 1)
