"""The agents' side of ``eais.v1.AgentLink``, shared by the node agent and the VM agent.

Register (node token, or AccessKey-signed for a VM) -> heartbeats at the pace the controller
sets -> a desired-state stream that reconnects by itself -> actual-state reports. A replaced or
forgotten session is re-registered once, transparently; an unreachable controller is retried
with exponential backoff and jitter. A refusal that retrying cannot fix (wrong token, invalid
registration) raises :class:`LinkRefused` with the controller's code and message; so does a TLS
mismatch a handshake shows (another CA, an address the certificate does not name, plaintext on one
side only): :class:`ControllerUntrusted`.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import random
import secrets
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

import grpc

from agent.controller_trust import ControllerTrust
from protos.eais.v1 import agents_pb2 as pb
from protos.eais.v1 import agents_pb2_grpc

log = logging.getLogger(__name__)
T = TypeVar("T")

REGISTER_METHOD = "/eais.v1.AgentLink/Register"
ERROR_CODE_KEY = "x-eais-error-code"
# Worth retrying: the controller is down, busy, restarting, or the network blinked.
RETRYABLE = frozenset({
    grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.ABORTED,
    grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.CANCELLED,
})
BEAT_AT_SHARE = 0.75  # beat after this share of the allowed time, leaving room for one retry


@dataclass(frozen=True)
class NodeToken:
    """A node agent's credential: the controller's shared node token."""

    token: str


@dataclass(frozen=True)
class AccessKey:
    """A VM agent's credential: an AccessKey of the account the VM belongs to."""

    access_key_id: str
    access_key_secret: str


class LinkRefused(Exception):
    """The controller refused in a way retrying cannot fix."""

    def __init__(self, message: str, status: grpc.StatusCode, error_code: str = "") -> None:
        super().__init__(message)
        self.status, self.error_code = status, error_code

    @classmethod
    def from_rpc(cls, call: str, error: grpc.RpcError) -> LinkRefused:
        status, code = error.code(), _error_code(error)
        return cls(f"{call} refused by the controller: {status.name} {code}: {error.details()}", status, code)


class ControllerUntrusted(LinkRefused):
    """This agent and the controller disagree on TLS (CA, certificate names, plaintext); the reason says which."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"cannot trust the controller: {reason}", grpc.StatusCode.UNAVAILABLE)


def register_signature_metadata(
    request: pb.RegisterRequest, key: AccessKey, *, now: datetime | None = None, nonce: str | None = None
) -> list[tuple[str, str]]:
    """Metadata that signs a VM agent's Register with an AccessKey (see agents.proto)."""
    date = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    nonce = nonce or secrets.token_hex(16)
    body_hash = hashlib.sha256(request.SerializeToString(deterministic=True)).hexdigest()
    text = "\n".join((REGISTER_METHOD, date, nonce, body_hash))
    signature = hmac.new(key.access_key_secret.encode(), text.encode(), hashlib.sha256).hexdigest()
    return [
        ("x-eais-access-key-id", key.access_key_id), ("x-eais-date", date),
        ("x-eais-nonce", nonce), ("x-eais-signature", signature),
    ]


class Backoff:
    """Exponential backoff with jitter: initial, 2x, 4x ... up to ``max_s``; ``reset`` on success."""

    def __init__(self, initial_s: float = 0.5, max_s: float = 15.0, rng: random.Random | None = None) -> None:
        self._initial_s, self._max_s, self._rng = initial_s, max_s, rng or random.Random()
        self._attempt = 0

    def next_delay_s(self) -> float:
        ceiling = min(self._max_s, self._initial_s * 2**self._attempt)
        self._attempt += 1
        return ceiling * self._rng.uniform(0.5, 1.0)  # spread reconnecting agents apart

    def reset(self) -> None:
        self._attempt = 0


