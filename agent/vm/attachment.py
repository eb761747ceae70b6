"""Following the controller's desired state for this VM (see VmDesiredState in agents.proto).

    no attachment        -> idle: refuse calls, report IDLE
    Attaching / InUse    -> check TF versions, open and prove the channel (OPENING, then PROVEN or
                            FAILED); forward TensorFlow's connections only once InUse and proven,
                            and watch the data path meanwhile: a broken one is refused and reported
                            BROKEN (the controller then makes the instance Unavailable), a healed
                            one serves again
    Detaching (or other) -> cut the forwarding relays, report CLOSED

Every desired state is handled as a whole picture, so a repeated one changes nothing and a new
attachment (another instance, another node) replaces the old one without a restart. When an
attachment ends, what the endpoint says afterwards is what this agent saw: detached (it saw
Detaching), could not be attached, lost its data path, or ended by the controller while Attaching
or InUse (the instance's transitions say why).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from agent.instance_status import status_name
from agent.vm.channel import view as views
from agent.vm.channel.gateway import GatewayGrant
from agent.vm.channel.opener import ChannelOpener
from agent.vm.channel.proof import Proof
from agent.vm.channel.view import ChannelView
from agent.vm.channel.watch import ChannelWatch
from agent.vm.settings import AgentTiming
from agent.vm.tf_version import version_mismatch
from protos.eais.v1 import agents_pb2 as pb

log = logging.getLogger(__name__)
CONNECTING_STATUSES = (pb.INSTANCE_STATUS_ATTACHING, pb.INSTANCE_STATUS_IN_USE)


@dataclass(frozen=True)
class ProvenChannel:
    grant: GatewayGrant
    proof: Proof


@dataclass
class Bound:
    """The attachment bound to this VM now, and what this agent runs and knows for it."""

    attachment: pb.VmAttachment
    since: float
    opener: ChannelOpener | None = None
    watch: ChannelWatch | None = None
    proven: ProvenChannel | None = None
    failure: str = ""  # why it could not be attached
    broken: str = ""  # why its data path broke while in use
    opening_note: str = ""  # why the last attempt to open its channel did not work, while retrying
    saw_detaching: bool = False
    serving_announced: bool = False

    def stop_background(self) -> None:
        for part in (self.opener, self.watch):
            if part is not None:
                part.cancel()
        self.opener = self.watch = None

    def outcome(self, vm: str) -> str:
        """What happened to it, as the endpoint tells it once it is gone."""
        instance_id = self.attachment.instance_id
        if self.failure:
            return views.failed_outcome(vm, instance_id, self.failure)
        if self.broken:
            return views.lost_outcome(vm, instance_id, self.broken)
        if self.saw_detaching:
            return views.detached_outcome(vm, instance_id)
        return views.ended_outcome(vm, instance_id, status_name(self.attachment.status))


class AttachmentFollower:
    def __init__(self, client_instance_id: str, *, ca_pem: Callable[[], str], publish: Callable[[ChannelView], None],
                 report_soon: Callable[[bool], None], timing: AgentTiming, local_tf_version: str,
                 say: Callable[[str], None], gateway_bytes_at: Callable[[str], float] = lambda _: 0.0) -> None:
        self._vm, self._ca_pem, self._publish, self._report_soon = client_instance_id, ca_pem, publish, report_soon
        self._timing, self._local_tf_version, self._say = timing, local_tf_version, say
        self._gateway_bytes_at = gateway_bytes_at
        self._actual = pb.VmActualState(channel=pb.CHANNEL_STATE_IDLE)
        self._lock = threading.RLock()  # opener and watch callbacks re-enter _apply
        self._last_desired: pb.VmDesiredState | None = None
        self._bound: Bound | None = None
        self._last_outcome = ""  # what happened to the previous attachment, for the idle message
        self.probes: Counter[str] = Counter()  # data-path probes: ok, failed
        self.broken_paths = 0
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
            if self._bound is not None:
                self._bound.stop_background()

    def actual_state(self) -> pb.ActualStateReport:
        """What the reporter sends: the channel as it is now."""
        with self._lock:
            return pb.ActualStateReport(vm=self._actual)

    def _apply(self, attachment: pb.VmAttachment | None, *, force_report: bool) -> None:
        if attachment is None:
            self._go_idle()
            return
        bound = self._rebind_if_new(attachment)
        if attachment.status in CONNECTING_STATUSES:
            self._go_connected(bound, force_report)
        else:
            self._go_detaching(bound, force_report)

    def _rebind_if_new(self, attachment: pb.VmAttachment) -> Bound:
        bound = self._bound
        if bound is not None and bound.attachment.attachment_id == attachment.attachment_id:
            bound.attachment = attachment  # same attachment, maybe a newer status
            return bound
        if bound is not None:
            self._end(bound, f"; {attachment.instance_id} replaces it")
        self._bound = Bound(attachment, time.monotonic())
        return self._bound

    def _end(self, bound: Bound, what_next: str) -> None:
        bound.stop_background()
        self._last_outcome = bound.outcome(self._vm)
        self._say(f"{self._last_outcome}{what_next}")

    def _go_idle(self) -> None:
        if self._bound is not None:
            self._end(self._bound, "; the endpoint refuses calls")
            self._bound = None
        self._publish(views.idle_view(self._vm, self._last_outcome))
        self._put(pb.VmActualState(channel=pb.CHANNEL_STATE_IDLE))

    def _go_detaching(self, bound: Bound, force_report: bool) -> None:
        attachment = bound.attachment
        if not bound.saw_detaching:
            bound.saw_detaching = True
            self._say(f"{attachment.instance_id} is {status_name(attachment.status)}: closing its channel and connections")
        bound.stop_background()
        bound.proven = None
        self._publish(views.detaching_view(self._vm, attachment))
        self._report(bound, pb.CHANNEL_STATE_CLOSED, force=force_report)

    def _go_connected(self, bound: Bound, force_report: bool) -> None:
        attachment = bound.attachment
        if bound.proven is not None:
            self._serve_or_wait(bound, force_report)
        elif bound.failure:
            self._publish(views.failed_view(self._vm, attachment, bound.failure))
            self._report(bound, pb.CHANNEL_STATE_FAILED, reason=bound.failure, force=force_report)
        elif mismatch := version_mismatch(attachment.node_tf_version, self._local_tf_version):
            self._fail(bound, mismatch)
        else:
            if bound.opener is None:
                self._start_opener(bound)
            if bound.broken:  # in use, but the channel cannot be opened again (e.g. after this agent restarted)
                self._publish(views.lost_view(self._vm, attachment, bound.broken))
                self._report(bound, pb.CHANNEL_STATE_BROKEN, reason=bound.broken, force=force_report)
                return
            self._publish(views.attaching_view(self._vm, attachment, bound.opening_note))
            self._report(bound, pb.CHANNEL_STATE_OPENING, force=force_report)

    def _serve_or_wait(self, bound: Bound, force_report: bool) -> None:
        attachment, proven = bound.attachment, bound.proven
        if attachment.status != pb.INSTANCE_STATUS_IN_USE:
            self._publish(views.attaching_view(self._vm, attachment, "channel proven; waiting for the node",
                                               proven=True))
        elif bound.broken:
            self._publish(views.lost_view(self._vm, attachment, bound.broken))
            self._report(bound, pb.CHANNEL_STATE_BROKEN, reason=bound.broken, force=force_report)
            return
        else:
            self._publish(views.serving_view(self._vm, attachment, proven.grant, proven.proof.round_trip_us))
            self._watch(bound)
            if not bound.serving_announced:
                bound.serving_announced = True
                took_ms = (time.monotonic() - bound.since) * 1000
                self._say(f"attached {attachment.instance_id} via gateway {attachment.node_gateway_address} "
                          f"in {took_ms:.0f} ms; serving TensorFlow calls")
        self._report(bound, pb.CHANNEL_STATE_PROVEN, round_trip_us=proven.proof.round_trip_us, force=force_report)

    def _fail(self, bound: Bound, reason: str) -> None:
        bound.failure = reason
        self._say(f"cannot attach {bound.attachment.instance_id}: {reason}")
        self._publish(views.failed_view(self._vm, bound.attachment, reason))
        self._report(bound, pb.CHANNEL_STATE_FAILED, reason=reason, force=True)

    def _start_opener(self, bound: Bound) -> None:
        attachment = bound.attachment
        grant = GatewayGrant(attachment.node_gateway_address, attachment.attachment_id,
                             attachment.attachment_token, self._ca_pem())
        self._say(f"opening a channel to {attachment.instance_id} via gateway {attachment.node_gateway_address}")
        bound.opener = ChannelOpener(grant, self._timing, on_proven=self._proven_by, on_failed=self._failed_by,
                                     on_retry=self._retrying_by).start()

    def _watch(self, bound: Bound) -> None:
        if bound.watch is None:
            attachment_id = bound.attachment.attachment_id
            bound.watch = ChannelWatch(bound.proven.grant, self._timing,
                                       last_gateway_bytes_at=lambda: self._gateway_bytes_at(attachment_id),
                                       on_broken=self._broken_by, on_healed=self._healed_by,
                                       count_probe=lambda ok: self.probes.update(["ok" if ok else "failed"])).start()

    def _current(self, part: ChannelOpener | ChannelWatch) -> Bound | None:
        """The bound attachment ``part`` works for, or None when it was superseded meanwhile."""
        bound = self._bound
        return bound if bound is not None and part in (bound.opener, bound.watch) else None

    def _proven_by(self, opener: ChannelOpener, proof: Proof) -> None:
        with self._lock:
            if (bound := self._current(opener)) is None:
                return
            bound.opener, bound.proven, bound.broken = None, ProvenChannel(opener.grant, proof), ""
            self._say(f"channel to {bound.attachment.instance_id} proven: TLS and hello in {proof.open_ms:.0f} ms, "
                      f"GetStatus round trip {proof.round_trip_us} us")
            self._apply(bound.attachment, force_report=True)

    def _failed_by(self, opener: ChannelOpener, reason: str) -> None:
        with self._lock:
            if (bound := self._current(opener)) is not None:
                bound.opener = None
                if bound.attachment.status == pb.INSTANCE_STATUS_IN_USE:
                    self._broken_by(None, reason)
                else:
                    self._fail(bound, reason)

    def _retrying_by(self, opener: ChannelOpener, reason: str) -> None:
        with self._lock:
            if (bound := self._current(opener)) is None:
                return
            log.info("channel to %s not open yet (attempt %d): %s; retrying",
                     bound.attachment.instance_id, opener.attempts, reason)
            bound.opening_note = f"retrying: {reason}"
            reopening_for_s = time.monotonic() - bound.since
            if bound.attachment.status == pb.INSTANCE_STATUS_IN_USE and reopening_for_s >= self._timing.reopen_broken_after_s:
                if not bound.broken:
                    self._broken_by(None, f"{reason} (the channel of an instance in use could not be opened "
                                          f"again for {reopening_for_s:.1f}s)")
                return
            self._publish(views.attaching_view(self._vm, bound.attachment, bound.opening_note))

    def _broken_by(self, watch: ChannelWatch | None, reason: str) -> None:
        with self._lock:
            bound = self._bound if watch is None else self._current(watch)
            if bound is None or bound.broken:
                return
            bound.broken = reason
            self.broken_paths += 1
            self._say(f"data path of {bound.attachment.instance_id} broken: {reason}; refusing calls and telling "
                      "the controller")
            self._apply(bound.attachment, force_report=True)

    def _healed_by(self, watch: ChannelWatch) -> None:
        with self._lock:
            if (bound := self._current(watch)) is None or not bound.broken:
                return
            bound.broken = ""
            self._say(f"data path of {bound.attachment.instance_id} works again; serving TensorFlow calls")
            self._apply(bound.attachment, force_report=True)

    def _report(self, bound: Bound, channel: pb.ChannelState, *, reason: str = "", round_trip_us: int = 0,
                force: bool = False) -> None:
        self._put(pb.VmActualState(attachment_id=bound.attachment.attachment_id, channel=channel,
                                   failure_reason=reason[:1024], round_trip_us=round_trip_us), force=force)

    def _put(self, state: pb.VmActualState, *, force: bool = False) -> None:
        self._actual = state
        self._report_soon(force)
