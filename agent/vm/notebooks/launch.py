"""What one notebook server is given, and the command that starts it.

The sandbox follows the node's workers (``agent.node.worker.launch``): its own uid when the agent
can switch to one (``notebook_uid``, 'auto' as for workers: 62000 when the agent is root and every
user can read the Python install; else the agent's own, with a warning when that is root), a private home (mode 0700, owned by that uid) kept across
StopEaiJupyter/StartEaiJupyter and removed when the notebook is deleted, and a scratch directory
for one run (configuration with the token, kernel spec, runtime files with the kernels' keys,
TMPDIR), removed when the server stops. The environment is built from nothing: the user's
EnvironmentVar, then ours (never the agent's own, which holds its AccessKey). The token is written
to the scratch configuration (mode 0600), not put on the command line where ``ps`` would show it.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from agent.node.worker.launch import first_private_path, python_install_paths

AUTO_UID = 62000  # one uid for every notebook of this VM: they all belong to the VM's account
# Taken from the agent's environment when set: what a program needs to run, nothing secret.
PASSED_THROUGH = ("PATH", "LANG", "LC_ALL", "TZ")
KERNEL_NAME = "python3"


class LaunchRefused(RuntimeError):
    """The server must not start (running as root without a uid for it, a directory that cannot be made)."""


@dataclass(frozen=True)
class NotebookLaunch:
    """How this agent starts notebook servers (from VmAgentSettings)."""

    root: Path  # homes live in root/<instance id>/, logs in root/<instance id>.log
    bind_host: str  # the address the server listens on
    url_host: str  # the address JupyterUrl names
    tf_endpoint: str  # this VM's TensorFlow endpoint, for remote_tf in the kernels
    python: str = sys.executable
    uid: int | None = None  # None: the agent's own (see ``sandbox_uid``)


@dataclass
class ServerFiles:
    """One run's directories and port; ``release`` removes the scratch part."""

    home: Path
    scratch: Path
    log_path: Path
    port: int
    uid: int | None

    def release(self) -> None:
        shutil.rmtree(self.scratch, ignore_errors=True)


def sandbox_uid(setting: str, python: str) -> tuple[int | None, str]:
    """The uid notebook servers run as (None: the agent's own), and a line saying why."""
    if setting == "none":
        return None, "notebook servers run as the agent's own user (notebook_uid = none)"
    if setting != "auto":
        if os.geteuid() != 0:
            raise ValueError(f"notebook_uid {setting} needs the agent to run as root (to switch servers to it)")
        return int(setting), f"notebook servers run as uid {setting}"
    if os.geteuid() != 0:
        return None, "notebook servers run as the agent's own user (not root, so it cannot give them their own)"
    unreadable = first_private_path([Path(python), *python_install_paths(python)])
    if unreadable is not None:
        return None, (f"WARNING: notebook servers run as root, the agent's own user: {unreadable} is not readable "
                      "by other users; install eais where every user can read it (e.g. /opt/eais)")
    return AUTO_UID, f"notebook servers run as uid {AUTO_UID}"


def prepare(launch: NotebookLaunch, instance_id: str, token: str) -> ServerFiles:
    uid = launch.uid
    launch.root.mkdir(parents=True, exist_ok=True, mode=0o711)  # the servers' uid must reach its home inside
    home = _private_dir(launch.root / instance_id, uid)
    scratch = Path(tempfile.mkdtemp(prefix=f"eais-notebook-{instance_id}-"))
    files = ServerFiles(home, scratch, launch.root / f"{instance_id}.log", _free_port(launch.bind_host), uid)
    try:
        for part in ("config", "runtime", "tmp", "share/jupyter/kernels/" + KERNEL_NAME):
            (scratch / part).mkdir(parents=True, mode=0o700)
        _write_config(files, launch, token)
        _write_kernel_spec(files, launch)
        if uid is not None:
            for path in [scratch, *scratch.rglob("*")]:
                os.chown(path, uid, uid)
    except BaseException:
        files.release()
        raise
    return files


def command(launch: NotebookLaunch) -> list[str]:
    """jupyter-server, through ``server_main`` (tied to this agent process); its settings come from the config file."""
    return [launch.python, "-m", "agent.vm.notebooks.server_main", str(os.getpid())]


def environment(files: ServerFiles, launch: NotebookLaunch, user: list[tuple[str, str]]) -> dict[str, str]:
    env = {name: os.environ[name] for name in PASSED_THROUGH if name in os.environ}
    env.update(user)
    env.update(
        HOME=str(files.home), TMPDIR=str(files.scratch / "tmp"), IPYTHONDIR=str(files.home / ".ipython"),
        JUPYTER_CONFIG_DIR=str(files.scratch / "config"), JUPYTER_RUNTIME_DIR=str(files.scratch / "runtime"),
        JUPYTER_DATA_DIR=str(files.scratch / "share/jupyter"), JUPYTER_PATH=str(files.scratch / "share/jupyter"),
        EAIS_TF_ENDPOINT=launch.tf_endpoint,
    )
    return env


def _private_dir(path: Path, uid: int | None) -> Path:
    path.mkdir(mode=0o700, exist_ok=True)
    if uid is not None:
        os.chown(path, uid, uid)
    status = path.lstat()
    if not path.is_dir() or path.is_symlink() or status.st_mode & 0o077:
        raise LaunchRefused(f"{path} is not a private directory")
    return path


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def _write_config(files: ServerFiles, launch: NotebookLaunch, token: str) -> None:
    config = {
        "IdentityProvider": {"token": token},
        "ServerApp": {
            "ip": launch.bind_host, "port": files.port, "port_retries": 0, "open_browser": False,
            "root_dir": str(files.home), "allow_remote_access": True, "default_url": "/lab",  # JupyterLab's UI
            "allow_root": files.uid is None and os.geteuid() == 0,  # only where no uid of its own could be had
        },
    }
    path = files.scratch / "config" / "jupyter_server_config.json"
    path.touch(mode=0o600)
    path.write_text(json.dumps(config))


def _write_kernel_spec(files: ServerFiles, launch: NotebookLaunch) -> None:
    spec = {
        "argv": [launch.python, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (eais accelerator)", "language": "python",
        "env": {"EAIS_TF_ENDPOINT": launch.tf_endpoint},
        "metadata": {"debugger": False},
    }
    (files.scratch / "share/jupyter/kernels" / KERNEL_NAME / "kernel.json").write_text(json.dumps(spec))
