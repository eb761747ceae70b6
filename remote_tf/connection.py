"""Connecting this process's TensorFlow to the remote accelerator and making it the default device.

TensorFlow 2 remote eager: the process joins a two-job cluster, ``localhost`` (this process, with
a gRPC server of its own) and ``worker`` (the endpoint, task 0); ops placed on ``/job:worker/...``
run there. Facts this module is built on (TensorFlow 2.21, checked by tests/remote_tf/):

- Joining is two steps: ``set_server_def`` with only the local job (a new context id, and a new
  local gRPC server on a fresh port, which TensorFlow never stops: one idle server per join), then
  ``update_server_def`` adding the worker job. Added by an update, the worker receives every
  function this process traced before; joined by ``set_server_def`` it would receive none (older
  ``tf.function``s then fail with NotFoundError, and collecting them fails a later call with
  InvalidArgumentError). The new context id keeps a call that a surviving worker still runs for
  an earlier connection from aborting the new one. Leaving is ``update_server_def`` without the
  worker job. Tensors and variables of an earlier connection are gone after a reconnect.
- A device scope is per thread. ``connect()`` enters one on the calling thread (as TensorFlow's
  own ``make_master_device_default`` does), so plain code, ``tf.function`` and Keras ``predict``/
  ``fit`` on that thread run remotely; other threads use ``with connection.device_scope():``.
- Variables are placed when created: build or load models after ``connect()``.
- Joining takes no deadline and holds the GIL while it waits for the worker. With
  ``GRPC_FAIL_FAST=true`` (see :mod:`remote_tf.liveness`) a dead endpoint fails it at once and a
  silent one after gRPC's 20 s connect timeout; the endpoint checks just before it
  (:func:`remote_tf.endpoint.check_endpoint`, under ``timeout_s``) catch both first.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import tensorflow as tf
from tensorflow.core.protobuf.tensorflow_server_pb2 import ServerDef
from tensorflow.python import pywrap_tfe
from tensorflow.python.eager import context

from remote_tf.endpoint import WHAT_TO_CHECK, check_endpoint, resolve_endpoint
from remote_tf.errors import AcceleratorUnavailable, RemoteTFError
from remote_tf.liveness import LivenessTimings, install_grpc_options

LOCAL_JOB = "localhost"
REMOTE_TASK = "/job:worker/replica:0/task:0"
DEFAULT_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class RemoteConnection:
    """What ``connect()`` set up: the endpoint, the device ops now default to, the agent's status."""

    endpoint: str
    device: str
    agent_status: dict[str, Any] | None  # None when the endpoint is a bare TensorFlow worker
    timings: LivenessTimings = field(repr=False)

    def device_scope(self) -> Any:
        """``with connection.device_scope():`` places work remotely on threads other than connect()'s."""
        return tf.device(self.device)


@dataclass
class _Session:
    connection: RemoteConnection
    default_device: Any  # the entered tf.device scope, left again on disconnect
    thread_id: int


_lock = threading.Lock()
_current: _Session | None = None
_last: RemoteConnection | None = None  # kept after disconnect(), for reconnect()
_local_address: str | None = None  # this process's task; its gRPC server lives as long as the process


def connect(endpoint: str | None = None, *, timeout_s: float = DEFAULT_TIMEOUT_S,
            timings: LivenessTimings | None = None) -> RemoteConnection:
    """Run this process's TensorFlow work on the accelerator behind ``endpoint``; idempotent per endpoint."""
    endpoint = resolve_endpoint(endpoint)
    with _lock:
        if _current is not None and _current.connection.endpoint == endpoint:
            return _current.connection
        return _open(endpoint, timeout_s, timings or LivenessTimings())


