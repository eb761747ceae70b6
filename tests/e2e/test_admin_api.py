"""The operators' admin REST API on the live server."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.errors import ERROR_TABLE
from controller.key_store import admin_token
from controller.states import Event
from tests.api.sdk_capture import v3_call
from tests.controller_process import REPO_ROOT
from tests.fleet_rows import add_client, add_node
from tests.rules.lifecycle_steps import step

KNOWN_CODES = {spec.code for spec in ERROR_TABLE.values()}


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


def test_admin_errors_carry_the_eais_code_in_one_shape(live_api, admin):
    nobody = httpx.get(f"http://{live_api.endpoint}/admin/v1/accounts")
    no_account = admin.post("/v1/accounts/acc-none/top-up", json={"amount": "1"})
    no_instance = admin.get("/v1/instances/eais-none/transitions")
    no_name = admin.post("/v1/accounts", json={"balance": "1"})
    bad_limit = admin.get("/v1/bills", params={"limit": 0})
    bad_id = admin.get("/v1/accounts/acc%00x/bill")

    answers = [nobody, no_account, no_instance, no_name, bad_limit, bad_id]
    assert [(a.status_code, a.json()["code"]) for a in answers] == [
        (401, "InvalidAdminToken"), (404, "InvalidAccountId.NotFound"), (404, "InvalidParameter.InstanceId.NotFound"),
        (400, "MissingParameter.Name"), (400, "InvalidParameter.Limit"), (400, "InvalidParameter.AccountId")]
    assert all(set(a.json()) == {"code", "message", "request_id"} for a in answers)
    assert all(a.json()["request_id"] == a.headers["x-acs-request-id"] for a in answers)
    assert nobody.headers["www-authenticate"] == "Bearer"


def test_a_body_that_is_not_json_is_an_invalid_parameter(admin):
    answer = admin.post("/v1/accounts", content=b"{name: ", headers={"content-type": "application/json"})

    assert (answer.status_code, answer.json()["code"]) == (400, "InvalidParameter.Body")


@pytest.mark.sqlite_only
def test_openapi_documents_the_error_body_and_no_422(live_api):
    spec = httpx.get(f"http://{live_api.endpoint}/admin/openapi.json").json()

    top_up = spec["paths"]["/v1/accounts/{account_id}/top-up"]["post"]["responses"]
    assert "422" not in top_up and top_up["400"]["content"]["application/json"]["schema"]["$ref"].endswith("/AdminError")
    assert {"401", "404", "409", "503"} <= set(top_up)


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20),
              st.sampled_from(["1e309", "NaN", "-Infinity", "1e-7", "9" * 40, "0x10", " 12 ", "1_000"])),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=6)
raw_numbers = st.sampled_from(["1e309", "-1e309", "1e999999", "10000000000000000000", "-0", "1.0e-400", "NaN", "Infinity"])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.one_of(st.text(max_size=140), json_values), balance=json_values, amount=json_values,
       raw=raw_numbers)
def test_hostile_admin_bodies_get_a_documented_code_and_never_a_server_error(admin, name, balance, amount, raw):
    created = admin.post("/v1/accounts", json={"name": name, "balance": balance})
    account_id = created.json().get("AccountId", "acc-none") if created.status_code == 201 else "acc-none"
    topped = admin.post(f"/v1/accounts/{account_id}/top-up", json={"amount": amount})
    raw_top_up = admin.post(f"/v1/accounts/{account_id}/top-up", content=f'{{"amount": {raw}}}',
                            headers={"content-type": "application/json"})

    for answer in (created, topped, raw_top_up):
        assert answer.status_code < 500, answer.text
        if answer.status_code >= 400:
            code = answer.json()["code"]
            assert any(code == known or code.startswith(known + ".") for known in KNOWN_CODES), code


@pytest.mark.parametrize("raw", ["1e309", '"1e30"', str(10**19), "-1e309", '"NaN"', '"Infinity"', "0.1234567", "true",
                                 '"twelve"', "[]"])
def test_an_amount_that_cannot_be_money_is_refused_and_the_balance_stays(admin, raw):
    account_id = admin.post("/v1/accounts", json={"name": "erin", "balance": "50"}).json()["AccountId"]

    topped = admin.post(f"/v1/accounts/{account_id}/top-up", content=f'{{"amount": {raw}}}',
                        headers={"content-type": "application/json"})
    created = admin.post("/v1/accounts", content=f'{{"name": "frank", "balance": {raw}}}',
                         headers={"content-type": "application/json"})

    assert (topped.status_code, topped.json()["code"]) == (400, "InvalidParameter.Amount")
    assert (created.status_code, created.json()["code"]) == (400, "InvalidParameter.Balance")
    assert [(a["name"], a["balance"]) for a in admin.get("/v1/accounts").json()] == [("erin", "50.000000")]


def test_a_top_up_past_the_largest_balance_is_refused(admin):
    account_id = admin.post("/v1/accounts", json={"name": "erin", "balance": "999999999999"}).json()["AccountId"]

    at_the_top = admin.post(f"/v1/accounts/{account_id}/top-up", json={"amount": "1"})
    past_it = admin.post(f"/v1/accounts/{account_id}/top-up", json={"amount": 0.5})

    assert at_the_top.json()["balance"] == "1000000000000.000000"
    assert (past_it.status_code, past_it.json()["code"]) == (400, "InvalidParameter.Amount")
    assert admin.get(f"/v1/accounts/{account_id}/bill").json()["Accounts"][0]["Balance"] == "1000000000000.000000"


@pytest.mark.sqlite_only
@pytest.mark.parametrize("balance", ["1e30", "1e309", "nan", "-Infinity", "0.0000001"])
def test_the_cli_refuses_the_same_amounts_with_the_same_message(tmp_path, balance):
    cli = [sys.executable, "-m", "controller.cli", "account"]
    where = ["--db", f"sqlite:///{tmp_path}/c.db", "--state-dir", str(tmp_path / "state")]

    done = subprocess.run([*cli, "create", *where, "--name", "grace", f"--balance={balance}"], check=False,
                          capture_output=True, text=True, timeout=120, cwd=REPO_ROOT)
    listed = subprocess.run([*cli, "list", *where], check=False, capture_output=True, text=True, timeout=120, cwd=REPO_ROOT)

    assert done.returncode == 1 and "Balance" in done.stderr and "Traceback" not in done.stderr
    assert json.loads(listed.stdout) == []
