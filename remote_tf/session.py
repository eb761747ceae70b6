"""The target for a TF1 ``tf.compat.v1.Session`` on the remote accelerator.

The endpoint also forwards TensorFlow's MasterService, so a graph session whose target is
``grpc://<endpoint>`` runs its whole graph on the worker's devices.
"""

from __future__ import annotations

import tensorflow as tf

from remote_tf.connection import DEFAULT_TIMEOUT_S
from remote_tf.endpoint import check_endpoint, resolve_endpoint


def session_target(endpoint: str | None = None, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> str:
    """``"grpc://<endpoint>"`` once the endpoint's status, TensorFlow version and liveness check out.

    TF1 sessions retry a failed step and wait for a connection without limit: when the worker
    dies, ``run`` fails within about a second only if the endpoint answers the retries with an
    error status, as the VM agent does; against a bare worker that died, only
    ``tf.compat.v1.ConfigProto(operation_timeout_in_ms=...)`` bounds it (DeadlineExceededError).
    """
    endpoint = resolve_endpoint(endpoint)
    check_endpoint(endpoint, local_tf_version=tf.__version__, timeout_s=timeout_s)
    return f"grpc://{endpoint}"