def reconnect(endpoint: str | None = None, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> RemoteConnection:
    """Connect afresh (by default to the last endpoint), e.g. after AcceleratorLost and a new attach.

    Tensors, variables and models that lived on the old remote context are gone: rebuild or reload them.
    """
    with _lock:
        endpoint = resolve_endpoint(endpoint or (_last.endpoint if _last else None))
        return _open(endpoint, timeout_s, _last.timings if _last else LivenessTimings())


def disconnect() -> None:
    """Leave the worker job and make the local CPU the default device again.

    TensorFlow stops its KeepAlive calls for the old remote context, so the worker drops it (and the
    tensors in it) at most ``keep_alive_secs`` later. ``reconnect()`` joins again.
    """
    global _current
    with _lock:
        if _current is None:
            return
        _leave_default_device(_current)
        _point_worker_job_at(None, _current.connection.timings.keep_alive_secs)
        _current = None


def current_connection() -> RemoteConnection | None:
    return _current.connection if _current else None


def _open(endpoint: str, timeout_s: float, timings: LivenessTimings) -> RemoteConnection:
    global _current, _last
    if not tf.executing_eagerly():
        raise RemoteTFError("connect() needs eager execution; TF1 graphs use tf.compat.v1.Session("
                            "remote_tf.session_target())", endpoint=endpoint)
    status = check_endpoint(endpoint, local_tf_version=tf.__version__, timeout_s=timeout_s)
    install_grpc_options(timings)
    if _current is not None:
        _leave_default_device(_current)
        _current = None
    # No deadline can cover this call (see the module docstring); the checks above come first.
    _join_cluster(endpoint, timings.keep_alive_secs)
    connection = RemoteConnection(endpoint, _remote_device(endpoint), status, timings)
    default_device = tf.device(connection.device)
    default_device.__enter__()  # left in disconnect(); the same trick as TF's make_master_device_default
    _current, _last = _Session(connection, default_device, threading.get_ident()), connection
    return connection


def _point_worker_job_at(endpoint: str | None, keep_alive_secs: int) -> None:
    """Make the eager context's ``worker`` job ``endpoint`` (None: no remote job, local only)."""
    if endpoint is None:
        context.context().update_server_def(_server_def({}), keep_alive_secs=keep_alive_secs)
        return
    _start_fresh_context(keep_alive_secs)
    # Added by an update, the worker gets every function this process has traced so far; joined
    # by set_server_def it would get none (NotFoundError on the next call of an older tf.function).
    context.context().update_server_def(_server_def({"worker": [endpoint]}), keep_alive_secs=keep_alive_secs)


def _start_fresh_context(keep_alive_secs: int) -> None:
    """A new context id, so nothing left on a worker from an earlier connection can meet this one.

    set_server_def starts a local gRPC server that TensorFlow never stops, so each call needs a
    fresh port and leaves one idle server behind.
    """
    global _local_address
    context.ensure_initialized()  # with a live handle set_server_def applies keep_alive_secs (else 600 s)
    _local_address = f"localhost:{pywrap_tfe.TF_PickUnusedPortOrDie()}"
    context.context().set_server_def(_server_def({}), keep_alive_secs=keep_alive_secs)


def _server_def(remote_jobs: dict[str, list[str]]) -> ServerDef:
    cluster = tf.train.ClusterSpec({**remote_jobs, LOCAL_JOB: [_local_address]})
    return ServerDef(cluster=cluster.as_cluster_def(), job_name=LOCAL_JOB, task_index=0, protocol="grpc",
                     default_session_config=context.context().config)


def _join_cluster(endpoint: str, keep_alive_secs: int) -> None:
    try:
        _point_worker_job_at(endpoint, keep_alive_secs)
    except tf.errors.OpError as error:
        raise AcceleratorUnavailable(f"TensorFlow could not connect to {endpoint}: {error.message}; {WHAT_TO_CHECK}",
                                     endpoint=endpoint) from error


def _remote_device(endpoint: str) -> str:
    names = {device.name for device in tf.config.list_logical_devices()}
    for device in (f"{REMOTE_TASK}/device:GPU:0", f"{REMOTE_TASK}/device:CPU:0"):
        if device in names:
            return device
    raise AcceleratorUnavailable(f"{endpoint} answered but offers no {REMOTE_TASK} device (devices: "
                                 f"{sorted(names)}); is it a TensorFlow worker with job name 'worker'?",
                                 endpoint=endpoint)


def _leave_default_device(session: _Session) -> None:
    if threading.get_ident() != session.thread_id:
        raise RemoteTFError("disconnect() and reconnect() must run on the thread that called connect(): "
                            "its default device scope is that thread's", endpoint=session.connection.endpoint)
    try:
        session.default_device.__exit__(None, None, None)
    except RuntimeError as error:
        raise RemoteTFError(f"a device scope entered after connect() is still open ({error}); leave it "
                            f"before disconnect() or reconnect()", endpoint=session.connection.endpoint) from error
