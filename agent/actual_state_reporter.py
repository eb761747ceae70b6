"""Sends an agent's whole actual state to the controller: soon after each change, again periodically.

Level-triggered, as the contract asks: every report is the whole picture (a node's slices, a VM's
channel), taken when it is sent, so coalescing many changes into one report and losing a report
are both harmless. ``poke()`` asks for a report soon; a picture equal to the last one delivered is
not sent again until ``repeat_s`` has passed (a lost report heals, an unchanged one is not spam)
unless the poke forces it. ``flush()`` waits until a report made after the call was delivered, for
the few steps the controller must see in order (a slice preparing). A report that cannot be
delivered is retried with backoff while the rest of the agent carries on; a refusal retrying
cannot fix (:class:`LinkRefused`) ends :meth:`run` for the agent to act on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import grpc

from agent.backoff import Backoff
from protos.eais.v1 import agents_pb2 as pb

log = logging.getLogger(__name__)
COALESCE_S = 0.02  # changes this close together go out as one report
STOP_POLL_S = 0.25  # how soon run() notices its stop event while idle
Send = Callable[[pb.ActualStateReport], pb.ReportAck]


class ActualStateReporter:
    def __init__(self, send: Send, picture: Callable[[], pb.ActualStateReport], repeat_s: float) -> None:
        self._send, self._picture, self._repeat_s = send, picture, repeat_s
        self._changed = threading.Condition()
        self._requested = 0  # bumped by every poke and flush
        self._forced = 0  # the request number of the latest forcing poke
        self._delivered = 0  # the request number the last delivered report covers
        self._last_sent: pb.ActualStateReport | None = None
        self._sent_at = float("-inf")
        self.reports_sent = 0
        self.reports_failed = 0

    def poke(self, *, force: bool = False) -> None:
        """Report soon; unless ``force``, only if the picture differs from the last one delivered."""
        with self._changed:
            self._requested += 1
            if force:
                self._forced = self._requested
            self._changed.notify_all()

    def flush(self, timeout_s: float) -> bool:
        """Report now and wait until it is delivered; False if not within ``timeout_s``."""
        with self._changed:
            self._requested += 1
            self._forced = wanted = self._requested
            self._changed.notify_all()
            return self._changed.wait_for(lambda: self._delivered >= wanted, timeout_s)

    def run(self, stop: threading.Event) -> None:
        """Report until ``stop``; raises LinkRefused (from the link) when the controller refuses for good."""
        backoff = Backoff()
        while not stop.is_set():
            covering, forced = self._wait_for_work(stop)
            if stop.is_set():
                return
            stop.wait(COALESCE_S)
            if self._deliver(covering, forced):
                backoff.reset()
            else:
                stop.wait(backoff.next_delay_s())

    def send_now(self) -> bool:
        """One report from the calling thread (the last one, when stopping); never raises."""
        try:
            return self._deliver(self._requested, forced=True)
        except Exception:  # noqa: BLE001 - LinkRefused or a closed link: nothing more to tell
            return False

    def _wait_for_work(self, stop: threading.Event) -> tuple[int, bool]:
        """Block until a report is asked for or a repeat is due; (request number covered, forced)."""
        with self._changed:
            while not stop.is_set():
                repeat_in = self._repeat_s - (time.monotonic() - self._sent_at)
                if self._requested > self._delivered or repeat_in <= 0:
                    return self._requested, self._forced > self._delivered or repeat_in <= 0
                self._changed.wait(min(STOP_POLL_S, repeat_in))
            return self._requested, False

    def _deliver(self, covering: int, forced: bool) -> bool:
        picture = self._picture()
        if forced or picture != self._last_sent:
            report = pb.ActualStateReport()
            report.CopyFrom(picture)
            report.observed_us = time.time_ns() // 1000
            try:
                ack = self._send(report)
            except (grpc.RpcError, ValueError) as error:  # ValueError: the link closed under the call (stopping)
                self.reports_failed += 1
                if not isinstance(error, grpc.RpcError) or error.code() is not grpc.StatusCode.CANCELLED:
                    log.warning("actual-state report not delivered (%s); the next one repeats it", _describe(error))
                return False
            self.reports_sent += 1
            for note in ack.notes:
                log.info("controller: %s", note)
            self._last_sent, self._sent_at = picture, time.monotonic()
        with self._changed:
            self._delivered = max(self._delivered, covering)
            self._changed.notify_all()
        return True


def _describe(error: Exception) -> str:
    return error.code().name if isinstance(error, grpc.RpcError) else str(error)
