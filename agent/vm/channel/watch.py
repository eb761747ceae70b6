"""Watching the data path of an attachment in use, so that a broken one is noticed within seconds.

While the endpoint serves, a thread probes the node's gateway every ``watch_interval_s``: a fresh
TCP + TLS connection and a probe hello (:mod:`agent.gateway_protocol`), which the gateway accepts
only while the attachment's worker is ready and alive; it connects nothing. ``watch_failures``
failures in a row (the next probe ``watch_retry_s`` after a failure) mean the path is broken, and
``on_broken(reason)`` is called once: a node that is gone answers with a refused connection at
once, a cut link with silence, which each probe waits ``watch_timeout_s`` for. A probe whose TCP
connection the node's host accepted but whose TLS or hello timed out means a busy agent rather than
a broken path (the kernel answers for it): it takes ``watch_slow_failures`` of those in a row. A
probe that timed out while bytes from the gateway kept arriving on the forwarding connections does
not count at all: that path is alive. Probing goes on while broken; a probe that succeeds again
calls ``on_healed()``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from agent.vm.channel.gateway import ChannelError, GatewayGrant, probe_gateway
from agent.vm.settings import AgentTiming

log = logging.getLogger(__name__)
Probe = Callable[[GatewayGrant, float], None]


class ChannelWatch:
    def __init__(self, grant: GatewayGrant, timing: AgentTiming, *, last_gateway_bytes_at: Callable[[], float],
                 on_broken: Callable[[ChannelWatch, str], None], on_healed: Callable[[ChannelWatch], None],
                 probe: Probe = probe_gateway, count_probe: Callable[[bool], None] = lambda ok: None) -> None:
        self.grant, self._timing, self._probe, self._count_probe = grant, timing, probe, count_probe
        self._last_gateway_bytes_at = last_gateway_bytes_at
        self._on_broken, self._on_healed = on_broken, on_healed
        self._cancelled = threading.Event()
        self.probes = self.failures = 0
        self.broken = False

    def start(self) -> ChannelWatch:
        threading.Thread(target=self._run, name=f"watch-{self.grant.attachment_id}", daemon=True).start()
        return self

    def cancel(self) -> None:
        self._cancelled.set()

    def _run(self) -> None:
        timing = self._timing
        reasons: list[str] = []
        hard = 0  # failures in a row that were not a busy agent's slowness
        while not self._cancelled.wait(timing.watch_retry_s if reasons else timing.watch_interval_s):
            failure = self._probe_once()
            if self._cancelled.is_set():
                return
            self._count_probe(failure is None)
            if failure is None:
                reasons, hard = [], 0
                if self.broken:
                    self.broken = False
                    self._on_healed(self)
                continue
            reason, slow = failure
            reasons, hard = [*reasons, reason], hard if slow else hard + 1
            if not self.broken and (hard >= timing.watch_failures or len(reasons) >= timing.watch_slow_failures):
                self.broken = True
                self._on_broken(self, _summary(reasons))

    def _probe_once(self) -> tuple[str, bool] | None:
        """None when the gateway says the attachment is served; otherwise (what failed, whether only slow)."""
        self.probes += 1
        started = time.monotonic()
        try:
            self._probe(self.grant, self._timing.watch_timeout_s)
        except ChannelError as error:
            if error.timed_out and self._last_gateway_bytes_at() >= started:
                log.info("probe of %s timed out while its connections carried data; not counted",
                         self.grant.gateway_address)
                return None
            self.failures += 1
            return error.reason, error.timed_out and error.reached
        return None


def _summary(reasons: list[str]) -> str:
    """The last failure, and how many probes failed in a row."""
    return f"{reasons[-1]} ({len(reasons)} probes in a row failed)"
