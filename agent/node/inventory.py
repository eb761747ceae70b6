"""What this server offers: its GPUs through NVML, or the CPU backend when there is none.

:class:`Nvml` is the small part of NVML the agent uses (names, memory, utilisation, the processes
holding memory), over ``pynvml``; unit tests hand it a fake library module instead. Without a
GPU (no NVML library, no driver, or no device) the CPU backend is chosen and reported as what it
is: ``BACKEND_CPU`` with "CPU backend (no accelerator): <cpu model>", never a GPU.
"""

from __future__ import annotations

import logging
import platform
import threading
import warnings
from dataclasses import dataclass
from types import ModuleType
from typing import Literal

log = logging.getLogger(__name__)
MIB = 1 << 20
CPU_MODEL_PREFIX = "CPU backend (no accelerator)"

Backend = Literal["gpu", "cpu"]


class NoGpu(RuntimeError):
    """The GPU backend was asked for and NVML finds no GPU; the message says why."""


@dataclass(frozen=True)
class Gpu:
    index: int  # NVML device index
    name: str  # e.g. "NVIDIA A10"
    uuid: str  # "GPU-…", what CUDA_VISIBLE_DEVICES accepts regardless of enumeration order
    memory_mib: int


@dataclass(frozen=True)
class Inventory:
    backend: Backend
    accelerator_model: str
    gpus: tuple[Gpu, ...]
    cpu_model: str
    why_cpu: str = ""  # why the CPU backend was chosen, for the status line

    def describe(self) -> str:
        if self.backend == "gpu":
            listed = ", ".join(f"GPU {g.index} {g.name} {g.memory_mib} MiB" for g in self.gpus)
            return f"GPU backend: {listed}"
        return f"{self.accelerator_model} ({self.why_cpu}); slice memory is nominal, CPU memory is not capped"


def _load_pynvml() -> ModuleType:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # pynvml's "use nvidia-ml-py" notice; same module
        import pynvml
    return pynvml


class Nvml:
    """An initialised NVML: GPU facts and per-process memory. Thread-safe."""

    def __init__(self, library: ModuleType) -> None:
        self._nvml = library
        self._lock = threading.Lock()
        library.nvmlInit()

    @classmethod
    def open(cls, library: ModuleType | None = None) -> Nvml:
        """Initialise NVML; raises NoGpu saying why it cannot be used."""
        try:
            library = library or _load_pynvml()
            return cls(library)
        except ImportError as error:
            raise NoGpu(f"pynvml is not installed ({error})") from None
        except Exception as error:  # noqa: BLE001 - NVMLError subclasses are generated per code
            raise NoGpu(f"NVML cannot be initialised: {error}") from None

    def gpus(self) -> tuple[Gpu, ...]:
        with self._lock:
            return tuple(self._gpu(index) for index in range(self._nvml.nvmlDeviceGetCount()))

    def _gpu(self, index: int) -> Gpu:
        handle = self._nvml.nvmlDeviceGetHandleByIndex(index)
        memory = self._nvml.nvmlDeviceGetMemoryInfo(handle)
        return Gpu(index, _text(self._nvml.nvmlDeviceGetName(handle)), _text(self._nvml.nvmlDeviceGetUUID(handle)),
                   memory.total // MIB)

    def process_memory_mib(self, index: int) -> dict[int, int]:
        """pid -> MiB of GPU memory, for every compute process on GPU ``index``."""
        with self._lock:
            handle = self._nvml.nvmlDeviceGetHandleByIndex(index)
            processes = self._nvml.nvmlDeviceGetComputeRunningProcesses(handle)
        # usedGpuMemory is None when the driver cannot tell (e.g. without permission)
        return {p.pid: (p.usedGpuMemory or 0) // MIB for p in processes}

    def utilisation_percent(self, index: int, pid: int) -> float:
        """Share of GPU ``index``'s compute that ``pid`` used recently; the whole GPU's when NVML cannot split it."""
        with self._lock:
            handle = self._nvml.nvmlDeviceGetHandleByIndex(index)
            try:
                samples = self._nvml.nvmlDeviceGetProcessUtilization(handle, 0)
            except Exception:  # noqa: BLE001 - not supported on every GPU/driver, or no sample yet
                samples = None
            if samples:
                return float(max((s.smUtil for s in samples if s.pid == pid), default=0))
            return float(self._nvml.nvmlDeviceGetUtilizationRates(handle).gpu)

    def close(self) -> None:
        try:
            self._nvml.nvmlShutdown()
        except Exception:  # noqa: BLE001 - shutting down; nothing to do about it
            pass


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model", "cpu model"):
                    return " ".join(value.split())
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def accelerator_model(gpus: tuple[Gpu, ...]) -> str:
    names = sorted({g.name for g in gpus})
    return " + ".join(names)[:128]


def discover(backend: Literal["auto", "gpu", "cpu"], nvml: Nvml | None = None) -> tuple[Inventory, Nvml | None]:
    """The inventory for the asked backend, and the open NVML when GPUs serve; NoGpu when gpu is impossible."""
    model = cpu_model()
    if backend == "cpu":
        return Inventory("cpu", f"{CPU_MODEL_PREFIX}: {model}", (), model, "chosen with --backend cpu"), None
    try:
        nvml = nvml or Nvml.open()
        gpus = nvml.gpus()
    except NoGpu as error:
        reason = str(error)
    else:
        if gpus:
            return Inventory("gpu", accelerator_model(gpus), gpus, model), nvml
        nvml.close()
        reason = "NVML finds no GPU"
    if backend == "gpu":
        raise NoGpu(f"--backend gpu, but {reason}; install the NVIDIA driver, or run with --backend cpu")
    return Inventory("cpu", f"{CPU_MODEL_PREFIX}: {model}", (), model, f"no GPU: {reason}"), None
