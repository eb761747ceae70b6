"""The operators' admin REST API on the live server."""

from __future__ import annotations

import httpx
import pytest

from controller.key_store import admin_token
from controller.states import Event
from tests.api.sdk_capture import v3_call
from tests.fleet_rows import add_client, add_node
from tests.rules.lifecycle_steps import step


@pytest.fixture
def admin(live_api):
    token = admin_token(live_api.ctx.settings)
    return httpx.Client(base_url=f"http://{live_api.endpoint}/admin", headers={"Authorization": f"Bearer {token}"})


@pytest.mark.sqlite_only
def test_admin_routes_need_the_admin_token(live_api):
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        answer = httpx.get(f"http://{live_api.endpoint}/admin/v1/accounts", headers=headers)
        assert answer.status_code == 401


@pytest.mark.sqlite_only
def test_openapi_document_describes_the_admin_routes(live_api):
    spec = httpx.get(f"http://{live_api.endpoint}/admin/openapi.json").json()
    assert {"/v1/accounts", "/v1/nodes", "/v1/client-instances", "/v1/bills",
            "/v1/instances/{instance_id}/transitions"} <= set(spec["paths"])


def test_operator_sees_accounts_nodes_clients_and_transitions(live_api, admin, account):
    add_node(live_api.ctx, slices={"eais.ei-a6.2xlarge": 2})
    add_client(live_api.ctx, account.account_id, "i-vm1")
    instance_id = v3_call(live_api.v3(account), "CreateEai", {"RegionId": "cn-hangzhou", "InstanceType": "eais.ei-a6.2xlarge"})[
        "body"]["ElasticAcceleratedInstanceId"]
    step(live_api.ctx, instance_id, Event.SLICE_READY)
    accounts = admin.get("/v1/accounts").json()
    nodes = admin.get("/v1/nodes").json()
    clients = admin.get("/v1/client-instances").json()
    log = admin.get(f"/v1/instances/{instance_id}/transitions").json()
    assert [a["name"] for a in accounts] == ["alice"] and accounts[0]["in_debt"] is False
    assert (nodes[0]["slices_total"], nodes[0]["slices_free"]) == (2, 1)
    assert clients[0]["client_instance_id"] == "i-vm1"
    assert [(t["from_status"], t["to_status"]) for t in log] == [(None, "Pending"), ("Pending", "Available")]
    assert log[0]["request_id"]


def test_operator_creates_and_tops_up_an_account(live_api, admin):
    made = admin.post("/v1/accounts", json={"name": "erin", "balance": "50", "real_name_verified": True})
    assert made.status_code == 201
    topped = admin.post(f"/v1/accounts/{made.json()['AccountId']}/top-up", json={"amount": "75.5"}).json()
    assert topped["balance"] == "125.500000"
    bill = admin.get(f"/v1/accounts/{made.json()['AccountId']}/bill").json()
    assert bill["Accounts"][0]["Balance"] == "125.500000"
    assert admin.post("/v1/accounts", json={"name": "erin"}).status_code == 409
    assert admin.get("/v1/accounts/acc-none/bill").status_code == 404
