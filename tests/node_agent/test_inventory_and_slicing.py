"""Inventory (NVML or the CPU backend), slice plans, and usage figures, with a fake NVML library."""

from __future__ import annotations

import os

import pytest

from agent.node.inventory import CPU_MODEL_PREFIX, NoGpu, Nvml, discover
from agent.node.settings import DEFAULT_CPU_SLICE_PLAN, DEFAULT_INSTANCE_TYPES_GIB
from agent.node.slicing import PlanRules, SlicePlanError, plan_slices
from agent.node.worker.observer import WorkerObserver
from tests.node_agent.fake_nvml import FakeGpu, FakeNvml

TYPES = DEFAULT_INSTANCE_TYPES_GIB
XLARGE, X2LARGE, LARGE, MEDIUM = "eais.ei-a6.xlarge", "eais.ei-a6.2xlarge", "eais.ei-a6.large", "eais.ei-a6.medium"


def a10_inventory(*gpus: FakeGpu):  # noqa: ANN201
    inventory, _ = discover("auto", Nvml(FakeNvml(*(gpus or (FakeGpu(),)))))
    return inventory


def test_auto_with_an_nvml_gpu_runs_the_gpu_backend_under_the_model_nvml_reports() -> None:
    inventory = a10_inventory(FakeGpu(), FakeGpu(uuid="GPU-second"))

    assert inventory.backend == "gpu"
    assert inventory.accelerator_model == "NVIDIA A10"
    assert [(g.index, g.memory_mib, g.uuid) for g in inventory.gpus] == [(0, 24576, "GPU-0a10-fake"), (1, 24576, "GPU-second")]


def test_auto_without_a_gpu_runs_the_cpu_backend_and_says_it_is_no_accelerator() -> None:
    inventory, nvml = discover("auto", Nvml(FakeNvml()))

    assert (inventory.backend, inventory.gpus, nvml) == ("cpu", (), None)
    assert inventory.accelerator_model.startswith(f"{CPU_MODEL_PREFIX}: ")
    assert inventory.why_cpu == "no GPU: NVML finds no GPU"
    assert "CPU memory is not capped" in inventory.describe()


def test_auto_on_this_machine_without_an_nvml_library_falls_back_to_cpu() -> None:
    inventory, _ = discover("auto")

    assert inventory.backend == "cpu"
    assert "NVML" in inventory.why_cpu


def test_the_gpu_backend_without_a_gpu_is_a_clear_error() -> None:
    with pytest.raises(NoGpu, match="--backend gpu, but NVML finds no GPU.*--backend cpu"):
        discover("gpu", Nvml(FakeNvml()))


def test_the_cpu_backend_is_chosen_explicitly_even_with_a_gpu_present() -> None:
    inventory, nvml = discover("cpu", Nvml(FakeNvml(FakeGpu())))

    assert (inventory.backend, nvml, inventory.why_cpu) == ("cpu", None, "chosen with --backend cpu")


def test_a_24_gib_a10_is_carved_largest_type_first_leaving_room_for_each_workers_cuda_context() -> None:
    with_overhead = plan_slices(a10_inventory(), PlanRules(TYPES, gpu_worker_overhead_mib=512))
    without = plan_slices(a10_inventory(), PlanRules(TYPES, gpu_worker_overhead_mib=0))

    assert [(s.local_id, s.memory_mib) for s in with_overhead] == [
        ("gpu0-2xlarge-0", 16384), ("gpu0-large-0", 4096), ("gpu0-medium-0", 2048)]
    assert [s.local_id for s in without] == ["gpu0-2xlarge-0", "gpu0-xlarge-0"]
    assert sum(s.memory_mib + 512 for s in with_overhead) <= 24576


def test_a_configured_plan_applies_to_every_gpu_unless_one_has_its_own() -> None:
    rules = PlanRules(TYPES, slice_plan=[X2LARGE, XLARGE], slice_plan_by_gpu={1: [XLARGE, XLARGE, LARGE]})

    slices = plan_slices(a10_inventory(FakeGpu(), FakeGpu(uuid="GPU-1")), rules)

    assert [(s.local_id, s.instance_type, s.gpu_index, s.gpu_uuid) for s in slices] == [
        ("gpu0-2xlarge-0", X2LARGE, 0, "GPU-0a10-fake"), ("gpu0-xlarge-0", XLARGE, 0, "GPU-0a10-fake"),
        ("gpu1-xlarge-0", XLARGE, 1, "GPU-1"), ("gpu1-xlarge-1", XLARGE, 1, "GPU-1"), ("gpu1-large-0", LARGE, 1, "GPU-1"),
    ]


def test_a_plan_that_overcommits_its_gpu_is_refused_with_the_numbers() -> None:
    rules = PlanRules(TYPES, slice_plan=[X2LARGE, XLARGE], gpu_worker_overhead_mib=512)

    with pytest.raises(SlicePlanError, match=r"needs 25600 MiB on GPU 0 \(NVIDIA A10, 24576 MiB\)"):
        plan_slices(a10_inventory(), rules)


def test_a_plan_naming_an_unknown_type_is_refused() -> None:
    with pytest.raises(SlicePlanError, match="unknown instance types \\['eais.ei-a6.huge'\\]"):
        plan_slices(a10_inventory(), PlanRules(TYPES, slice_plan=["eais.ei-a6.huge"]))


def test_the_cpu_backend_gets_its_configured_plan_with_nominal_memory() -> None:
    inventory, _ = discover("cpu")

    slices = plan_slices(inventory, PlanRules(TYPES, cpu_slice_plan=DEFAULT_CPU_SLICE_PLAN))

    assert [(s.local_id, s.memory_mib, s.gpu_index) for s in slices] == [
        ("cpu-xlarge-0", 8192, 0), ("cpu-xlarge-1", 8192, 0), ("cpu-2xlarge-0", 16384, 0)]


def test_gpu_usage_comes_from_nvml_per_process_and_cpu_usage_from_the_process() -> None:
    me = os.getpid()
    gpu = FakeGpu(processes={me: 2048, 4242: 1000}, process_sm_util={me: 37, 4242: 90})
    observer = WorkerObserver(Nvml(FakeNvml(gpu)))

    usage = observer.usage(me, 0, 8192)

    assert (usage.memory_used_mib, usage.gpu_memory_usage_percent, usage.gpu_core_usage_percent) == (2048, 25.0, 37.0)
    assert 0 < usage.memory_usage_percent < 100 and 0 <= usage.cpu_usage_percent <= 100


def test_without_per_process_samples_the_gpu_figure_is_the_whole_gpus() -> None:
    gpu = FakeGpu(processes={os.getpid(): 100}, gpu_util=55)

    assert WorkerObserver(Nvml(FakeNvml(gpu))).usage(os.getpid(), 0, 8192).gpu_core_usage_percent == 55.0


def test_the_cpu_backend_reports_no_accelerator_figures() -> None:
    usage = WorkerObserver(None).usage(os.getpid(), 0, 8192)

    assert (usage.gpu_core_usage_percent, usage.gpu_memory_usage_percent, usage.memory_used_mib) == (0, 0, 0)
    assert usage.memory_usage_percent > 0


def test_gpu_memory_counts_as_free_only_once_the_worker_is_reaped_and_nvml_no_longer_lists_it() -> None:
    gpu = FakeGpu(processes={4242: 3000})
    observer = WorkerObserver(Nvml(FakeNvml(gpu)))

    assert observer.holds_memory(4242, 0, reaped=False)
    assert observer.holds_memory(4242, 0, reaped=True)
    gpu.processes.clear()
    assert not observer.holds_memory(4242, 0, reaped=True)
