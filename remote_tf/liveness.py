"""How a dead or frozen accelerator becomes an error within seconds instead of a hang.

Measured with TensorFlow 2.21 (the resulting bounds are checked by
tests/remote_tf/test_lost_accelerator.py):

- A worker that exits (killed, detached) closes its TCP connection: the pending eager call fails
  at once with ``UnavailableError: Socket closed``. Nothing to tune.
- Some TensorFlow calls wait for a connection forever ("wait for ready"): the worker's GetStatus,
  which every connect starts with, unless ``GRPC_FAIL_FAST=true``; eager ops sent over the
  streaming Enqueue RPC (TensorFlow's default), which opens its stream with wait-for-ready: with
  the VM agent down (nothing listens on the endpoint) the next call waited until the agent was back
  (60 s for a 60 s outage); and TF1's MasterService calls always. We set ``GRPC_FAIL_FAST=true``
  and ``TF_ENABLE_EAGER_CLIENT_STREAMING_ENQUEUE=false`` (unary Enqueue RPCs, which fail fast):
  every call during the outage then fails within milliseconds ("failed to connect to all
  addresses"), and calls work again by themselves once the agent is back, as long as the worker
  kept our context (``keep_alive_secs``); after that TensorFlow raises ``AbortedError`` (context
  id unknown) and only ``remote_tf.reconnect()`` helps. Measured cost on a 2-core VM: about
  0.3-0.6 ms more per small call (p50 1.9 -> 2.2-2.6 ms straight to a worker). TF1 sessions still
  wait for an endpoint that refuses connections (the agent down), unless the session has
  ``operation_timeout_in_ms``; an endpoint that answers their retries with an error status (the
  agent up but not serving) fails them at once.
- A worker that stops answering with its connection still open (frozen process, node lost behind
  a relay that keeps the VM side open) leaves TensorFlow waiting forever: its eager calls have no
  deadline. gRPC keepalive pings fix that, but only through ``TF_GRPC_DEFAULT_OPTIONS`` (read once,
  when the process creates its first TensorFlow gRPC channel) and only with
  ``grpc.http2.ping_timeout_ms``: with ``grpc.keepalive_timeout_ms`` alone the unanswered ping
  still waited for the 60 s default.
- A TensorFlow worker keeps gRPC's default ping policing: a ping that arrives less than 5 minutes
  after the previous one, with no data sent by the worker in between, is a strike, and the third
  strike closes the connection ("Too many pings"): with TensorFlow's default ``keep_alive_secs``
  (600) and pings every 1.5 s, a healthy 8 s call failed after 4.7 s. What saves
  us is TensorFlow's own eager KeepAlive RPC, sent every ``keep_alive_secs / 2`` (whole seconds):
  its answers are data from the worker, which both clear the strikes and restart our ping timer.
  So pings only go out when the worker has been silent for longer than a KeepAlive period, which
  a healthy worker never is. :class:`LivenessTimings` checks that ordering.

``keep_alive_secs`` is also how long the worker keeps our remote context (variables, tensors)
after the last RPC from this process: a process paused for longer loses its remote state.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

GRPC_OPTIONS_ENV = "TF_GRPC_DEFAULT_OPTIONS"
FAIL_FAST_ENV = "GRPC_FAIL_FAST"
STREAMING_ENQUEUE_ENV = "TF_ENABLE_EAGER_CLIENT_STREAMING_ENQUEUE"


@dataclass(frozen=True)
class LivenessTimings:
    """Every timing of a remote session in one place; tests shrink them to keep runs short."""

    keep_alive_secs: int = 10  # worker drops our context this long after our last RPC; KeepAlive every half
    ping_after_silence_ms: int = 6000  # gRPC pings the worker after this long without data from it
    ping_timeout_ms: int = 4000  # an unanswered ping closes the connection: calls fail UNAVAILABLE
    reconnect_backoff_ms: int = 250  # the endpoint is local: trying it again soon costs nothing
    max_reconnect_backoff_ms: int = 500  # calls work again within about half a second of the agent's return

    def __post_init__(self) -> None:
        if self.keep_alive_period_ms >= self.ping_after_silence_ms:
            raise ValueError(
                f"ping_after_silence_ms ({self.ping_after_silence_ms}) must exceed TensorFlow's KeepAlive "
                f"period ({self.keep_alive_period_ms} ms = keep_alive_secs // 2): otherwise a healthy worker "
                f"receives pings during long calls and closes the connection after three")

    @property
    def keep_alive_period_ms(self) -> int:
        return max(1, self.keep_alive_secs // 2) * 1000  # TensorFlow's EagerKeepAliveThread period

    @property
    def worst_case_detection_s(self) -> float:
        """Upper bound from the last answer of a frozen worker to the failing call."""
        return (self.ping_after_silence_ms + self.ping_timeout_ms) / 1000

    def grpc_options(self) -> str:
        return ",".join([
            f"grpc.keepalive_time_ms={self.ping_after_silence_ms}",
            f"grpc.keepalive_timeout_ms={self.ping_timeout_ms}",
            f"grpc.http2.ping_timeout_ms={self.ping_timeout_ms}",
            "grpc.keepalive_permit_without_calls=1",  # also notice a frozen worker between calls
            "grpc.http2.max_pings_without_data=0",  # else the client stops pinging after two
            # gRPC's reconnect backoff grows to 120 s: calls would keep failing that long after the agent is back.
            f"grpc.initial_reconnect_backoff_ms={self.reconnect_backoff_ms}",
            f"grpc.min_reconnect_backoff_ms={self.reconnect_backoff_ms}",
            f"grpc.max_reconnect_backoff_ms={self.max_reconnect_backoff_ms}",
        ])


def install_grpc_options(timings: LivenessTimings) -> None:
    """Put our gRPC settings in the environment, except where the user set the variable.

    Must run before this process creates its first TensorFlow gRPC channel (the first remote call
    or TF1 session): TensorFlow reads ``TF_GRPC_DEFAULT_OPTIONS`` and the streaming switch once and
    keeps them for the process.
    """
    os.environ.setdefault(GRPC_OPTIONS_ENV, timings.grpc_options())
    os.environ.setdefault(FAIL_FAST_ENV, "true")
    os.environ.setdefault(STREAMING_ENQUEUE_ENV, "false")  # its stream waits for an endpoint that is down
