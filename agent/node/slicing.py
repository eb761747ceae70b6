"""Carving accelerators into slices, one instance type each, as a fixed partition.

The controller hands out every slice on its own, so the slices of one GPU must fit in it all at
once: their memory caps plus each worker's CUDA overhead sum to at most the GPU's memory. A
plan is either configured (a list of instance types per GPU) or the greedy default: the largest
type first, as many as fit, then the next. The CPU backend gets its configured plan; its memory
figures are nominal (TensorFlow on the CPU is not capped).

Local ids are stable across restarts as long as the plan is: ``gpu0-xlarge-0``, ``cpu-2xlarge-0``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from agent.node.inventory import Gpu, Inventory

MIB_PER_GIB = 1024
LOCAL_ID_SHAPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}")  # the controller's rule for SliceOffer.local_id


class SlicePlanError(ValueError):
    """A configured plan names an unknown type or does not fit its GPU; the message says which."""


@dataclass(frozen=True)
class SliceSpec:
    local_id: str
    instance_type: str
    gpu_index: int
    memory_mib: int
    gpu_uuid: str = ""  # empty on the CPU backend


@dataclass(frozen=True)
class PlanRules:
    """What a plan is made from: the type table (GiB) and the configured plans."""

    instance_types_gib: Mapping[str, int]
    slice_plan: Sequence[str] | None = None
    slice_plan_by_gpu: Mapping[int, Sequence[str]] | None = None
    cpu_slice_plan: Sequence[str] = ()
    gpu_worker_overhead_mib: int = 0


def plan_slices(inventory: Inventory, rules: PlanRules) -> list[SliceSpec]:
    """Every slice this node offers, in a stable order."""
    if inventory.backend == "cpu":
        names = _known_types(list(rules.cpu_slice_plan), rules.instance_types_gib, "cpu_slice_plan")
        return _specs("cpu", 0, "", names, rules.instance_types_gib)
    slices: list[SliceSpec] = []
    for gpu in inventory.gpus:
        names = gpu_plan(gpu, rules)
        slices.extend(_specs(f"gpu{gpu.index}", gpu.index, gpu.uuid, names, rules.instance_types_gib))
    return slices


def gpu_plan(gpu: Gpu, rules: PlanRules) -> list[str]:
    """The instance types GPU ``gpu`` is carved into; SlicePlanError when a configured plan does not fit."""
    configured = (rules.slice_plan_by_gpu or {}).get(gpu.index, rules.slice_plan)
    if configured is None:
        return greedy_plan(gpu.memory_mib, rules.instance_types_gib, rules.gpu_worker_overhead_mib)
    setting = f"slice_plan_by_gpu[{gpu.index}]" if gpu.index in (rules.slice_plan_by_gpu or {}) else "slice_plan"
    names = _known_types(list(configured), rules.instance_types_gib, setting)
    needed = sum(rules.instance_types_gib[n] * MIB_PER_GIB + rules.gpu_worker_overhead_mib for n in names)
    if needed > gpu.memory_mib:
        raise SlicePlanError(
            f"{setting} needs {needed} MiB on GPU {gpu.index} ({gpu.name}, {gpu.memory_mib} MiB): "
            f"{len(names)} slices plus {rules.gpu_worker_overhead_mib} MiB worker overhead each; "
            "the controller hands slices out independently, so they must all fit at once"
        )
    return names


def greedy_plan(capacity_mib: int, types_gib: Mapping[str, int], overhead_mib: int) -> list[str]:
    """Largest type first, as many as fit, then the next smaller; ties by name for stability."""
    chosen: list[str] = []
    left = capacity_mib
    for name, gib in sorted(types_gib.items(), key=lambda item: (-item[1], item[0])):
        cost = gib * MIB_PER_GIB + overhead_mib
        while gib > 0 and cost <= left:
            chosen.append(name)
            left -= cost
    return chosen


def _known_types(names: list[str], types_gib: Mapping[str, int], setting: str) -> list[str]:
    unknown = sorted({n for n in names if n not in types_gib})
    if unknown:
        raise SlicePlanError(f"{setting} names unknown instance types {unknown}; known: {sorted(types_gib)}")
    return names


def _specs(prefix: str, gpu_index: int, gpu_uuid: str, names: list[str], types_gib: Mapping[str, int]) -> list[SliceSpec]:
    counters: Counter[str] = Counter()
    specs = []
    for name in names:
        short = name.rsplit(".", 1)[-1]
        local_id = f"{prefix}-{short}-{counters[short]}"
        counters[short] += 1
        if not LOCAL_ID_SHAPE.fullmatch(local_id):
            raise SlicePlanError(f"instance type {name!r} makes the slice id {local_id!r}, which the controller refuses "
                                 "(letters, digits, '.', '_', '-'; at most 32 characters)")
        specs.append(SliceSpec(local_id, name, gpu_index, types_gib[name] * MIB_PER_GIB, gpu_uuid))
    return specs
