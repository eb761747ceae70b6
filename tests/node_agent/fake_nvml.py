"""A stand-in for the ``pynvml`` module, for unit tests of inventory, slicing and usage only.

It answers the calls :class:`agent.node.inventory.Nvml` makes, for GPUs the test describes; the
running agent always uses the real pynvml.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace

MIB = 1 << 20


class NVMLError(Exception):
    pass


@dataclass
class FakeGpu:
    name: str = "NVIDIA A10"
    memory_mib: int = 24 * 1024
    uuid: str = "GPU-0a10-fake"
    processes: dict[int, int] = field(default_factory=dict)  # pid -> MiB
    process_sm_util: dict[int, int] | None = None  # None: per-process utilisation not supported
    gpu_util: int = 0


class FakeNvml:
    NVMLError = NVMLError

    def __init__(self, *gpus: FakeGpu) -> None:
        self.gpus = list(gpus)
        self.initialised = False

    def nvmlInit(self) -> None:  # noqa: N802 - NVML's names
        self.initialised = True

    def nvmlShutdown(self) -> None:  # noqa: N802
        self.initialised = False

    def nvmlDeviceGetCount(self) -> int:  # noqa: N802
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeGpu:  # noqa: N802
        return self.gpus[index]

    def nvmlDeviceGetName(self, gpu: FakeGpu) -> bytes:  # noqa: N802 - older pynvml returns bytes
        return gpu.name.encode()

    def nvmlDeviceGetUUID(self, gpu: FakeGpu) -> str:  # noqa: N802
        return gpu.uuid

    def nvmlDeviceGetMemoryInfo(self, gpu: FakeGpu) -> SimpleNamespace:  # noqa: N802
        used = sum(gpu.processes.values()) * MIB
        return SimpleNamespace(total=gpu.memory_mib * MIB, used=used, free=gpu.memory_mib * MIB - used)

    def nvmlDeviceGetComputeRunningProcesses(self, gpu: FakeGpu) -> list[SimpleNamespace]:  # noqa: N802
        return [SimpleNamespace(pid=pid, usedGpuMemory=mib * MIB) for pid, mib in gpu.processes.items()]

    def nvmlDeviceGetProcessUtilization(self, gpu: FakeGpu, since: int) -> list[SimpleNamespace]:  # noqa: N802
        if gpu.process_sm_util is None:
            raise NVMLError("Not Supported")
        return [SimpleNamespace(pid=pid, smUtil=util) for pid, util in gpu.process_sm_util.items()]

    def nvmlDeviceGetUtilizationRates(self, gpu: FakeGpu) -> SimpleNamespace:  # noqa: N802
        return SimpleNamespace(gpu=gpu.gpu_util, memory=0)
