"""The TensorFlow worker the node agent starts: one process per attachment, killed on detach.

    python -m remote_tf.worker [--netns-fd FD] [--uid UID] [--parent-pid PID] [--scratch DIR]

Normally forked by :mod:`remote_tf.worker_fork_server` with TensorFlow already imported (milliseconds);
started this way, as a fresh process, it imports TensorFlow itself (seconds). Either way it enters its
sandbox (see :mod:`remote_tf.worker_sandbox`) and says it is warm; the agent keeps such warm workers
in a pool. Then it waits on stdin for one assignment

    {"port": 2222, "gpu_index": 0, "memory_mib": 8192, "backend": "gpu", "gpu_uuid": "GPU-…"}

restricts TensorFlow to that GPU with that memory cap (or hides every GPU on the CPU backend)
before any op runs, starts ``tf.distribute.Server`` as ``/job:worker/task:0`` on the port, and
says it is ready. It runs until killed, or until stdin closes (the agent is gone).

Protocol lines, one JSON object each, on the stdout it was started with (TensorFlow's own output
goes to stderr)::

    {"event": "warm", "pid": 123, "tf_version": "2.21.0", "import_s": 3.9}
    {"event": "ready", "port": 2222, "devices": ["/job:worker/replica:0/task:0/device:GPU:0", ...]}
    {"event": "error", "message": "why it cannot serve"}
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from typing import IO, Any

from remote_tf.worker_sandbox import Sandbox, SandboxError, enter_sandbox

BACKENDS = ("gpu", "cpu")


class AssignmentError(ValueError):
    """The assignment line is not what the agent sends; the message says which field."""


@dataclass(frozen=True)
class Assignment:
    port: int
    gpu_index: int
    memory_mib: int
    backend: str
    gpu_uuid: str = ""

    @classmethod
    def parse(cls, line: str) -> Assignment:
        try:
            fields = json.loads(line)
            assignment = cls(int(fields["port"]), int(fields["gpu_index"]), int(fields["memory_mib"]),
                             str(fields["backend"]), str(fields.get("gpu_uuid", "")))
        except (ValueError, KeyError, TypeError) as error:
            raise AssignmentError(f"malformed assignment: {error}") from None
        if not 0 < assignment.port < 65536 or assignment.gpu_index < 0 or assignment.memory_mib < 1:
            raise AssignmentError(f"assignment out of range: {assignment}")
        if assignment.backend not in BACKENDS:
            raise AssignmentError(f"backend {assignment.backend!r} is not one of {BACKENDS}")
        return assignment


def protocol_stream() -> IO[str]:
    """The original stdout, for protocol lines only; fd 1 then points at stderr, for any stray print."""
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    return protocol


def emit(stream: IO[str], event: str, **fields: Any) -> None:
    stream.write(json.dumps({"event": event, **fields}) + "\n")
    stream.flush()


def hide_other_devices(assignment: Assignment) -> None:
    """Before CUDA starts: only the assigned GPU (by UUID when known: enumeration order may differ), or none."""
    if assignment.backend == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    else:
        os.environ["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"  # the order NVML numbers devices in
        os.environ["CUDA_VISIBLE_DEVICES"] = assignment.gpu_uuid or str(assignment.gpu_index)


def configure_devices(tf: Any, assignment: Assignment) -> None:
    """The slice's GPU with its memory cap, or no GPU at all; must run before any op."""
    gpus = tf.config.list_physical_devices("GPU")
    if assignment.backend == "cpu":
        tf.config.set_visible_devices([], "GPU")
        return
    if not gpus:
        raise RuntimeError(f"TensorFlow sees no GPU for GPU {assignment.gpu_index} "
                           f"({assignment.gpu_uuid or 'no uuid'}); is this the CUDA build of TensorFlow?")
    if len(gpus) > 1:  # CUDA started before CUDA_VISIBLE_DEVICES was set: fall back to the PCI-ordered index
        print(f"eais worker: CUDA_VISIBLE_DEVICES did not apply; choosing GPU {assignment.gpu_index} of "
              f"{len(gpus)} by index", file=sys.stderr)
        if assignment.gpu_index >= len(gpus):
            raise RuntimeError(f"GPU {assignment.gpu_index} is not among the {len(gpus)} TensorFlow sees")
        gpus = gpus[assignment.gpu_index:assignment.gpu_index + 1]
    tf.config.set_visible_devices(gpus, "GPU")
    tf.config.set_logical_device_configuration(
        gpus[0], [tf.config.LogicalDeviceConfiguration(memory_limit=assignment.memory_mib)])


def start_server(tf: Any, port: int) -> Any:
    cluster = tf.train.ClusterSpec({"worker": [f"localhost:{port}"]})
    return tf.distribute.Server(cluster, job_name="worker", task_index=0, protocol="grpc", start=True)


def serve(protocol: IO[str], started: float) -> int:
    import tensorflow as tf

    emit(protocol, "warm", pid=os.getpid(), tf_version=tf.__version__, import_s=round(time.monotonic() - started, 3))
    line = sys.stdin.readline()
    if not line:
        return 0  # the agent let go of this pooled worker
    try:
        assignment = Assignment.parse(line)
        hide_other_devices(assignment)
        configure_devices(tf, assignment)
        server = start_server(tf, assignment.port)
    except Exception as error:  # noqa: BLE001 - reported to the agent, which reports it to the controller
        emit(protocol, "error", message=f"{type(error).__name__}: {error}")
        return 2
    devices = [device.name for device in tf.config.list_logical_devices()]
    emit(protocol, "ready", port=assignment.port, devices=devices, memory_limit_mib=assignment.memory_mib)
    sys.stdin.read()  # until the agent closes stdin or dies
    del server
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m remote_tf.worker", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--netns-fd", type=int, help="enter the network namespace open on this descriptor")
    parser.add_argument("--uid", type=int, help="run as this uid (and gid)")
    parser.add_argument("--parent-pid", type=int, help="exit at once if the parent is no longer this process")
    parser.add_argument("--scratch", help="private directory (mode 0700, owned by the worker's uid) for HOME and TMPDIR")
    return parser.parse_args(argv)


def run_worker(sandbox: Sandbox, started: float) -> int:
    """Enter the sandbox and serve; the exit code when the sandbox fails (serving ends in os._exit)."""
    protocol = protocol_stream()
    try:
        enter_sandbox(sandbox)
    except SandboxError as error:
        emit(protocol, "error", message=str(error))
        return 3
    code = serve(protocol, started)
    os._exit(code)  # TensorFlow's server threads would keep a normal exit waiting


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    return run_worker(Sandbox(options.netns_fd, options.uid, options.parent_pid, options.scratch), time.monotonic())


if __name__ == "__main__":
    sys.exit(main())
