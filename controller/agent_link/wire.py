"""Translation between ``eais.v1`` messages and the plain values the agent-link logic works on."""

from __future__ import annotations

import re

from controller.agent_link.actual_state import (
    ChannelReport,
    ChannelState,
    ReportOutcome,
    SlicePhase,
    SliceReport,
    WorkerState,
)
from controller.agent_link.desired_state import (
    NodeDesired,
    SliceDesired,
    SliceRole,
    VmDesired,
)
from controller.agent_link.notebook_reports import NotebookReport, ServerState
from controller.agent_link.registration import Registration
from controller.agent_link.registration_rules import NodeInfo, SliceOfferInfo, VmInfo
from controller.agent_link.sessions import AgentKind
from controller.states import LISTED, Status
from controller.usage_samples import UsageFigures
from protos.eais.v1 import agents_pb2 as pb

_BACKENDS = {pb.BACKEND_GPU: "gpu", pb.BACKEND_CPU: "cpu", pb.BACKEND_SIMULATED: "simulated"}
_CLIENT_KINDS = {pb.CLIENT_KIND_ECS: "ECS", pb.CLIENT_KIND_ECI: "ECI"}
_AGENT_KINDS = {AgentKind.NODE: pb.AGENT_KIND_NODE, AgentKind.VM: pb.AGENT_KIND_VM}
_ROLES = {
    SliceRole.IDLE: pb.SLICE_ROLE_IDLE, SliceRole.SERVE: pb.SLICE_ROLE_SERVE, SliceRole.RELEASE: pb.SLICE_ROLE_RELEASE,
}
_PHASES = {pb.SLICE_PHASE_PREPARING: SlicePhase.PREPARING, pb.SLICE_PHASE_READY: SlicePhase.READY}
_WORKERS = {
    pb.WORKER_STATE_NONE: WorkerState.NONE, pb.WORKER_STATE_STARTING: WorkerState.STARTING,
    pb.WORKER_STATE_READY: WorkerState.READY, pb.WORKER_STATE_FAILED: WorkerState.FAILED,
    pb.WORKER_STATE_STOPPING: WorkerState.STOPPING,
}
_CHANNELS = {
    pb.CHANNEL_STATE_IDLE: ChannelState.IDLE, pb.CHANNEL_STATE_OPENING: ChannelState.OPENING,
    pb.CHANNEL_STATE_PROVEN: ChannelState.PROVEN, pb.CHANNEL_STATE_CLOSED: ChannelState.CLOSED,
    pb.CHANNEL_STATE_FAILED: ChannelState.FAILED, pb.CHANNEL_STATE_BROKEN: ChannelState.BROKEN,
}


_SERVER_STATES = {
    pb.NOTEBOOK_SERVER_STATE_NONE: ServerState.NONE, pb.NOTEBOOK_SERVER_STATE_STARTING: ServerState.STARTING,
    pb.NOTEBOOK_SERVER_STATE_READY: ServerState.READY, pb.NOTEBOOK_SERVER_STATE_FAILED: ServerState.FAILED,
}


def _status_enum_name(status: Status) -> str:
    """``InUse`` -> ``INSTANCE_STATUS_IN_USE`` (agents.proto names the enum values after the API's statuses)."""
    return "INSTANCE_STATUS_" + re.sub(r"(?<!^)(?=[A-Z])", "_", status.value).upper()


# The EI family's statuses as agents see them: the same work as the EAI status named, so agents need no
# EI-specific code (a Bound instance has no worker and no channel, as an Available one).
AGENT_VIEW: dict[Status, Status] = {
    Status.CREATING: Status.STARTING, Status.BINDABLE: Status.AVAILABLE, Status.BOUND: Status.AVAILABLE,
    Status.STARTING_WORKER: Status.ATTACHING, Status.STOPPING_WORKER: Status.DETACHING,
}
# Every status an agent can be shown; a status missing from the proto fails here, at import.
INSTANCE_STATUSES: dict[Status, int] = {
    s: pb.InstanceStatus.Value(_status_enum_name(AGENT_VIEW.get(s, s))) for s in LISTED
}
MAX_REASON = 200  # reasons land in 512-character transition rows next to our own words


def node_info(message: pb.NodeRegistration) -> NodeInfo:
    return NodeInfo(
        node_id=message.node_id, hostname=message.hostname, region_id=message.region_id,
        zone_id=message.zone_id, gateway_address=message.gateway_address,
        backend=_BACKENDS.get(message.backend, "unspecified"),
        accelerator_model=message.accelerator_model, tf_version=message.tf_version,
        slices=tuple(
            SliceOfferInfo(offer.local_id, offer.instance_type, offer.gpu_index, offer.memory_mib)
            for offer in message.slices
        ),
        gateway_csr_pem=message.gateway_csr_pem,
    )


