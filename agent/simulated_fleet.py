"""A simulated fleet: node and VM agents that speak the real agent-link protocol, with no accelerator.

Use it to drive the EAIS API end to end before real hosts exist. Everything it registers says
it is simulated: nodes report backend "simulated" and accelerator model "simulated (no
accelerator)". A simulated node prepares slices and "starts workers" instantly; a simulated VM
"proves" its channel without sending any traffic. Run ``python -m agent.simulated_fleet --help``.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import grpc

from agent.controller_link import AccessKey, ControllerLink, LinkRefused, NodeToken
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
    if grant.status == pb.INSTANCE_STATUS_DETACHING:
        return pb.VmActualState(attachment_id=grant.attachment_id, channel=pb.CHANNEL_STATE_CLOSED)
    return pb.VmActualState(attachment_id=grant.attachment_id, channel=pb.CHANNEL_STATE_PROVEN, round_trip_us=1)


class _SimulatedAgent:
    """Register, beat, follow the desired state, report: the loop both simulated agents share."""

    def __init__(self, link: ControllerLink, say: Say) -> None:
        self.link, self._say = link, say

    def run(self, stop: threading.Event) -> None:
        try:
            if self.link.register_until_done(stop) is None:
                return
            self._announce()
            beating = threading.Thread(target=self._beat, args=(stop,), name=f"beat-{self.link.agent_id}", daemon=True)
            beating.start()
            for desired in self.link.desired_states(stop):
                self._follow(desired)
        except LinkRefused as refusal:
            self._say(f"{self.link.agent_id or 'agent'}: {refusal}")

    def close(self) -> None:
        self.link.close()

    def _beat(self, stop: threading.Event) -> None:
        try:
            self.link.run_heartbeats(stop)
        except LinkRefused as refusal:
            self._say(f"{self.link.agent_id}: heartbeats stopped: {refusal}")

    def _report(self, report: pb.ActualStateReport) -> None:
        try:
            self.link.report(report)
        except (grpc.RpcError, ValueError) as error:  # level-triggered: the next report repeats it
            logging.getLogger(__name__).warning("%s: report not delivered: %s", self.link.agent_id, error)

    def _announce(self) -> None:
        raise NotImplementedError

    def _follow(self, desired: pb.DesiredState) -> None:
        raise NotImplementedError


class SimulatedNode(_SimulatedAgent):
    """A node agent with backend "simulated": slices ready at once, workers that start instantly."""

    def __init__(self, link: ControllerLink, say: Say = say_line) -> None:
        super().__init__(link, say)
        self._shown: dict[str, tuple[str, str, str]] = {}

    def _announce(self) -> None:
        node = self.link.registration.node
        self._say(f"registered node {node.node_id} (simulated, no accelerator) with {len(node.slices)} slices "
                  f"in {node.zone_id}")

    def _follow(self, desired: pb.DesiredState) -> None:
        for entry in desired.node.slices:
            self._show_change(entry)
        self._report(pb.ActualStateReport(
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
    """A VM agent whose channel to the node is proven at once and closed on detach."""

    def __init__(self, link: ControllerLink, say: Say = say_line) -> None:
        super().__init__(link, say)
        self._shown: tuple[str, str] = ("", "")

    def _announce(self) -> None:
        vm = self.link.registration.vm
        self._say(f"VM {vm.client_instance_id} registered (simulated; {vm.vcpu} vCPU, {vm.memory_mib} MiB, "
                  f"{vm.zone_id}, {vm.vpc_id}/{vm.vswitch_id})")

    def _follow(self, desired: pb.DesiredState) -> None:
        self._show_change(desired.vm)
        report = simulated_channel_state(desired.vm)
        if report.channel != pb.CHANNEL_STATE_IDLE:
            self._report(pb.ActualStateReport(observed_us=time.time_ns() // 1000, vm=report))

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


def build_fleet(options: argparse.Namespace, say: Say = say_line) -> list[_SimulatedAgent]:
    zone = options.zone or f"{options.region}-a"
    fleet: list[_SimulatedAgent] = []
    token = NodeToken(_node_token(options))
    for number in range(1, options.nodes + 1):
        request = node_registration(f"sim-{options.region}-node{number}", options.region, zone,
                                    options.instance_types, options.slices_per_type)
        fleet.append(SimulatedNode(ControllerLink(options.controller, request, token, trust=options.trust), say))
    if options.vms:
        key = AccessKey(options.access_key_id, options.access_key_secret)
        for number in range(1, options.vms + 1):
            request = vm_registration(simulated_vm_id(key.access_key_id, options.region, number), options.region,
                                      zone, options.vpc_id, options.vswitch_id, options.vcpu, options.memory_mib)
            fleet.append(SimulatedVm(ControllerLink(options.controller, request, key, trust=options.trust), say))
    return fleet


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
    parser.add_argument("--controller", default="127.0.0.1:50051", help="controller gRPC address (default %(default)s)")
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
    fleet = build_fleet(options)
    if options.trust.is_plaintext:
        say_line(PLAINTEXT_WARNING)
    stop = threading.Event()
    # Both signals only set the event: a KeyboardInterrupt arriving before the wait loop (the agents
    # may print "registered" first) would skip the clean stop and leave gRPC streams open at exit.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    threads = [threading.Thread(target=agent.run, args=(stop,), daemon=True) for agent in fleet]
    for thread in threads:
        thread.start()
    say_line(f"simulated fleet of {options.nodes} node(s) and {options.vms} VM(s) -> {options.controller}; Ctrl-C stops")
    while not stop.is_set() and any(thread.is_alive() for thread in threads):
        stop.wait(0.5)
    stop.set()
    for agent in fleet:
        agent.close()
    for thread in threads:
        thread.join(timeout=5)
    say_line("simulated fleet stopped")
    return 0 if not any(t.is_alive() for t in threads) else 1


if __name__ == "__main__":
    sys.exit(main())
