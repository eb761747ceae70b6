"""``python -m agent.vm.notebooks.server_main AGENT_PID``: the notebook server, tied to the agent that starts it.

Before Jupyter is imported: no privilege can be regained (PR_SET_NO_NEW_PRIVS), and the server gets
SIGTERM when the agent's thread that started it dies (PR_SET_PDEATHSIG; that thread follows the
controller for the agent's whole life), so an agent killed with SIGKILL leaves no server serving its
token behind. Set here rather than in a ``preexec_fn``, which is unsafe in the threaded agent.
"""

from __future__ import annotations

import ctypes
import os
import runpy
import signal
import sys

PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS = 1, 38


def main() -> None:
    agent_pid = int(sys.argv[1])
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != agent_pid:  # the agent died before the signal was armed
        sys.exit("the VM agent that started this notebook server is gone")
    sys.argv = ["jupyter-server", *sys.argv[2:]]
    runpy.run_module("jupyter_server", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
