"""What the local endpoint does right now and what people are told about it: one immutable view.

The attachment follower makes a new :class:`ChannelView` on every change; the endpoint routes
connections by it, the refusal server quotes its message, and the status answer is built from it.
Only a ``serving`` view carries the credentials to forward TensorFlow's connections.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from agent.instance_status import status_name
from agent.vm.channel.gateway import GatewayGrant
from protos.eais.v1 import agents_pb2 as pb


class EndpointState(StrEnum):
    """The ``state`` field of the status answer (eais_plumbing.endpoint_status)."""

    SERVING = "serving"
    IDLE = "idle"
    ATTACHING = "attaching"
    DETACHING = "detaching"
    FAILED = "failed"
    LOST = "lost"  # the data path of the instance in use broke


@dataclass(frozen=True)
class ChannelView:
    state: EndpointState
    message: str
    instance_id: str = ""
    instance_type: str = ""
    status: str = ""
    attachment_id: str = ""
    node_gateway: str = ""
    node_tf_version: str = ""
    round_trip_us: int = 0
    gateway: GatewayGrant | None = None  # set only while serving
    awaiting_controller: bool = False  # attaching with the channel proven: serving is a moment away

    @property
    def serving(self) -> bool:
        return self.state is EndpointState.SERVING and self.gateway is not None


def _about(attachment: pb.VmAttachment) -> dict[str, str]:
    return {"instance_id": attachment.instance_id, "instance_type": attachment.instance_type,
            "status": status_name(attachment.status), "attachment_id": attachment.attachment_id,
            "node_gateway": attachment.node_gateway_address, "node_tf_version": attachment.node_tf_version}


def starting_view(vm: str, controller: str) -> ChannelView:
    return ChannelView(EndpointState.IDLE, f"the agent of {vm} is not registered with the controller at {controller} "
                       "yet; no accelerator can be attached until it is")


def idle_view(vm: str, last_outcome: str = "") -> ChannelView:
    if last_outcome:
        return ChannelView(EndpointState.IDLE, f"{last_outcome}; no accelerator attached now (attach one with "
                           "AttachEai, or StartEaisEi an EI instance bound to this VM)")
    return ChannelView(EndpointState.IDLE, f"no accelerator attached to {vm}; status Available "
                       "(attach an EAIS instance to this VM with AttachEai, or AttachEaisEi and StartEaisEi an EI instance)")


def attaching_view(vm: str, attachment: pb.VmAttachment, note: str = "", *, proven: bool = False) -> ChannelView:
    if attachment.status == pb.INSTANCE_STATUS_ATTACHING:
        message = f"instance {attachment.instance_id} is Attaching to {vm}; not ready yet"
    else:
        message = (f"instance {attachment.instance_id} is {status_name(attachment.status)} on {vm} "
                   "but its channel is not open yet")
    return ChannelView(EndpointState.ATTACHING, f"{message} ({note})" if note else message,
                       awaiting_controller=proven, **_about(attachment))


def serving_view(vm: str, attachment: pb.VmAttachment, grant: GatewayGrant, round_trip_us: int) -> ChannelView:
    message = (f"accelerator {attachment.instance_id} ({attachment.instance_type}) attached to {vm} "
               f"via node gateway {attachment.node_gateway_address}")
    return ChannelView(EndpointState.SERVING, message, round_trip_us=round_trip_us, gateway=grant, **_about(attachment))


def detaching_view(vm: str, attachment: pb.VmAttachment) -> ChannelView:
    return ChannelView(EndpointState.DETACHING, f"accelerator {attachment.instance_id} detached from {vm} "
                       f"(status {status_name(attachment.status)})", **_about(attachment))


def lost_view(vm: str, attachment: pb.VmAttachment, reason: str) -> ChannelView:
    return ChannelView(EndpointState.LOST, lost_outcome(vm, attachment.instance_id, reason), **_about(attachment))


def failed_view(vm: str, attachment: pb.VmAttachment, reason: str) -> ChannelView:
    message = f"instance {attachment.instance_id} could not be attached to {vm}: {reason}"
    return ChannelView(EndpointState.FAILED, message, **_about(attachment))


def detached_outcome(vm: str, instance_id: str) -> str:
    return f"accelerator {instance_id} detached from {vm}"


def failed_outcome(vm: str, instance_id: str, reason: str) -> str:
    return f"instance {instance_id} could not be attached to {vm}: {reason}"


def lost_outcome(vm: str, instance_id: str, reason: str) -> str:
    return (f"accelerator {instance_id} attached to {vm} lost its data path: {reason}; calls fail until an "
            "accelerator is attached again (the controller makes the instance Unavailable)")


def ended_outcome(vm: str, instance_id: str, last_status: str) -> str:
    """An attachment that vanished while Attaching or InUse: the controller ended it (DescribeEais says why)."""
    return (f"the controller ended the attachment of {instance_id} to {vm} while it was {last_status} "
            "(DescribeEais shows the instance's status now)")
