"""Worker isolation without TensorFlow: namespaces, environment, uids, leftovers, the assignment line."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest

from agent.node.netns import NetworkNamespace, enter_namespace, in_fresh_thread
from agent.node.worker.launch import UidPool, WorkerLaunch, first_private_path
from agent.node.worker.records import WorkerRecords
from remote_tf.worker import Assignment, AssignmentError
from tests.node_agent.conftest import free_host_port

PORT = free_host_port()


def listen_inside(namespace: NetworkNamespace) -> socket.socket:
    """A wildcard listener, like TensorFlow's, made by a thread inside ``namespace``."""
    def make() -> socket.socket:
        enter_namespace(namespace.fd)
        return socket.create_server(("0.0.0.0", PORT))

    return in_fresh_thread(make)


def test_a_wildcard_port_in_a_worker_namespace_is_reachable_only_from_inside_it() -> None:
    namespace, other = NetworkNamespace.create(), NetworkNamespace.create()
    listener = listen_inside(namespace)
    try:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", PORT), timeout=2)  # the host's loopback
        with pytest.raises(ConnectionRefusedError):
            other.connect(PORT, timeout_s=2)  # another worker's namespace, same port number
        with namespace.connect(PORT, timeout_s=2) as inside:
            accepted, _ = listener.accept()
            inside.sendall(b"ping")
            assert accepted.recv(4) == b"ping"
            accepted.close()
    finally:
        listener.close()
        namespace.close()
        other.close()


def test_entering_a_namespace_moves_only_the_thread_that_did_it() -> None:
    namespace = NetworkNamespace.create()
    before = os.stat("/proc/thread-self/ns/net").st_ino

    inside = in_fresh_thread(lambda: (enter_namespace(namespace.fd), os.stat("/proc/thread-self/ns/net").st_ino)[1])

    assert inside == namespace.inode != before
    assert os.stat("/proc/thread-self/ns/net").st_ino == before
    namespace.close()


def test_workers_get_none_of_the_agents_secrets_in_their_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EAIS_NODE_TOKEN", "s3cret-node-token")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s3cret")
    monkeypatch.setenv("CUDA_CACHE_PATH", "/var/lib/eais-node/cuda-cache")

    env = WorkerLaunch("python3", "netns", Path("/tmp")).environment()

    assert "EAIS_NODE_TOKEN" not in env and "AWS_SECRET_ACCESS_KEY" not in env
    assert env["CUDA_CACHE_PATH"] == "/var/lib/eais-node/cuda-cache" and "PATH" in env


def test_each_live_worker_has_its_own_uid_and_a_given_back_uid_comes_round_last() -> None:
    pool = UidPool(range(61000, 61003))

    first, second, third = pool.take(), pool.take(), pool.take()
    with pytest.raises(RuntimeError, match="all 3 worker uids 61000-61002 are in use"):
        pool.take()
    pool.give_back(second)
    pool.give_back(first)

    assert (first, second, third) == (61000, 61001, 61002)
    assert (pool.take(), pool.take()) == (61000, 61001)


def test_a_python_install_others_cannot_read_is_found() -> None:
    with tempfile.TemporaryDirectory(dir="/tmp") as directory:  # pytest's own tmp_path is private
        Path(directory).chmod(0o755)
        private = Path(directory) / "private"
        private.mkdir(mode=0o700)
        (private / "python3").write_text("")

        assert first_private_path([private / "python3"]) == private
        private.chmod(0o755)
        (private / "python3").chmod(0o644)
        assert first_private_path([private / "python3"]) is None


