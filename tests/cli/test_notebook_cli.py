"""`eais notebook create / url / stop / start` as a user runs them, against a live EAIS API (the agents' reports
stood in for by the report functions)."""

from __future__ import annotations

import json

import pytest

from controller.tables import Notebook
from tests.cli.test_user_cli import key_env, run
from tests.fleet_rows import add_client, add_node
from tests.rules.notebook_steps import URL, let_go, row, run_to_in_use

pytestmark = pytest.mark.sqlite_only


def test_a_notebook_is_created_shown_with_its_url_stopped_and_started_from_the_cli(live_api, account, tmp_path):
    add_node(live_api.ctx, slices={"eais.ei-a6.2xlarge": 1})
    add_client(live_api.ctx, account.account_id, "i-vm1")
    env = key_env(account, live_api.endpoint)
    created = run(tmp_path, "notebook", "create", "--vswitch", "vsw-1", "--env", "A=1", "--name", "nb-cli", env=env)
    assert created.returncode == 0, created.stderr
    instance_id = created.stdout.strip()
    with live_api.ctx.db.read() as session:
        notebook = session.get(Notebook, instance_id)
        token = live_api.ctx.box.open(notebook.token_ciphertext)
    assert json.loads(notebook.environment_json) == [["A", "1"]]
    run_to_in_use(live_api.ctx, instance_id)
    shown = run(tmp_path, "notebook", "url", instance_id, env=env)
    assert shown.stdout.split() == [instance_id, "InUse", f"{URL}?token={token}"]
    assert run(tmp_path, "notebook", "stop", instance_id, env=env).returncode == 0
    let_go(live_api.ctx, instance_id)
    as_json = json.loads(run(tmp_path, "notebook", "url", instance_id, "-o", "json", env=env).stdout)
    assert (as_json["Status"], as_json["JupyterUrl"]) == ("Stopped", "")
    assert run(tmp_path, "notebook", "start", instance_id, env=env).returncode == 0
    assert row(live_api.ctx, instance_id).status == "Attaching"
    bad = run(tmp_path, "notebook", "create", "--vswitch", "vsw-1", "--env", "HOME=/", env=env)
    assert bad.returncode == 1 and "InvalidParameter.EnvironmentVar" in bad.stderr + bad.stdout
