"""A simulated fleet: node and VM agents that speak the real agent-link protocol, with no accelerator.

Use it to drive the EAIS API end to end before real hosts exist. Everything it registers says
it is simulated: nodes report backend "simulated" and accelerator model "simulated (no
accelerator)". A simulated node prepares slices and "starts workers" instantly; a simulated VM
"proves" its channel without sending any traffic. Run ``python -m agent.simulated_fleet --help``.

The agents are coroutines on one event loop (``AsyncControllerLink``), each with a TCP connection
of its own as real hosts would have, so one process drives thousands of them; they count how
their heartbeats went (answered after the deadline the controller set = late). Threaded callers
(tests) run a few with :class:`AgentsInThread`.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import hashlib
import json
import logging
import math
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc

from agent.controller_link_async import AsyncControllerLink, controller_targets
from agent.link_auth import AccessKey, NodeToken
from agent.link_errors import LinkRefused
from agent.controller_trust import PLAINTEXT_WARNING, ControllerTrustError, controller_trust
from agent.instance_status import status_name
from protos.eais.v1 import agents_pb2 as pb

SIMULATED_MODEL = "simulated (no accelerator)"
SIMULATED_TF_VERSION = "none (simulated)"
# The controller's default instance types and their accelerator memory; --instance-type overrides.
DEFAULT_SLICE_TYPES_GIB = {
    "eais.ei-a6.4xlarge": 32, "eais.ei-a6.2xlarge": 16, "eais.ei-a6.xlarge": 8,
    "eais.ei-a6.large": 4, "eais.ei-a6.medium": 2,
}
Say = Callable[[str], None]
REPORT_REPEAT_S = 30.0


def say_line(text: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {text}", flush=True)


def node_registration(
    node_id: str, region_id: str, zone_id: str, slice_types_gib: dict[str, int], slices_per_type: int
) -> pb.RegisterRequest:
    offers = [
        # local ids read like "xlarge-0": the type's size and a counter
        pb.SliceOffer(local_id=f"{name.rsplit('.', 1)[-1]}-{k}", instance_type=name, gpu_index=0, memory_mib=gib * 1024)
        for name, gib in slice_types_gib.items()
        for k in range(slices_per_type)
    ]
    return pb.RegisterRequest(node=pb.NodeRegistration(
        node_id=node_id, hostname=socket.gethostname(), region_id=region_id, zone_id=zone_id,
        gateway_address=f"simulated:{node_id}", backend=pb.BACKEND_SIMULATED,
        accelerator_model=SIMULATED_MODEL, tf_version=SIMULATED_TF_VERSION, slices=offers,
    ))


def vm_registration(
    client_instance_id: str, region_id: str, zone_id: str, vpc_id: str, vswitch_id: str, vcpu: int, memory_mib: int
) -> pb.RegisterRequest:
    return pb.RegisterRequest(vm=pb.VmRegistration(
        client_instance_id=client_instance_id, region_id=region_id, zone_id=zone_id, vpc_id=vpc_id,
        vswitch_id=vswitch_id, kind=pb.CLIENT_KIND_ECS, name=f"simulated VM {client_instance_id}",
        instance_type="simulated", vcpu=vcpu, memory_mib=memory_mib, tf_endpoint="simulated:8470",
    ))


def simulated_slice_state(desired: pb.SliceDesiredState) -> pb.SliceActualState:
    """What a node that does everything instantly would report for this slice."""
    actual = pb.SliceActualState(
        slice_id=desired.slice_id, phase=pb.SLICE_PHASE_READY, worker=pb.WORKER_STATE_NONE, memory_free=True
    )
    if desired.role == pb.SLICE_ROLE_SERVE:
        actual.instance_id = desired.instance.instance_id  # the report is about this instance (none: idle, release)
        if desired.instance.status == pb.INSTANCE_STATUS_PENDING:
            actual.phase = pb.SLICE_PHASE_PREPARING  # one report in Starting, as a real node would show
    if desired.HasField("attachment"):
        actual.worker, actual.memory_free = pb.WORKER_STATE_READY, False
        actual.attachment_id = desired.attachment.attachment_id
        actual.usage.memory_used_mib = desired.memory_mib // 4
    return actual


def simulated_channel_state(desired: pb.VmDesiredState) -> pb.VmActualState:
    """What a VM that opens channels instantly would report."""
    grant = desired.attachment
    if not desired.HasField("attachment"):
        return pb.VmActualState(channel=pb.CHANNEL_STATE_IDLE)
    notebooks = [pb.NotebookActualState(instance_id=n.instance_id, state=pb.NOTEBOOK_SERVER_STATE_READY,
                                        url="http://simulated.invalid:8888/", attachment_id=n.attachment_id)
                 for n in desired.notebooks if n.serve]  # a simulated VM "runs" its notebooks' servers instantly
    if grant.status in (pb.INSTANCE_STATUS_DETACHING, pb.INSTANCE_STATUS_STOPPING):
        return pb.VmActualState(attachment_id=grant.attachment_id, channel=pb.CHANNEL_STATE_CLOSED)
    return pb.VmActualState(attachment_id=grant.attachment_id, channel=pb.CHANNEL_STATE_PROVEN, round_trip_us=1,
                            notebooks=notebooks)


@dataclass
class BeatBook:
    """How the fleet's heartbeats went, as the agents saw them (late: answered after the deadline)."""

    answered: int = 0
    late: int = 0
    failed: int = 0
    worst_late_s: float = 0.0

    def as_json(self) -> dict[str, float]:
        return {"answered": self.answered, "late": self.late, "failed": self.failed, "worst_late_s": self.worst_late_s}


