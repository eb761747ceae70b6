"""Reading warm-up files: the requests a model version is sent before it serves.

Three formats, told apart by content (not by file name), tried in this order:

1. TF Serving's TFRecord file of ``PredictionLog`` records (``assets.extra/tf_serving_warmup_requests``
   in a SavedModel, see :func:`find_savedmodel_warmup`). Recognised by its first record header,
   whose length field carries a CRC32C; a random file passes that check once in 2**32.
   ``predict_log`` records become :class:`PredictCall` (the request's model_spec is ignored: the
   call is for the model being loaded, newest version); ``classify_log`` / ``regress_log`` become
   :class:`ClassifyWarmup` / :class:`RegressWarmup` holding the request for the caller to replay
   through Classify / Regress; any other record (``multi_inference_log``, ``session_run_log``)
   is refused as not supported.
2. An EAS warm-up file: one serialized TFRequest, as PAI's docs write it
   (``f.write(req.to_string())``), or several, each preceded by its length as a protobuf varint
   (``SerializeToString`` behind ``_VarintBytes(len(...))``, the usual way to stream protobufs).
   Both readings are tried strictly: each request must parse with no unknown fields and have at
   least one named input. The single-request reading wins if both pass (for real files at most one
   does: a length prefix read as a field tag leaves unknown fields behind).
3. Text: UTF-8, one TF Serving REST predict body per line (``{"instances": ...}`` or
   ``{"inputs": ...}``, optional ``"signature_name"``), blank lines skipped. Turning these into
   tensors needs the signature's input dtypes, so they come back as :class:`RestPredictWarmup`
   for the caller to pass to :func:`remote_tf.serving.tensors.parse_rest_predict`.

At most :data:`MAX_WARMUP_RECORDS` requests (TF Serving's limit). Every problem — empty or
unrecognised file, a bad record or line, too many requests — raises :class:`WarmupFileError`, a
``ValueError`` whose message names the file and the record or line.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tensorflow as tf
from google.protobuf import unknown_fields
from google.protobuf.message import DecodeError
from tensorflow_serving.apis import classification_pb2, prediction_log_pb2, regression_pb2

from protos.eais.serving.v1 import eas_predict_pb2 as eas
from remote_tf.serving.calls import DEFAULT_SIGNATURE, PredictCall, ServingError
from remote_tf.serving.eas_protocol import eas_request_to_call
from remote_tf.serving.tensors import tensor_proto_to_numpy

MAX_WARMUP_RECORDS = 1000
SAVEDMODEL_WARMUP = Path("assets.extra") / "tf_serving_warmup_requests"
FORMATS = ("accepted formats: a TFRecord file of PredictionLog records (TF Serving's "
           "assets.extra/tf_serving_warmup_requests); an EAS warm-up file (one serialized TFRequest as "
           "TFRequest.to_string() returns it, or several each preceded by its varint length); a text file with one "
           'TF Serving REST predict body ({"instances": ...} or {"inputs": ...}) per line')


class WarmupFileError(ValueError):
    """A warm-up file that cannot be used; the message names the file and what is wrong."""


@dataclass(frozen=True)
class ClassifyWarmup:
    """A ``classify_log`` record: replay ``request`` through Classify (its model_spec is not used)."""

    request: classification_pb2.ClassificationRequest


@dataclass(frozen=True)
class RegressWarmup:
    """A ``regress_log`` record: replay ``request`` through Regress (its model_spec is not used)."""

    request: regression_pb2.RegressionRequest


@dataclass(frozen=True)
class RestPredictWarmup:
    """One line of a text warm-up file, a REST predict body not yet turned into tensors."""

    body: dict[str, Any]
    line: int

    @property
    def signature_name(self) -> str:
        return self.body.get("signature_name") or DEFAULT_SIGNATURE


WarmupRequest = PredictCall | ClassifyWarmup | RegressWarmup | RestPredictWarmup


def find_savedmodel_warmup(version_dir: Path) -> Path | None:
    """The TF Serving warm-up file inside a SavedModel version folder, if it has one."""
    candidate = version_dir / SAVEDMODEL_WARMUP
    return candidate if candidate.is_file() else None


def read_warmup_requests(path: Path, model: str) -> list[WarmupRequest]:
    """Every request in the warm-up file at ``path``, in file order, for ``model``."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise WarmupFileError(f"{path}: cannot read the warm-up file: {error.strerror or error}") from None
    if not data.strip():
        raise WarmupFileError(f"{path}: the warm-up file is empty; {FORMATS}")
    if _looks_like_tfrecord(data):
        return _from_prediction_logs(path, _tfrecords(path), model)
    eas_requests = _eas_single(data) or _eas_delimited(path, data)
    if eas_requests is not None:
        return _from_eas(path, eas_requests, model)
    text = _as_text(data)
    if text is not None and text.lstrip().startswith("{"):
        return _from_text(path, text)
    raise WarmupFileError(f"{path}: not a warm-up file eais-serve recognises; {FORMATS}")


# ---------------------------------------------------------------------------------------------
# TFRecord / PredictionLog


def _looks_like_tfrecord(data: bytes) -> bool:
    # a record starts with: uint64 length (little-endian), uint32 masked CRC32C of those 8 bytes
    if len(data) < 16:
        return False
    (crc,) = struct.unpack("<I", data[8:12])
    return crc == _masked_crc32c(data[:8])