def vm_info(message: pb.VmRegistration) -> VmInfo:
    return VmInfo(
        client_instance_id=message.client_instance_id, region_id=message.region_id, zone_id=message.zone_id,
        vpc_id=message.vpc_id, vswitch_id=message.vswitch_id,
        kind=_CLIENT_KINDS.get(message.kind, "unspecified"), name=message.name,
        instance_type=message.instance_type, vcpu=message.vcpu, memory_mib=message.memory_mib,
        tf_endpoint=message.tf_endpoint,
    )


def slice_reports(message: pb.NodeActualState) -> list[SliceReport]:
    return [
        SliceReport(
            slice_id=entry.slice_id, phase=_PHASES.get(entry.phase, SlicePhase.UNKNOWN),
            worker=_WORKERS.get(entry.worker, WorkerState.UNKNOWN), attachment_id=entry.attachment_id,
            instance_id=entry.instance_id, memory_free=entry.memory_free,
            failure_reason=entry.failure_reason[:MAX_REASON],
            usage=_usage_figures(entry.usage) if entry.HasField("usage") else None,
        )
        for entry in message.slices
    ]


def _usage_figures(message: pb.SliceUsage) -> UsageFigures:
    return UsageFigures(
        gpu_core_percent=message.gpu_core_usage_percent, gpu_memory_percent=message.gpu_memory_usage_percent,
        memory_used_mib=message.memory_used_mib, cpu_percent=message.cpu_usage_percent,
        memory_percent=message.memory_usage_percent,
    )


def channel_report(message: pb.VmActualState) -> ChannelReport:
    return ChannelReport(
        attachment_id=message.attachment_id, channel=_CHANNELS.get(message.channel, ChannelState.UNKNOWN),
        failure_reason=message.failure_reason[:MAX_REASON],
    )


def notebook_reports(message: pb.VmActualState) -> list[NotebookReport]:
    return [
        NotebookReport(
            instance_id=entry.instance_id, state=_SERVER_STATES.get(entry.state, ServerState.UNKNOWN), url=entry.url,
            attachment_id=entry.attachment_id, failure_reason=entry.failure_reason[:MAX_REASON],
        )
        for entry in message.notebooks
    ]


def heartbeat_deadline(deadline_us: int, now_us: int) -> pb.HeartbeatDeadline:
    return pb.HeartbeatDeadline(deadline_us=deadline_us, beat_within_ms=max(0, (deadline_us - now_us) // 1000))


def register_response(registration: Registration, now_us: int) -> pb.RegisterResponse:
    return pb.RegisterResponse(
        session_token=registration.session_token, agent_id=registration.agent_id,
        agent_kind=_AGENT_KINDS[registration.kind],
        heartbeat=heartbeat_deadline(registration.heartbeat_deadline_us, now_us), server_time_us=now_us,
        gateway_certificate_pem=registration.gateway_certificate_pem,
        ca_certificate_pem=registration.ca_certificate_pem,
    )


def node_desired_message(state: NodeDesired, now_us: int) -> pb.DesiredState:
    return pb.DesiredState(
        generated_us=now_us,
        node=pb.NodeDesiredState(node_id=state.node_id, slices=[_slice_message(s) for s in state.slices]),
    )


def _slice_message(state: SliceDesired) -> pb.SliceDesiredState:
    message = pb.SliceDesiredState(
        slice_id=state.slice_id, local_id=state.local_id, instance_type=state.instance_type,
        gpu_index=state.gpu_index, memory_mib=state.memory_mib, role=_ROLES[state.role],
    )
    if state.role is SliceRole.SERVE:
        message.instance.CopyFrom(pb.AssignedInstance(instance_id=state.instance_id, instance_type=state.instance_type,
                                                      status=INSTANCE_STATUSES[state.instance_status]))
    if state.attachment is not None:
        message.attachment.CopyFrom(pb.NodeAttachment(
            attachment_id=state.attachment.attachment_id, attachment_token=state.attachment.token,
            client_instance_id=state.attachment.client_instance_id,
        ))
    return message


def vm_desired_message(state: VmDesired, now_us: int) -> pb.DesiredState:
    message = pb.DesiredState(generated_us=now_us, vm=pb.VmDesiredState(client_instance_id=state.client_instance_id))
    grant = state.attachment
    if grant is not None:
        message.vm.attachment.CopyFrom(pb.VmAttachment(
            instance_id=grant.instance_id, instance_type=grant.instance_type, status=INSTANCE_STATUSES[grant.status],
            node_gateway_address=grant.node_gateway_address, attachment_id=grant.attachment_id,
            attachment_token=grant.token, node_tf_version=grant.node_tf_version,
        ))
    for notebook in state.notebooks:
        message.vm.notebooks.append(pb.VmNotebook(
            instance_id=notebook.instance_id, serve=notebook.serve, token=notebook.token,
            attachment_id=notebook.attachment_id,
            environment=[pb.EnvironmentVariable(key=key, value=value) for key, value in notebook.environment],
        ))
    return message


def report_ack(outcome: ReportOutcome) -> pb.ReportAck:
    return pb.ReportAck(transitions_applied=len(outcome.transitions), notes=outcome.notes)
