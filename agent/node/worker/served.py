"""A fresh worker bound to one attachment: taken warm, assigned, proven, relayed to, stopped.

starting -> ready (a GetStatus round trip went through its namespace) -> stopping -> stopped,
or starting -> failed. Stopping cuts every relay of the attachment first, then kills the worker,
then waits until the memory is back (reaped; on a GPU, NVML no longer lists it).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from agent.node.settings import NodeTimings
from agent.node.worker.observer import WorkerObserver
from agent.node.worker.pool import WorkerPool
from agent.node.worker.probe import ProbeFailed, probe_worker
from agent.node.worker.process import Abandon, WorkerFailed, WorkerProcess
from agent.relay import Relay, RelaySet

STARTING, READY, FAILED, STOPPING, STOPPED = "starting", "ready", "failed", "stopping", "stopped"


class WorkerUnavailable(RuntimeError):
    """The attachment's worker cannot take a connection now; the message is the gateway's answer."""


@dataclass(frozen=True)
class Placement:
    """Where the worker runs: the slice's accelerator and memory cap, the backend, the worker port."""

    gpu_index: int
    gpu_uuid: str
    memory_mib: int
    backend: str
    port: int

    def assignment(self) -> dict[str, object]:
        return {"port": self.port, "gpu_index": self.gpu_index, "memory_mib": self.memory_mib,
                "backend": self.backend, "gpu_uuid": self.gpu_uuid}


@dataclass
class BringUpTimings:
    took_s: float = 0.0  # waiting for a warm worker (about 0 when the pool had one)
    ready_s: float = 0.0  # assignment sent -> the worker's server started
    probe_s: float = 0.0  # the GetStatus round trip through its namespace
    total_s: float = 0.0

    def describe(self) -> str:
        return (f"{self.total_s:.2f}s (warm worker after {self.took_s:.2f}s, server up {self.ready_s:.2f}s later, "
                f"GetStatus round trip {self.probe_s * 1000:.0f} ms)")


@dataclass
class ServedWorker:
    attachment_id: str
    placement: Placement
    timings: NodeTimings
    state: str = STARTING
    failure: str = ""
    worker: WorkerProcess | None = None
    devices: list[str] = field(default_factory=list)
    bring_up: BringUpTimings = field(default_factory=BringUpTimings)
    relays: RelaySet = field(default_factory=RelaySet)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self, pool: WorkerPool, abandon: Abandon, on_worker_change: Callable[[], None]) -> None:
        """Blocking: ends READY, or FAILED with ``failure`` (worker killed); WorkerAbandoned: call stop()."""
        started = time.monotonic()
        try:
            self.worker = pool.take(self.timings.worker_warm_timeout_s, abandon)
            self.worker.notify_to(on_worker_change)  # e.g. its death wakes the slice at once
            self.bring_up.took_s = time.monotonic() - started
            self.worker.assign(self.placement.assignment())
            self.worker.wait_ready(self.timings.worker_ready_timeout_s, abandon)
            self.bring_up.ready_s = time.monotonic() - started - self.bring_up.took_s
            self.devices, self.bring_up.probe_s = probe_worker(self._connect_worker, self.timings.probe_timeout_s)
            self._check_devices()
        except (WorkerFailed, ProbeFailed) as error:
            self._fail(str(error))
            return
        self.bring_up.total_s = time.monotonic() - started
        with self._lock:
            if self.state == STARTING:
                self.state = READY

    def connect_client(self) -> socket.socket:
        """A socket into the worker for a gateway client; WorkerUnavailable when not READY."""
        with self._lock:
            if self.state != READY or self.worker is None:
                raise WorkerUnavailable(self._not_ready_reason())
            worker = self.worker
        try:
            return worker.connect(self.placement.port, self.timings.probe_timeout_s)
        except OSError as error:
            raise WorkerUnavailable(f"the worker for attachment {self.attachment_id} does not answer: "
                                    f"{error.strerror or error}") from None

    def refusal(self) -> str | None:
        """Why a client cannot use this worker now; None while it is READY and alive."""
        with self._lock:
            if self.state != READY or self.worker is None:
                return self._not_ready_reason()
            worker = self.worker
        if not worker.alive:
            return f"the worker for attachment {self.attachment_id} {worker.describe_end()}"
        return None

    def relay(self, client: socket.socket, upstream: socket.socket, name: str) -> Relay | None:
        """Relay ``client`` <-> ``upstream`` as part of this attachment; None (both closed) once stopping."""
        with self._lock:
            if self.state == READY:
                return self.relays.start(client, upstream, name=name)
        for sock in (client, upstream):
            sock.close()
        return None

    def stop(self, observer: WorkerObserver) -> tuple[int, bool]:
        """Cut the relays, kill the worker, wait for its memory; (relays cut, memory confirmed free)."""
        keep_log = self.state == FAILED or self.died  # for the operator: why it failed or died
        with self._lock:
            if self.state != FAILED:
                self.state = STOPPING
        cut = self.relays.close_all()
        if self.worker is None:
            return cut, True
        self.worker.kill()
        free = self.wait_memory_free(observer, self.timings.memory_free_timeout_s)
        observer.forget(self.worker.pid)
        if not keep_log:
            self.worker.discard_log()
        with self._lock:
            if self.state == STOPPING:
                self.state = STOPPED
        return cut, free

    def wait_memory_free(self, observer: WorkerObserver, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        worker = self.worker
        while worker is not None and observer.holds_memory(
                worker.pid, self.placement.gpu_index, reaped=worker.process.returncode is not None):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True

    def visible_state(self) -> tuple[str, str]:
        """(state, failure) as reports show it: a READY worker that died is FAILED at once."""
        if self.died:
            return FAILED, f"the worker {self.worker.describe_end()}"
        return self.state, self.failure

    @property
    def died(self) -> bool:
        """A READY worker whose process ended without being asked to."""
        return self.state == READY and self.worker is not None and not self.worker.alive

    def _connect_worker(self) -> socket.socket:
        assert self.worker is not None
        return self.worker.connect(self.placement.port, self.timings.probe_timeout_s)

    def _check_devices(self) -> None:
        if not self.devices:
            raise ProbeFailed("the worker answered GetStatus with no devices")
        if self.placement.backend == "gpu" and not any(":GPU:" in name for name in self.devices):
            raise ProbeFailed(f"the worker has no GPU device (devices: {', '.join(self.devices)})")

    def _fail(self, reason: str) -> None:
        with self._lock:
            self.state, self.failure = FAILED, reason[:1000]
        if self.worker is not None:
            self.worker.kill()

    def _not_ready_reason(self) -> str:
        if self.state == STARTING:
            return f"the worker for attachment {self.attachment_id} is starting; retry shortly"
        if self.state == FAILED:
            return f"the worker for attachment {self.attachment_id} failed: {self.failure}"
        return f"attachment {self.attachment_id} is being detached"