def test_a_restarted_agent_kills_the_workers_it_recorded_and_nothing_else(tmp_path: Path) -> None:
    leftover = subprocess.Popen(["sleep", "60"])
    innocent = subprocess.Popen(["sleep", "60"])
    WorkerRecords(tmp_path).remember(leftover.pid)
    (tmp_path / f"{innocent.pid}.json").write_text(f'{{"pid": {innocent.pid}, "create_time": 1.0}}')  # pid reused

    killed = WorkerRecords(tmp_path).kill_leftovers()

    assert killed == [leftover.pid]
    assert not psutil.pid_exists(leftover.pid)
    assert innocent.poll() is None and list(tmp_path.iterdir()) == []
    innocent.kill()
    innocent.wait()


def test_the_assignment_line_is_checked_before_a_worker_uses_it() -> None:
    assert Assignment.parse('{"port": 2222, "gpu_index": 0, "memory_mib": 8192, "backend": "cpu"}').port == 2222
    for line in ('{"port": 0, "gpu_index": 0, "memory_mib": 1, "backend": "cpu"}',
                 '{"port": 2222, "gpu_index": 0, "memory_mib": 1, "backend": "tpu"}', "not json", "{}"):
        with pytest.raises(AssignmentError):
            Assignment.parse(line)


def test_a_worker_that_cannot_enter_its_sandbox_says_why_and_exits() -> None:
    started = time.monotonic()
    worker = subprocess.run([sys.executable, "-m", "remote_tf.worker",
                             "--netns-fd", "999"], capture_output=True, text=True, timeout=30)

    assert worker.returncode == 3
    assert '"event": "error"' in worker.stdout and "cannot enter the worker's network namespace" in worker.stdout
    assert time.monotonic() - started < 10, "it gave up before importing TensorFlow"


SYSTEM_PYTHON = Path("/usr/bin/python3")  # readable by every user, unlike this venv's base interpreter here
SANDBOX_REPORT = """
import json, os, sys
from remote_tf.worker_sandbox import Sandbox, enter_sandbox
scratch = enter_sandbox(Sandbox(int(sys.argv[1]), int(sys.argv[2]), os.getppid()))
status = open("/proc/self/status").read()
try:
    open("/proc/1/environ").read(); init_readable = True
except OSError:
    init_readable = False
print(json.dumps({"uid": os.getuid(), "gid": os.getgid(), "groups": os.getgroups(), "home": os.environ["HOME"],
                  "cwd": os.getcwd(), "scratch": scratch, "netns": os.stat("/proc/self/ns/net").st_ino,
                  "no_new_privs": "NoNewPrivs:\\t1" in status, "init_readable": init_readable}))
"""


@pytest.mark.skipif(os.geteuid() != 0 or first_private_path([SYSTEM_PYTHON]) is not None,
                    reason="needs root and an interpreter every user can read")
def test_a_worker_sandbox_runs_it_as_its_own_uid_inside_its_namespace_without_privileges() -> None:
    namespace = NetworkNamespace.create()
    repo = str(Path(__file__).resolve().parents[2])
    earlier = Path(tempfile.mkdtemp(prefix="eais-worker-61123-"))  # a killed worker's, under the same uid
    (earlier / "tensor.bin").write_bytes(b"a previous tenant's data")
    for path in (earlier, earlier / "tensor.bin"):
        os.chown(path, 61123, 61123)

    ran = subprocess.run([str(SYSTEM_PYTHON), "-P", "-c", SANDBOX_REPORT, str(namespace.fd), "61123"],
                         pass_fds=(namespace.fd,), env={"PYTHONPATH": repo}, capture_output=True, text=True,
                         timeout=30)

    report = json.loads(ran.stdout)
    assert (report["uid"], report["gid"], report["groups"]) == (61123, 61123, [])
    assert report["netns"] == namespace.inode and report["no_new_privs"] and not report["init_readable"]
    assert report["home"] == report["cwd"] == report["scratch"]
    assert not earlier.exists(), "the earlier worker's scratch under this uid was removed"
    scratch = os.stat(report["scratch"])
    assert (scratch.st_uid, scratch.st_mode & 0o777) == (61123, 0o700)
    os.rmdir(report["scratch"])
    namespace.close()
