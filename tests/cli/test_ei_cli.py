"""`eais ei …` as a user runs it (its own process) against a live EAIS API: the EI lifecycle with --wait,
and a refusal with its code and exit status."""

from __future__ import annotations

import json

import pytest

from controller.states import Event
from tests.cli.test_user_cli import XLARGE, _until, fleet, home, key_env, run, start  # noqa: F401 - shared fixtures
from tests.rules.lifecycle_steps import status_of, step

pytestmark = pytest.mark.sqlite_only


def test_the_ei_lifecycle_from_the_cli_waits_on_the_statuses_describe_shows(fleet, account, home):  # noqa: F811
    env = key_env(account, fleet.endpoint)
    created = run(home, "ei", "create", XLARGE, "--name", "cli-ei", "--vswitch", "vsw-1", env=env)
    assert created.returncode == 0, created.stderr
    instance_id = created.stdout.strip()
    step(fleet.ctx, instance_id, Event.SLICE_READY)

    refused = run(home, "ei", "start", instance_id, env=env)
    assert refused.returncode == 1 and refused.stderr.startswith("error: InvalidEaiStatus:")
    bound = run(home, "ei", "attach", "--type", XLARGE, "--client", "i-vm1", env=env)
    assert (bound.returncode, bound.stdout.strip()) == (0, instance_id), bound.stderr

    starting = start(home, "ei", "start", instance_id, "--wait", env=env)
    _until(lambda: status_of(fleet.ctx, instance_id) == "StartingWorker")
    step(fleet.ctx, instance_id, Event.ATTACH_READY, "node and VM ready")
    out, err = starting.communicate(timeout=30)
    assert starting.returncode == 0 and out.startswith(f"{instance_id} InUse after"), err

    stopping = start(home, "ei", "stop", instance_id, "--wait", "-o", "json", env=env)
    _until(lambda: status_of(fleet.ctx, instance_id) == "StoppingWorker")
    step(fleet.ctx, instance_id, Event.DETACH_DONE, "worker gone, memory free")
    out, err = stopping.communicate(timeout=30)
    assert stopping.returncode == 0 and json.loads(out)["Status"] == "Bound", err

    assert run(home, "ei", "detach", instance_id, env=env).returncode == 0
    released = run(home, "ei", "release", instance_id, env=env)
    assert released.returncode == 0 and status_of(fleet.ctx, instance_id) == "Released"
