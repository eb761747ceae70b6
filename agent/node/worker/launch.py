"""How worker processes are started: interpreter, sandbox arguments, environment, uids.

The environment is built from scratch: the agent's own (which may hold ``EAIS_NODE_TOKEN``)
never reaches a tenant's worker. Each worker runs as its own uid from a range, so that one
tenant's worker cannot read another's memory or files; that needs root and an interpreter every
user can read (a Python under /root cannot be run by them), which ``auto`` checks.
"""

from __future__ import annotations

import os
import stat
import sys
import sysconfig
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from agent.node.settings import parse_uid_range

AUTO_UIDS = range(61000, 62000)
# Passed through to workers: what CUDA, TensorFlow and Python need, nothing of the agent's own.
PASSED_ENV_PREFIXES = ("CUDA_", "NVIDIA_", "TF_", "XLA_", "OMP_", "KMP_", "LC_")
PASSED_ENV_NAMES = ("PATH", "LANG", "LD_LIBRARY_PATH", "PYTHONPATH", "PYTHONFAULTHANDLER", "TZ")


class UidPool:
    """Hands out uids from a range, one per live worker, round robin so that a uid comes back late."""

    def __init__(self, uids: range) -> None:
        self.uids = uids
        self._taken: set[int] = set()
        self._next = 0
        self._lock = threading.Lock()

    def take(self) -> int:
        with self._lock:
            for step in range(len(self.uids)):
                uid = self.uids[(self._next + step) % len(self.uids)]
                if uid not in self._taken:
                    self._taken.add(uid)
                    self._next = (self._next + step + 1) % len(self.uids)
                    return uid
        raise RuntimeError(f"all {len(self.uids)} worker uids {self.uids.start}-{self.uids.stop - 1} are in use")

    def give_back(self, uid: int) -> None:
        with self._lock:
            self._taken.discard(uid)


@dataclass
class WorkerLaunch:
    python: str
    isolation: Literal["netns", "none"]
    log_dir: Path
    uid_pool: UidPool | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    start: Literal["fork", "spawn"] = "fork"

    def command(self, netns_fd: int | None, uid: int | None, scratch: str | None = None) -> list[str]:
        """A worker as a fresh interpreter (``start = spawn``)."""
        command = [self.python, "-P", "-m", "remote_tf.worker", "--parent-pid", str(os.getpid())]
        if netns_fd is not None:
            command += ["--netns-fd", str(netns_fd)]
        if uid is not None:
            command += ["--uid", str(uid)]
        if scratch is not None:
            command += ["--scratch", scratch]
        return command

    def fork_server_command(self) -> list[str]:
        """The worker fork server (``start = fork``); the starter adds its control descriptor."""
        return [self.python, "-P", "-m", "remote_tf.worker_fork_server", "--parent-pid", str(os.getpid())]

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k in PASSED_ENV_NAMES or k.startswith(PASSED_ENV_PREFIXES)}
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
        env["PYTHONUNBUFFERED"] = "1"
        return {**env, **self.extra_env}


def worker_uids(setting: str, python: str) -> tuple[range | None, str]:
    """The uid range workers run under (None: the agent's own uid), and a line saying why."""
    if setting == "none":
        return None, "workers run as the agent's own user (worker_uids = none)"
    if setting != "auto":
        uids = parse_uid_range(setting)
        if os.geteuid() != 0:
            raise ValueError(f"worker_uids {setting} needs the agent to run as root (to switch workers to them)")
        return uids, f"workers run as uids {uids.start}-{uids.stop - 1}, one each"
    if os.geteuid() != 0:
        return None, "workers run as the agent's own user (not root, so it cannot give each its own uid)"
    unreadable = first_private_path([Path(python), *python_install_paths(python)])
    if unreadable is not None:
        return None, (f"WARNING: workers run as root, the agent's own user: {unreadable} is not readable by "
                      "other users, so an unprivileged worker could not start Python; install eais where "
                      "every user can read it (e.g. /opt/eais) or set worker_uids = none to silence this")
    return AUTO_UIDS, f"workers run as uids {AUTO_UIDS.start}-{AUTO_UIDS.stop - 1}, one each"


def python_install_paths(python: str) -> list[Path]:
    """What a worker's interpreter must read: its standard library, site-packages and this package."""
    if Path(python).resolve() != Path(sys.executable).resolve():
        return []  # another interpreter: trust the operator who configured it
    paths = [Path(sysconfig.get_paths()["stdlib"]) / "os.py", Path(sysconfig.get_paths()["purelib"])]
    return paths + [Path(__file__).resolve().parents[2] / "remote_tf" / "worker.py"]


def first_private_path(paths: list[Path]) -> Path | None:
    """The first path (or directory on the way to it) that others cannot read or traverse."""
    for path in paths:
        resolved = path.resolve()
        for part in [*reversed(resolved.parents), resolved]:
            try:
                mode = part.stat().st_mode
            except OSError:
                return part
            if part != resolved:
                needed = stat.S_IXOTH  # traverse
            else:
                needed = stat.S_IROTH | stat.S_IXOTH if stat.S_ISDIR(mode) else stat.S_IROTH
            if mode & needed != needed:
                return part
    return None
