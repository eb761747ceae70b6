"""PAI-EAS's TensorFlow protocol: the body of ``POST /api/predict/<service>`` to and from NumPy.

The request body is a serialized ``eais.serving.v1.PredictRequest`` (``eas_predict.proto``), the
bytes the official client's ``TFRequest.to_string()`` produces; the answer is a serialized
``PredictResponse``, which its ``TFResponse`` reads.

Dtypes, both ways: DT_FLOAT float32, DT_DOUBLE float64, DT_INT8/INT16/INT32 int8/16/32,
DT_UINT8/UINT16 uint8/16 (carried in ``int_val``), DT_INT64 int64, DT_BOOL bool, DT_STRING byte
strings (an object array of ``bytes``). Any other request dtype is refused with INVALID_ARGUMENT.
Outputs that EAS has no field for are widened without loss: float16 and bfloat16 to DT_FLOAT,
uint32 to DT_INT64; other output dtypes (uint64, complex) are an INTERNAL error.

Note for users of the official client: ``TFResponse.get_values`` returns None for DT_UINT8 and
DT_UINT16 outputs (its own limitation); read ``response.outputs[name].int_val`` instead.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from google.protobuf.message import DecodeError

from protos.eais.serving.v1 import eas_predict_pb2 as eas
from remote_tf.serving.calls import DEFAULT_SIGNATURE, ErrorCode, PredictCall, ServingError, invalid

_FROM_EAS: dict[int, tuple[np.dtype, str]] = {
    eas.DT_FLOAT: (np.dtype(np.float32), "float_val"),
    eas.DT_DOUBLE: (np.dtype(np.float64), "double_val"),
    eas.DT_INT8: (np.dtype(np.int8), "int_val"),
    eas.DT_INT16: (np.dtype(np.int16), "int_val"),
    eas.DT_INT32: (np.dtype(np.int32), "int_val"),
    eas.DT_UINT8: (np.dtype(np.uint8), "int_val"),
    eas.DT_UINT16: (np.dtype(np.uint16), "int_val"),
    eas.DT_INT64: (np.dtype(np.int64), "int64_val"),
    eas.DT_BOOL: (np.dtype(np.bool_), "bool_val"),
    eas.DT_STRING: (np.dtype(object), "string_val"),
}
_TO_EAS: dict[np.dtype, int] = {dtype: code for code, (dtype, _) in _FROM_EAS.items()}
_WIDENED: dict[str, tuple[int, np.dtype]] = {
    "float16": (eas.DT_FLOAT, np.dtype(np.float32)),
    "bfloat16": (eas.DT_FLOAT, np.dtype(np.float32)),
    "uint32": (eas.DT_INT64, np.dtype(np.int64)),
}
_VALUE_FIELDS = ("float_val", "double_val", "int_val", "string_val", "int64_val", "bool_val")
_ACCEPTED = ", ".join(eas.ArrayDataType.Name(code) for code in _FROM_EAS)


def parse_eas_request(body: bytes, model: str) -> PredictCall:
    """The call a serialized EAS ``PredictRequest`` asks ``model`` for; INVALID_ARGUMENT if malformed."""
    if not body:
        raise invalid("the request body is empty; send a serialized TFRequest (TFRequest.to_string() of the "
                      "eas_prediction client)")
    request = eas.PredictRequest()
    try:
        request.ParseFromString(body)
    except DecodeError:
        raise invalid(f"the request body ({len(body)} bytes) is not a serialized TFRequest protobuf; EAS TensorFlow "
                      f"services take TFRequest.to_string() (JSON goes to the TF Serving REST API, "
                      f"/v1/models/<name>:predict)") from None
    return eas_request_to_call(request, model)


def eas_request_to_call(request: eas.PredictRequest, model: str) -> PredictCall:
    """The call an already parsed EAS request asks ``model`` for."""
    if not request.inputs:
        raise invalid("the TFRequest has no inputs; add them with TFRequest.add_feed(name, shape, dtype, values)")
    inputs = {name: array_from_eas(proto, name) for name, proto in request.inputs.items()}
    return PredictCall(model=model, inputs=inputs, signature_name=request.signature_name or DEFAULT_SIGNATURE,
                       output_filter=tuple(request.output_filter))


def array_from_eas(proto: eas.ArrayProto, name: str) -> np.ndarray:
    """The array one EAS ``ArrayProto`` holds (``name`` is for the error messages)."""
    if proto.dtype not in _FROM_EAS:
        raise invalid(f"input {name!r} has dtype {_dtype_name(proto.dtype)}, which eais-serve does not accept; "
                      f"use one of {_ACCEPTED}")
    dtype, field = _FROM_EAS[proto.dtype]
    dtype_name = eas.ArrayDataType.Name(proto.dtype)
    dims = list(proto.array_shape.dim)
    if any(size < 0 for size in dims):
        raise invalid(f"input {name!r} has shape {dims}; every dimension must be >= 0")
    for other in _VALUE_FIELDS:
        if other != field and len(getattr(proto, other)):
            raise invalid(f"input {name!r} is {dtype_name} but has values in {other}; put them in {field}")
    values = getattr(proto, field)
    count = math.prod(dims)
    if len(values) != count:
        raise invalid(f"input {name!r} has {len(values)} values but its shape {dims} holds {count}; give add_feed "
                      f"the {count} values flattened in row-major order")
    if dtype == object:
        array = np.empty(count, dtype=object)
        array[:] = list(values)
        return array.reshape(dims)
    if field == "int_val" and dtype != np.int32:
        wide = np.array(values, dtype=np.int64)
        limits = np.iinfo(dtype)
        outside = (wide < limits.min) | (wide > limits.max)
        if outside.any():
            raise invalid(f"input {name!r} is {dtype_name} but {int(wide[np.argmax(outside)])} is outside its range "
                          f"[{limits.min}, {limits.max}]")
        return wide.astype(dtype).reshape(dims)
    return np.array(values, dtype=dtype).reshape(dims)


def format_eas_response(outputs: Mapping[str, np.ndarray]) -> bytes:
    """A serialized EAS ``PredictResponse`` carrying ``outputs``."""
    response = eas.PredictResponse()
    for name, value in outputs.items():
        array = np.asarray(value)
        code = _TO_EAS.get(array.dtype)
        if code is None and array.dtype.kind in "SU":
            code = eas.DT_STRING
        elif code is None and array.dtype.name in _WIDENED:
            code, wider = _WIDENED[array.dtype.name]
            array = array.astype(wider)
        elif code is None:
            raise ServingError(ErrorCode.INTERNAL, f"output {name!r} has dtype {array.dtype}, which the EAS protocol "
                                                   f"cannot carry; use the TF Serving gRPC or REST API")
        proto = response.outputs[name]
        proto.dtype = code
        proto.array_shape.dim.extend(array.shape)
        flat = array.reshape(-1).tolist()
        if code == eas.DT_STRING:
            flat = [_as_bytes(item, name) for item in flat]
        getattr(proto, _FROM_EAS[code][1]).extend(flat)
    return response.SerializeToString()


def _as_bytes(item: object, name: str) -> bytes:
    if isinstance(item, bytes):
        return item
    if isinstance(item, str):
        return item.encode("utf-8")
    raise ServingError(ErrorCode.INTERNAL, f"output {name!r} holds {type(item).__name__} values, not strings")


def _dtype_name(code: int) -> str:
    try:
        return eas.ArrayDataType.Name(code)
    except ValueError:
        return f"number {code}"
