"""Warm TensorFlow workers, started ahead of attaches so that an attach does not wait for one to start.

The pool keeps ``size`` workers warm or warming, refills after each take, and sizes itself by the
churn it sees: every take that found no warm worker adds one to the target for the next minute (at
most ``MAX_EXTRA``), and more are started while more callers wait in :meth:`WorkerPool.take`. Every
worker is started by the pool's own thread, which lives as long as the pool: a worker (or the fork
server it comes from) asks to be killed when its starting thread dies. A worker that dies while
warming makes waiting callers fail at once with its reason (instead of waiting out the timeout),
and slows the next starts down (a crash loop must not eat the node).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from agent.node.worker.process import Abandon, WorkerAbandoned, WorkerFailed, WorkerProcess

log = logging.getLogger(__name__)
Spawn = Callable[[str, Callable[[], None]], WorkerProcess]
FIRST_BACKOFF_S, MAX_BACKOFF_S = 1.0, 60.0
MISS_MEMORY_S, MAX_EXTRA = 60.0, 4  # a take that found the pool empty raises the target this long, this far


class WorkerPool:
    def __init__(self, spawn: Spawn, size: int, *, name_prefix: str = "worker",
                 on_warm: Callable[[str], None] | None = None, interrupt: Callable[[], None] = lambda: None) -> None:
        self._spawn, self.size, self._prefix = spawn, size, name_prefix
        self._interrupt = interrupt  # ends a start in progress (a fork server importing TensorFlow)
        self._on_warm = on_warm
        self._warming: list[WorkerProcess] = []
        self._warm: list[WorkerProcess] = []
        self._waiting = 0
        self._misses: list[float] = []  # when takes found no warm worker
        self._spawned = 0
        self.takes = 0
        self._failures = 0
        self._last_failure = ""
        self._backoff_s, self._next_spawn_at = 0.0, 0.0
        self._closed = False
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._fill, name="worker-pool", daemon=True)

    def start(self) -> WorkerPool:
        self._thread.start()
        return self

    def counts(self) -> tuple[int, int]:
        """(warm, warming) right now."""
        with self._changed:
            self._sort_out()
            return len(self._warm), len(self._warming)

    @property
    def target(self) -> int:
        """Workers kept warm or warming now: ``size``, plus one per recent take that found none warm."""
        with self._changed:  # reentrant: _fill asks while holding it
            horizon = time.monotonic() - MISS_MEMORY_S
            self._misses = [at for at in self._misses if at > horizon]
            return self.size + min(MAX_EXTRA, len(self._misses))

    @property
    def spawned(self) -> int:
        return self._spawned

    def take(self, timeout_s: float, abandon: Abandon | None = None) -> WorkerProcess:
        """A warm worker, now or as soon as one is; WorkerFailed if none can be had."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            failures_before = self._failures
            self.takes += 1
            self._sort_out()
            if not self._warm:
                self._misses.append(time.monotonic())
            self._waiting += 1
            self._changed.notify_all()
            try:
                return self._wait_for_warm(deadline, failures_before, abandon, timeout_s)
            finally:
                self._waiting -= 1
                self._changed.notify_all()

    def close(self) -> None:
        """Stop filling and kill every worker still in the pool (taken ones are their owners')."""
        with self._changed:
            self._closed = True
            pooled, self._warm, self._warming = self._warm + self._warming, [], []
            self._changed.notify_all()
        for worker in pooled:
            worker.kill()
            worker.discard_log()
        self._interrupt()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)

    def _wait_for_warm(self, deadline: float, failures_before: int, abandon: Abandon | None,
                       timeout_s: float) -> WorkerProcess:
        while True:
            if self._closed:
                raise WorkerFailed("the node agent is stopping")
            self._sort_out()
            if self._warm:
                return self._warm.pop(0)
            if self._failures > failures_before:
                raise WorkerFailed(self._last_failure)
            if abandon is not None and abandon():
                raise WorkerAbandoned("no longer wanted while waiting for a warm worker")
            left = deadline - time.monotonic()
            if left <= 0:
                raise WorkerFailed(f"no warm TensorFlow worker within {timeout_s:.0f}s")
            self._changed.wait(min(0.5, left))

    def _fill(self) -> None:
        while True:
            with self._changed:
                if self._closed:
                    return
                self._sort_out()
                # a warming worker serves a waiting caller sooner than a second import competing for the CPUs
                wanted = max(self.target, self._waiting) - len(self._warm) - len(self._warming)
                delay = self._next_spawn_at - time.monotonic()
                if wanted <= 0 or delay > 0:
                    self._changed.wait(max(0.05, min(delay, 1.0)) if wanted > 0 else 1.0)
                    continue
                self._spawned += 1
                name = f"{self._prefix}-{self._spawned}"
            self._spawn_one(name)

    def _spawn_one(self, name: str) -> None:
        try:
            worker = self._spawn(name, self._notify)
        except Exception as error:  # noqa: BLE001 - e.g. no namespace, no uid left: tell the takers
            with self._changed:
                if self._closed:
                    return  # close() interrupted the start
                log.exception("cannot start worker %s", name)
                self._note_failure(f"cannot start a TensorFlow worker: {error}")
            return
        with self._changed:
            if not self._closed:
                self._warming.append(worker)
                return
        worker.kill()  # close() ran while it was being spawned
        worker.discard_log()

    def _sort_out(self) -> None:
        """Move warmed workers to the warm list; drop dead ones (noting why). Caller holds the lock."""
        for worker in list(self._warming):
            if worker.is_warm:
                self._warming.remove(worker)
                self._warm.append(worker)
                self._backoff_s = 0.0
                if self._on_warm is not None:
                    self._on_warm(worker.name)
            elif not worker.alive:
                self._warming.remove(worker)
                self._note_failure(f"TensorFlow worker {worker.name} {worker.describe_end()} while starting"
                                   + (f": {worker.error}" if worker.error else ""))
                threading.Thread(target=worker.kill, daemon=True).start()  # releases its namespace and uid
        for worker in list(self._warm):
            if not worker.alive:
                self._warm.remove(worker)
                log.warning("warm worker %s %s; replacing it", worker.name, worker.describe_end())
                threading.Thread(target=worker.kill, daemon=True).start()

    def _note_failure(self, reason: str) -> None:
        self._failures += 1
        self._last_failure = reason
        self._backoff_s = min(MAX_BACKOFF_S, max(FIRST_BACKOFF_S, self._backoff_s * 2))
        self._next_spawn_at = time.monotonic() + self._backoff_s
        log.warning("%s; next worker in %.0fs", reason, self._backoff_s)
        self._changed.notify_all()

    def _notify(self) -> None:
        with self._changed:
            self._changed.notify_all()