class _SimulatedAgent:
    """Register, beat, follow the desired state, report: the loop both simulated agents share (asyncio)."""

    def __init__(self, link: AsyncControllerLink, say: Say, beats: BeatBook | None = None) -> None:
        self.link, self._say, self.beats = link, say, beats or BeatBook()
        self.registered = asyncio.Event()
        self.last_beat_at = self.last_desired_at = 0.0  # monotonic: the controller answered / sent last
        self._deadline = 0.0  # monotonic time by which the controller wants the next beat
        self._last_report: object = None
        self._last_report_at = 0.0

    async def run(self, stop: asyncio.Event) -> None:
        try:
            if await self.link.register_until_done(stop) is None:
                return
            self._deadline = time.monotonic() + self.link.last_registration.heartbeat.beat_within_ms / 1000
            self._announce()
            self.registered.set()
            beating = asyncio.create_task(self._beat(stop))
            try:
                async for desired in self.link.desired_states(stop):
                    self.last_desired_at = time.monotonic()
                    await self._follow(desired)
            finally:
                beating.cancel()
        except LinkRefused as refusal:
            self._say(f"{self.link.agent_id or 'agent'}: {refusal}")

    async def close(self) -> None:
        await self.link.close()

    async def _beat(self, stop: asyncio.Event) -> None:
        try:
            await self.link.run_heartbeats(stop, self._count_beat)
        except LinkRefused as refusal:
            self._say(f"{self.link.agent_id}: heartbeats stopped: {refusal}")

    def _count_beat(self, answered: bool) -> None:
        if not answered:
            self.beats.failed += 1
            return
        now = self.last_beat_at = time.monotonic()
        self.beats.answered += 1
        if now > self._deadline:
            self.beats.late += 1
            self.beats.worst_late_s = max(self.beats.worst_late_s, now - self._deadline)
        self._deadline = now + self.link.last_beat_within_s

    async def _report(self, report: pb.ActualStateReport) -> None:
        """Send what changed at once, and the same picture again every REPORT_REPEAT_S, as real agents do."""
        picture = report.node if report.HasField("node") else report.vm
        if picture == self._last_report and time.monotonic() - self._last_report_at < REPORT_REPEAT_S:
            return
        try:
            await self.link.report(report)
            self._last_report, self._last_report_at = picture, time.monotonic()
        except (grpc.RpcError, ValueError) as error:  # level-triggered: the next report repeats it
            logging.getLogger(__name__).warning("%s: report not delivered: %s", self.link.agent_id, error)

    def _announce(self) -> None:
        raise NotImplementedError

    async def _follow(self, desired: pb.DesiredState) -> None:
        raise NotImplementedError


