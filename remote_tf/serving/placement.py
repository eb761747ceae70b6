"""Which device serves: the accelerator attached to this VM, or the local CPU when there is none.

One thread owns the :mod:`remote_tf` connection (TensorFlow's default device scope is per thread,
so connect and reconnect must happen on the same one). It polls the VM agent: while nothing is
attached it tries to connect; once connected it asks the registry to load and warm every served
version on the accelerator (``on_connected``) and only then makes the accelerator the serving
device, so no request meets a cold or half-loaded copy. When the agent stops reporting an
accelerator, or a request's remote call fails as a lost accelerator does
(:meth:`Placement.report_lost`), serving moves back to the CPU at once (``--fallback cpu``, the
default) or requests are refused with UNAVAILABLE (``--fallback refuse``), and the thread goes
back to waiting for an attach.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eais_plumbing.endpoint_status import EndpointUnreachable, query_endpoint_status
from remote_tf.endpoint import resolve_endpoint
from remote_tf.errors import RemoteTFError
from remote_tf.serving.servable import CPU_TARGET, Target

log = logging.getLogger("eais.serve.placement")


@dataclass(frozen=True)
class PlacementSettings:
    endpoint: str | None = None  # None: $EAIS_TF_ENDPOINT, else 127.0.0.1:8470
    fallback: str = "cpu"
    poll_interval_s: float = 0.5
    connect_timeout_s: float = 5.0
    use_accelerator: bool = True  # False (--device cpu): never connect, serve on the local CPU


class Placement:
    """The serving device, kept current by a background thread; see the module docstring."""

    def __init__(self, settings: PlacementSettings, *, on_connected: Callable[[Target], None],
                 on_lost: Callable[[Target], None], on_change: Callable[[dict[str, Any]], None] = lambda _: None) -> None:
        self.settings = settings
        self._on_connected, self._on_lost, self._on_change = on_connected, on_lost, on_change
        self._lock = threading.Lock()
        self._accelerator: Target | None = None
        self._instance_id: str | None = None
        self._generation = 0
        self._message = "not checked yet"
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._first_check = threading.Event()
        self._thread = threading.Thread(target=self._run, name="eais-serve-placement", daemon=True)

    # --- what requests ask -------------------------------------------------------------------------
    def target(self) -> Target | None:
        """The device new requests run on; None when nothing may serve (no accelerator, --fallback refuse)."""
        with self._lock:
            if self._accelerator is not None:
                return self._accelerator
        return CPU_TARGET if self.cpu_allowed else None

    @property
    def cpu_allowed(self) -> bool:
        return self.settings.fallback == "cpu" or not self.settings.use_accelerator

    def unavailable_reason(self) -> str:
        return (f"no accelerator serves ({self._message}) and eais-serve runs with --fallback=refuse; attach one "
                f"(eais attach) or restart with --fallback=cpu")

    def report_lost(self, target: Target, error: BaseException) -> bool:
        """A remote call on ``target`` failed as a lost accelerator does; True if it was the serving one."""
        with self._lock:
            if self._accelerator is None or self._accelerator.generation != target.generation:
                return False
        self._lose(f"a remote call failed: {type(error).__name__}: {str(error).strip().splitlines()[0][:200]}")
        return True

    def status(self) -> dict[str, Any]:
        target = self.target()
        with self._lock:
            return {"serving_device": target.kind if target else "none",
                    "device": target.device if target else None,
                    "accelerator_instance_id": self._instance_id if self._accelerator else None,
                    "accelerator_message": self._message,
                    "fallback": self.settings.fallback}

    # --- lifecycle ---------------------------------------------------------------------------------
    def start(self, first_check_timeout_s: float = 120.0) -> None:
        """Start watching; return after the first connect attempt (and its model loading) finished."""
        if not self.settings.use_accelerator:
            self._message = "accelerator not used (--device cpu)"
            self._first_check.set()
            self._on_change(self.status())
            return
        self._thread.start()
        self._first_check.wait(first_check_timeout_s)

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    # --- the thread --------------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                if self._accelerator is None:
                    self._try_connect()
                else:
                    self._check_still_attached()
            except Exception:  # the watcher must outlive any surprise; the next poll tries again
                log.exception("placement check failed")
            self._first_check.set()
            self._wake.wait(self.settings.poll_interval_s)
            self._wake.clear()

    def _try_connect(self) -> None:
        import remote_tf

        try:
            if remote_tf.current_connection() is None:
                connection = remote_tf.connect(self.settings.endpoint, timeout_s=self.settings.connect_timeout_s)
            else:  # after a loss the old connection object is stale: join afresh
                connection = remote_tf.reconnect(self.settings.endpoint, timeout_s=self.settings.connect_timeout_s)
        except RemoteTFError as error:
            if error.message != self._message:
                log.info("no accelerator: %s", error.message)
                self._message = error.message
                self._on_change(self.status())
            return
        target = Target("accelerator", connection.device, self._generation + 1)
        self._generation += 1
        instance = (connection.agent_status or {}).get("instance_id")
        log.info("accelerator %s attached (%s); loading and warming models on it", instance or "?", target.device)
        try:
            self._on_connected(target)
        except Exception as error:  # noqa: BLE001 - loading failed (e.g. lost again meanwhile): stay on CPU, retry
            log.warning("could not place models on the accelerator (%s); serving stays on %s", error,
                        "the CPU" if self.cpu_allowed else "nothing")
            self._message = f"models could not be placed on the accelerator: {error}"
            self._on_lost(target)
            return
        with self._lock:
            self._accelerator, self._instance_id = target, instance
            self._message = f"serving on accelerator {instance or connection.endpoint}"
        log.info("serving on the accelerator %s (%s)", instance or "?", target.device)
        self._on_change(self.status())

    def _check_still_attached(self) -> None:
        try:
            status = query_endpoint_status(resolve_endpoint(self.settings.endpoint), timeout_s=1.0)
        except EndpointUnreachable as error:
            self._lose(f"the VM agent does not answer: {error}")
            return
        if status is None:
            return  # a bare TensorFlow worker: nothing to ask, failures show up in requests
        if status.get("healthy") is False:
            self._lose(status.get("message") or "the agent reports no usable accelerator")
        elif status.get("instance_id") and self._instance_id and status["instance_id"] != self._instance_id:
            self._lose(f"the VM agent now serves another instance ({status['instance_id']})")

    def _lose(self, reason: str) -> None:
        with self._lock:
            lost, self._accelerator = self._accelerator, None
            self._message = reason
        if lost is None:
            return
        log.warning("accelerator lost (%s); serving %s", reason,
                    "on the local CPU" if self.cpu_allowed else "nothing (--fallback=refuse)")
        self._on_lost(lost)
        self._on_change(self.status())
        self._wake.set()
