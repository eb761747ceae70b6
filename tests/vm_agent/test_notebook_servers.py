"""The VM agent's notebook servers, driven through NotebookFollower as desired states drive it: a real
jupyter-server each, token required, its files where they belong, gone when they should be."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import httpx
import pytest

from agent.vm.notebooks.follower import NotebookFollower
from agent.vm.notebooks.launch import NotebookLaunch, ServerFiles, environment, sandbox_uid
from agent.vm.notebooks.server import ServerTiming
from protos.eais.v1 import agents_pb2 as pb
from tests.harness.waiting import eventually

INSTANCE = "eais-notebooktest0000000001"
TOKEN = "t0ken-for-the-test-0123456789"


@pytest.fixture
def follower(tmp_path):
    changes = threading.Event()
    launch = NotebookLaunch(root=tmp_path / "notebooks", bind_host="127.0.0.1", url_host="127.0.0.1",
                            tf_endpoint="127.0.0.1:8470", uid=None)
    following = NotebookFollower(launch, changes.set, ServerTiming(start_timeout_s=60))
    yield following
    following.stop()


def serving(attachment_id: str = "att-1", **env: str) -> pb.VmNotebook:
    return pb.VmNotebook(instance_id=INSTANCE, serve=True, token=TOKEN, attachment_id=attachment_id,
                         environment=[pb.EnvironmentVariable(key=k, value=v) for k, v in env.items()])


def ready(follower: NotebookFollower) -> pb.NotebookActualState:
    def check() -> pb.NotebookActualState | None:
        states = follower.actual()
        return states[0] if states and states[0].state == pb.NOTEBOOK_SERVER_STATE_READY else None
    return eventually(check, timeout_s=60, what="the notebook server answering")


def test_a_serving_notebook_gets_a_server_that_requires_its_token(follower, tmp_path):
    follower.follow([serving()])
    actual = ready(follower)
    assert actual.url.startswith("http://127.0.0.1:") and actual.attachment_id == "att-1" and TOKEN not in actual.url
    assert httpx.get(actual.url + "api/status").status_code == 403
    assert httpx.get(actual.url + "api/status", headers={"Authorization": "token wrong"}).status_code == 403
    assert httpx.get(actual.url + "api/status", headers={"Authorization": f"token {TOKEN}"}).status_code == 200
    opened = httpx.get(actual.url, params={"token": TOKEN}, follow_redirects=True)  # as a browser opens JupyterUrl
    assert opened.status_code == 200 and opened.url.path == "/lab" and "JupyterLab" in opened.text
    home = tmp_path / "notebooks" / INSTANCE
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    server_pids = _pids_with(str(home))
    assert server_pids and not any(TOKEN in Path(f"/proc/{pid}/cmdline").read_text() for pid in server_pids)


def test_stop_ends_the_server_and_its_scratch_keeps_the_home_and_delete_removes_it(follower, tmp_path):
    follower.follow([serving()])
    url = ready(follower).url
    home = tmp_path / "notebooks" / INSTANCE
    (home / "work.ipynb").write_text("{}")
    follower.follow([pb.VmNotebook(instance_id=INSTANCE, serve=False)])
    assert follower.actual() == []
    with pytest.raises(httpx.TransportError):
        httpx.get(url + "api/status", timeout=3)
    assert (home / "work.ipynb").exists()
    assert not list(Path(tempfile.gettempdir()).glob(f"eais-notebook-{INSTANCE}-*"))
    follower.follow([])
    assert not home.exists()


def test_a_new_attachment_gets_a_new_server(follower):
    follower.follow([serving("att-1")])
    first = ready(follower).url
    follower.follow([serving("att-2")])
    second = ready(follower)
    assert second.attachment_id == "att-2" and second.url != first


def test_a_server_that_cannot_start_is_reported_failed_with_the_reason(tmp_path):
    launch = NotebookLaunch(root=tmp_path / "nb", bind_host="127.0.0.1", url_host="127.0.0.1",
                            tf_endpoint="127.0.0.1:8470", python="/nonexistent/python")
    following = NotebookFollower(launch, lambda: None)
    following.follow([serving()])
    [actual] = following.actual()
    assert actual.state == pb.NOTEBOOK_SERVER_STATE_FAILED and "cannot start" in actual.failure_reason
    following.stop()


def test_the_environment_holds_the_users_variables_and_ours_never_the_agents(tmp_path, monkeypatch):
    monkeypatch.setenv("EAIS_AGENT_ACCESS_KEY_SECRET", "secret")
    files = ServerFiles(tmp_path / "home", tmp_path / "scratch", tmp_path / "log", 1, None)
    launch = NotebookLaunch(root=tmp_path, bind_host="127.0.0.1", url_host="127.0.0.1", tf_endpoint="127.0.0.1:9")
    env = environment(files, launch, [("DATA_DIR", "/data"), ("HOME", "/evil")])
    assert env["DATA_DIR"] == "/data" and env["HOME"] == str(tmp_path / "home")
    assert env["EAIS_TF_ENDPOINT"] == "127.0.0.1:9" and "EAIS_AGENT_ACCESS_KEY_SECRET" not in env


def test_sandbox_uid_is_the_agents_own_unless_it_is_root():
    uid, why = sandbox_uid("auto", "/usr/bin/python3")
    if os.geteuid() != 0:
        assert uid is None and "own user" in why
        with pytest.raises(ValueError, match="root"):
            sandbox_uid("62001", "/usr/bin/python3")
    else:  # another interpreter everyone can read: a uid of its own
        assert uid == 62000 and sandbox_uid("62001", "/usr/bin/python3")[0] == 62001
    assert sandbox_uid("none", "/usr/bin/python3")[0] is None


def _pids_with(needle: str) -> list[int]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if needle in os.readlink(f"/proc/{pid}/cwd"):
                found.append(int(pid))
        except OSError:
            continue
    return found


AGENT_STANDIN = """
import sys, time, threading
from pathlib import Path
from agent.vm.notebooks.follower import NotebookFollower
from agent.vm.notebooks.launch import NotebookLaunch
from protos.eais.v1 import agents_pb2 as pb
launch = NotebookLaunch(root=Path(sys.argv[1]), bind_host="127.0.0.1", url_host="127.0.0.1", tf_endpoint="127.0.0.1:9")
follower = NotebookFollower(launch, lambda: None)
follower.follow([pb.VmNotebook(instance_id="eais-orphantest0001", serve=True, token="tok", attachment_id="att-1")])
while not follower.actual() or follower.actual()[0].state != pb.NOTEBOOK_SERVER_STATE_READY:
    time.sleep(0.1)
print(follower.actual()[0].url, flush=True)
time.sleep(600)
"""


def test_an_agent_killed_with_sigkill_leaves_no_server_serving_its_token(tmp_path):
    agent = subprocess.Popen([sys.executable, "-c", AGENT_STANDIN, str(tmp_path / "nb")], stdout=subprocess.PIPE,
                             text=True)
    try:
        url = agent.stdout.readline().strip()
        assert httpx.get(url + "api/status", headers={"Authorization": "token tok"}).status_code == 200
    finally:
        agent.kill()
        agent.wait()

    def refused() -> bool:
        try:
            httpx.get(url + "api/status", timeout=1)
        except httpx.TransportError:
            return True
        return False
    eventually(refused, timeout_s=15, what="the orphaned server gone")


def test_listening_everywhere_without_an_address_for_the_url_is_a_settings_error():
    from agent.vm.agent import _notebook_uid
    from agent.vm.settings import SettingsError, VmAgentSettings

    with pytest.raises(SettingsError, match="notebook_url_host"):
        _notebook_uid(VmAgentSettings(notebook_host="0.0.0.0"))
    assert _notebook_uid(VmAgentSettings(notebook_host="0.0.0.0", notebook_url_host="10.0.0.5", notebook_uid="none")) is None
