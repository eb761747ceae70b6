"""Everything the node agent settles before it talks to anyone, failing fast with a fix in the message.

Inventory and slice plan, the node token, how to trust the controller, worker isolation (network
namespaces, uids), the state directory, and the workers a previous run of the agent left behind
(killed).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass

from agent.controller_trust import PLAINTEXT_WARNING, ControllerTrust, controller_trust
from agent.node.inventory import Inventory, NoGpu, Nvml, discover
from agent.node.netns import namespaces_unavailable_reason
from agent.node.registration import tensorflow_version
from agent.node.settings import NodeSettings
from agent.node.slicing import PlanRules, SlicePlanError, SliceSpec, plan_slices
from agent.node.worker.launch import UidPool, WorkerLaunch, worker_uids
from agent.node.worker.records import WorkerRecords

ISOLATION_NONE_WARNING = (
    "WARNING: --worker-isolation none: TensorFlow workers listen on ALL interfaces of this host, on ports anyone "
    "who reaches the host can connect to, without TLS or token; use it only on a machine nobody else can reach"
)


class NodeAgentError(RuntimeError):
    """The agent cannot start as configured; the message says what to change."""


@dataclass
class Preflight:
    inventory: Inventory
    nvml: Nvml | None
    slices: list[SliceSpec]
    token: str
    trust: ControllerTrust
    launch: WorkerLaunch
    records: WorkerRecords


def plan_rules(settings: NodeSettings) -> PlanRules:
    return PlanRules(settings.instance_types, settings.slice_plan, settings.slice_plan_by_gpu,
                     settings.cpu_slice_plan, settings.gpu_worker_overhead_mib)


def inventory_and_plan(settings: NodeSettings) -> tuple[Inventory, Nvml | None, list[SliceSpec]]:
    try:
        inventory, nvml = discover(settings.backend)
        return inventory, nvml, plan_slices(inventory, plan_rules(settings))
    except (NoGpu, SlicePlanError) as error:
        raise NodeAgentError(str(error)) from None


def run_preflight(settings: NodeSettings, say: Callable[[str], None]) -> Preflight:
    try:
        token = settings.node_token()
        trust = controller_trust(settings.controller_ca_file, settings.controller_plaintext)
    except ValueError as error:  # no node token, or no way to trust the controller: both say what to set
        raise NodeAgentError(str(error)) from None
    if trust.is_plaintext:
        say(PLAINTEXT_WARNING)
    state_dir = settings.resolved_state_dir()
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)  # before anything inside it: its mode counts
    launch = _worker_launch(settings, say)
    records = WorkerRecords(state_dir / "workers")
    leftovers = records.kill_leftovers()
    if leftovers:
        say(f"killed {len(leftovers)} worker(s) left by a previous run (pids {', '.join(map(str, leftovers))})")
    inventory, nvml, slices = inventory_and_plan(settings)
    say(inventory.describe())
    return Preflight(inventory, nvml, slices, token, trust, launch, records)


def _worker_launch(settings: NodeSettings, say: Callable[[str], None]) -> WorkerLaunch:
    if settings.worker_isolation == "netns":
        reason = namespaces_unavailable_reason()
        if reason is not None:
            raise NodeAgentError(f"cannot isolate workers: {reason}")
    else:
        say(ISOLATION_NONE_WARNING)
    python = str(settings.worker_python or sys.executable)
    if settings.worker_python is None and not tensorflow_version():
        raise NodeAgentError("TensorFlow is not installed for the workers: install eais[cpu] (CPU backend) or "
                             "eais[gpu] (CUDA), or point worker_python at an interpreter that has it")
    try:
        uids, line = worker_uids(settings.worker_uids, python)
    except ValueError as error:
        raise NodeAgentError(str(error)) from None
    say(line)
    log_dir = settings.resolved_state_dir() / "worker-logs"
    log_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    return WorkerLaunch(python, settings.worker_isolation, log_dir, UidPool(uids) if uids else None,
                        start=settings.worker_start)
