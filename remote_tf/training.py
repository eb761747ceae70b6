"""Keras ``fit`` on the remote accelerator, checkpointed on this VM's disk, resumed after a detach.

::

    def build_model() -> keras.Model:          # built and compiled; called again after each re-attach
        model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1)])
        model.compile(optimizer="adam", loss="mse")
        return model

    result = remote_tf.fit_resumable(build_model, x, y, epochs=40, checkpoint_dir="/data/ckpt")
    result.model.predict(x)                     # the trained model, on the accelerator

What it does: connects (``remote_tf.connect()``) unless this process is connected, builds the model
so its variables live on the accelerator, restores the newest checkpoint in ``checkpoint_dir`` if
there is one, and fits from that epoch, saving a checkpoint after every epoch. When the
accelerator goes away mid-fit (``tf.errors.UnavailableError``, i.e. :class:`AcceleratorLost`, or
any other error while the VM agent no longer serves the attachment it served before) it says so,
waits up to ``reattach_timeout_s`` until the agent serves an accelerator again (the same instance,
or another one attached to this VM), reconnects, rebuilds the model on the new device, restores
the last checkpoint and continues. A new run of the same program with the same
``checkpoint_dir`` resumes as well. What is lost is the work of the epoch that was interrupted.

Facts this module is built on (TensorFlow 2.21, Keras 3):

- The checkpoint files are written and read by this process, on this VM
  (``CheckpointOptions(experimental_io_device="/job:localhost")``). Without that option the save
  ops run on the worker, which writes to the node's disk (relative paths in its own scratch
  directory), where the next instance cannot read them.
- Every variable in the checkpoint lives on the accelerator's task, the epoch counter too. With
  variables on two tasks (this process and the worker) TensorFlow saves through one multi-task
  ``tf.function`` whose worker part sends its tensors to this process, a connection the worker
  cannot open (the node cannot reach the VM; the save fails with UnavailableError). With one task
  the save runs eagerly: this process fetches the values and writes them.
- ``tf.train.Checkpoint(model=..., optimizer=...)`` tracks a Keras 3 model and its optimizer:
  trainable weights are stored under the optimizer's path, the rest (e.g. BatchNormalization's
  moving statistics) under the model's, slots and the iteration count under the optimizer's.
  Restoring then continues bit for bit where the saved run was. The optimizer is built before the
  restore, so that its slots exist and take their values at once (otherwise they are restored
  later, when ``fit`` creates them, and the restore cannot be checked for completeness); the
  restore must then consume every saved value.
- A model without variables yet (no input shape) would match any checkpoint vacuously, so
  ``build_model`` must return a built model.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import keras
import tensorflow as tf

from remote_tf.connection import LOCAL_JOB, RemoteConnection, connect, current_connection, reconnect
from remote_tf.endpoint import check_endpoint
from remote_tf.errors import AcceleratorLost, AcceleratorUnavailable, RemoteTFError
from remote_tf.tf_errors import translate_errors

LOCAL_IO = tf.train.CheckpointOptions(experimental_io_device=f"/job:{LOCAL_JOB}")
CHECKPOINT_PREFIX = "ckpt"  # files ckpt-N.index and ckpt-N.data-*, N = epochs done
DEFAULT_REATTACH_TIMEOUT_S = 600.0
POLL_INTERVAL_S = 1.0
MAX_FRUITLESS_RETRIES = 2
STATUS_TIMEOUT_S = 2.0  # asking the agent whether an error means the accelerator is gone


@dataclass(frozen=True)
class TrainingEvent:
    """What ``on_event`` receives; ``str(event)`` is a line for people, the fields are for programs.

    ``kind`` is ``start`` (model built and restored), ``epoch`` (an epoch done and saved), ``lost``
    (the accelerator went away), ``waiting`` (what the agent says changed while waiting), ``resume``
    (reconnected; the model is rebuilt and restored) or ``done``. ``epoch`` is the number of epochs
    the model has completed at that moment (for ``lost``: the epoch of the last checkpoint).
    """

    kind: str
    epoch: int
    message: str
    device: str | None = None
    logs: dict[str, float] = field(default_factory=dict)
    checkpoint: str | None = None

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class Resume:
    """One recovery: the accelerator was lost after ``after_epoch`` and training went on there."""

    after_epoch: int
    waited_s: float
    device: str
    at_once: bool = False  # the endpoint served again on the first try (no detach seen)


@dataclass
class FitResult:
    model: keras.Model  # the trained model, its variables on the accelerator of the last attempt
    epochs_done: int
    initial_epoch: int  # restored from checkpoint_dir when the call started; 0 for a fresh run
    resumes: list[Resume]
    history: dict[str, list[float]]  # per epoch trained by this call, in order (like History.history)
    checkpoint_path: str | None  # the newest checkpoint (prefix of its files)

    @property
    def final_loss(self) -> float | None:
        losses = self.history.get("loss")
        return losses[-1] if losses else None


def fit_resumable(build_model: Callable[[], keras.Model], x: Any, y: Any = None, *, epochs: int,
                  checkpoint_dir: str | os.PathLike[str], batch_size: int | None = None, endpoint: str | None = None,
                  reattach_timeout_s: float = DEFAULT_REATTACH_TIMEOUT_S, max_to_keep: int = 3,
                  on_event: Callable[[TrainingEvent], Any] = print, **fit_kwargs: Any) -> FitResult:
    """``model.fit(x, y, epochs=...)`` on the accelerator, checkpointed here, resumed after a re-attach.

    ``fit_kwargs`` go to ``model.fit`` (``verbose`` defaults to 0: ``on_event`` reports each epoch).
    Raises :class:`AcceleratorUnavailable` when no accelerator serves at the start, or none comes
    back within ``reattach_timeout_s`` after a loss (the checkpoint stays: run again to resume);
    ``ValueError`` when the model or the checkpoint do not fit together.
    """
    if "initial_epoch" in fit_kwargs or "epochs" in fit_kwargs:
        raise ValueError("fit_resumable takes the start epoch from the checkpoint; pass only epochs=")
    fit_kwargs.setdefault("verbose", 0)
    user_callbacks = list(fit_kwargs.pop("callbacks", None) or [])
    connection = current_connection() or connect(endpoint)
    run = _Run(epochs, os.fspath(checkpoint_dir), max_to_keep, on_event)
    resumes: list[Resume] = []
    fruitless = 0  # losses in a row that no wait preceded and no finished epoch followed
    while True:
        try:
            with translate_errors(connection.endpoint):
                model = run.build_and_restore(build_model, resumed=bool(resumes))
                if run.saved_epoch < epochs:
                    model.fit(x, y, batch_size=batch_size, epochs=epochs, initial_epoch=run.saved_epoch,
                              callbacks=[_SaveEachEpoch(run), *user_callbacks], **fit_kwargs)
            break
        except Exception as error:  # re-raised below unless the accelerator is gone
            lost = _as_lost(error, connection)
            if lost is None:
                raise
        fruitless = fruitless + 1 if run.saved_epoch == run.attempt_epoch and resumes and resumes[-1].at_once else 0
        if fruitless >= MAX_FRUITLESS_RETRIES:
            # Not a detach: the endpoint keeps serving and keeps failing the same work.
            raise AcceleratorLost(f"{lost.message} (failed {fruitless + 1} times in a row right after reconnecting, "
                                  f"with no epoch done in between; training stops, the checkpoint {run.latest()} "
                                  f"stays)", endpoint=lost.endpoint) from lost
        connection, waited, at_once = run.wait_for_accelerator(connection.endpoint, lost, reattach_timeout_s)
        resumes.append(Resume(run.saved_epoch, waited, connection.device, at_once))
    run.emit("done", run.saved_epoch, f"done: {run.saved_epoch} epochs, checkpoint {run.latest()}")
    return FitResult(model, run.saved_epoch, run.initial_epoch, resumes, run.history(), run.latest())


def restore_checkpoint(model: keras.Model, checkpoint_dir: str | os.PathLike[str]) -> int:
    """Load the newest checkpoint of ``checkpoint_dir`` (read on this VM) into ``model``; its epoch, 0 if none.

    ``model`` must be built and compiled like the one that was trained (``build_model()``); its
    variables keep their device, so build it after ``connect()`` to restore onto the accelerator.
    """
    epoch, _, _ = _restore(model, os.fspath(checkpoint_dir))
    return epoch


class _Run:
    """The state of one ``fit_resumable`` call that outlives an accelerator: epochs saved, their logs."""

    def __init__(self, epochs: int, directory: str, max_to_keep: int,
                 on_event: Callable[[TrainingEvent], Any]) -> None:
        self.epochs, self.directory, self.max_to_keep, self.on_event = epochs, directory, max_to_keep, on_event
        self.initial_epoch: int | None = None
        self.attempt_epoch = 0  # where the current attempt started
        self.saved_epoch = 0
        self.logs: dict[int, dict[str, float]] = {}
        self.manager: tf.train.CheckpointManager | None = None
        self.epoch_variable: tf.Variable | None = None

    def build_and_restore(self, build_model: Callable[[], keras.Model], *, resumed: bool) -> keras.Model:
        model = build_model()
        self.saved_epoch, self.manager, self.epoch_variable = _restore(model, self.directory, self.max_to_keep)
        self.attempt_epoch = self.saved_epoch
        if self.initial_epoch is None:
            self.initial_epoch = self.saved_epoch
        device, latest = _device_of(model), self.manager.latest_checkpoint
        source = f"restored {latest}" if latest else f"no checkpoint in {self.directory} yet"
        self.emit("resume" if resumed else "start", self.saved_epoch,
                  f"{'resuming' if resumed else 'training'} on {device} from epoch {self.saved_epoch} of "
                  f"{self.epochs} ({source})", device=device, checkpoint=latest)
        return model

    def saved(self, epoch: int, logs: dict[str, float]) -> None:
        assert self.manager is not None and self.epoch_variable is not None
        self.epoch_variable.assign(epoch)
        path = self.manager.save(checkpoint_number=epoch, options=LOCAL_IO)
        self.saved_epoch, self.logs[epoch] = epoch, logs
        shown = ", ".join(f"{name} {value:.4g}" for name, value in logs.items())
        self.emit("epoch", epoch, f"epoch {epoch}/{self.epochs}: {shown} (saved {path})", logs=logs, checkpoint=path)

    def wait_for_accelerator(self, endpoint: str, lost: AcceleratorLost,
                             timeout_s: float) -> tuple[RemoteConnection, float, bool]:
        """Reconnect once the agent serves an accelerator again; AcceleratorUnavailable after ``timeout_s``.

        Returns the connection, the seconds waited, and whether it served on the first try.
        """
        started, last_reason = time.monotonic(), None
        while True:
            try:
                connection = reconnect(endpoint)
            except AcceleratorUnavailable as unavailable:
                waited = time.monotonic() - started
                if last_reason is None:
                    self.emit("lost", self.saved_epoch, f"accelerator lost after epoch {self.saved_epoch}: "
                              f"{unavailable.message}; waiting up to {timeout_s:.0f} s for an accelerator to be "
                              f"attached to this VM")
                elif unavailable.message != last_reason:
                    self.emit("waiting", self.saved_epoch, f"still waiting ({waited:.0f} s): {unavailable.message}")
                last_reason = unavailable.message
                if waited >= timeout_s:
                    raise AcceleratorUnavailable(
                        f"no accelerator came back within {timeout_s:.0f} s ({unavailable.message}); training "
                        f"stopped after epoch {self.saved_epoch}: attach one and run again with the same "
                        f"checkpoint_dir to resume from {self.latest() or 'the start'}", endpoint=endpoint) from lost
                time.sleep(POLL_INTERVAL_S)
                continue
            if last_reason is None:  # the agent served again at once: say what TensorFlow reported
                cause = lost.__cause__
                reason = f"{type(cause).__name__}: {cause.message.strip().splitlines()[0]}" \
                    if isinstance(cause, tf.errors.OpError) and cause.message else lost.message
                self.emit("lost", self.saved_epoch, f"accelerator lost after epoch {self.saved_epoch} ({reason}); "
                          f"an accelerator answered again at once")
            return connection, time.monotonic() - started, last_reason is None

    def latest(self) -> str | None:
        return self.manager.latest_checkpoint if self.manager else None

    def history(self) -> dict[str, list[float]]:
        merged: dict[str, list[float]] = {}
        for epoch in sorted(self.logs):
            for name, value in self.logs[epoch].items():
                merged.setdefault(name, []).append(value)
        return merged

    def emit(self, kind: str, epoch: int, message: str, **fields: Any) -> None:
        self.on_event(TrainingEvent(kind, epoch, message, **fields))


class _SaveEachEpoch(keras.callbacks.Callback):
    """Saves the checkpoint at each epoch's end, on this VM, before the user's callbacks see the epoch."""

    def __init__(self, run: _Run) -> None:
        super().__init__()
        self.run = run

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.run.saved(epoch + 1, {name: float(value) for name, value in (logs or {}).items()})


def _as_lost(error: Exception, connection: RemoteConnection) -> AcceleratorLost | None:
    """``error`` as :class:`AcceleratorLost` if the accelerator went away, None if it is the program's own.

    TensorFlow mostly reports a lost worker as UnavailableError (translated already), but not only:
    building a gradient while the channel closes raised ``ValueError: Socket closed`` (TF 2.21). So
    any other error counts as a loss when the agent no longer serves the attachment it served at
    connect time (detached, another instance attached, agent gone).
    """
    if isinstance(error, AcceleratorLost):
        return error
    gone = _why_gone(connection)
    if gone is None:
        return None
    reason = (str(error) or type(error).__name__).strip().splitlines()[0]
    lost = AcceleratorLost(f"the accelerator behind {connection.endpoint} went away ({type(error).__name__}: "
                           f"{reason}): {gone}", endpoint=connection.endpoint)
    lost.__cause__ = error
    return lost


def _why_gone(connection: RemoteConnection) -> str | None:
    """What the endpoint says now if it no longer serves the attachment of ``connection``, else None."""
    try:
        status = check_endpoint(connection.endpoint, local_tf_version=tf.__version__, timeout_s=STATUS_TIMEOUT_S)
    except RemoteTFError as error:
        return error.message
    attached = (connection.agent_status or {}).get("attachment_id")
    if status is not None and status.get("attachment_id") != attached:
        return f"the agent now serves {status.get('instance_id') or 'another attachment'}"
    return None


def _epoch_variable(model: keras.Model) -> tf.Variable:
    # On the model's task: a checkpoint spanning two tasks cannot be saved (module docstring).
    task_cpu = tf.DeviceSpec.from_string(_device_of(model)).replace(device_type="CPU", device_index=0)
    with tf.device(task_cpu.to_string()):
        return tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")


def _restore(model: keras.Model, directory: str,
             max_to_keep: int = 3) -> tuple[int, tf.train.CheckpointManager, tf.Variable]:
    """The epoch restored (0: no checkpoint yet), the manager that saves the next ones, the epoch variable."""
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        raise ValueError("build_model must return a compiled model (model.compile(optimizer=..., loss=...)): "
                         "its optimizer's state is part of the checkpoint")
    if not model.built or not model.variables:
        raise ValueError("the model has no variables yet: give it an input shape (e.g. start a Sequential with "
                         "keras.Input((features,))) so it is built before its checkpoint is restored")
    if not optimizer.built:
        optimizer.build(model.trainable_variables)  # slots must exist to be restored now, not lazily
    epoch = _epoch_variable(model)
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, epoch=epoch)
    manager = tf.train.CheckpointManager(checkpoint, directory, max_to_keep=max_to_keep,
                                         checkpoint_name=CHECKPOINT_PREFIX)
    if manager.latest_checkpoint is None:
        return 0, manager, epoch
    try:
        checkpoint.restore(manager.latest_checkpoint, options=LOCAL_IO).assert_consumed()
    except (AssertionError, ValueError) as error:
        raise ValueError(f"{manager.latest_checkpoint} was not saved from this model ({error}); build the model "
                         f"it was trained with, or use another checkpoint_dir to start afresh") from error
    return int(epoch.numpy()), manager, epoch


def _device_of(model: keras.Model) -> str:
    variable = model.variables[0]
    return getattr(variable, "device", None) or variable.value.device