class ControllerLink:
    """One agent's connection to the controller. Thread-safe: heartbeats, watch and reports may run apart."""

    def __init__(
        self,
        target: str,
        registration: pb.RegisterRequest,
        credentials: NodeToken | AccessKey,
        *,
        trust: ControllerTrust,
        call_timeout_s: float = 10.0,
    ) -> None:
        self._target, self._trust = target, trust
        self._registration = registration
        self._credentials = credentials
        self._timeout_s = call_timeout_s
        channel_credentials = trust.channel_credentials()
        self._channel = (
            grpc.secure_channel(target, channel_credentials) if channel_credentials else grpc.insecure_channel(target)
        )
        self._stub = agents_pb2_grpc.AgentLinkStub(self._channel)
        self._lock = threading.Lock()
        self._token: str | None = None
        self._beat_in_s = 1.0
        self._watch_call: grpc.Future | None = None
        self.last_registration: pb.RegisterResponse | None = None

    @property
    def registration(self) -> pb.RegisterRequest:
        return self._registration

    @property
    def agent_id(self) -> str:
        return self.last_registration.agent_id if self.last_registration else ""

    def register(self) -> pb.RegisterResponse:
        """Register now (replacing any session); LinkRefused when the controller says no for good."""
        with self._lock:
            return self._register_locked()

    def register_until_done(self, stop: threading.Event) -> pb.RegisterResponse | None:
        """Register, retrying while the controller is unreachable; None if ``stop`` is set first."""
        backoff = Backoff()
        while not stop.is_set():
            try:
                return self.register()
            except grpc.RpcError as error:
                delay = backoff.next_delay_s()
                log.warning("cannot reach the controller to register (%s); retrying in %.1fs", error.code().name, delay)
                stop.wait(delay)
        return None

    def heartbeat(self) -> pb.HeartbeatResponse:
        response = self._with_session(
            lambda metadata: self._stub.Heartbeat(pb.HeartbeatRequest(), metadata=metadata, timeout=self._timeout_s)
        )
        self._beat_in_s = _beat_delay_s(response.heartbeat)
        return response

    def report(self, report: pb.ActualStateReport) -> pb.ReportAck:
        return self._with_session(
            lambda metadata: self._stub.ReportActualState(report, metadata=metadata, timeout=self._timeout_s)
        )

    def run_heartbeats(self, stop: threading.Event) -> None:
        """Beat before every deadline the controller sets, until ``stop``; raises LinkRefused."""
        backoff = Backoff()
        wait_s = self._beat_in_s
        while not stop.wait(wait_s):
            try:
                self.heartbeat()
                backoff.reset()
                wait_s = self._beat_in_s
            except grpc.RpcError as error:
                _raise_unless_retryable("Heartbeat", error)
                wait_s = backoff.next_delay_s()
                log.warning("heartbeat failed (%s); retrying in %.1fs", error.code().name, wait_s)

    def desired_states(self, stop: threading.Event) -> Iterator[pb.DesiredState]:
        """Every desired state the controller sends, across reconnects, until ``stop``."""
        backoff = Backoff()
        while not stop.is_set():
            try:
                for state in self._watch_once():
                    backoff.reset()
                    yield state
            except grpc.RpcError as error:
                if stop.is_set():
                    return
                if error.code() is grpc.StatusCode.UNAUTHENTICATED:
                    self._forget_session()  # replaced by a newer Register: register again below
                else:
                    _raise_unless_retryable("WatchDesiredState", error)
                    self._raise_if_untrusted(error)  # a controller restarted with other names or another CA
                    log.warning("desired-state stream lost (%s); reconnecting", error.code().name)
            stop.wait(backoff.next_delay_s())

    def close(self) -> None:
        """End the stream and the channel; loops blocked on them return."""
        call = self._watch_call
        if call is not None:
            call.cancel()
        self._channel.close()

    def _watch_once(self) -> Iterator[pb.DesiredState]:
        if self._token is None:
            self.register()
        call = self._stub.WatchDesiredState(pb.WatchRequest(), metadata=self._session_metadata(self._token))
        self._watch_call = call
        try:
            yield from call
        finally:
            self._watch_call = None

    def _register_locked(self) -> pb.RegisterResponse:
        metadata = self._register_metadata()
        try:
            response = self._stub.Register(self._registration, metadata=metadata, timeout=self._timeout_s)
        except grpc.RpcError as error:
            _raise_unless_retryable("Register", error)
            self._raise_if_untrusted(error)
            raise
        self._token = response.session_token
        self._beat_in_s = _beat_delay_s(response.heartbeat)
        self.last_registration = response
        return response

    def _raise_if_untrusted(self, error: grpc.RpcError) -> None:
        if error.code() is grpc.StatusCode.UNAVAILABLE:
            reason = self._trust.mismatch(self._target)
            if reason is not None:
                raise ControllerUntrusted(reason) from error

    def _register_metadata(self) -> list[tuple[str, str]]:
        if isinstance(self._credentials, NodeToken):
            return [("authorization", f"Bearer {self._credentials.token}")]
        return register_signature_metadata(self._registration, self._credentials)

    def _with_session(self, call: Callable[[list[tuple[str, str]]], T]) -> T:
        token = self._token or self.register().session_token
        try:
            return call(self._session_metadata(token))
        except grpc.RpcError as error:
            if error.code() is not grpc.StatusCode.UNAUTHENTICATED:
                raise
        return call(self._session_metadata(self._reregister(token)))  # session replaced: register once more

    def _reregister(self, stale_token: str) -> str:
        with self._lock:
            if self._token == stale_token or self._token is None:  # another thread may have done it already
                self._register_locked()
            return self._token or ""

    def _forget_session(self) -> None:
        with self._lock:
            self._token = None

    @staticmethod
    def _session_metadata(token: str | None) -> list[tuple[str, str]]:
        return [("authorization", f"Bearer {token}")]


def _beat_delay_s(deadline: pb.HeartbeatDeadline) -> float:
    return max(0.05, deadline.beat_within_ms / 1000 * BEAT_AT_SHARE)


def _error_code(error: grpc.RpcError) -> str:
    trailing = error.trailing_metadata() or ()
    return next((value for key, value in trailing if key == ERROR_CODE_KEY), "")


def _raise_unless_retryable(call: str, error: grpc.RpcError) -> None:
    if error.code() not in RETRYABLE:
        raise LinkRefused.from_rpc(call, error) from error
