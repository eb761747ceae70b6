"""The node agent: offers this server's slices to the controller and serves attachments on them.

    agent = NodeAgent(load_node_settings(...)).start()   # preflight; then registers in the background
    agent.wait_ready(60)                                 # registered, gateway listening
    ...
    agent.stop()                                         # workers killed and their memory confirmed

Threads: ``node-agent`` registers, starts the gateway, then pings systemd's watchdog and renews
the gateway certificate; ``desired`` follows WatchDesiredState and hands each slice its part;
``heartbeats`` and ``reports`` keep the controller informed; each slice has its own runner
(:mod:`agent.node.slices`); the pool spawns workers; the gateway has one thread per connection.
A refusal the controller will not take back (wrong node token, invalid registration) stops the
agent with ``failure`` set.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable

from agent.actual_state_reporter import ActualStateReporter
from agent.controller_link import ControllerLink, LinkRefused, NodeToken
from agent.gateway_tls import new_gateway_key
from agent.node.gateway import Gateway, GatewayTarget
from agent.node.gateway_certificate import GatewayCertificate
from agent.node.metrics import NodeMetrics
from agent.node.preflight import NodeAgentError, run_preflight
from agent.node.registration import gateway_address, node_registration
from agent.node.settings import NodeSettings
from agent.node.slices import SliceDeps, SliceRunner
from agent.node.slicing import SliceSpec
from agent.node.worker.observer import WorkerObserver
from agent.node.worker.pool import WorkerPool
from agent.node.worker.starter import WorkerStarter
from agent.relay import ByteTally
from eais_plumbing.metrics_server import MetricsServer
from eais_plumbing.service_notify import ServiceNotifier, WatchdogPinger
from protos.eais.v1 import agents_pb2 as pb

log = logging.getLogger(__name__)

__all__ = ["NodeAgent", "NodeAgentError", "say_line"]


def say_line(text: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {text}", flush=True)


WARM_POOL_LINE = "warm pool:"  # eais up waits for this line before it says ready

class NodeAgent:
    def __init__(self, settings: NodeSettings, say: Callable[[str], None] = say_line) -> None:
        self.settings, self._say = settings, say
        self.failure: str | None = None
        self.ready = threading.Event()
        self.stopped = threading.Event()
        self.stop_requested = threading.Event()
        self._notifier = ServiceNotifier()
        self._runners: dict[str, SliceRunner] = {}
        self._order: list[str] = []
        self._runners_lock = threading.Lock()
        self.relayed = ByteTally()  # bytes through the gateway, all attachments
        self.heartbeats: Counter[str] = Counter()  # ok, failed
        self.metrics: MetricsServer | None = None

    # -- life cycle ------------------------------------------------------------------------

    def start(self) -> NodeAgent:
        """Preflight and bind now (NodeAgentError, OSError); register and serve in the background."""
        self._pre = run_preflight(self.settings, self.say)
        self._specs = {spec.local_id: spec for spec in self._pre.slices}
        self.gateway = Gateway(self.settings.gateway_host, self.settings.gateway_port, self._lookup,
                               self.settings.timing.handshake_timeout_s)
        self.gateway_address = gateway_address(self.settings, self.gateway.port)
        self._key = new_gateway_key(self.gateway_address.rpartition(":")[0].strip("[]"))
        registration = node_registration(self.settings, self._pre.inventory, self._pre.slices,
                                         self.gateway_address, self._key.csr_pem)
        self.link = ControllerLink(self.settings.controller, registration, NodeToken(self._pre.token),
                                   trust=self._pre.trust, call_timeout_s=self.settings.timing.controller_call_timeout_s)
        self._certificate = GatewayCertificate(self.link, self._key, self.say)
        self.starter = WorkerStarter(self._pre.launch, self._pre.records, self.say)
        self.pool = WorkerPool(self.starter.start, self.settings.warm_workers, on_warm=self._announce_warm,
                               interrupt=self.starter.close).start()
        self._observer = WorkerObserver(self._pre.nvml)
        self.reporter = ActualStateReporter(self.link.report, lambda: pb.ActualStateReport(node=self._picture()),
                                             self.settings.timing.report_interval_s)
        self._deps = SliceDeps(self.pool, self._observer, self._pre.inventory.backend, self._worker_port,
                               self.settings.timing, self.say, self.reporter.poke, self.reporter.flush,
                               self._check_slice, self.relayed)
        if self.settings.metrics_port:
            self.metrics = _serve_metrics(self.settings.metrics_host, self.settings.metrics_port, NodeMetrics(self))
        threading.Thread(target=self._main, name="node-agent", daemon=True).start()
        return self

    def wait_ready(self, timeout_s: float) -> bool:
        """True once registered with the gateway listening; False on timeout or failure."""
        deadline = time.monotonic() + timeout_s
        while not self.ready.wait(0.1):
            if self.stop_requested.is_set() or time.monotonic() > deadline:
                return False
        return True

    def stop(self) -> None:
        """Close the gateway, stop every worker (memory confirmed), report, and end the link."""
        if self.stopped.is_set():
            return
        self.stop_requested.set()
        self._notifier.stopping()
        self.gateway.close()
        with self._runners_lock:
            runners = list(self._runners.values())
        _in_parallel([runner.stop for runner in runners])
        self.pool.close()
        self.starter.close()
        if self.ready.is_set():
            self.reporter.send_now()  # every slice NONE with its memory free
        self.link.close()
        if self.metrics is not None:
            self.metrics.stop()
        if self._pre.nvml is not None:
            self._pre.nvml.close()
        self.stopped.set()
        self.say("node agent stopped" + (f" ({self.failure})" if self.failure else ""))

    def say(self, text: str) -> None:
        self._say(text)
        self._notifier.status(text)

    def _announce_warm(self, worker_name: str) -> None:
        self.say(f"{WARM_POOL_LINE} {worker_name} has TensorFlow loaded, so the next attach skips the import")

    @property
    def slices(self) -> list[SliceSpec]:
        return list(self._pre.slices)

    # -- threads -----------------------------------------------------------------------------

    def _main(self) -> None:
        try:
            if self.link.register_until_done(self.stop_requested) is None:
                return
            self.gateway.serve(self._certificate.context())
            for target, name in ((self._beat, "heartbeats"), (self.reporter.run, "reports"),
                                 (self._follow_desired_states, "desired")):
                threading.Thread(target=self._fatal_on_refusal, args=(target,), name=name, daemon=True).start()
            self._announce()
            self._watch_over()
        except LinkRefused as refusal:
            self._fail(str(refusal))

    def _fatal_on_refusal(self, loop: Callable[[threading.Event], None]) -> None:
        try:
            loop(self.stop_requested)
        except LinkRefused as refusal:
            self._fail(str(refusal))
        except Exception as error:  # noqa: BLE001 - a dead loop must end the agent, not hide
            log.exception("node agent loop failed")
            self._fail(f"internal error: {error}")

    def _fail(self, reason: str) -> None:
        self.failure = reason
        self.say(f"error: {reason}")
        self.stop_requested.set()

    def _announce(self) -> None:
        inventory, slices = self._pre.inventory, self._pre.slices
        offered = ", ".join(f"{s.local_id} ({s.instance_type}, {s.memory_mib} MiB)" for s in slices)
        self.say(f"registered node {self.link.agent_id} ({inventory.backend} backend: {inventory.accelerator_model}) "
                 f"with {len(slices)} slices: {offered}")
        self.say(f"gateway listening on {self.settings.gateway_host}:{self.gateway.port}, "
                 f"advertised as {self.gateway_address}; {self.settings.warm_workers} warm worker(s) kept"
                 + (f"; metrics on {self.metrics.url}" if self.metrics else ""))
        self.ready.set()
        self._notifier.ready(f"serving {len(slices)} slices ({inventory.backend}) at {self.gateway_address}")

    def _watch_over(self) -> None:
        watchdog = WatchdogPinger.from_environment(self._notifier)
        while not self.stop_requested.wait(1.0):
            watchdog.tick()
            self._certificate.renew_if_due()
            if self._certificate.newer_one_registered():  # renewed, or the link registered again by itself
                self.gateway.use_context(self._certificate.context())

    def _beat(self, stop: threading.Event) -> None:
        self.link.run_heartbeats(stop, lambda ok: self.heartbeats.update(["ok" if ok else "failed"]))

    def runners(self) -> list[SliceRunner]:
        with self._runners_lock:
            return list(self._runners.values())

    def _follow_desired_states(self, stop: threading.Event) -> None:
        for desired in self.link.desired_states(stop):
            self._follow(desired.node)

    # -- desired state -> slices -------------------------------------------------------------

    def _follow(self, node: pb.NodeDesiredState) -> None:
        wanted = [entry.slice_id for entry in node.slices]
        with self._runners_lock:
            if self.stop_requested.is_set():
                return  # stop() has taken the runners it stops; no new worker may start now
            for entry in node.slices:
                runner = self._runners.get(entry.slice_id) or self._new_runner(entry)
                runner.want(entry)
            gone = [self._runners.pop(slice_id) for slice_id in list(self._runners) if slice_id not in wanted]
            self._order = wanted
        for runner in gone:
            threading.Thread(target=runner.stop, name=f"drop-{runner.name}", daemon=True).start()
        self.reporter.poke()

    def _new_runner(self, entry: pb.SliceDesiredState) -> SliceRunner:
        spec = self._specs.get(entry.local_id)
        if spec is not None and (spec.instance_type, spec.memory_mib, spec.gpu_index) != (
                entry.instance_type, entry.memory_mib, entry.gpu_index):
            spec = None  # the controller keeps an assigned slice's old shape: this node does not offer it now
        runner = self._runners[entry.slice_id] = SliceRunner(entry.slice_id, spec, self._deps)
        return runner.start()

    def _picture(self) -> pb.NodeActualState:
        with self._runners_lock:
            runners = [self._runners[slice_id] for slice_id in self._order if slice_id in self._runners]
        return pb.NodeActualState(slices=[runner.actual_state() for runner in runners])

    def _lookup(self, attachment_id: str) -> GatewayTarget | None:
        with self._runners_lock:
            runners = list(self._runners.values())
        for runner in runners:
            grant = runner.grant()
            if grant is not None and grant.attachment_id == attachment_id:
                return GatewayTarget(grant.attachment_token, runner.served_for(attachment_id))
        return None

    def _check_slice(self, spec: SliceSpec) -> str | None:
        nvml = self._pre.nvml
        if nvml is None:
            return None  # CPU backend: nothing to reserve
        try:
            gpus = {gpu.index: gpu for gpu in nvml.gpus()}
        except Exception as error:  # noqa: BLE001
            return f"NVML does not answer: {error}"
        if spec.gpu_index not in gpus or gpus[spec.gpu_index].uuid != spec.gpu_uuid:
            return f"GPU {spec.gpu_index} ({spec.gpu_uuid}) is no longer present"
        return None

    def _worker_port(self) -> int:
        if self.settings.worker_isolation == "netns":
            return self.settings.worker_port
        with socket.socket() as probe:  # host network: every worker needs a port of its own
            probe.bind(("127.0.0.1", 0))
            return probe.getsockname()[1]


def _serve_metrics(host: str, port: int, collector: NodeMetrics) -> MetricsServer:
    try:
        return MetricsServer.start(host, port, collector)
    except OSError as error:
        raise NodeAgentError(f"cannot serve metrics on {host}:{port}: {error.strerror or error}; "
                             "choose another --metrics-port") from None


def _in_parallel(calls: list[Callable[[], None]]) -> None:
    threads = [threading.Thread(target=call, daemon=True) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
