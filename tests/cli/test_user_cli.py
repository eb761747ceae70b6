"""The `eais` CLI as a user runs it (its own process) against a live EAIS API: each credential source of the
chain, tables and --output json, --wait with its progress and its failures, and the documented exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from controller.states import Event
from tests.fleet_rows import add_client, add_node
from tests.rules.lifecycle_steps import status_of, step

pytestmark = pytest.mark.sqlite_only  # what the CLI does does not depend on the database
EAIS = str(Path(sys.executable).with_name("eais"))
XLARGE = "eais.ei-a6.xlarge"


def run(home: Path, *args: str, env: dict[str, str] | None = None, timeout_s: float = 60) -> subprocess.CompletedProcess:
    """`eais ARGS` in ``home`` (also its HOME), with only the environment given."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ALIBABA_CLOUD_", "EAIS_"))}
    return subprocess.run([EAIS, *args], cwd=home, env={**base, "HOME": str(home), "COLUMNS": "200", **(env or {})},
                          capture_output=True, text=True, timeout=timeout_s, check=False)


def start(home: Path, *args: str, env: dict[str, str]) -> subprocess.Popen:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ALIBABA_CLOUD_", "EAIS_"))}
    return subprocess.Popen([EAIS, *args], cwd=home, env={**base, "HOME": str(home), **env}, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def key_env(account, endpoint: str) -> dict[str, str]:
    return {"ALIBABA_CLOUD_ACCESS_KEY_ID": account.access_key_id,
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": account.access_key_secret, "EAIS_ENDPOINT": endpoint}


def available_instance(live, home: Path, env: dict[str, str]) -> str:
    done = run(home, "create", XLARGE, "--name", "cli-1", "--tag", "team=ml", env=env)
    assert done.returncode == 0, done.stderr
    instance_id = done.stdout.strip()
    step(live.ctx, instance_id, Event.SLICE_READY)
    return instance_id


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture
def fleet(live_api, account):
    add_node(live_api.ctx, slices={XLARGE: 3})
    add_client(live_api.ctx, account.account_id, "i-vm1")
    return live_api


def test_keys_from_the_environment_list_instances_as_a_table_and_as_json(fleet, account, home):
    env = key_env(account, fleet.endpoint)
    instance_id = available_instance(fleet, home, env)
    table = run(home, "instances", env=env)
    listed = json.loads(run(home, "instances", "--output", "json", env=env).stdout)
    assert table.returncode == 0 and instance_id in table.stdout and "Available" in table.stdout and "team=ml" in table.stdout
    assert [i["ElasticAcceleratedInstanceId"] for i in listed["Instances"]["Instance"]] == [instance_id]
    assert "environment" in run(home, "whoami", env=env).stdout


def test_a_profile_of_the_aliyun_config_file_is_chosen_with_profile_or_as_the_current_one(fleet, account, home):
    (home / ".aliyun").mkdir()
    (home / ".aliyun" / "config.json").write_text(json.dumps({"current": "stale", "profiles": [
        {"name": "stale", "mode": "AK", "access_key_id": "LTAIstale", "access_key_secret": "x", "region_id": "cn-hangzhou"},
        {"name": "alice", "mode": "AK", "access_key_id": account.access_key_id,
         "access_key_secret": account.access_key_secret, "region_id": "cn-hangzhou"},
        {"name": "sts", "mode": "StsToken", "access_key_id": "a", "access_key_secret": "b"}]}))
    endpoint = {"EAIS_ENDPOINT": fleet.endpoint}
    chosen = run(home, "instances", "--profile", "alice", env=endpoint)
    current = run(home, "instances", env=endpoint)
    by_variable = run(home, "whoami", "-o", "json", env={**endpoint, "ALIBABA_CLOUD_PROFILE": "alice"})
    unsupported = run(home, "instances", "--profile", "sts", env=endpoint)
    assert chosen.returncode == 0, chosen.stderr
    assert current.returncode == 1 and "InvalidAccessKeyId.NotFound" in current.stderr
    assert json.loads(by_variable.stdout)["AccessKeyId"] == account.access_key_id
    assert unsupported.returncode == 3 and "mode AK" in unsupported.stderr


def test_the_eais_up_file_is_the_last_source_and_the_environment_comes_before_it(fleet, account, home):
    (home / ".eais-up").mkdir()
    (home / ".eais-up" / "credentials.json").write_text(json.dumps({
        "AccessKeyId": account.access_key_id, "AccessKeySecret": account.access_key_secret, "Endpoint": fleet.endpoint,
        "RegionId": "cn-hangzhou", "ClientInstanceId": "i-vm1", "VSwitchId": "vsw-1"}))
    from_file = run(home, "whoami", "-o", "json")
    listed = run(home, "instances")
    overridden = run(home, "instances", env={"ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAInobody",
                                             "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "x"})
    assert json.loads(from_file.stdout)["Source"].endswith(".eais-up/credentials.json")
    assert listed.returncode == 0 and "No instances in cn-hangzhou" in listed.stdout
    assert overridden.returncode == 1 and "InvalidAccessKeyId.NotFound" in overridden.stderr


def test_missing_credentials_and_an_unreachable_endpoint_have_their_own_exit_codes(account, home):
    nothing = run(home, "instances")
    half = run(home, "instances", env={"ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAIx"})
    nobody = run(home, "instances", "--endpoint", "127.0.0.1:9", env={"ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAIx",
                                                                     "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "y"})
    assert nothing.returncode == 3 and "ALIBABA_CLOUD_ACCESS_KEY_ID" in nothing.stderr
    assert half.returncode == 3 and "set both" in half.stderr
    assert nobody.returncode == 6 and "cannot reach the EAIS API at 127.0.0.1:9" in nobody.stderr


def test_attach_wait_shows_progress_until_in_use(fleet, account, home):
    env = key_env(account, fleet.endpoint)
    instance_id = available_instance(fleet, home, env)
    waiting = start(home, "attach", instance_id, "--client", "i-vm1", "--wait", env=env)
    _until(lambda: status_of(fleet.ctx, instance_id) == "Attaching")
    time.sleep(0.6)  # the CLI has seen Attaching a few times
    step(fleet.ctx, instance_id, Event.ATTACH_READY, "node and VM ready")
    out, err = waiting.communicate(timeout=30)
    assert waiting.returncode == 0, err
    assert f"{instance_id}: Attaching" in err and f"{instance_id}: InUse" in err
    assert out.startswith(f"{instance_id} InUse after")


def test_attach_wait_that_fails_exits_4_with_the_reason(fleet, account, home):
    env = key_env(account, fleet.endpoint)
    instance_id = available_instance(fleet, home, env)
    waiting = start(home, "attach", instance_id, "--client", "i-vm1", "--wait", "-o", "json", env=env)
    _until(lambda: status_of(fleet.ctx, instance_id) == "Attaching")
    step(fleet.ctx, instance_id, Event.ATTACH_FAILED, "the VM could not open the channel: TLS handshake failed")
    _, err = waiting.communicate(timeout=30)
    assert waiting.returncode == 4
    assert "is Available" in err and "attach_failed" in err and "TLS handshake failed" in err


def test_create_wait_gives_up_after_its_timeout_with_exit_5(fleet, account, home):
    done = run(home, "create", XLARGE, "--wait", "--timeout", "1", env=key_env(account, fleet.endpoint))
    assert done.returncode == 5 and "still Pending after 1 s" in done.stderr


def test_a_refused_action_prints_its_eais_code_and_exits_1(fleet, account, home):
    env = key_env(account, fleet.endpoint)
    instance_id = available_instance(fleet, home, env)
    done = run(home, "detach", instance_id, env=env)
    assert done.returncode == 1 and done.stderr.startswith("error: InvalidEaiStatus:") and "RequestId" in done.stderr


def test_tag_metrics_bill_and_history(fleet, account, home):
    env = key_env(account, fleet.endpoint)
    instance_id = available_instance(fleet, home, env)
    tagged = run(home, "tag", instance_id, "env=prod", "--remove", "team", "-o", "json", env=env)
    metrics = run(home, "metrics", instance_id, "--since", "1h", env=env)
    bill = json.loads(run(home, "bill", "-o", "json", env=env).stdout)
    bill_table = run(home, "bill", env=env)
    history = run(home, "history", instance_id, env=env)
    assert tagged.returncode == 0, tagged.stderr
    assert json.loads(tagged.stdout)["Tags"] == [{"TagKey": "env", "TagValue": "prod"}]
    assert metrics.returncode == 0 and "No usage samples" in metrics.stdout
    assert bill["Balance"] == "1000.000000" and bill["RunningCharges"]["Items"][0]["InstanceId"] == instance_id
    assert "balance 1000.000000 CNY" in bill_table.stdout and "Running hour" in bill_table.stdout
    assert "slice_ready" in history.stdout


def _until(check, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)