class SimulatedNode(_SimulatedAgent):
    """A node agent with backend "simulated": slices ready at once, workers that start instantly."""

    def __init__(self, link: AsyncControllerLink, say: Say = say_line, beats: BeatBook | None = None) -> None:
        super().__init__(link, say, beats)
        self._shown: dict[str, tuple[str, str, str]] = {}

    def _announce(self) -> None:
        node = self.link.registration.node
        self._say(f"registered node {node.node_id} (simulated, no accelerator) with {len(node.slices)} slices "
                  f"in {node.zone_id}")

    async def _follow(self, desired: pb.DesiredState) -> None:
        for entry in desired.node.slices:
            self._show_change(entry)
        await self._report(pb.ActualStateReport(
            observed_us=time.time_ns() // 1000,
            node=pb.NodeActualState(slices=[simulated_slice_state(s) for s in desired.node.slices]),
        ))

    def _show_change(self, entry: pb.SliceDesiredState) -> None:
        seen = (entry.instance.instance_id, entry.instance.status, entry.attachment.attachment_id)
        if self._shown.get(entry.slice_id, ("", "", "")) == seen:
            return
        self._shown[entry.slice_id] = seen
        if entry.role == pb.SLICE_ROLE_RELEASE:
            self._say(f"slice {entry.slice_id}: instance released; freeing the slice")
        elif entry.instance.instance_id:
            bound = f", serving attachment {entry.attachment.attachment_id}" if entry.attachment.attachment_id else ""
            status = status_name(entry.instance.status)
            self._say(f"slice {entry.slice_id}: instance {entry.instance.instance_id} is {status}{bound}")


