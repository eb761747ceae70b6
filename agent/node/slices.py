"""One slice, reconciled by a thread of its own towards what the controller wants of it.

Level-triggered: each pass compares the latest desired state with what runs and acts, detach
before attach: a worker serving anything but the wanted attachment is stopped (relays cut, killed,
memory confirmed), then a Pending/Starting instance gets its slice prepared, then a wanted
attachment without a worker gets a fresh one. Slow steps (a worker's bring-up) run in this
thread, so one slice never holds up another; a newer desired state abandons them.

A worker that fails stays FAILED for its attachment (the controller ends an Attaching one); an
InUse instance whose worker died gets a fresh worker after ``failed_worker_retry_s``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from agent.node.settings import NodeTimings
from agent.node.slicing import SliceSpec
from agent.node.worker.observer import WorkerObserver
from agent.node.worker.pool import WorkerPool
from agent.node.worker.process import WorkerAbandoned
from agent.node.worker.served import FAILED, READY, STARTING, Placement, ServedWorker
from agent.relay import ByteTally, RelaySet
from protos.eais.v1 import agents_pb2 as pb

log = logging.getLogger(__name__)
PREPARED_STATUSES = (pb.INSTANCE_STATUS_PENDING, pb.INSTANCE_STATUS_STARTING)
WORKER_STATES = {STARTING: pb.WORKER_STATE_STARTING, READY: pb.WORKER_STATE_READY, FAILED: pb.WORKER_STATE_FAILED}


@dataclass(frozen=True)
class SliceDeps:
    """What every slice shares: the pool, the observer, the backend, timings, and the way to speak."""

    pool: WorkerPool
    observer: WorkerObserver
    backend: str
    worker_port: Callable[[], int]  # the same port in every namespace; a free one each on the host network
    timings: NodeTimings
    say: Callable[[str], None]
    report_soon: Callable[[], None]
    report_now: Callable[[float], None]
    check_slice: Callable[[SliceSpec], str | None]  # None when the slice's accelerator is usable
    relayed: ByteTally = field(default_factory=ByteTally)  # bytes through the gateway, for metrics


@dataclass(frozen=True)
class Failure:
    attachment_id: str
    reason: str
    retry_at: float


def served_instance(desired: pb.SliceDesiredState | None) -> str:
    """The instance a report is about: the one the desired state assigns (none while idle or releasing)."""
    if desired is None or desired.role != pb.SLICE_ROLE_SERVE:
        return ""
    return desired.instance.instance_id


def wanted_attachment(desired: pb.SliceDesiredState | None) -> str:
    if desired is None or desired.role != pb.SLICE_ROLE_SERVE or not desired.HasField("attachment"):
        return ""
    return desired.attachment.attachment_id


class SliceRunner:
    def __init__(self, slice_id: str, spec: SliceSpec | None, deps: SliceDeps) -> None:
        self.slice_id, self.spec, self._deps = slice_id, spec, deps
        self.name = spec.local_id if spec else slice_id
        self._desired: pb.SliceDesiredState | None = None
        self._served: ServedWorker | None = None
        self._failure: Failure | None = None
        self._preparing = False
        self._prepared_instance = ""
        self._memory_free = True
        self._unconfirmed: ServedWorker | None = None  # stopped, memory not yet confirmed free
        self._lock = threading.Lock()
        self._wake, self._stopping = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"slice-{self.name}", daemon=True)

    def start(self) -> SliceRunner:
        self._thread.start()
        return self

    def want(self, desired: pb.SliceDesiredState) -> None:
        with self._lock:
            self._desired = desired
        self._wake.set()

    def grant(self) -> pb.NodeAttachment | None:
        """The attachment the controller wants served here now (with its token), if any."""
        with self._lock:
            desired = self._desired
        return desired.attachment if wanted_attachment(desired) else None

    def served_for(self, attachment_id: str) -> ServedWorker | None:
        served = self._served
        return served if served is not None and served.attachment_id == attachment_id else None

    def stop(self) -> None:
        """Stop the worker (confirming its memory) and the thread."""
        self._stopping.set()
        self._wake.set()
        self._thread.join(timeout=self._deps.timings.memory_free_timeout_s + 15)

    def role(self) -> int:
        """What the controller wants of the slice now (``pb.SliceRole``; 0 before it said anything)."""
        with self._lock:
            return self._desired.role if self._desired is not None else 0

    def worker_state(self) -> str:
        """The state of the slice's worker now (``none`` without one), for metrics: no usage is sampled."""
        served = self._served
        return served.visible_state()[0] if served is not None else "none"

    def actual_state(self) -> pb.SliceActualState:
        with self._lock:
            desired, served, failure = self._desired, self._served, self._failure
            preparing = self._preparing or self._needs_preparing(desired)
            memory_free = self._memory_free
        state = pb.SliceActualState(slice_id=self.slice_id, worker=pb.WORKER_STATE_NONE,
                                    instance_id=served_instance(desired))
        if self.spec is not None:
            state.phase = pb.SLICE_PHASE_PREPARING if preparing else pb.SLICE_PHASE_READY
        if served is not None:
            worker_state, state.failure_reason = served.visible_state()
            state.worker = WORKER_STATES.get(worker_state, pb.WORKER_STATE_STOPPING)
            state.attachment_id = served.attachment_id
            if worker_state == READY and served.worker is not None:
                placement = served.placement
                state.usage.CopyFrom(self._deps.observer.usage(served.worker.pid, placement.gpu_index,
                                                               placement.memory_mib))
        elif failure is not None and failure.attachment_id == wanted_attachment(desired):
            state.worker, state.attachment_id, state.failure_reason = (
                pb.WORKER_STATE_FAILED, failure.attachment_id, failure.reason)
        else:
            state.memory_free = memory_free
        return state

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                self._reconcile()
            except Exception:  # noqa: BLE001 - a bug on one slice must not end its reconciling for good
                log.exception("slice %s: reconcile pass failed; retrying", self.name)
            self._wake.wait(1.0)
        if self._served is not None:
            self._stop_served("the node agent is stopping")

    def _reconcile(self) -> None:
        with self._lock:
            desired = self._desired
        if desired is None:
            return
        wanted = wanted_attachment(desired)
        self._let_go_of_unwanted(wanted, "released" if desired.role == pb.SLICE_ROLE_RELEASE else "detached")
        if self._unconfirmed is not None and self._served is None:
            self._confirm_memory_free()
        if self._needs_preparing(desired):
            self._prepare(desired.instance.instance_id)
        if wanted and self._served is None and self._may_start(wanted, desired):
            self._serve(desired)

    def _needs_preparing(self, desired: pb.SliceDesiredState | None) -> bool:
        """A new instance (Pending/Starting) this slice has not been prepared for yet."""
        return (desired is not None and desired.role == pb.SLICE_ROLE_SERVE
                and desired.instance.status in PREPARED_STATUSES
                and self._prepared_instance != desired.instance.instance_id)

    def _let_go_of_unwanted(self, wanted: str, why: str) -> None:
        served = self._served
        if served is None:
            if self._failure is not None and self._failure.attachment_id != wanted:
                with self._lock:
                    self._failure = None
                self._deps.report_soon()
            return
        if served.died:
            self._remember_failure(served, f"the worker {served.worker.describe_end()}")
            self._stop_served("its worker died")
        elif served.state == FAILED:
            self._remember_failure(served, served.failure)
            self._stop_served("its worker failed")
        elif served.attachment_id != wanted:
            self._stop_served(why)

    def _remember_failure(self, served: ServedWorker, reason: str) -> None:
        retry_at = time.monotonic() + self._deps.timings.failed_worker_retry_s
        with self._lock:
            self._failure = Failure(served.attachment_id, reason, retry_at)

    def _may_start(self, wanted: str, desired: pb.SliceDesiredState) -> bool:
        if self.spec is None:
            if self._failure is None:
                with self._lock:
                    self._failure = Failure(wanted, f"slice {self.slice_id} is no longer offered by this node "
                                            "(its slice plan changed); release the instance", float("inf"))
                self._deps.report_soon()
            return False
        if self._unconfirmed is not None:
            return False  # the last worker's memory is not back yet: a new one could overcommit the GPU
        failure = self._failure
        if failure is None or failure.attachment_id != wanted:
            return True
        return desired.instance.status == pb.INSTANCE_STATUS_IN_USE and time.monotonic() >= failure.retry_at

    def _prepare(self, instance_id: str) -> None:
        with self._lock:
            self._preparing = True
        self._deps.report_now(2.0)  # the controller sees the slice preparing (instance Starting) first
        problem = self._deps.check_slice(self.spec) if self.spec else "not offered by this node"
        if problem is not None:
            log.warning("slice %s cannot be prepared for %s: %s", self.name, instance_id, problem)
            return  # stays PREPARING; the next pass checks again
        with self._lock:
            self._preparing, self._prepared_instance = False, instance_id
        self._deps.say(f"slice {self.name}: prepared for instance {instance_id}")
        self._deps.report_soon()

    def _serve(self, desired: pb.SliceDesiredState) -> None:
        attachment_id = desired.attachment.attachment_id
        served = ServedWorker(attachment_id, self._placement(), self._deps.timings,
                              relays=RelaySet(self._deps.relayed))
        with self._lock:
            self._served, self._failure, self._memory_free = served, None, False
        self._deps.report_soon()
        self._deps.say(f"slice {self.name}: attach {attachment_id} (instance {desired.instance.instance_id}, "
                       f"VM {desired.attachment.client_instance_id}): starting a worker")
        try:
            served.start(self._deps.pool, lambda: self._abandoned(attachment_id), self._wake.set)
        except WorkerAbandoned:
            self._stop_served("detached before its worker was ready")
            return
        if served.state == READY:
            self._deps.say(f"slice {self.name}: attach {attachment_id}: worker {served.worker.name} "
                           f"(pid {served.worker.pid}) READY in {served.bring_up.describe()}; "
                           f"devices {', '.join(served.devices)}")
        else:
            self._deps.say(f"slice {self.name}: attach {attachment_id}: worker FAILED: {served.failure}")
        self._deps.report_soon()

    def _abandoned(self, attachment_id: str) -> bool:
        with self._lock:
            desired = self._desired
        return self._stopping.is_set() or wanted_attachment(desired) != attachment_id

    def _placement(self) -> Placement:
        spec = self.spec
        assert spec is not None
        return Placement(spec.gpu_index, spec.gpu_uuid, spec.memory_mib, self._deps.backend,
                         self._deps.worker_port())

    def _stop_served(self, why: str) -> None:
        served = self._served
        assert served is not None
        self._deps.report_soon()  # STOPPING
        started = time.monotonic()
        cut, free = served.stop(self._deps.observer)
        with self._lock:
            self._served, self._memory_free = None, free
        self._unconfirmed = None if free else served
        memory = "memory free" if free else "memory NOT yet confirmed free"
        self._deps.say(f"slice {self.name}: {served.attachment_id} {why}: {cut} connection(s) cut, worker "
                       f"{served.worker.name if served.worker else '(none)'} killed, {memory} after "
                       f"{time.monotonic() - started:.2f}s")
        self._deps.report_soon()

    def _confirm_memory_free(self) -> None:
        """A stop whose memory was not yet back: look again (each pass) until it is."""
        unconfirmed = self._unconfirmed
        if unconfirmed.wait_memory_free(self._deps.observer, 0.0):
            with self._lock:
                self._memory_free = True
            self._unconfirmed = None
            self._deps.say(f"slice {self.name}: memory of {unconfirmed.attachment_id}'s worker is free now")
            self._deps.report_soon()
