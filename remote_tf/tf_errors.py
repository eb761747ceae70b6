"""TensorFlow's errors from a lost accelerator, turned into :class:`AcceleratorLost` at one boundary.

::

    with remote_tf.translate_errors():
        model.fit(x, y)

Which TensorFlow errors mean "the accelerator went away" (measured with TensorFlow 2.21):

- ``UnavailableError``: the worker's connection closed ("Socket closed"), a keepalive ping went
  unanswered ("ping timeout"), the endpoint no longer takes connections ("failed to connect to
  all addresses") or refuses calls (with the agent's message). Later remote calls fail as well
  until ``remote_tf.reconnect()``, unless the very same worker comes back.
- ``DeadlineExceededError``: a TF1 session's ``operation_timeout_in_ms`` ran out.
- ``AbortedError``: the worker no longer knows this process's remote context ("Unable to find a
  context_id"): it was restarted, or it dropped the context after ``keep_alive_secs`` without
  hearing from us (e.g. the VM agent was down longer than that). Only a reconnect helps.

Everything else (shapes, out of memory, a bad op) is the program's error and passes unchanged.
The message adds what the VM agent says now, asked with a short timeout, so the person reading it
learns whether the accelerator was detached or the agent is gone.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import tensorflow as tf

from eais_plumbing.endpoint_status import EndpointUnreachable, query_endpoint_status
from remote_tf.connection import current_connection
from remote_tf.endpoint import resolve_endpoint
from remote_tf.errors import AcceleratorLost

LOST_ACCELERATOR_ERRORS: tuple[type[tf.errors.OpError], ...] = (
    tf.errors.UnavailableError,
    tf.errors.DeadlineExceededError,
    tf.errors.AbortedError,
)
AGENT_STATUS_TIMEOUT_S = 1.0


@contextlib.contextmanager
def translate_errors(endpoint: str | None = None) -> Iterator[None]:
    """Raise :class:`AcceleratorLost` for TensorFlow errors that mean the accelerator went away."""
    try:
        yield
    except LOST_ACCELERATOR_ERRORS as error:
        raise accelerator_lost(error, endpoint) from error


def accelerator_lost(error: tf.errors.OpError, endpoint: str | None = None) -> AcceleratorLost:
    connection = current_connection()
    endpoint = endpoint or (connection.endpoint if connection else resolve_endpoint())
    reason = (error.message or type(error).__name__).strip().splitlines()[0]
    return AcceleratorLost(
        f"the accelerator behind {endpoint} stopped answering ({type(error).__name__}: {reason}); "
        f"{_what_the_agent_says(endpoint)}; once one is attached again, call remote_tf.reconnect() and "
        f"rebuild or reload models (their remote variables are gone)", endpoint=endpoint)


def _what_the_agent_says(endpoint: str) -> str:
    try:
        status = query_endpoint_status(endpoint, timeout_s=AGENT_STATUS_TIMEOUT_S)
    except EndpointUnreachable:
        return f"nothing answers at {endpoint} now (is eais-agent running?)"
    if status is None:
        return f"{endpoint} is a bare TensorFlow worker, no agent to ask"
    return f"the agent says: {status.get('message') or status.get('state', 'nothing')}"
