"""The VM agent as one object: ``VmAgent(settings).start()`` ... ``stop()``; ``run()`` for the service.

start() binds the local endpoint (port 0 picks one: see ``endpoint_port``), starts the refusal
server, and begins registering with the controller in the background; from then on the
endpoint answers status queries and refuses TensorFlow calls until an accelerator is attached.
Threads: controller link (register, then follow desired states), heartbeats, reporter, one
accept loop, a thread per new connection, two per relay.
"""

from __future__ import annotations

import logging
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.actual_state_reporter import ActualStateReporter
from agent.controller_link import AccessKey, ControllerLink, LinkRefused
from agent.controller_trust import PLAINTEXT_WARNING
from agent.vm.attachment import AttachmentFollower
from agent.vm.channel.view import starting_view
from agent.vm.endpoint import TfEndpoint
from agent.vm.identity import vm_registration
from agent.vm.metrics import VmMetrics
from agent.vm.notebooks.follower import NotebookFollower
from agent.vm.notebooks.launch import NotebookLaunch, sandbox_uid
from agent.vm.notebooks.server import ServerTiming
from agent.vm.refusal_server import RefusalServer, refusal_socket_path
from agent.vm.routing import ConnectionRouter
from agent.vm.settings import SettingsError, VmAgentSettings, resolve_controller_trust, resolve_identity
from agent.vm.status import status_document
from agent.vm.tf_version import local_tf_version
from eais_plumbing.metrics_server import MetricsServer
from eais_plumbing.service_notify import ServiceNotifier, WatchdogPinger
from protos.eais.v1 import agents_pb2 as pb

log = logging.getLogger(__name__)


