"""Looking at a worker from outside: does it still hold memory, and how much does it use.

GPU backend: NVML's compute processes (memory per pid, utilisation). Both backends: psutil for
the worker process's CPU share (percent of all the node's CPUs) and resident memory (percent of
the node's memory). On the CPU backend the accelerator figures are 0: there is no accelerator.
"""

from __future__ import annotations

import logging
import threading

import psutil

from agent.node.inventory import Nvml
from protos.eais.v1 import agents_pb2 as pb

log = logging.getLogger(__name__)


class WorkerObserver:
    def __init__(self, nvml: Nvml | None) -> None:
        self._nvml = nvml
        self._processes: dict[int, psutil.Process] = {}  # kept: cpu_percent measures since the last call
        self._lock = threading.Lock()
        self._cpus = psutil.cpu_count() or 1

    def holds_memory(self, pid: int, gpu_index: int, *, reaped: bool) -> bool:
        """True until the (killed) worker is reaped and, on a GPU, NVML no longer lists it."""
        if not reaped:
            return True
        if self._nvml is not None:
            try:
                if pid in self._nvml.process_memory_mib(gpu_index):
                    return True
            except Exception as error:  # noqa: BLE001 - NVML errors are generated classes
                log.warning("NVML cannot list the processes of GPU %s: %s", gpu_index, error)
                return True  # not confirmed free is not free
        return False

    def usage(self, pid: int, gpu_index: int, memory_cap_mib: int) -> pb.SliceUsage:
        usage = pb.SliceUsage()
        process = self._process(pid)
        if process is not None:
            try:
                usage.cpu_usage_percent = min(100.0, process.cpu_percent(None) / self._cpus)
                usage.memory_usage_percent = min(100.0, process.memory_percent())
            except psutil.Error:
                pass
        if self._nvml is not None:
            self._add_gpu_usage(usage, pid, gpu_index, memory_cap_mib)
        return usage

    def forget(self, pid: int) -> None:
        with self._lock:
            self._processes.pop(pid, None)

    def _add_gpu_usage(self, usage: pb.SliceUsage, pid: int, gpu_index: int, memory_cap_mib: int) -> None:
        try:
            used_mib = self._nvml.process_memory_mib(gpu_index).get(pid, 0)
            usage.gpu_core_usage_percent = self._nvml.utilisation_percent(gpu_index, pid)
        except Exception as error:  # noqa: BLE001
            log.warning("NVML usage of GPU %s unavailable: %s", gpu_index, error)
            return
        usage.memory_used_mib = used_mib
        usage.gpu_memory_usage_percent = min(100.0, 100.0 * used_mib / memory_cap_mib) if memory_cap_mib else 0.0

    def _process(self, pid: int) -> psutil.Process | None:
        with self._lock:
            process = self._processes.get(pid)
            if process is None:
                try:
                    process = self._processes[pid] = psutil.Process(pid)
                except psutil.Error:
                    return None
            return process
