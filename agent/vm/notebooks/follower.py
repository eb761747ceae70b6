"""Follows the notebooks of the VM's desired state (VmDesiredState.notebooks in agents.proto).

    listed, serve, token   -> a server for that attachment runs (a failed one is reported FAILED,
                              and started again by a desired state that comes RESTART_AFTER_S later:
                              a notebook InUse whose server died gets it back within a resend period)
    listed, not serve      -> no server runs; the notebook's home stays
    not listed             -> no server runs, and the home and log are removed (the notebook was deleted)

The agent applies this before the attachment (``VmAgent``), so a stopping notebook's server is gone
before the channel is reported closed and the instance can become Stopped.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import threading
import time
from collections.abc import Callable, Sequence

from agent.vm.notebooks.launch import NotebookLaunch
from agent.vm.notebooks.server import NotebookServer, ServerTiming
from protos.eais.v1 import agents_pb2 as pb

log = logging.getLogger(__name__)
RESTART_AFTER_S = 10.0


class NotebookFollower:
    def __init__(self, launch: NotebookLaunch, report_soon: Callable[[], None],
                 timing: ServerTiming | None = None) -> None:
        self._launch, self._report_soon, self._timing = launch, report_soon, timing or ServerTiming()
        self._servers: dict[str, NotebookServer] = {}
        self._known: set[str] | None = None  # None until the first desired state: then every stale home goes
        self._lock = threading.Lock()

    def follow(self, notebooks: Sequence[pb.VmNotebook]) -> None:
        with self._lock:
            wanted = {notebook.instance_id: notebook for notebook in notebooks if _safe_id(notebook.instance_id)}
            changed = False
            for instance_id in list(self._servers):
                notebook = wanted.get(instance_id)
                running = self._servers[instance_id]
                if (notebook is None or not notebook.serve or notebook.attachment_id != running.attachment_id
                        or (running.failed and time.monotonic() - running.failed_at >= RESTART_AFTER_S)):
                    self._servers.pop(instance_id).stop()
                    changed = True
            for instance_id in (self._on_disk() if self._known is None else self._known) - set(wanted):
                self._remove_files(instance_id)
            self._known = set(wanted)
            for instance_id, notebook in wanted.items():
                if notebook.serve and notebook.token and instance_id not in self._servers:
                    self._start(notebook)
                    changed = True
        if changed:
            self._report_soon()

    def actual(self) -> list[pb.NotebookActualState]:
        with self._lock:
            return [self._servers[instance_id].actual() for instance_id in sorted(self._servers)]

    def stop(self) -> None:
        with self._lock:
            for server in self._servers.values():
                server.stop()
            self._servers.clear()
        with contextlib.suppress(OSError):
            self._launch.root.rmdir()  # only when empty: no stopped notebook's home is in it

    def _start(self, notebook: pb.VmNotebook) -> None:
        server = NotebookServer(notebook.instance_id, notebook.attachment_id, self._launch, self._report_soon,
                                self._timing)
        self._servers[notebook.instance_id] = server
        log.info("notebook %s: starting its server for attachment %s", notebook.instance_id, notebook.attachment_id)
        server.start(notebook.token, [(variable.key, variable.value) for variable in notebook.environment])

    def _on_disk(self) -> set[str]:
        """Notebook homes left by an earlier run of the agent."""
        root = self._launch.root
        return {path.name for path in root.glob("eais-*") if path.is_dir()} if root.is_dir() else set()

    def _remove_files(self, instance_id: str) -> None:
        log.info("notebook %s: deleted; removing its files", instance_id)
        shutil.rmtree(self._launch.root / instance_id, ignore_errors=True)
        (self._launch.root / f"{instance_id}.log").unlink(missing_ok=True)


def _safe_id(instance_id: str) -> bool:
    """An id used as a directory name: ``eais-`` and letters, digits, ``-`` only."""
    rest = instance_id.removeprefix("eais-")
    return instance_id.startswith("eais-") and 0 < len(rest) <= 59 and rest.isascii() and rest.isalnum()
