"""``GET /metrics``: API requests and errors by action and code, fleet and billing figures from the database, and the
same totals from whichever API process answers."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from alibabacloud_tea_openapi.exceptions import ClientException
from prometheus_client.parser import text_string_to_metric_families

from controller.accounts import create_account
from controller.billing import US_PER_HOUR, hour_floor
from controller.context import ControllerContext
from controller.db import Database
from controller.key_store import admin_token, secret_box
from controller.observability.registry import collect_all
from controller.states import Event
from controller.tables import BillingCursor, BillItem
from tests.api.sdk_capture import v3_call
from tests.controller_process import REPO_ROOT, ControllerProcess
from tests.fleet_rows import add_node
from tests.rules.lifecycle_steps import step

TYPE = "eais.ei-a6.2xlarge"
R = "cn-hangzhou"
Samples = dict[tuple[str, frozenset], float]


def parse(text: str) -> Samples:
    return {(s.name, frozenset(s.labels.items())): s.value for f in text_string_to_metric_families(text) for s in f.samples}


def scrape(endpoint: str) -> Samples:
    answer = httpx.get(f"http://{endpoint}/metrics")  # no token: operators keep the port on their network
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse(answer.text)


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_requests_and_errors_are_counted_by_action_and_code(live_api, account):
    sdk = live_api.v3(account)
    admin = {"Authorization": f"Bearer {admin_token(live_api.ctx.settings)}"}
    before = scrape(live_api.endpoint)

    for _ in range(2):
        v3_call(sdk, "DescribeEais", {"RegionId": R})
    with pytest.raises(ClientException):
        v3_call(sdk, "CreateEai", {"RegionId": R, "InstanceType": "eais.ei-a6.huge"})
    httpx.post(f"http://{live_api.endpoint}/?Action=MakeCoffee")
    httpx.get(f"http://{live_api.endpoint}/admin/v1/accounts", headers=admin)
    httpx.post(f"http://{live_api.endpoint}/admin/v1/accounts/acc-none/top-up", headers=admin, json={"amount": "1e400"})
    after = scrape(live_api.endpoint)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("eais_api_requests_total", api="eais", action="DescribeEais") == 2
    assert delta("eais_api_request_duration_seconds_count", api="eais", action="DescribeEais") == 2
    assert delta("eais_api_errors_total", api="eais", action="DescribeEais", code="InvalidRegionId") == 0
    assert delta("eais_api_errors_total", api="eais", action="CreateEai", code="InvalidInstanceType") == 1
    assert delta("eais_api_errors_total", api="eais", action="unknown", code="IncompleteSignature") == 1
    assert delta("eais_api_requests_total", api="admin", action="GET /v1/accounts") == 1
    assert delta("eais_api_errors_total", api="admin", action="POST /v1/accounts/{account_id}/top-up",
                 code="InvalidParameter.Amount") == 1
    assert not any(name.startswith("eais_api") and ("action", "/metrics") in labels for name, labels in after)


def test_instances_by_status_and_type_come_from_the_database(live_api, account):
    add_node(live_api.ctx, slices={TYPE: 3})
    sdk = live_api.v3(account)
    made = [v3_call(sdk, "CreateEai", {"RegionId": R, "InstanceType": TYPE})["body"]["ElasticAcceleratedInstanceId"]
            for _ in range(3)]
    for instance_id in made[:2]:
        step(live_api.ctx, instance_id, Event.SLICE_READY)
    v3_call(sdk, "DeleteEai", {"RegionId": R, "ElasticAcceleratedInstanceId": made[1]})

    samples = scrape(live_api.endpoint)

    assert value(samples, "eais_instances", status="Available", instance_type=TYPE) == 1
    assert value(samples, "eais_instances", status="Pending", instance_type=TYPE) == 1
    assert ("eais_instances", frozenset({"status": "InUse", "instance_type": "eais.ei-a6.medium"}.items())) in samples
    assert not any(dict(labels).get("status") == "Released" for _, labels in samples)
    assert value(samples, "eais_database_up") == 1


def test_balances_debts_and_the_last_closed_hour_come_from_the_database(live_api, account):
    create_account(live_api.ctx, "poor", balance=Decimal("-3.5"))
    closed_through = hour_floor(live_api.ctx.clock.now_us())
    with live_api.ctx.db.write() as session:
        session.add(BillingCursor(id=1, billed_through_us=closed_through))
        for hours_back, instance_id, micro in [(1, "eais-a", 1_500_000), (1, "eais-b", 2_250_000), (2, "eais-a", 9_000_000)]:
            session.add(BillItem(account_id=account.account_id, instance_id=instance_id, instance_type=TYPE,
                                 hour_start_us=closed_through - hours_back * US_PER_HOUR, billed_us=US_PER_HOUR,
                                 amount_micro=micro, created_us=closed_through))

    samples = scrape(live_api.endpoint)

    assert (value(samples, "eais_accounts"), value(samples, "eais_accounts_in_debt")) == (2, 1)
    assert value(samples, "eais_account_balance_cny", currency="CNY") == 996.5
    assert value(samples, "eais_account_debt_cny", currency="CNY") == 3.5
    assert value(samples, "eais_billed_last_closed_hour_cny", currency="CNY") == 3.75
    assert value(samples, "eais_billing_closed_through_timestamp_seconds") == closed_through / 1e6


@pytest.mark.sqlite_only
def test_a_scrape_that_cannot_read_the_database_says_so_and_still_answers(settings, tmp_path):
    unmigrated = ControllerContext(settings=settings, db=Database(f"sqlite:///{tmp_path}/empty.db"), box=secret_box(settings))

    families = {family.name: family for family in collect_all(unmigrated)}

    assert families["eais_database_up"].samples[0].value == 0
    assert "eais_instances" not in families and "eais_api_requests" in families


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], check=True, capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def _shared_directory(worker_pid: int) -> Path:
    environ = Path(f"/proc/{worker_pid}/environ").read_bytes().split(b"\0")
    return Path(next(e for e in environ if e.startswith(b"PROMETHEUS_MULTIPROC_DIR=")).partition(b"=")[2].decode())


def _unsigned_request(endpoint: str) -> None:
    with httpx.Client() as client:  # a new connection each time: let either process accept it
        client.post(f"http://{endpoint}/?Action=DescribeEais")


def _counting_processes(directory: Path) -> set[str]:
    return {f.name.rpartition("_")[2] for f in directory.glob("counter_*.db")}


@pytest.mark.sqlite_only
def test_every_api_process_reports_the_totals_of_all_of_them(tmp_path):
    with ControllerProcess(f"sqlite:///{tmp_path}/c.db", tmp_path / "state", tmp_path / "controller.log",
                           serve_args=("--api-processes", "2")) as controller:
        controller.start()
        directory = _shared_directory(_children(controller.process.pid)[0])
        sent, deadline = 0, time.monotonic() + 60
        while (sent < 40 or len(_counting_processes(directory)) < 2) and time.monotonic() < deadline:
            senders = [threading.Thread(target=_unsigned_request, args=(controller.endpoint,)) for _ in range(8)]
            for sender in senders:
                sender.start()
            for sender in senders:
                sender.join()
            sent += len(senders)
        counted_by = _counting_processes(directory)
        scrapes = [scrape(controller.endpoint) for _ in range(12)]
        controller.stop()

    assert len(counted_by) == 2, counted_by  # both processes answered some of the requests (the worker starts later)
    assert {value(s, "eais_api_requests_total", api="eais", action="DescribeEais") for s in scrapes} == {sent}
    assert {value(s, "eais_api_errors_total", api="eais", action="DescribeEais", code="IncompleteSignature")
            for s in scrapes} == {sent}
    assert {value(s, "eais_database_up") for s in scrapes} == {1}
    assert not directory.exists()  # removed when the controller stopped


SHARED_BEFORE_AND_AFTER = """
import subprocess, sys
from controller.observability import registry
beats = registry.counter("t_beats", "beats")                  # declared before sharing, without labels
holder = registry.gauge("t_lease_holder", "holder")
registry.share_between_processes()
beats.inc(2)
holder.set(7)
child = "from controller.observability import registry; registry.counter('t_beats', 'beats').inc(3)"
subprocess.run([sys.executable, "-c", child], check=True)      # a worker: inherits the directory
print({s.name: s.value for f in registry.counted_metrics() for s in f.samples if s.name.startswith("t_")})
"""


@pytest.mark.sqlite_only
def test_metrics_declared_before_sharing_are_shared_too(tmp_path):
    done = subprocess.run([sys.executable, "-c", SHARED_BEFORE_AND_AFTER], check=False, capture_output=True, text=True, timeout=120,
                          cwd=REPO_ROOT, env={**os.environ, "TMPDIR": str(tmp_path)})

    assert done.returncode == 0, done.stderr
    assert ast.literal_eval(done.stdout.strip().splitlines()[-1]) == {"t_beats_total": 5.0, "t_lease_holder": 7.0}
    assert list(tmp_path.glob("eais-metrics-*")) == []  # removed at exit
