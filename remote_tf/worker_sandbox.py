"""What a TensorFlow worker gives up before it imports TensorFlow and serves a tenant.

In order, while still privileged: enter the private network namespace the node agent made for it
(its port then exists only there), drop to its own unprivileged uid/gid (no supplementary groups),
forbid regaining privileges, ask to be killed when the process that started it (the agent's spawning
thread, or the fork server) dies, and move into a private scratch directory (mode 0700) for
TensorFlow's temporary files. The node agent makes that directory for the worker (and removes it
after the kill, so workers sharing the agent's uid leave none behind); with a uid of its own, the
worker also removes what earlier workers under that uid left (a killed worker cannot clean up; uids
are reused). Without a directory from the agent, the worker makes one itself.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from agent.node.netns import enter_namespace  # the one place for the namespace calls

PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS = 1, 38

_libc = ctypes.CDLL(None, use_errno=True)


class SandboxError(RuntimeError):
    """A step of the sandbox failed; the worker must not serve."""


@dataclass(frozen=True)
class Sandbox:
    netns_fd: int | None = None
    uid: int | None = None
    parent_pid: int | None = None
    scratch: str | None = None  # made by the agent, owned by ``uid``, mode 0700


def enter_sandbox(sandbox: Sandbox) -> str:
    """Apply every step; returns the scratch directory. Raises SandboxError."""
    if sandbox.netns_fd is not None:
        try:
            enter_namespace(sandbox.netns_fd)  # single-threaded here, so the whole process moves
        except OSError as error:
            raise SandboxError(f"cannot enter the worker's network namespace: {error.strerror}") from None
        os.close(sandbox.netns_fd)
    if sandbox.uid is not None:
        _drop_privileges(sandbox.uid)
    _prctl(PR_SET_NO_NEW_PRIVS, 1, "PR_SET_NO_NEW_PRIVS")
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL, "PR_SET_PDEATHSIG")  # after setuid, which clears it
    if sandbox.parent_pid is not None and os.getppid() != sandbox.parent_pid:
        raise SandboxError("the node agent that started this worker is gone")
    return _private_scratch(sandbox.scratch, clear_earlier=sandbox.uid is not None)


def _drop_privileges(uid: int) -> None:
    try:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    except OSError as error:
        raise SandboxError(f"cannot switch to uid {uid}: {error.strerror}") from None
    if os.getuid() != uid or os.geteuid() != uid:
        raise SandboxError(f"still running as uid {os.geteuid()} after switching to {uid}")


def _prctl(option: int, value: int, name: str) -> None:
    if _libc.prctl(option, value, 0, 0, 0) != 0:
        raise SandboxError(f"prctl({name}) failed: {os.strerror(ctypes.get_errno())}")


def scratch_prefix(uid: int) -> str:
    """Scratch directories of workers under ``uid`` are named ``<tmp>/<prefix>...``."""
    return f"eais-worker-{uid}-"


def _private_scratch(given: str | None, *, clear_earlier: bool) -> str:
    """A fresh 0700 directory for HOME and TMPDIR; with a uid of its own, earlier workers' ones go first."""
    prefix = scratch_prefix(os.getuid())
    if clear_earlier:  # a killed worker of a previous tenant under this uid could not clean up after itself
        for stale in (Path(given).parent if given else Path(tempfile.gettempdir())).glob(f"{prefix}*"):
            if str(stale) != given:
                shutil.rmtree(stale, ignore_errors=True)
    scratch = given or tempfile.mkdtemp(prefix=prefix)
    status = os.lstat(scratch)
    if status.st_uid != os.getuid() or status.st_mode & 0o777 != 0o700 or not stat.S_ISDIR(status.st_mode):
        raise SandboxError(f"the scratch directory {scratch} is not a private directory of uid {os.getuid()}")
    os.environ["HOME"] = os.environ["TMPDIR"] = scratch
    tempfile.tempdir = scratch
    os.chdir(scratch)
    return scratch
