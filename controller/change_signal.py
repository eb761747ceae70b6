"""Wakes the controller's desired-state streams the moment an instance's status changes in this process.

Streams still poll (other controller processes write to the same database, and the poll is the
safety net), but an AttachEai or an agent's report answered here reaches the agents at once
instead of after the next poll, which is most of an attach's latency otherwise.
"""

from __future__ import annotations

import threading

STATUS_CHANGED = "eais.status_changed"  # the session.info flag lifecycle.apply sets for Database.write


class ChangeSignal:
    """A generation counter that threads can wait on."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._generation = 0

    @property
    def generation(self) -> int:
        return self._generation

    def notify(self) -> None:
        with self._condition:
            self._generation += 1
            self._condition.notify_all()

    def wait_for_change(self, seen: int, timeout_s: float) -> bool:
        """True as soon as the generation moved past ``seen``; False after ``timeout_s`` without change."""
        with self._condition:
            return self._condition.wait_for(lambda: self._generation != seen, timeout_s)
