"""What one worker is given, and taken back from it once it is reaped: namespace, uid, scratch directory, log.

The agent makes the scratch directory (``<tmp>/eais-worker-<uid>-...``, mode 0700, owned by the
worker's uid) and removes it after the kill, so no worker leaves one behind, whether it has a uid of
its own or shares the agent's; a record of it survives an agent crash (:mod:`agent.node.worker.records`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from agent.node.netns import NetworkNamespace
from agent.node.worker.launch import WorkerLaunch
from remote_tf.worker_sandbox import scratch_prefix


@dataclass
class WorkerResources:
    namespace: NetworkNamespace | None
    uid: int | None
    scratch: Path
    log_path: Path

    @classmethod
    def allocate(cls, launch: WorkerLaunch, name: str) -> WorkerResources:
        """A namespace (with netns isolation), a uid (from the pool, if any), a scratch directory, a log path."""
        namespace = NetworkNamespace.create() if launch.isolation == "netns" else None
        uid = launch.uid_pool.take() if launch.uid_pool else None
        try:
            owner = os.getuid() if uid is None else uid
            scratch = Path(tempfile.mkdtemp(prefix=scratch_prefix(owner), dir=tempfile.gettempdir()))
            if uid is not None:
                os.chown(scratch, uid, uid)
        except BaseException:
            cls(namespace, uid, Path(), Path()).release(launch)
            raise
        return cls(namespace, uid, scratch, launch.log_dir / f"{name}.log")

    @property
    def netns_fd(self) -> int | None:
        return self.namespace.fd if self.namespace is not None else None

    def name_log_after(self, pid: int) -> None:
        """``NAME-pidPID.log``: unique across agent restarts."""
        self.log_path = self.log_path.rename(self.log_path.with_name(f"{self.log_path.stem}-pid{pid}.log"))

    def release(self, launch: WorkerLaunch) -> None:
        """Give everything back (the worker must be reaped by now)."""
        if self.namespace is not None:
            self.namespace.close()
        if self.uid is not None and launch.uid_pool:
            launch.uid_pool.give_back(self.uid)
            self.uid = None
        if self.scratch.name:
            shutil.rmtree(self.scratch, ignore_errors=True)
