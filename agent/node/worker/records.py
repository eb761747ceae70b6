"""Which worker processes this agent started, on disk, so that a restarted agent can kill leftovers.

One file per worker (and per worker fork server) in ``<state_dir>/workers/``: ``<pid>.json`` with
the process's start time, so that a pid the kernel has since given to another process is never
killed by mistake, and the worker's scratch directory, removed once the leftover is dead.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import psutil

log = logging.getLogger(__name__)


class WorkerRecords:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)

    def remember(self, pid: int, *, scratch: Path | None = None) -> None:
        try:
            started = psutil.Process(pid).create_time()
        except psutil.Error:
            return  # already gone: nothing to kill later
        record = {"pid": pid, "create_time": started, **({"scratch": str(scratch)} if scratch else {})}
        (self.directory / f"{pid}.json").write_text(json.dumps(record))

    def forget(self, pid: int) -> None:
        (self.directory / f"{pid}.json").unlink(missing_ok=True)

    def kill_leftovers(self, timeout_s: float = 10.0) -> list[int]:
        """Kill every recorded worker that still runs (a previous agent's); returns their pids."""
        killed: list[psutil.Process] = []
        scratches: list[str] = []
        for path in sorted(self.directory.glob("*.json")):
            process = _recorded_process(path)
            if process is not None:
                _kill(process)
                killed.append(process)
            scratches += _recorded_scratch(path)
            path.unlink(missing_ok=True)
        _, alive = psutil.wait_procs(killed, timeout=timeout_s)
        for process in alive:
            log.error("leftover worker %s survived SIGKILL for %.0fs", process.pid, timeout_s)
        for scratch in scratches:  # a killed worker could not remove its own
            shutil.rmtree(scratch, ignore_errors=True)
        return [process.pid for process in killed]


def _recorded_process(path: Path) -> psutil.Process | None:
    try:
        record = json.loads(path.read_text())
        process = psutil.Process(int(record["pid"]))
        if abs(process.create_time() - float(record["create_time"])) > 0.01:
            return None  # the pid was reused by an unrelated process
        return process
    except (OSError, ValueError, KeyError, TypeError, psutil.Error):
        return None


def _recorded_scratch(path: Path) -> list[str]:
    try:
        scratch = json.loads(path.read_text()).get("scratch")
    except (OSError, ValueError, AttributeError):
        return []
    return [scratch] if isinstance(scratch, str) and Path(scratch).name.startswith("eais-worker-") else []


def _kill(process: psutil.Process) -> None:
    try:
        process.kill()  # psutil checks the start time again first, so a reused pid is safe
    except psutil.Error:
        pass
