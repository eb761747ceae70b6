"""Following the controller's desired state for this VM (see VmDesiredState in agents.proto).

    no attachment        -> idle: refuse calls, report IDLE
    Attaching / InUse    -> check TF versions, open and prove the channel (OPENING, then PROVEN or
                            FAILED); forward TensorFlow's connections only once InUse and proven
    Detaching (or other) -> cut the forwarding relays, report CLOSED

Every desired state is handled as a whole picture, so a repeated one changes nothing and a new
attachment (another instance, another node) replaces the old one without a restart.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from agent.instance_status import status_name
from agent.vm.channel import view as views
from agent.vm.channel.gateway import GatewayGrant
from agent.vm.channel.opener import ChannelOpener
from agent.vm.channel.proof import Proof
from agent.vm.channel.view import ChannelView
from agent.vm.settings import AgentTiming
from agent.vm.tf_version import version_mismatch
from protos.eais.v1 import agents_pb2 as pb

log = logging.getLogger(__name__)
CONNECTING_STATUSES = (pb.INSTANCE_STATUS_ATTACHING, pb.INSTANCE_STATUS_IN_USE)


@dataclass(frozen=True)
class ProvenChannel:
    grant: GatewayGrant
    proof: Proof


class AttachmentFollower:
    def __init__(self, client_instance_id: str, *, ca_pem: Callable[[], str], publish: Callable[[ChannelView], None],
                 report_soon: Callable[[bool], None], timing: AgentTiming, local_tf_version: str,
                 say: Callable[[str], None]) -> None:
        self._vm, self._ca_pem, self._publish, self._report_soon = client_instance_id, ca_pem, publish, report_soon
        self._actual = pb.VmActualState(channel=pb.CHANNEL_STATE_IDLE)
        self._timing, self._local_tf_version, self._say = timing, local_tf_version, say
        self._lock = threading.RLock()  # opener callbacks re-enter _apply
        self._last_desired: pb.VmDesiredState | None = None
        self._bound: pb.VmAttachment | None = None  # the attachment last seen bound to this VM
        self._bound_since = 0.0
        self._opener: ChannelOpener | None = None
        self._proven: ProvenChannel | None = None
        self._failure = ""  # why the bound attachment failed, if it did
        self._opening_note = ""  # why the last attempt to open its channel did not work, while retrying
        self._serving_announced = self._closing_announced = False
        self._last_outcome = ""  # what happened to the previous attachment, for the idle message
        if not local_tf_version:
            log.info("TensorFlow is not installed on this VM; the node's TensorFlow version is not checked")

    def follow(self, desired: pb.VmDesiredState) -> None:
        """Act on one desired state from the controller."""
        with self._lock:
            changed = desired != self._last_desired
            self._last_desired = desired
            attachment = desired.attachment if desired.HasField("attachment") else None
            self._apply(attachment, force_report=changed)

    def stop(self) -> None:
        with self._lock:
            self._cancel_opener()

    def _apply(self, attachment: pb.VmAttachment | None, *, force_report: bool) -> None:
        if attachment is None:
            self._go_idle()
        elif attachment.status in CONNECTING_STATUSES:
            self._rebind_if_new(attachment)
            self._go_connected(attachment, force_report)
        else:
            self._rebind_if_new(attachment)
            self._go_detaching(attachment, force_report)

    def _rebind_if_new(self, attachment: pb.VmAttachment) -> None:
        if self._bound is not None and self._bound.attachment_id == attachment.attachment_id:
            self._bound = attachment  # same attachment, maybe a newer status
            return
        if self._bound is not None and not self._failure:
            self._last_outcome = views.detached_outcome(self._vm, self._bound.instance_id)
            self._say(f"detached {self._bound.instance_id} from {self._vm}; {attachment.instance_id} replaces it")
        self._cancel_opener()
        self._bound, self._bound_since = attachment, time.monotonic()
        self._proven, self._failure, self._opening_note = None, "", ""
        self._serving_announced = self._closing_announced = False

    def _go_idle(self) -> None:
        self._cancel_opener()
        if self._bound is not None:
            if not self._failure:
                self._last_outcome = views.detached_outcome(self._vm, self._bound.instance_id)
                self._say(f"detached {self._bound.instance_id} from {self._vm}; the endpoint refuses calls again")
            self._bound, self._proven = None, None
        self._publish(views.idle_view(self._vm, self._last_outcome))
        self._put(pb.VmActualState(channel=pb.CHANNEL_STATE_IDLE))

    def _go_detaching(self, attachment: pb.VmAttachment, force_report: bool) -> None:
        self._cancel_opener()
        if not self._closing_announced:
            self._closing_announced = True
            self._say(f"{attachment.instance_id} is {status_name(attachment.status)}: closing its channel and connections")
        self._proven = None
        self._last_outcome = views.detached_outcome(self._vm, attachment.instance_id)
        self._publish(views.detaching_view(self._vm, attachment))
        self._report(attachment, pb.CHANNEL_STATE_CLOSED, force=force_report)

    def _go_connected(self, attachment: pb.VmAttachment, force_report: bool) -> None:
        if self._proven is not None:
            self._serve_or_wait(attachment, force_report)
        elif self._failure:
            self._publish(views.failed_view(self._vm, attachment, self._failure))
            self._report(attachment, pb.CHANNEL_STATE_FAILED, reason=self._failure, force=force_report)
        elif mismatch := version_mismatch(attachment.node_tf_version, self._local_tf_version):
            self._fail(attachment, mismatch)
        else:
            if self._opener is None:
                self._start_opener(attachment)
            self._publish(views.attaching_view(self._vm, attachment, self._opening_note))
            self._report(attachment, pb.CHANNEL_STATE_OPENING, force=force_report)

    def _serve_or_wait(self, attachment: pb.VmAttachment, force_report: bool) -> None:
        proven = self._proven
        if attachment.status == pb.INSTANCE_STATUS_IN_USE:
            self._publish(views.serving_view(self._vm, attachment, proven.grant, proven.proof.round_trip_us))
            if not self._serving_announced:
                self._serving_announced = True
                took_ms = (time.monotonic() - self._bound_since) * 1000
                self._say(f"attached {attachment.instance_id} via gateway {attachment.node_gateway_address} "
                          f"in {took_ms:.0f} ms; serving TensorFlow calls")
        else:
            self._publish(views.attaching_view(self._vm, attachment, "channel proven; waiting for the node"))
        self._report(attachment, pb.CHANNEL_STATE_PROVEN, round_trip_us=proven.proof.round_trip_us, force=force_report)

    def _fail(self, attachment: pb.VmAttachment, reason: str) -> None:
        self._failure = reason
        self._last_outcome = views.failed_outcome(self._vm, attachment.instance_id, reason)
        self._say(f"cannot attach {attachment.instance_id}: {reason}")
        self._publish(views.failed_view(self._vm, attachment, reason))
        self._report(attachment, pb.CHANNEL_STATE_FAILED, reason=reason, force=True)

    def _start_opener(self, attachment: pb.VmAttachment) -> None:
        grant = GatewayGrant(attachment.node_gateway_address, attachment.attachment_id,
                             attachment.attachment_token, self._ca_pem())
        self._say(f"opening a channel to {attachment.instance_id} via gateway {attachment.node_gateway_address}")
        self._opener = ChannelOpener(grant, self._timing, on_proven=self._proven_by,
                                     on_failed=self._failed_by, on_retry=self._retrying_by).start()

    def _cancel_opener(self) -> None:
        if self._opener is not None:
            self._opener.cancel()
            self._opener = None

    def _proven_by(self, opener: ChannelOpener, proof: Proof) -> None:
        with self._lock:
            if opener is not self._opener or self._bound is None:
                return  # superseded by a newer desired state
            self._opener, self._proven = None, ProvenChannel(opener.grant, proof)
            self._say(f"channel to {self._bound.instance_id} proven: TLS and hello in {proof.open_ms:.0f} ms, "
                      f"GetStatus round trip {proof.round_trip_us} us")
            self._apply(self._bound, force_report=True)

    def _failed_by(self, opener: ChannelOpener, reason: str) -> None:
        with self._lock:
            if opener is self._opener and self._bound is not None:
                self._opener = None
                self._fail(self._bound, reason)

    def _retrying_by(self, opener: ChannelOpener, reason: str) -> None:
        with self._lock:
            if opener is self._opener and self._bound is not None:
                log.info("channel to %s not open yet (attempt %d): %s; retrying",
                         self._bound.instance_id, opener.attempts, reason)
                self._opening_note = f"retrying: {reason}"
                self._publish(views.attaching_view(self._vm, self._bound, self._opening_note))

    def _report(self, attachment: pb.VmAttachment, channel: pb.ChannelState, *, reason: str = "",
                round_trip_us: int = 0, force: bool = False) -> None:
        self._put(pb.VmActualState(attachment_id=attachment.attachment_id, channel=channel,
                                   failure_reason=reason[:1024], round_trip_us=round_trip_us), force=force)

    def actual_state(self) -> pb.ActualStateReport:
        """What the reporter sends: the channel as it is now."""
        with self._lock:
            return pb.ActualStateReport(vm=self._actual)

    def _put(self, state: pb.VmActualState, *, force: bool = False) -> None:
        self._actual = state
        self._report_soon(force)
