"""Which TensorFlow endpoint to use, and whether it can take work before TensorFlow touches it.

The endpoint is normally the VM agent (``127.0.0.1:8470``), which answers a status request of its
own (:mod:`eais_plumbing.endpoint_status`) and otherwise forwards TensorFlow's gRPC bytes to a worker on
the GPU node. A bare TensorFlow worker does not answer that request; then only the TensorFlow
probe below applies.

The checks run before TensorFlow is pointed at the endpoint because TensorFlow's own first call
has no deadline (it asks the worker for its devices and, unless ``GRPC_FAIL_FAST=true``, waits
for a dead endpoint forever) and its remote protocols carry no version check.
"""

from __future__ import annotations

import os
import time
from typing import Any

import grpc

from eais_plumbing.endpoint_status import EndpointUnreachable, query_endpoint_status
from remote_tf.errors import AcceleratorUnavailable, VersionMismatch

DEFAULT_ENDPOINT = "127.0.0.1:8470"
ENDPOINT_ENV = "EAIS_TF_ENDPOINT"
# An RPC every TensorFlow worker serves; its request message (GetStatusRequest) has no fields.
WORKER_STATUS_METHOD = "/tensorflow.WorkerService/GetStatus"
WHAT_TO_CHECK = "is eais-agent running on this VM and an accelerator attached? `eais-agent status` shows both"
ATTACHING = "attaching"  # the agent's state while an attach is in progress (eais_plumbing.endpoint_status)
ATTACH_POLL_S = 0.05


def resolve_endpoint(endpoint: str | None = None) -> str:
    """The argument, else ``$EAIS_TF_ENDPOINT``, else ``127.0.0.1:8470``; a ``grpc://`` prefix is dropped."""
    chosen = endpoint or os.environ.get(ENDPOINT_ENV) or DEFAULT_ENDPOINT
    return chosen.removeprefix("grpc://")


def check_endpoint(endpoint: str, *, local_tf_version: str, timeout_s: float) -> dict[str, Any] | None:
    """Raise unless ``endpoint`` can take TensorFlow work now; return the agent's status (None: bare worker).

    An attach in progress (the agent says ``attaching``) is waited for, within ``timeout_s``: the
    instance shows InUse a moment before the VM agent hears of it, and a worker may still be starting.
    """
    deadline = time.monotonic() + timeout_s
    status = agent_status(endpoint, timeout_s)
    while status is not None and status.get("state") == ATTACHING and time.monotonic() < deadline:
        time.sleep(ATTACH_POLL_S)
        status = agent_status(endpoint, max(0.1, deadline - time.monotonic()))
    if status is not None:
        refuse_unhealthy(endpoint, status)
        refuse_other_tf_version(endpoint, status, local_tf_version)
    probe_tensorflow(endpoint, timeout_s)
    return status


def agent_status(endpoint: str, timeout_s: float) -> dict[str, Any] | None:
    try:
        return query_endpoint_status(endpoint, timeout_s=timeout_s)
    except EndpointUnreachable as error:
        raise AcceleratorUnavailable(f"{error}; {WHAT_TO_CHECK}", endpoint=endpoint) from error


def refuse_unhealthy(endpoint: str, status: dict[str, Any]) -> None:
    if status.get("healthy") is False:
        message = status.get("message") or f"the agent at {endpoint} reports state {status.get('state', '?')}"
        raise AcceleratorUnavailable(f"{message} (endpoint {endpoint}; `eais-agent status` for details)",
                                     endpoint=endpoint)


def refuse_other_tf_version(endpoint: str, status: dict[str, Any], local_tf_version: str) -> None:
    node_version = status.get("node_tf_version") or ""
    if node_version and major_minor(node_version) != major_minor(local_tf_version):
        raise VersionMismatch(
            f"the accelerator's node runs TensorFlow {node_version} but this VM has TensorFlow "
            f"{local_tf_version}; install tensorflow=={'.'.join(major_minor(node_version))}.* here "
            f"(major.minor must match: TensorFlow's remote protocol has no version check of its own)",
            endpoint=endpoint, local_version=local_tf_version, node_version=node_version)


def major_minor(version: str) -> tuple[str, str]:
    parts = version.split(".")
    return parts[0], parts[1] if len(parts) > 1 else "0"


def probe_tensorflow(endpoint: str, timeout_s: float) -> None:
    """One real TensorFlow RPC under a deadline, which TensorFlow's own first call does not have."""
    with grpc.insecure_channel(endpoint) as channel:
        get_status = channel.unary_unary(WORKER_STATUS_METHOD, request_serializer=bytes, response_deserializer=bytes)
        try:
            get_status(b"", timeout=timeout_s)
        except grpc.RpcError as error:
            raise AcceleratorUnavailable(
                f"TensorFlow at {endpoint} did not serve a call within {timeout_s}s "
                f"({error.code().name}: {error.details()}); {WHAT_TO_CHECK}", endpoint=endpoint) from error
