"""TensorFlow on the elastic accelerator attached to this VM (client side; the package also holds
the worker launcher the node agent uses, :mod:`remote_tf.worker`).

The VM agent listens on a local TensorFlow endpoint (``127.0.0.1:8470``, or ``$EAIS_TF_ENDPOINT``)
and forwards TensorFlow's own gRPC to a worker on the GPU node. Connect once, early, then write
ordinary TensorFlow::

    import tensorflow as tf
    import remote_tf

    connection = remote_tf.connect()        # checks the agent, then joins the worker
    print(connection.device)                # /job:worker/replica:0/task:0/device:GPU:0 (CPU:0 if none)

    model = tf.keras.Sequential([...])      # built after connect(): variables live on the accelerator
    model.compile(...); model.fit(x, y)     # runs remotely; so do predict and tf.function

    imported = remote_tf.load_saved_model("/models/resnet/1")   # files read on this VM
    outputs = imported.signatures["serving_default"](images)    # executed on the accelerator

    with tf.compat.v1.Session(remote_tf.session_target()) as session:   # TF1 graphs
        session.run(fetches)

What to expect:

- ``connect()`` waits (within ``timeout_s``) for an attach in progress, then raises
  :class:`AcceleratorUnavailable` when no agent answers, no accelerator is attached (with the
  agent's own message) or TensorFlow behind the endpoint does not serve a call within
  ``timeout_s``, and :class:`VersionMismatch` when the GPU node's TensorFlow major.minor differs
  from this VM's. Called again with the same endpoint it returns the same
  :class:`RemoteConnection` (after a lost accelerator, use ``reconnect()``).
- The accelerator becomes the default device of the thread that called ``connect()``; other
  threads (request handlers, data loaders) use ``with connection.device_scope():``. Create models
  after connecting: variables stay where they were created.
- A lost accelerator fails the pending call instead of hanging: at once when the worker, the
  relay or the VM agent goes away (and every call while the agent is down), within about five
  seconds when the VM agent sees the node's gateway stop answering, within about ten when only
  the worker stops answering (:class:`LivenessTimings`). TensorFlow raises
  ``tf.errors.UnavailableError`` (``AbortedError`` when the worker forgot this process's context);
  inside ``with remote_tf.translate_errors():`` that becomes :class:`AcceleratorLost`, whose
  message says what the agent reports now. Calls work again by themselves when the same worker
  serves again within ``keep_alive_secs`` (e.g. the VM agent restarted); otherwise the error says
  to call ``reconnect()``.
- ``remote_tf.reconnect()`` joins again (same endpoint by default), e.g. after a new attach.
  ``tf.function``s keep working; tensors, variables and so models from before are gone: rebuild
  or reload them. ``remote_tf.disconnect()`` makes the local CPU the default again.
- ``connect()`` sets ``TF_GRPC_DEFAULT_OPTIONS`` (keepalive pings), ``GRPC_FAIL_FAST=true`` and
  ``TF_ENABLE_EAGER_CLIENT_STREAMING_ENQUEUE=false`` (see :mod:`remote_tf.liveness`) unless you
  set them; TensorFlow reads the first once per process, so connect before opening
  any other TensorFlow gRPC connection. Each connect or reconnect leaves one idle local TensorFlow
  server behind (TensorFlow cannot stop them).
- TF1 sessions: ``tf.compat.v1.Session(remote_tf.session_target())`` makes the same checks.
  A session whose worker dies mid-``run`` fails within a second if the endpoint then refuses
  calls with a gRPC error status (what the VM agent does when it cannot forward); against a bare
  worker only ``ConfigProto(operation_timeout_in_ms=...)`` bounds it.
- Training: ``remote_tf.fit_resumable(build_model, x, y, epochs=..., checkpoint_dir=...)`` runs
  Keras ``fit`` on the accelerator with a checkpoint per epoch written on this VM's disk; when the
  accelerator is detached mid-fit it waits for one to be attached again, rebuilds the model there,
  restores the last checkpoint and goes on (:mod:`remote_tf.training`,
  ``examples/train_on_accelerator.py``).
"""

from __future__ import annotations

import importlib
from typing import Any

from remote_tf.errors import AcceleratorLost, AcceleratorUnavailable, RemoteTFError, VersionMismatch

# Exports that import TensorFlow load on first use, so `import remote_tf` stays cheap for processes
# (agents, launchers) that only need the errors or the worker-side modules.
_LAZY_EXPORTS = {
    "connect": "remote_tf.connection",
    "reconnect": "remote_tf.connection",
    "disconnect": "remote_tf.connection",
    "current_connection": "remote_tf.connection",
    "RemoteConnection": "remote_tf.connection",
    "LivenessTimings": "remote_tf.liveness",
    "load_saved_model": "remote_tf.saved_model",
    "session_target": "remote_tf.session",
    "translate_errors": "remote_tf.tf_errors",
    "fit_resumable": "remote_tf.training",
    "restore_checkpoint": "remote_tf.training",
    "FitResult": "remote_tf.training",
    "TrainingEvent": "remote_tf.training",
}

__all__ = ["AcceleratorLost", "AcceleratorUnavailable", "RemoteTFError", "VersionMismatch", *_LAZY_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _LAZY_EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'remote_tf' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