def _tfrecords(path: Path) -> list[bytes]:
    records: list[bytes] = []
    try:  # TensorFlow's reader checks every record's CRC
        for record in tf.data.TFRecordDataset(str(path)):
            records.append(record.numpy())
            if len(records) > MAX_WARMUP_RECORDS:
                break
    except tf.errors.DataLossError:
        raise WarmupFileError(f"{path}: TFRecord record {len(records) + 1} is corrupt or cut short (CRC mismatch "
                              f"or truncated file); rewrite the file with tf.io.TFRecordWriter") from None
    _check_count(path, len(records), "records")
    return records


def _from_prediction_logs(path: Path, records: list[bytes], model: str) -> list[WarmupRequest]:
    requests: list[WarmupRequest] = []
    for number, record in enumerate(records, start=1):
        log = prediction_log_pb2.PredictionLog()
        try:
            log.ParseFromString(record)
        except DecodeError:
            raise WarmupFileError(f"{path}: record {number} is not a serialized PredictionLog") from None
        kind = log.WhichOneof("log_type")
        if kind == "predict_log":
            requests.append(_predict_call(path, number, log.predict_log.request, model))
        elif kind == "classify_log":
            requests.append(ClassifyWarmup(log.classify_log.request))
        elif kind == "regress_log":
            requests.append(RegressWarmup(log.regress_log.request))
        else:
            raise WarmupFileError(f"{path}: record {number} is a {kind or 'empty PredictionLog'}, which eais-serve "
                                  f"does not support as a warm-up request; use predict_log, classify_log or "
                                  f"regress_log records")
    return requests


def _predict_call(path: Path, number: int, request: Any, model: str) -> PredictCall:
    try:
        inputs = {name: tensor_proto_to_numpy(proto, name) for name, proto in request.inputs.items()}
    except ServingError as error:
        raise WarmupFileError(f"{path}: record {number}: {error.message}") from None
    return PredictCall(model=model, inputs=inputs, signature_name=request.model_spec.signature_name or DEFAULT_SIGNATURE,
                       output_filter=tuple(request.output_filter))


_CRC32C_TABLE = []
for _byte in range(256):
    _crc = _byte
    for _ in range(8):
        _crc = (_crc >> 1) ^ (0x82F63B78 if _crc & 1 else 0)  # CRC-32C (Castagnoli), reflected
    _CRC32C_TABLE.append(_crc)


def _masked_crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC32C_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    crc ^= 0xFFFFFFFF
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


# ---------------------------------------------------------------------------------------------
# EAS TFRequest files


def _strict_eas(data: bytes) -> eas.PredictRequest | None:
    request = eas.PredictRequest()
    try:
        request.ParseFromString(data)
    except DecodeError:
        return None
    if not request.inputs or "" in request.inputs or len(unknown_fields.UnknownFieldSet(request)):
        return None
    for array in request.inputs.values():
        if len(unknown_fields.UnknownFieldSet(array)) or len(unknown_fields.UnknownFieldSet(array.array_shape)):
            return None
    return request


def _eas_single(data: bytes) -> list[eas.PredictRequest] | None:
    request = _strict_eas(data)
    return None if request is None else [request]


def _eas_delimited(path: Path, data: bytes) -> list[eas.PredictRequest] | None:
    requests = []
    position = 0
    while position < len(data):
        length, position = _read_varint(data, position)
        if length is None or position + length > len(data):
            return None
        request = _strict_eas(data[position:position + length])
        if request is None:
            return None
        requests.append(request)
        position += length
        _check_count(path, len(requests), "length-delimited TFRequests")
    return requests


def _read_varint(data: bytes, position: int) -> tuple[int | None, int]:
    value = 0
    for shift in range(0, 64, 7):
        if position >= len(data):
            return None, position
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, position
    return None, position


def _from_eas(path: Path, requests: list[eas.PredictRequest], model: str) -> list[WarmupRequest]:
    calls: list[WarmupRequest] = []
    for number, request in enumerate(requests, start=1):
        try:
            calls.append(eas_request_to_call(request, model))
        except ServingError as error:
            raise WarmupFileError(f"{path}: TFRequest {number}: {error.message}") from None
    return calls


# ---------------------------------------------------------------------------------------------
# Text, one REST predict body per line


def _as_text(data: bytes) -> str | None:
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError:
        return None


def _from_text(path: Path, text: str) -> list[WarmupRequest]:
    requests: list[WarmupRequest] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            body = json.loads(line)
        except json.JSONDecodeError as error:
            raise WarmupFileError(f"{path}: line {number} is not JSON ({error.msg} at column {error.colno}); each "
                                  f"line must be one REST predict body") from None
        if not isinstance(body, dict) or ("instances" in body) == ("inputs" in body):
            raise WarmupFileError(f"{path}: line {number} must be a JSON object with either 'instances' (row format) "
                                  f"or 'inputs' (columnar format)")
        if not isinstance(body.get("signature_name", ""), str):
            raise WarmupFileError(f"{path}: line {number}: 'signature_name' must be a string")
        requests.append(RestPredictWarmup(body, number))
        _check_count(path, len(requests), "requests (lines)")
    return requests


def _check_count(path: Path, count: int, what: str) -> None:
    if count > MAX_WARMUP_RECORDS:
        raise WarmupFileError(f"{path}: more than {MAX_WARMUP_RECORDS} {what}; TF Serving and eais-serve replay at "
                              f"most {MAX_WARMUP_RECORDS} warm-up requests, so keep the first "
                              f"{MAX_WARMUP_RECORDS} or fewer")
