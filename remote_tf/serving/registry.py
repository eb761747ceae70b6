"""The served models and versions: loaded, warmed, swapped in and retired without dropping a request.

For each model the registry polls its base folder (``--file_system_poll_wait_seconds``, like TF
Serving). A new version is loaded on every device that may serve (the CPU unless ``--fallback
refuse``, and the accelerator when one is attached), warmed up on each, and only then added to
the served set; versions the policy no longer selects are removed from the set, and requests
already holding them finish on them. A version that fails to load or warm up is reported
(``state END`` with the error, in the model status) and retried on later polls only if its folder
changes; the versions served before keep serving.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from remote_tf.serving.calls import ErrorCode, ServingError
from remote_tf.serving.model_config import ModelSpec
from remote_tf.serving.servable import PlacedModel, SignatureInfo, Target, read_meta_graph, signatures_of
from remote_tf.serving.versions import versions_on_disk

log = logging.getLogger("eais.serve.models")


class VersionState:
    """TF Serving's ``ModelVersionStatus.State`` names."""

    START = "START"
    LOADING = "LOADING"
    AVAILABLE = "AVAILABLE"
    UNLOADING = "UNLOADING"
    END = "END"


@dataclass
class ServedVersion:
    """One version of one model and its copies, keyed by target kind ("cpu", "accelerator")."""

    model: str
    version: int
    path: Path
    signatures: dict[str, SignatureInfo]
    signature_defs: dict[str, Any] = field(default_factory=dict)  # the SignatureDef protos, for GetModelMetadata
    state: str = VersionState.LOADING
    error: str = ""
    copies: dict[str, PlacedModel] = field(default_factory=dict)
    extras: dict[str, object] = field(default_factory=dict)  # per-version helpers (batchers), made by others

    def copy_on(self, target: Target) -> PlacedModel | None:
        copy = self.copies.get(target.kind)
        if copy is None or copy.target.generation != target.generation:
            return None
        return copy


Warm = Callable[[ServedVersion, PlacedModel], None]


