"""Running a checked request on whichever device serves, batching it when asked, never losing it.

A request runs on the serving device's copy of its version. When a copy on the accelerator fails
the way a lost accelerator fails (or its connection is no longer the current one), the placement
is told and the request runs again on the version's CPU copy under ``--fallback cpu``, so a detach
under load costs latency, not requests. Under ``--fallback refuse`` it gets UNAVAILABLE.
Errors of the request itself (a bad shape deep in the graph) are answered as TF Serving would.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from remote_tf.serving.calls import ErrorCode, PredictCall, ServingError
from remote_tf.serving.metrics import ServeMetrics
from remote_tf.serving.placement import Placement
from remote_tf.serving.registry import ModelRegistry, ServedVersion
from remote_tf.serving.servable import PlacedModel, SignatureInfo, check_inputs, check_output_filter, op_error_to_serving

# A remote call failing with these means the accelerator (or the way to it) went away.
LOST_ACCELERATOR_ERRORS = (tf.errors.UnavailableError, tf.errors.DeadlineExceededError)
# These from an accelerator copy may also be the connection's end (a reset context, cancelled
# calls); the request is re-run where serving is now, and a genuine model error repeats there.
MAYBE_CONNECTION_ERRORS = (tf.errors.CancelledError, tf.errors.AbortedError, tf.errors.InternalError,
                           tf.errors.NotFoundError, tf.errors.UnknownError, tf.errors.FailedPreconditionError)

BatcherFactory = Callable[[ServedVersion, SignatureInfo, Callable], object]


@dataclass(frozen=True)
class PredictResult:
    version: ServedVersion
    signature: SignatureInfo
    outputs: dict[str, np.ndarray]


class Executor:
    def __init__(self, registry: ModelRegistry, placement: Placement, metrics: ServeMetrics,
                 make_batcher: BatcherFactory | None = None) -> None:
        self.registry, self.placement, self.metrics = registry, placement, metrics
        self._make_batcher = make_batcher
        self._batchers_lock = threading.Lock()

    def predict(self, call: PredictCall) -> PredictResult:
        version = self.registry.resolve(call.model, call.version, call.version_label)
        return self.predict_on(version, signature_of(version, call.signature_name), call.inputs, call.output_filter)

    def predict_on(self, version: ServedVersion, signature: SignatureInfo, inputs: dict[str, np.ndarray],
                   output_filter: tuple[str, ...] = ()) -> PredictResult:
        """Predict on a version and signature already resolved (REST needs them to read its JSON)."""
        check_inputs(version.model, signature, inputs)
        outputs = check_output_filter(signature, output_filter)
        return PredictResult(version, signature, self.run(version, signature, inputs, outputs))

    def run(self, version: ServedVersion, signature: SignatureInfo, inputs: dict[str, np.ndarray],
            outputs: tuple[str, ...]) -> dict[str, np.ndarray]:
        """Run checked inputs; through the signature's batcher when batching is on and it can batch."""
        batcher = self._batcher(version, signature, inputs)
        if batcher is None:
            return self.run_anywhere(version, signature.name, inputs, outputs)
        every_output = batcher.submit(inputs)
        return {key: every_output[key] for key in outputs}

    def run_anywhere(self, version: ServedVersion, signature: str, inputs: dict[str, np.ndarray],
                     outputs: tuple[str, ...]) -> dict[str, np.ndarray]:
        """Run on the serving device's copy; if the accelerator fails under it, on the CPU copy instead."""
        where = f"model {version.model!r} version {version.version} signature {signature!r}"
        copy = self._serving_copy(version)
        try:
            return copy.run(signature, inputs, outputs)
        except tf.errors.OpError as error:
            if copy.target.kind != "accelerator":
                raise op_error_to_serving(error, where) from error
            if isinstance(error, LOST_ACCELERATOR_ERRORS):
                self.placement.report_lost(copy.target, error)
            elif not isinstance(error, MAYBE_CONNECTION_ERRORS) and self._still_serving(copy):
                raise op_error_to_serving(error, where) from error
            # Straight to the CPU copy: the placement may not have seen the loss yet (it polls the
            # agent), so asking it again could pick the failing accelerator copy once more.
            cpu = version.copies.get("cpu") if self.placement.cpu_allowed else None
            if cpu is None:
                raise ServingError(ErrorCode.UNAVAILABLE, f"{where}: the accelerator went away during the request "
                                                          f"and --fallback=refuse") from error
        self.metrics.fallbacks.inc()
        try:
            return cpu.run(signature, inputs, outputs)
        except tf.errors.OpError as error:  # the request's own error, repeated on the CPU
            raise op_error_to_serving(error, where) from error

    def _serving_copy(self, version: ServedVersion) -> PlacedModel:
        target = self.placement.target()
        if target is None:
            raise ServingError(ErrorCode.UNAVAILABLE, self.placement.unavailable_reason())
        copy = version.copy_on(target)
        if copy is None and self.placement.cpu_allowed:
            copy = version.copies.get("cpu")
        if copy is None:
            raise ServingError(ErrorCode.UNAVAILABLE, f"model {version.model!r} version {version.version} is not "
                                                      f"loaded on {target.describe()} yet")
        return copy

    def _still_serving(self, copy: PlacedModel) -> bool:
        target = self.placement.target()
        return target is not None and target.kind == copy.target.kind and target.generation == copy.target.generation

    def _batcher(self, version: ServedVersion, signature: SignatureInfo, inputs: dict[str, np.ndarray]) -> object | None:
        if self._make_batcher is None or not batchable(signature, inputs):
            return None
        with self._batchers_lock:
            batchers = version.extras.setdefault("batchers", {})
            batcher = batchers.get(signature.name)
            if batcher is None:
                every_output = tuple(signature.outputs)

                def run_batch(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
                    return self.run_anywhere(version, signature.name, batch, every_output)

                batcher = batchers[signature.name] = self._make_batcher(version, signature, run_batch)
        return batcher


def signature_of(version: ServedVersion, name: str) -> SignatureInfo:
    signature = version.signatures.get(name or "serving_default")
    if signature is None:
        raise ServingError(ErrorCode.INVALID_ARGUMENT,
                           f"Serving signature key {name!r} not found in model {version.model!r} version "
                           f"{version.version}; its signatures: {', '.join(sorted(version.signatures))}")
    return signature


def batchable(signature: SignatureInfo, inputs: dict[str, np.ndarray]) -> bool:
    """Requests can share a batch when every input has a free first dimension (the batch)."""
    return bool(inputs) and all(
        value.ndim >= 1 and (info.shape is None or (len(info.shape) >= 1 and info.shape[0] is None))
        for info, value in ((signature.inputs[key], value) for key, value in inputs.items()))
