"""What an agent makes of the controller's gRPC errors: retry, or stop with the controller's reason."""

from __future__ import annotations

import grpc

ERROR_CODE_KEY = "x-eais-error-code"
# Worth retrying: the controller is down, busy, restarting, or the network blinked.
RETRYABLE = frozenset({
    grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.ABORTED,
    grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.CANCELLED,
})
# Worth trying another controller address for: this one does not answer.
UNREACHABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})


class LinkRefused(Exception):
    """The controller refused in a way retrying cannot fix."""

    def __init__(self, message: str, status: grpc.StatusCode, error_code: str = "") -> None:
        super().__init__(message)
        self.status, self.error_code = status, error_code

    @classmethod
    def from_rpc(cls, call: str, error: grpc.RpcError) -> LinkRefused:
        status, code = error.code(), error_code(error)
        return cls(f"{call} refused by the controller: {status.name} {code}: {error.details()}", status, code)


class ControllerUntrusted(LinkRefused):
    """This agent and the controller disagree on TLS (CA, certificate names, plaintext); the reason says which."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"cannot trust the controller: {reason}", grpc.StatusCode.UNAVAILABLE)


def error_code(error: grpc.RpcError) -> str:
    """The EAIS error code the controller put in the trailing metadata ("" when none)."""
    trailing = error.trailing_metadata() or ()
    return next((value for key, value in trailing if key == ERROR_CODE_KEY), "")


def raise_unless_retryable(call: str, error: grpc.RpcError) -> None:
    if error.code() not in RETRYABLE:
        raise LinkRefused.from_rpc(call, error) from error
