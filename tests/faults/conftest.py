"""Fixtures of the fault suite: a fresh cluster of real processes per test, and TensorFlow apps against it."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.faults.cluster import FaultCluster
from tests.harness.daemons import QUIET_TF

APP = Path(__file__).with_name("tf_app.py")
APP_START_TIMEOUT_S = 120.0


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[FaultCluster]:
    if os.geteuid() != 0:
        pytest.skip("the fault suite runs workers in network namespaces: it needs root")
    running = FaultCluster(tmp_path)
    try:
        yield running.start()
    finally:
        running.stop()


class TfApp:
    """tests/faults/tf_app.py as its own process: its events as they come."""

    def __init__(self, args: list[str], endpoint: str, log_path: Path) -> None:
        self.events: list[dict[str, Any]] = []
        self._queue: queue.Queue[dict[str, Any]] = queue.Queue()
        self._log = open(log_path, "w")  # noqa: SIM115 - the child writes it until it ends
        self._events_log = open(log_path.with_suffix(".events"), "w")  # noqa: SIM115
        env = {**os.environ, **QUIET_TF, "EAIS_TF_ENDPOINT": endpoint}
        self.process = subprocess.Popen([sys.executable, str(APP), *args], stdout=subprocess.PIPE, stderr=self._log,
                                        stdin=subprocess.DEVNULL, env=env, text=True)
        threading.Thread(target=self._read, daemon=True).start()

    def wait_for(self, event: str, timeout_s: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        for seen in self.events:
            if seen["event"] == event:
                return seen
        while True:
            try:
                seen = self._queue.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"the app did not say {event!r} within {timeout_s}s: {self.events[-5:]}; "
                                     f"see {self._log.name}") from None
            if seen["event"] == event:
                return seen

    def calls(self) -> list[dict[str, Any]]:
        return [event for event in self.events if event["event"] == "call"]

    def stop(self) -> None:
        self.process.kill()
        self.process.wait(10)
        self._log.close()

    def _read(self) -> None:
        for line in self.process.stdout:
            if line.startswith("{"):
                self._events_log.write(line)
                self._events_log.flush()
                event = json.loads(line)
                self.events.append(event)
                self._queue.put(event)


@pytest.fixture
def tf_app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., TfApp]]:
    """Start tests/faults/tf_app.py with ARGS against ``endpoint`` (default: the ``cluster`` fixture's)."""
    apps: list[TfApp] = []

    def start(*args: object, endpoint: str | None = None) -> TfApp:
        endpoint = endpoint or request.getfixturevalue("cluster").tf_endpoint
        app = TfApp([str(arg) for arg in args], endpoint, tmp_path / f"app-{len(apps)}.log")
        apps.append(app)
        app.wait_for("connected", APP_START_TIMEOUT_S)
        return app

    yield start
    for app in apps:
        app.stop()