class ModelRegistry:
    """Every model's served versions; see the module docstring."""

    def __init__(self, specs: list[ModelSpec], *, targets: Callable[[], list[Target]], warm: Warm,
                 on_state: Callable[[ServedVersion], None] = lambda _: None,
                 on_retired: Callable[[ServedVersion], None] = lambda _: None, poll_interval_s: float = 1.0) -> None:
        self.specs = {spec.name: spec for spec in specs}
        self._targets, self._warm, self._on_state, self._on_retired = targets, warm, on_state, on_retired
        self._poll_interval_s = poll_interval_s
        self._lock = threading.RLock()  # guards _served, _status and copies
        self._served: dict[str, dict[int, ServedVersion]] = {name: {} for name in self.specs}
        self._status: dict[str, dict[int, ServedVersion]] = {name: {} for name in self.specs}
        self._failed: dict[tuple[str, int], float] = {}  # folder mtime of a version that failed
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._poll_forever, name="eais-serve-versions", daemon=True)

    # --- start and stop ----------------------------------------------------------------------------
    def load_initial(self) -> None:
        """Load and warm what the policies select now; raise ServingError naming the first failure."""
        for spec in self.specs.values():
            found = versions_on_disk(spec.base_path)
            if not found:
                raise ServingError(ErrorCode.NOT_FOUND,
                                   f"model {spec.name!r}: no version folders with a SavedModel under "
                                   f"{spec.base_path} (expected {spec.base_path}/1/saved_model.pb, ...)")
            for number in spec.policy.select(found):
                version = self._load(spec, number, found[number])
                if version.state != VersionState.AVAILABLE:
                    raise ServingError(ErrorCode.FAILED_PRECONDITION,
                                       f"model {spec.name!r} version {number} did not start: {version.error}")

    def start_polling(self) -> None:
        if self._poll_interval_s > 0:
            self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    # --- what requests ask -------------------------------------------------------------------------
    def resolve(self, model: str, version: int | None = None, version_label: str | None = None) -> ServedVersion:
        """The version a request names (newest served when none), or NOT_FOUND/UNAVAILABLE saying why."""
        spec = self.specs.get(model)
        if spec is None:
            raise ServingError(ErrorCode.NOT_FOUND, f"Servable not found for request: model {model!r} is not served "
                                                    f"here (served: {', '.join(sorted(self.specs)) or 'none'})")
        if version_label is not None:
            if version_label not in spec.labels:
                raise ServingError(ErrorCode.NOT_FOUND, f"model {model!r} has no version label {version_label!r} "
                                                        f"(labels: {', '.join(sorted(spec.labels)) or 'none'})")
            version = spec.labels[version_label]
        with self._lock:
            served = self._served[model]
            if version is None:
                if not served:
                    raise ServingError(ErrorCode.UNAVAILABLE, f"model {model!r} has no version available yet "
                                                              f"(loading or warming up)")
                return served[max(served)]
            if version in served:
                return served[version]
            status = self._status[model].get(version)
        if status is not None and status.state in (VersionState.LOADING, VersionState.START):
            raise ServingError(ErrorCode.UNAVAILABLE, f"model {model!r} version {version} is still loading or "
                                                      f"warming up")
        raise ServingError(ErrorCode.NOT_FOUND, f"Servable not found for request: model {model!r} version {version} "
                                                f"is not served (served: {', '.join(map(str, sorted(served))) or 'none'})")

    def version_statuses(self, model: str, version: int | None = None) -> list[ServedVersion]:
        if model not in self.specs:
            raise ServingError(ErrorCode.NOT_FOUND, f"Could not find any versions of model {model!r}")
        with self._lock:
            statuses = dict(self._status[model])
        if version is not None:
            if version not in statuses:
                raise ServingError(ErrorCode.NOT_FOUND, f"Could not find version {version} of model {model!r}")
            return [statuses[version]]
        return [statuses[number] for number in sorted(statuses, reverse=True)]

    def all_ready(self) -> bool:
        """Every model has at least one AVAILABLE version (what the health check reports)."""
        with self._lock:
            return all(self._served[name] for name in self.specs)

    def served_versions(self) -> list[ServedVersion]:
        with self._lock:
            return [version for versions in self._served.values() for version in versions.values()]

    # --- devices -----------------------------------------------------------------------------------
    def place_all_on(self, target: Target) -> None:
        """Load and warm every served version on ``target`` (an accelerator just connected)."""
        for version in self.served_versions():
            self._place(version, target)

    def drop_copies(self, kind: str) -> None:
        with self._lock:
            for versions in self._status.values():
                for version in versions.values():
                    version.copies.pop(kind, None)

    # --- loading -----------------------------------------------------------------------------------
    def poll_once(self) -> None:
        for spec in self.specs.values():
            found = versions_on_disk(spec.base_path)
            wanted = spec.policy.select(found)
            for number in wanted:
                with self._lock:
                    known = number in self._served[spec.name]
                if not known and not self._failed_before(spec.name, number, found[number]):
                    self._load(spec, number, found[number])
            self._retire(spec, set(wanted))

    def _load(self, spec: ModelSpec, number: int, path: Path) -> ServedVersion:
        log.info("model %s version %s: loading from %s", spec.name, number, path)
        version = ServedVersion(spec.name, number, path, {})
        with self._lock:
            self._status[spec.name][number] = version
        self._on_state(version)
        try:
            meta_graph = read_meta_graph(path)
            version.signatures = signatures_of(meta_graph)
            version.signature_defs = {name: meta_graph.signature_def[name] for name in version.signatures}
            self._place_where_missing(version)
            self._place_where_missing(version)  # an accelerator may have attached while this version loaded
        except Exception as error:  # noqa: BLE001 - any failure ends this version, never the server
            version.state, version.error = VersionState.END, _describe(error)
            self._failed[(spec.name, number)] = _mtime(path)
            log.error("model %s version %s not served: %s", spec.name, number, version.error)
            self._on_state(version)
            return version
        version.state = VersionState.AVAILABLE
        with self._lock:
            self._served[spec.name][number] = version
        log.info("model %s version %s: AVAILABLE on %s", spec.name, number,
                 ", ".join(copy.target.describe() for copy in version.copies.values()) or "no device yet")
        self._on_state(version)
        return version

    def _place_where_missing(self, version: ServedVersion) -> None:
        for target in self._targets():
            if version.copy_on(target) is None:
                self._place(version, target)

    def _place(self, version: ServedVersion, target: Target) -> None:
        if target.kind == "accelerator":
            copy = PlacedModel.load_on_accelerator(version.path, target)
        else:
            copy = PlacedModel.load_on_cpu(version.path)
        self._warm(version, copy)
        with self._lock:
            version.copies[target.kind] = copy

    def _retire(self, spec: ModelSpec, wanted: set[int]) -> None:
        with self._lock:
            served = self._served[spec.name]
            # Retire only once a wanted version serves: a failed load keeps the old one serving.
            retiring = [number for number in served if number not in wanted] if wanted & set(served) else []
            retired = [served.pop(number) for number in retiring]
        for version in retired:
            version.state = VersionState.END
            version.copies.clear()  # requests holding it keep their own reference to the copy
            self._on_retired(version)
            self._on_state(version)
        for number in retiring:
            log.info("model %s version %s: unloaded (no longer selected by the version policy)", spec.name, number)

    def _failed_before(self, model: str, number: int, path: Path) -> bool:
        mtime = self._failed.get((model, number))
        return mtime is not None and mtime == _mtime(path)

    def _poll_forever(self) -> None:
        while not self._stopping.wait(self._poll_interval_s):
            try:
                self.poll_once()
            except Exception:  # noqa: BLE001 - keep polling; the log says what broke
                log.exception("polling model folders failed")


def _mtime(path: Path) -> float:
    try:
        return max((entry.stat().st_mtime for entry in [path, *path.iterdir()]), default=0.0)
    except OSError:
        return 0.0


def _describe(error: BaseException) -> str:
    message = getattr(error, "message", None) or str(error) or type(error).__name__
    return message.strip().splitlines()[0] if message.strip() else type(error).__name__
