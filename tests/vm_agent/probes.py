"""One raw gRPC call on an endpoint as TensorFlow's client would make it."""

from __future__ import annotations

import grpc


def call_endpoint(port: int, method: str = "/tensorflow.WorkerService/GetStatus", timeout_s: float = 5.0) -> grpc.RpcError | bytes:
    """One raw gRPC call on the endpoint, as TensorFlow's client would make it; the answer or the error."""
    with grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.enable_retries", 0)]) as channel:
        call = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
        try:
            return call(b"", timeout=timeout_s)
        except grpc.RpcError as error:
            return error
