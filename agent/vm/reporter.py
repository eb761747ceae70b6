"""Sends the VM's channel state to the controller from its own thread.

Level-triggered, as the contract asks: only the latest state matters, so a newer state replaces
one not yet sent; an unchanged state is sent again every ``repeat_s`` (no spam, but a lost report
heals); a failed send is retried with backoff while the rest of the agent carries on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import grpc

from agent.controller_link import Backoff, LinkRefused
from protos.eais.v1 import agents_pb2 as pb

log = logging.getLogger(__name__)
Send = Callable[[pb.ActualStateReport], pb.ReportAck]


class ChannelReporter:
    def __init__(self, send: Send, repeat_s: float) -> None:
        self._send, self._repeat_s = send, repeat_s
        self._cond = threading.Condition()
        self._latest: pb.VmActualState | None = None
        self._sent: pb.VmActualState | None = None
        self._sent_at = 0.0
        self._due = False
        self._stopped = False

    def put(self, state: pb.VmActualState, *, force: bool = False) -> None:
        """Make ``state`` the one to report; sent at once if it differs from the last sent (or ``force``)."""
        with self._cond:
            self._latest = state
            if force or state != self._sent:
                self._due = True
                self._cond.notify()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()

    def run(self) -> None:
        backoff = Backoff()
        while (state := self._next_to_send()) is not None:
            try:
                ack = self._send(pb.ActualStateReport(observed_us=time.time_ns() // 1000, vm=state))
            except (grpc.RpcError, LinkRefused, ValueError) as error:
                delay = backoff.next_delay_s()
                log.warning("channel report not delivered (%s); retrying in %.1fs", _describe(error), delay)
                with self._cond:
                    self._due = True
                    self._cond.wait_for(lambda: self._stopped, timeout=delay)
                continue
            backoff.reset()
            for note in ack.notes:
                log.info("controller on our report: %s", note)
            with self._cond:
                self._sent, self._sent_at = state, time.monotonic()

    def _next_to_send(self) -> pb.VmActualState | None:
        """Block until a state is due (new, forced or to repeat); None once stopped."""
        with self._cond:
            while not self._stopped:
                wait_s = self._repeat_s - (time.monotonic() - self._sent_at)
                if self._latest is not None and (self._due or wait_s <= 0):
                    self._due = False
                    return self._latest
                self._cond.wait(timeout=max(0.01, wait_s) if self._latest is not None else None)
        return None


def _describe(error: Exception) -> str:
    return error.code().name if isinstance(error, grpc.RpcError) else str(error)