def say_line(text: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {text}", flush=True)


class VmAgent:
    def __init__(self, settings: VmAgentSettings, *, say: Callable[[str], None] = say_line) -> None:
        self.settings, self.identity = settings, resolve_identity(settings)  # SettingsError before anything starts
        self.trust = resolve_controller_trust(settings)
        self._notebook_uid = _notebook_uid(settings)  # SettingsError before anything starts, too
        self._say, self._timing = say, settings.timing
        self.agent_tf_version = local_tf_version()
        self.registered, self._stopping = threading.Event(), threading.Event()
        self.failure = ""  # why the agent gave up (the controller refused it for good)
        self._private_dir = ""
        self.router = ConnectionRouter(starting_view(self.identity.client_instance_id, settings.controller),
                                       lambda: self.refusals.connect(), self._timing)
        self.refusals = RefusalServer(refusal_socket_path(settings.resolved_state_dir(), self._make_private_dir),
                                      self.router.refusal)
        self.endpoint = TfEndpoint(settings.endpoint, self.router.route, self.status, self._timing.peek_timeout_s)
        self._link: ControllerLink | None = None
        self._reporter: ActualStateReporter | None = None
        self._follower: AttachmentFollower | None = None
        self._notebooks: NotebookFollower | None = None
        self.heartbeats: Counter[str] = Counter()  # ok, failed
        self.metrics: MetricsServer | None = None

    @property
    def follower(self) -> AttachmentFollower | None:
        return self._follower

    @property
    def reporter(self) -> ActualStateReporter | None:
        return self._reporter

    @property
    def endpoint_port(self) -> int:
        return self.endpoint.port

    @property
    def endpoint_address(self) -> str:
        return self.endpoint.address

    def start(self) -> VmAgent:
        """Listen and begin registering; OSError (endpoint in use ...) after undoing what had started."""
        try:
            self.refusals.start()
            self.endpoint.start()
            if self.settings.metrics_port:
                self.metrics = MetricsServer.start(self.settings.metrics_host, self.settings.metrics_port,
                                                   VmMetrics(self))
        except OSError:
            self.stop()
            raise
        key = AccessKey(self.identity.access_key_id, self.identity.access_key_secret)
        self._link = link = ControllerLink(self.settings.controller, vm_registration(self.identity, self.endpoint.address),
                                           key, trust=self.trust)
        self._follower = AttachmentFollower(
            self.identity.client_instance_id, ca_pem=self._ca_pem, publish=self.router.publish,
            report_soon=lambda force: self._reporter.poke(force=force), timing=self._timing,
            local_tf_version=self.agent_tf_version, say=self._say, gateway_bytes_at=self.router.last_gateway_bytes_at)
        self._notebooks = NotebookFollower(self._notebook_launch(), lambda: self._reporter.poke(force=False),
                                           ServerTiming(start_timeout_s=self.settings.notebook_start_timeout_s))
        self._reporter = ActualStateReporter(link.report, self._actual_state, self._timing.report_repeat_s)
        self._thread(self._follow_controller, "controller-link")
        self._say(f"endpoint for TensorFlow listening on {self.endpoint.address}; registering "
                  f"{self.identity.client_instance_id} with the controller at {self.settings.controller}"
                  + (f"; metrics on {self.metrics.url}" if self.metrics else ""))
        if self.trust.is_plaintext:
            self._say(PLAINTEXT_WARNING)
        return self

    def wait_registered(self, timeout_s: float | None = None) -> bool:
        return self.registered.wait(timeout_s)

    def status(self) -> dict[str, Any]:
        """The answer to a status query on the endpoint."""
        return status_document(self.router.view, self.identity.client_instance_id, self.endpoint.address,
                               self.agent_tf_version)

    def run(self, stop: threading.Event) -> int:
        """Serve until ``stop`` (or the controller refuses the agent for good); 0 on a clean stop, 1 on failure."""
        notifier = ServiceNotifier()
        watchdog = WatchdogPinger.from_environment(notifier)
        lines = _StatusLines(self, notifier, self._say, self._timing.status_line_every_s)
        while not stop.is_set() and not self._stopping.is_set():
            if self.registered.is_set():
                lines.ready_once(f"registered; TensorFlow endpoint on {self.endpoint.address}")
            lines.update()
            watchdog.tick()
            stop.wait(self._timing.loop_tick_s)
        notifier.stopping()
        self.stop()
        return 1 if self.failure else 0

    def stop(self) -> None:
        self._stopping.set()
        if self._follower is not None:
            self._follower.stop()
        if self._notebooks is not None:
            self._notebooks.stop()
        if self._link is not None:
            self._link.close()
        self.endpoint.stop()
        self.router.close_all()
        self.refusals.stop()
        if self.metrics is not None:
            self.metrics.stop()
        if self._private_dir:
            shutil.rmtree(self._private_dir, ignore_errors=True)

    def _follow_controller(self) -> None:
        link = self._link
        try:
            if link.register_until_done(self._stopping) is None:
                return
            self._announce_registration()
            self._thread(self._beat, "heartbeats")
            self._thread(self._report, "reporter")
            for desired in link.desired_states(self._stopping):
                self._notebooks.follow(desired.vm.notebooks)  # first: a stopping notebook's server goes before its channel
                self._follower.follow(desired.vm)
        except LinkRefused as refusal:
            self._give_up(str(refusal))

    def _beat(self) -> None:
        try:
            self._link.run_heartbeats(self._stopping, lambda ok: self.heartbeats.update(["ok" if ok else "failed"]))
        except LinkRefused as refusal:
            self._give_up(f"heartbeats stopped: {refusal}")

    def _report(self) -> None:
        try:
            self._reporter.run(self._stopping)
        except LinkRefused as refusal:
            self._give_up(f"reports stopped: {refusal}")

    def _announce_registration(self) -> None:
        vm: pb.VmRegistration = self._link.registration.vm
        self.registered.set()
        self._say(f"registered {vm.client_instance_id} ({vm.vcpu} vCPU, {vm.memory_mib} MiB, {vm.zone_id}, "
                  f"{vm.vpc_id}/{vm.vswitch_id}) with the controller at {self.settings.controller}; "
                  f"TensorFlow {self.agent_tf_version or 'not installed'}")

    def _give_up(self, reason: str) -> None:
        if not self._stopping.is_set():
            self.failure = reason
            self._say(f"error: {reason}; the agent stops")
            self._stopping.set()

    def _actual_state(self) -> pb.ActualStateReport:
        """The channel and the notebook servers, as one report."""
        report = self._follower.actual_state()
        report.vm.notebooks.extend(self._notebooks.actual())
        return report

    def _notebook_launch(self) -> NotebookLaunch:
        settings = self.settings
        default_root = Path(tempfile.gettempdir()) / f"eais-notebooks-{self.identity.client_instance_id}"
        return NotebookLaunch(
            root=settings.notebook_dir or default_root,
            bind_host=settings.notebook_host, url_host=settings.notebook_url_host or settings.notebook_host,
            tf_endpoint=self.endpoint.address, uid=self._notebook_uid,
        )

    def _ca_pem(self) -> str:
        registration = self._link.last_registration if self._link else None
        return registration.ca_certificate_pem if registration else ""

    def _make_private_dir(self) -> str:
        self._private_dir = tempfile.mkdtemp(prefix="eais-agent-")
        return self._private_dir

    @staticmethod
    def _thread(target: Callable[[], None], name: str) -> None:
        threading.Thread(target=target, name=name, daemon=True).start()


def _notebook_uid(settings: VmAgentSettings) -> int | None:
    """The uid notebook servers run as; SettingsError for a uid the agent cannot use or a URL nobody could open."""
    if settings.notebook_host in ("0.0.0.0", "::") and not settings.notebook_url_host:
        raise SettingsError(f"notebook_host {settings.notebook_host} listens everywhere: set notebook_url_host to the "
                            "address users reach this VM at, for DescribeEais JupyterUrl")
    try:
        uid, why = sandbox_uid(settings.notebook_uid, sys.executable)
    except ValueError as error:
        raise SettingsError(str(error)) from None
    log.info(why)
    return uid


class _StatusLines:
    """What the service tells systemd and its log from the main loop: READY once, state changes, refusals."""

    def __init__(self, agent: VmAgent, notifier: ServiceNotifier, say: Callable[[str], None], every_s: float) -> None:
        self._agent, self._notifier, self._say, self._every_s = agent, notifier, say, every_s
        self._ready_sent = False
        self._shown_message = ""
        self._refused_shown, self._refused_shown_at = 0, time.monotonic()

    def ready_once(self, status: str) -> None:
        if not self._ready_sent:
            self._ready_sent = True
            self._notifier.ready(status)

    def update(self) -> None:
        message = self._agent.router.view.message
        if message != self._shown_message:
            self._shown_message = message
            self._notifier.status(message)
        refused = self._agent.refusals.refused_calls
        if refused != self._refused_shown and time.monotonic() - self._refused_shown_at >= self._every_s:
            self._say(f"refused {refused - self._refused_shown} TensorFlow call(s) ({refused} in all): {message}")
            self._refused_shown, self._refused_shown_at = refused, time.monotonic()