class SimulatedVm(_SimulatedAgent):
    """A VM agent whose channel to the node is proven at once (or ``prove_after_s`` later) and closed on detach."""

    def __init__(self, link: AsyncControllerLink, say: Say = say_line, beats: BeatBook | None = None,
                 *, prove_after_s: float = 0.0) -> None:
        super().__init__(link, say, beats)
        self._shown: tuple[str, int] = ("", pb.INSTANCE_STATUS_UNSPECIFIED)
        self._prove_after_s = prove_after_s  # a slow channel; math.inf: one that never opens
        self._proving: dict[str, asyncio.Task] = {}

    def _announce(self) -> None:
        vm = self.link.registration.vm
        self._say(f"VM {vm.client_instance_id} registered (simulated; {vm.vcpu} vCPU, {vm.memory_mib} MiB, "
                  f"{vm.zone_id}, {vm.vpc_id}/{vm.vswitch_id})")

    async def _follow(self, desired: pb.DesiredState) -> None:
        self._show_change(desired.vm)
        report = simulated_channel_state(desired.vm)
        if report.channel == pb.CHANNEL_STATE_PROVEN and self._prove_after_s:
            if report.attachment_id not in self._proving:
                self._proving[report.attachment_id] = asyncio.create_task(self._prove_later(report))
        elif report.channel != pb.CHANNEL_STATE_IDLE:
            await self._report(pb.ActualStateReport(observed_us=time.time_ns() // 1000, vm=report))

    async def _prove_later(self, report: pb.VmActualState) -> None:
        if math.isinf(self._prove_after_s):
            return
        await asyncio.sleep(self._prove_after_s)
        await self._report(pb.ActualStateReport(observed_us=time.time_ns() // 1000, vm=report))

    def _show_change(self, desired: pb.VmDesiredState) -> None:
        grant = desired.attachment
        seen = (grant.instance_id, grant.status)
        if seen == self._shown:
            return
        vm, previous = desired.client_instance_id, self._shown
        self._shown = seen
        if not grant.instance_id:
            self._say(f"VM {vm}: instance {previous[0]} detached")
        elif grant.status == pb.INSTANCE_STATUS_IN_USE:
            self._say(f"instance {grant.instance_id} attached to VM {vm} (attachment {grant.attachment_id})")
        else:
            self._say(f"VM {vm}: instance {grant.instance_id} is {status_name(grant.status)}")


def simulated_vm_id(access_key_id: str, region_id: str, number: int) -> str:
    """Stable per account and region, so restarting the fleet re-registers the same VMs."""
    digest = hashlib.sha256(f"{access_key_id}/{region_id}".encode()).hexdigest()[:10]
    return f"i-sim{digest}{number:02d}"


# Each simulated agent gets a TCP connection of its own, as real agents on separate hosts have.
OWN_CONNECTION = (("grpc.use_local_subchannel_pool", 1),)


def build_fleet(options: argparse.Namespace, say: Say = say_line, beats: BeatBook | None = None) -> list[_SimulatedAgent]:
    zone = options.zone or f"{options.region}-a"
    beats = beats or BeatBook()
    fleet: list[_SimulatedAgent] = []
    token = NodeToken(_node_token(options))
    targets = controller_targets(options.controller)

    def link(request: pb.RegisterRequest, credentials: NodeToken | AccessKey) -> AsyncControllerLink:
        first = len(fleet) % len(targets) if options.spread else 0  # --spread: agent n dials address n first
        return AsyncControllerLink(targets[first:] + targets[:first], request, credentials, trust=options.trust,
                                   channel_options=OWN_CONNECTION)

    for number in range(options.first_number, options.first_number + options.nodes):
        request = node_registration(f"sim-{options.region}-node{number}", options.region, zone,
                                    options.instance_types, options.slices_per_type)
        fleet.append(SimulatedNode(link(request, token), say, beats))
    if options.vms:
        key = AccessKey(options.access_key_id, options.access_key_secret)
        for number in range(options.first_number, options.first_number + options.vms):
            request = vm_registration(simulated_vm_id(key.access_key_id, options.region, number), options.region,
                                      zone, options.vpc_id, options.vswitch_id, options.vcpu, options.memory_mib)
            fleet.append(SimulatedVm(link(request, key), say, beats))
    return fleet


async def run_fleet(fleet: list[_SimulatedAgent], stop: asyncio.Event, *, start_per_s: float = 0.0) -> None:
    """Run every agent until ``stop``; with ``start_per_s``, agents start that many a second (no herd)."""
    tasks = []
    for agent in fleet:
        tasks.append(asyncio.create_task(agent.run(stop)))
        if start_per_s > 0:
            await asyncio.sleep(1 / start_per_s)
        if stop.is_set():
            break
    await stop.wait()
    await close_all(fleet)
    await asyncio.wait(tasks, timeout=5)


class AgentsInThread:
    """Simulated agents on an event loop of their own thread, for threaded callers."""

    def __init__(self, agents: list[_SimulatedAgent]) -> None:
        self.agents = agents
        self._loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()
        self._thread = threading.Thread(target=self._loop.run_forever, name="simulated-agents", daemon=True)
        self._thread.start()
        self._tasks = [asyncio.run_coroutine_threadsafe(agent.run(self._stop), self._loop) for agent in agents]

    def alive(self) -> bool:
        return not all(task.done() for task in self._tasks)

    def stop(self, timeout_s: float = 10.0) -> None:
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._stop.set)
            asyncio.run_coroutine_threadsafe(close_all(self.agents), self._loop).result(timeout_s)
            concurrent.futures.wait(self._tasks, timeout=timeout_s)
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout_s)


async def close_all(agents: list[_SimulatedAgent]) -> None:
    await asyncio.gather(*(agent.close() for agent in agents), return_exceptions=True)


def _node_token(options: argparse.Namespace) -> str:
    if options.node_token:
        return options.node_token
    try:
        return options.node_token_file.read_text().strip()
    except OSError as error:
        raise SystemExit(f"cannot read the node token from {options.node_token_file}: {error.strerror}; "
                         "pass --node-token-file (the controller writes node.token in its state directory)") from None


def _instance_type(text: str) -> tuple[str, int]:
    name, _, gib = text.partition("=")
    if not name or not gib.isdigit() or int(gib) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=GIB, e.g. eais.ei-a6.xlarge=8")
    return name, int(gib)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m agent.simulated_fleet",
        description="Run simulated node and VM agents against a controller over the real agent protocol. "
        "They declare themselves simulated (backend 'simulated', no accelerator). Stop with Ctrl-C.",
    )
    parser.add_argument("--controller", default="127.0.0.1:50051",
                        help="controller gRPC address, or several comma-separated (replicas; an agent moves to the next "
                        "when one does not answer) (default %(default)s)")
    parser.add_argument("--spread", action="store_true",
                        help="with several --controller addresses, agent n dials address n first (as DNS round robin "
                        "would), instead of every agent the first")
    parser.add_argument("--controller-ca", type=Path, default=os.environ.get("EAIS_CONTROLLER_CA_FILE"),
                        help="the controller's agent CA, its STATE_DIR/agent-ca.crt: the link is TLS "
                        "(env EAIS_CONTROLLER_CA_FILE)")
    parser.add_argument("--controller-plaintext", action="store_true",
                        help="no TLS to the controller: only for one started with --grpc-plaintext")
    parser.add_argument("--node-token-file", type=Path, default=Path(".eais/node.token"),
                        help="file holding the controller's node token (default %(default)s)")
    parser.add_argument("--node-token", default=os.environ.get("EAIS_NODE_TOKEN"),
                        help="the node token itself, instead of the file (env EAIS_NODE_TOKEN)")
    parser.add_argument("--access-key-id", default=os.environ.get("EAIS_ACCESS_KEY_ID"),
                        help="AccessKey ID of the account the VMs belong to (env EAIS_ACCESS_KEY_ID)")
    parser.add_argument("--access-key-secret", default=os.environ.get("EAIS_ACCESS_KEY_SECRET"),
                        help="its secret (env EAIS_ACCESS_KEY_SECRET)")
    parser.add_argument("--region", default="cn-hangzhou", help="region of every agent (default %(default)s)")
    parser.add_argument("--zone", help="zone of every agent (default: REGION-a)")
    parser.add_argument("--nodes", type=int, default=1, help="simulated GPU nodes (default %(default)s)")
    parser.add_argument("--slices-per-type", type=int, default=2,
                        help="slices per instance type on each node (default %(default)s)")
    parser.add_argument("--instance-type", dest="instance_type_list", action="append", type=_instance_type,
                        metavar="NAME=GIB", help="offer this type with this much accelerator memory (repeatable; "
                        "default: the controller's five eais.ei-a6 types)")
    parser.add_argument("--vms", type=int, default=0, help="simulated client VMs (default %(default)s; needs an AccessKey)")
    parser.add_argument("--vpc-id", default="vpc-simulated", help="VPC of the VMs (default %(default)s)")
    parser.add_argument("--vswitch-id", default="vsw-simulated", help="vSwitch of the VMs (default %(default)s)")
    parser.add_argument("--vcpu", type=int, default=4, help="vCPUs of each VM (default %(default)s)")
    parser.add_argument("--memory-mib", type=int, default=8192, help="memory of each VM in MiB (default %(default)s)")
    parser.add_argument("--first-number", type=int, default=1,
                        help="number of the first node and VM (default %(default)s): give each fleet process its own range")
    parser.add_argument("--start-per-s", type=float, default=200.0,
                        help="agents started per second, so a large fleet does not arrive at once (default %(default)s; "
                        "0: all at once)")
    parser.add_argument("--quiet", action="store_true", help="no line per agent; only the fleet's status lines")
    parser.add_argument("--stats-file", type=Path, help="write the fleet's counts (registered, heartbeats answered, "
                        "late, failed) to this JSON file every --stats-every-s")
    parser.add_argument("--stats-every-s", type=float, default=5.0, help="how often the status line and --stats-file "
                        "are written (default %(default)s)")
    return parser


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = _parser()
    options = parser.parse_args(argv)
    if options.vms and not (options.access_key_id and options.access_key_secret):
        parser.error("--vms needs --access-key-id and --access-key-secret (VMs register as an account's client instances)")
    if min(options.nodes, options.vms, options.slices_per_type) < 0:
        parser.error("--nodes, --vms and --slices-per-type cannot be negative")
    options.instance_types = dict(options.instance_type_list or DEFAULT_SLICE_TYPES_GIB.items())
    try:
        options.trust = controller_trust(options.controller_ca, options.controller_plaintext)
    except ControllerTrustError as error:
        parser.error(str(error))
    return options


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if options.trust.is_plaintext:
        say_line(PLAINTEXT_WARNING)
    return asyncio.run(_serve_fleet(options))


async def _serve_fleet(options: argparse.Namespace) -> int:
    beats = BeatBook()
    fleet = build_fleet(options, (lambda _text: None) if options.quiet else say_line, beats)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    say_line(f"simulated fleet of {options.nodes} node(s) and {options.vms} VM(s) -> {options.controller}; Ctrl-C stops")
    reporting = asyncio.create_task(_report_progress(fleet, beats, options, stop))
    await run_fleet(fleet, stop, start_per_s=options.start_per_s)
    await reporting
    say_line("simulated fleet stopped")
    return 0


async def _report_progress(fleet: list[_SimulatedAgent], beats: BeatBook, options: argparse.Namespace,
                           stop: asyncio.Event) -> None:
    """A status line (and the --stats-file) every few seconds: how many registered, how the beats go."""
    shown = None
    while not stop.is_set():
        registered = sum(agent.registered.is_set() for agent in fleet)
        stats = {"agents": len(fleet), "registered": registered, "heartbeats": beats.as_json()}
        if options.stats_file is not None:
            partial = options.stats_file.with_suffix(".partial")
            partial.write_text(json.dumps(stats))
            partial.replace(options.stats_file)
        if (registered, beats.late, beats.failed) != shown:
            shown = (registered, beats.late, beats.failed)
            say_line(f"fleet: {registered}/{len(fleet)} registered; heartbeats {beats.answered} answered, "
                     f"{beats.late} late, {beats.failed} failed")
        try:
            await asyncio.wait_for(stop.wait(), options.stats_every_s)
        except TimeoutError:
            pass


if __name__ == "__main__":
    sys.exit(main())
