"""One notebook's Jupyter server: started, watched until it answers (and while it runs), stopped.

The server runs in a session of its own, gets SIGTERM if the agent dies (``server_main``), and its kernels run in sessions of their own too (as
jupyter_client starts them), so stopping asks the server to shut down (SIGTERM: it stops its
kernels), then kills whatever is left of it and of the kernels it started.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

import psutil

from agent.vm.notebooks import launch as launching
from protos.eais.v1 import agents_pb2 as pb

log = logging.getLogger(__name__)
POLL_S = 0.2
STOP_GRACE_S = 5.0


@dataclass(frozen=True)
class ServerTiming:
    start_timeout_s: float = 60.0  # a server not answering by then failed
    watch_s: float = 0.5  # how often a running server's process is checked


class NotebookServer:
    def __init__(self, instance_id: str, attachment_id: str, launch: launching.NotebookLaunch,
                 on_change: Callable[[], None], timing: ServerTiming = ServerTiming()) -> None:
        self.instance_id, self.attachment_id = instance_id, attachment_id
        self._launch, self._on_change, self._timing = launch, on_change, timing
        self._state, self._failure, self._url = pb.NOTEBOOK_SERVER_STATE_NONE, "", ""
        self.failed_at = 0.0  # time.monotonic() of the failure, while failed
        self._process: subprocess.Popen[bytes] | None = None
        self._files: launching.ServerFiles | None = None
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None

    def start(self, token: str, environment: list[tuple[str, str]]) -> None:
        """Start the server; its readiness (or failure) is reported through ``on_change``."""
        try:
            self._files = launching.prepare(self._launch, self.instance_id, token)
            env = launching.environment(self._files, self._launch, environment)
            with open(self._files.log_path, "ab") as log_file:
                self._process = subprocess.Popen(
                    launching.command(self._launch), env=env, cwd=self._files.home, stdin=subprocess.DEVNULL,
                    stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True, **_as_user(self._files.uid))
        except (OSError, launching.LaunchRefused) as error:
            self._fail(f"cannot start the notebook server: {error}")
            return
        self._state = pb.NOTEBOOK_SERVER_STATE_STARTING
        self._watcher = threading.Thread(target=self._watch, args=(token,), name=f"notebook-{self.instance_id}",
                                         daemon=True)
        self._watcher.start()

    def actual(self) -> pb.NotebookActualState:
        return pb.NotebookActualState(instance_id=self.instance_id, state=self._state, url=self._url,
                                      failure_reason=self._failure, attachment_id=self.attachment_id)

    @property
    def failed(self) -> bool:
        return self._state == pb.NOTEBOOK_SERVER_STATE_FAILED

    def stop(self) -> None:
        """Stop the server and its kernels, remove the run's scratch files; the home stays."""
        self._stopping.set()
        process = self._process
        if process is not None and process.poll() is None:
            kernels = _descendants(process.pid)
            _signal_group(process.pid, signal.SIGTERM)
            try:
                process.wait(STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                _signal_group(process.pid, signal.SIGKILL)
                process.wait()
            for kernel in kernels:
                _kill(kernel)
        if self._watcher is not None and self._watcher is not threading.current_thread():
            self._watcher.join(STOP_GRACE_S)
        if self._files is not None:
            self._files.release()
        self._state, self._url = pb.NOTEBOOK_SERVER_STATE_NONE, ""

    def _watch(self, token: str) -> None:
        deadline = time.monotonic() + self._timing.start_timeout_s
        url = f"http://{_url_host(self._launch.url_host)}:{self._files.port}/"
        while not self._stopping.is_set():
            if self._process.poll() is not None:
                self._fail(f"the notebook server exited with code {self._process.returncode}; "
                           f"see {self._files.log_path}")
                return
            if _answers(url, token):
                break
            if time.monotonic() > deadline:
                self._fail(f"the notebook server did not answer within {self._timing.start_timeout_s:.0f} s")
                return
            self._stopping.wait(POLL_S)
        if self._stopping.is_set():
            return
        self._state, self._url = pb.NOTEBOOK_SERVER_STATE_READY, url
        log.info("notebook %s: server answering at %s", self.instance_id, url)
        self._on_change()
        while not self._stopping.wait(self._timing.watch_s):
            if self._process.poll() is not None:
                self._fail(f"the notebook server exited with code {self._process.returncode}")
                return

    def _fail(self, reason: str) -> None:
        if self._stopping.is_set():
            return
        log.warning("notebook %s: %s", self.instance_id, reason)
        self._state, self._url, self._failure = pb.NOTEBOOK_SERVER_STATE_FAILED, "", reason
        self.failed_at = time.monotonic()
        self._on_change()


def _answers(url: str, token: str) -> bool:
    request = urllib.request.Request(url + "api/status", headers={"Authorization": f"token {token}"})
    try:
        with urllib.request.urlopen(request, timeout=2) as answer:
            return answer.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _as_user(uid: int | None) -> dict[str, object]:
    return {} if uid is None else {"user": uid, "group": uid, "extra_groups": []}


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)  # the server leads its own session
    except ProcessLookupError:
        pass


def _kill(process: psutil.Process) -> None:
    try:
        process.kill()
    except psutil.Error:
        pass
