"""The scenario processes behind the remote_tf tests, each run once per session and both at once.

TensorFlow allows one remote context per process and never cleans it up, so every check that
uses remote eager runs inside a scenario script (tests/remote_tf/scenarios/) in its own process;
the script prints one JSON object and the tests assert on its parts.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"
SCENARIO_TIMEOUT_S = 200.0  # a scenario reports its own stacks after 150 s


class ScenarioRun:
    """One scenario script, started at once, its JSON result read on first use."""

    def __init__(self, name: str, workdir: Path) -> None:
        self.name, self.workdir, self._log_path = name, workdir, workdir / "stderr.log"
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
        for variable in ("TF_GRPC_DEFAULT_OPTIONS", "GRPC_FAIL_FAST", "EAIS_TF_ENDPOINT"):
            env.pop(variable, None)  # the scenario sees what an app sees by default
        with self._log_path.open("w") as log:
            # Its own process group: stop() ends the scenario together with its worker and agent.
            self._process = subprocess.Popen([sys.executable, str(SCENARIO_DIR / f"{name}.py")], cwd=workdir,
                                             env=env, stdout=subprocess.PIPE, stderr=log, text=True,
                                             start_new_session=True)
        self._result: dict[str, Any] | None = None

    def result(self) -> dict[str, Any]:
        if self._result is None:
            try:
                stdout, _ = self._process.communicate(timeout=SCENARIO_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.stop()
                pytest.fail(f"scenario {self.name} still running after {SCENARIO_TIMEOUT_S}s:\n{self._stderr_tail()}")
            self.stop()
            lines = stdout.strip().splitlines()
            if self._process.returncode != 0 or not lines:
                pytest.fail(f"scenario {self.name} exited {self._process.returncode}:\n{self._stderr_tail()}")
            self._result = json.loads(lines[-1])
        return self._result

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):  # the group is already empty
            os.killpg(self._process.pid, signal.SIGKILL)
        self._process.wait()

    def _stderr_tail(self) -> str:
        return self._log_path.read_text(errors="replace")[-6000:]


SCENARIOS = ("models_on_remote", "lost_accelerator")
_started: dict[str, ScenarioRun] = {}


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start the scenarios as soon as tests that need them are collected, to overlap with the rest."""
    if any("scenarios" in getattr(item, "fixturenames", ()) for item in session.items):
        _start_scenarios()


def _start_scenarios() -> dict[str, ScenarioRun]:
    if not _started:
        workdir = Path(tempfile.mkdtemp(prefix="remote-tf-scenarios-"))
        for name in SCENARIOS:
            (workdir / name).mkdir()
            _started[name] = ScenarioRun(name, workdir / name)
    return _started


@pytest.fixture(scope="session")
def scenarios() -> Iterator[dict[str, ScenarioRun]]:
    runs = _start_scenarios()
    yield runs
    for run in runs.values():
        run.stop()
    shutil.rmtree(next(iter(runs.values())).workdir.parent, ignore_errors=True)
