"""The console's security and isolation over HTTP (no browser): sessions, CSRF, origins, tenants, operators, and
the signed tenant routes."""

from __future__ import annotations

import json
import re

import httpx
import pytest

from controller.clock import FakeClock
from controller.console.sessions import IDLE_S, MAX_S, OPERATOR, TENANT, SessionSeal
from controller.key_store import admin_token
from controller.states import Event
from tests.fleet_rows import add_node
from tests.rules.lifecycle_steps import step

KEY = "x" * 43 + "="


def signed_in(endpoint: str, key) -> tuple[httpx.Client, str]:
    """A browser-like client signed in as ``key``'s account, and its CSRF token."""
    client = httpx.Client(base_url=f"http://{endpoint}", follow_redirects=False)
    form = client.get("/console/sign-in")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)[1]
    answer = client.post("/console/sign-in", data={"csrf_token": token, "access_key_id": key.access_key_id,
                                                   "access_key_secret": key.access_key_secret})
    assert answer.status_code == 303, answer.text
    page = client.get("/console/instances")
    return client, re.search(r'name="csrf-token" content="([^"]+)"', page.text)[1]


def act(client: httpx.Client, csrf: str, action: str, **params: str) -> httpx.Response:
    return client.post(f"/console/api/actions/{action}", data=params, headers={"X-CSRF-Token": csrf})


def test_sessions_end_after_idle_time_or_their_maximum_and_are_bound_to_their_role():
    clock = FakeClock()
    seal = SessionSeal(KEY, clock)
    token = seal.seal(seal.new(TENANT, account_id="acc-1", access_key_id="LTAI1"))
    assert seal.open(token, TENANT).account_id == "acc-1"
    assert seal.open(token, OPERATOR) is None
    assert seal.open(token[:-4] + "AAAA", TENANT) is None
    clock.advance(IDLE_S + 1)
    assert seal.open(token, TENANT) is None
    session = seal.new(TENANT)
    for _ in range(MAX_S // (IDLE_S - 60) + 1):  # kept in use: renewed, until its absolute end
        clock.advance(IDLE_S - 60)
        session = seal.touched(session) or session
    assert seal.open(seal.seal(session), TENANT) is None


def test_csrf_tokens_belong_to_one_session():
    seal = SessionSeal(KEY, FakeClock())
    one, other = seal.new(TENANT), seal.new(TENANT)
    assert seal.csrf_matches(one, seal.csrf_token(one))
    assert not seal.csrf_matches(one, seal.csrf_token(other)) and not seal.csrf_matches(one, "")


@pytest.mark.sqlite_only
def test_changes_without_the_csrf_token_or_from_another_origin_are_refused(live_api, account):
    client, csrf = signed_in(live_api.endpoint, account)
    params = {"RegionId": "cn-hangzhou", "InstanceType": "eais.ei-a6.xlarge"}
    missing = client.post("/console/api/actions/CreateEai", data=params)
    wrong = act(client, "wrong", "CreateEai", **params)
    elsewhere = client.post("/console/api/actions/CreateEai", data=params,
                            headers={"X-CSRF-Token": csrf, "Origin": "http://evil.example"})
    for answer in (missing, wrong, elsewhere):
        assert (answer.status_code, answer.json()["Code"]) == (400, "InvalidParameter.CsrfToken")
    assert "InvalidEaiStatus" not in client.get("/console/instances").text
    assert "eais-" not in client.get("/console/instances/rows?RegionId=cn-hangzhou").text


@pytest.mark.sqlite_only
def test_sign_in_needs_its_own_form_and_pages_carry_security_headers(live_api, account):
    bare = httpx.post(f"http://{live_api.endpoint}/console/sign-in",
                      data={"access_key_id": account.access_key_id, "access_key_secret": account.access_key_secret})
    page = httpx.get(f"http://{live_api.endpoint}/console/sign-in")
    assert bare.status_code == 400 and "InvalidParameter.CsrfToken" in bare.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY" and page.headers["cache-control"] == "no-store"


def test_a_tenant_never_sees_or_touches_another_accounts_instance(live_api, account, other_account):
    add_node(live_api.ctx, slices={"eais.ei-a6.xlarge": 2})
    mallory, mallory_csrf = signed_in(live_api.endpoint, other_account)
    theirs = act(mallory, mallory_csrf, "CreateEai", RegionId="cn-hangzhou", InstanceType="eais.ei-a6.xlarge").json()[
        "ElasticAcceleratedInstanceId"]
    step(live_api.ctx, theirs, Event.SLICE_READY)  # billed from now on
    alice, csrf = signed_in(live_api.endpoint, account)
    release = act(alice, csrf, "DeleteEai", RegionId="cn-hangzhou", ElasticAcceleratedInstanceId=theirs, Force="true")
    detail = alice.get(f"/console/instances/{theirs}?RegionId=cn-hangzhou")
    assert (release.status_code, release.json()["Code"]) == (404, "InvalidParameter.InstanceId.NotFound")
    assert detail.status_code == 404 and "InvalidParameter.InstanceId.NotFound" in detail.text
    assert theirs not in alice.get("/console/instances/rows?RegionId=cn-hangzhou").text
    assert theirs not in alice.get("/console/bill").text and theirs in mallory.get("/console/bill").text


@pytest.mark.sqlite_only
def test_operator_pages_need_the_admin_token_not_a_tenant_session(live_api, account):
    tenant, _ = signed_in(live_api.endpoint, account)
    as_tenant = tenant.get("/console/operator/nodes")
    operator = httpx.Client(base_url=f"http://{live_api.endpoint}")
    token = re.search(r'name="csrf_token" value="([^"]+)"', operator.get("/console/operator/sign-in").text)[1]
    operator.post("/console/operator/sign-in", data={"csrf_token": token, "admin_token": admin_token(live_api.ctx.settings)})
    assert as_tenant.status_code == 303 and as_tenant.headers["location"].startswith("/console/operator/sign-in")
    assert "Client VMs" in operator.get("/console/operator/vms").text
    assert operator.get("/console/instances", follow_redirects=False).status_code == 303


@pytest.mark.sqlite_only
def test_signed_tenant_routes_refuse_unsigned_and_other_accounts_requests(live_api, account, other_account):
    from eais_cli.credentials import Credentials
    from eais_cli.service import ServiceRefused, calling, client_for, tenant_get

    add_node(live_api.ctx, slices={"eais.ei-a6.xlarge": 2})
    mallory, csrf = signed_in(live_api.endpoint, other_account)
    theirs = act(mallory, csrf, "CreateEai", RegionId="cn-hangzhou", InstanceType="eais.ei-a6.xlarge").json()[
        "ElasticAcceleratedInstanceId"]
    alice = client_for(Credentials(account.access_key_id, account.access_key_secret, live_api.endpoint, "cn-hangzhou", "t"))
    unsigned = httpx.get(f"http://{live_api.endpoint}/tenant/v1/bill")
    with pytest.raises(ServiceRefused) as refused:
        calling(live_api.endpoint, lambda: tenant_get(alice, f"/tenant/v1/instances/{theirs}/history",
                                                      "DescribeInstanceHistory"))
    bill = tenant_get(alice, "/tenant/v1/bill", "DescribeTenantBill")
    assert (unsigned.status_code, unsigned.json()["Code"]) == (400, "IncompleteSignature")
    assert refused.value.code == "InvalidParameter.InstanceId.NotFound"
    assert bill["AccountId"] == account.account_id and theirs not in json.dumps(bill)
