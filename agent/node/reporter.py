"""Sends the node's whole picture to the controller: soon after each change, and periodically.

Level-triggered: every report carries every slice, so coalescing many changes into one report
and losing a report are both harmless. :meth:`Reporter.flush` waits until a report made after the
call was delivered, for the few steps the controller must see in order (a slice preparing).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import grpc

from agent.controller_link import ControllerLink, LinkRefused
from protos.eais.v1 import agents_pb2 as pb

log = logging.getLogger(__name__)
COALESCE_S = 0.02  # changes this close together go out as one report


class Reporter:
    def __init__(self, link: ControllerLink, picture: Callable[[], pb.NodeActualState], interval_s: float) -> None:
        self._link, self._picture, self._interval_s = link, picture, interval_s
        self._changed = threading.Condition()
        self._requested = 0  # bumped by every poke
        self._delivered = 0  # the request number the last delivered report covers
        self.reports_sent = 0

    def poke(self) -> None:
        """Report soon."""
        with self._changed:
            self._requested += 1
            self._changed.notify_all()

    def flush(self, timeout_s: float) -> bool:
        """Report now and wait until it is delivered; False if not within ``timeout_s``."""
        with self._changed:
            self._requested += 1
            wanted = self._requested
            self._changed.notify_all()
            return self._changed.wait_for(lambda: self._delivered >= wanted, timeout_s)

    def run(self, stop: threading.Event) -> None:
        """Report until ``stop``; raises LinkRefused (from the link) when the controller refuses for good."""
        while not stop.is_set():
            with self._changed:
                self._changed.wait_for(lambda: self._requested > self._delivered or stop.is_set(), self._interval_s)
                covering = self._requested
            if stop.is_set():
                return
            time.sleep(COALESCE_S)
            if self._send():
                with self._changed:
                    self._delivered = max(self._delivered, covering)
                    self._changed.notify_all()
            else:
                stop.wait(1.0)  # the controller is unreachable: the link logs it; try again shortly

    def send_now(self) -> bool:
        """One report from the calling thread (the last one, when stopping); never raises."""
        try:
            return self._send()
        except LinkRefused:
            return False

    def _send(self) -> bool:
        report = pb.ActualStateReport(observed_us=time.time_ns() // 1000, node=self._picture())
        try:
            ack = self._link.report(report)
        except grpc.RpcError as error:
            if error.code() is not grpc.StatusCode.CANCELLED:  # CANCELLED: our own link closing at stop
                log.warning("actual-state report not delivered (%s); the next one repeats it", error.code().name)
            return False
        self.reports_sent += 1
        for note in ack.notes:
            log.info("controller: %s", note)
        return True
