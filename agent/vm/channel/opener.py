"""Opening and proving one attachment's channel in the background, retrying until it works,
a failure that cannot heal, the give-up time, or cancellation.

The node starts the attachment's worker when it sees the same desired state the VM sees, so the
first attempts often meet a gateway that does not know the attachment yet or a worker still
starting; those are retried with backoff. A certificate that does not verify is not.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from agent.controller_link import Backoff
from agent.vm.channel.gateway import ChannelError, GatewayGrant, open_gateway_stream
from agent.vm.channel.proof import Proof, prove_channel
from agent.vm.settings import AgentTiming


class ChannelOpener:
    """One attachment's attempts; exactly one of ``on_proven`` / ``on_failed`` is called unless cancelled."""

    def __init__(self, grant: GatewayGrant, timing: AgentTiming, *, on_proven: Callable[[ChannelOpener, Proof], None],
                 on_failed: Callable[[ChannelOpener, str], None], on_retry: Callable[[ChannelOpener, str], None]) -> None:
        self.grant, self._timing = grant, timing
        self._on_proven, self._on_failed, self._on_retry = on_proven, on_failed, on_retry
        self._cancelled = threading.Event()
        self.attempts = 0

    @property
    def attachment_id(self) -> str:
        return self.grant.attachment_id

    def start(self) -> ChannelOpener:
        threading.Thread(target=self._run, name=f"open-{self.attachment_id}", daemon=True).start()
        return self

    def cancel(self) -> None:
        self._cancelled.set()

    def _run(self) -> None:
        timing = self._timing
        give_up_at = time.monotonic() + timing.give_up_after_s
        backoff = Backoff(timing.retry_initial_s, timing.retry_max_s)
        while not self._cancelled.is_set():
            self.attempts += 1
            try:
                proof = prove_channel(lambda: open_gateway_stream(self.grant, timing.gateway_timeout_s),
                                      timing.proof_timeout_s)
            except ChannelError as error:
                delay = backoff.next_delay_s()
                if not error.retryable or time.monotonic() + delay >= give_up_at:
                    self._unless_cancelled(self._on_failed, self._failure_reason(error))
                    return
                self._unless_cancelled(self._on_retry, error.reason)
                self._cancelled.wait(delay)
                continue
            self._unless_cancelled(self._on_proven, proof)
            return

    def _failure_reason(self, error: ChannelError) -> str:
        if error.retryable:
            return f"{error.reason} (gave up after {self.attempts} attempts in {self._timing.give_up_after_s:g}s)"
        return error.reason

    def _unless_cancelled(self, callback: Callable, argument: object) -> None:  # type: ignore[type-arg]
        if not self._cancelled.is_set():
            callback(self, argument)
