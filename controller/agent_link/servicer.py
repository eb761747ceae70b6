"""The ``eais.v1.AgentLink`` servicer: authenticate, translate, delegate. No rules live here."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import grpc

from controller.agent_ca import load_or_create_agent_ca
from controller.agent_link import wire
from controller.agent_link.actual_state import apply_node_report, apply_vm_report
from controller.agent_link.auth import AgentAuthenticator, metadata_dict
from controller.agent_link.desired_state import NodeDesired, VmDesired, node_desired_state, vm_desired_state
from controller.agent_link.grpc_errors import translate_errors
from controller.agent_link.heartbeats import record_heartbeat
from controller.agent_link.registration import register_node, register_vm
from controller.agent_link.sessions import AgentIdentity, AgentKind
from controller.context import ControllerContext
from controller.errors import InvalidParameter, MissingParameter
from protos.eais.v1 import agents_pb2 as pb
from protos.eais.v1 import agents_pb2_grpc


@dataclass(frozen=True)
class WatchTiming:
    """How WatchDesiredState follows the database (seconds)."""

    poll_s: float = 0.3  # how often each stream re-reads its agent's desired state
    resend_s: float = 15.0  # send the unchanged state again this often, so agents can trust silence less


class AgentLinkServicer(agents_pb2_grpc.AgentLinkServicer):
    def __init__(
        self, ctx: ControllerContext, *, watch: WatchTiming | None = None, rng: random.Random | None = None
    ) -> None:
        self._ctx = ctx
        self._auth = AgentAuthenticator(ctx)
        self._ca = load_or_create_agent_ca(ctx.settings)
        self._watch = watch or WatchTiming()
        self._rng = rng

    @translate_errors
    def Register(self, request: pb.RegisterRequest, context: grpc.ServicerContext) -> pb.RegisterResponse:
        metadata = metadata_dict(context.invocation_metadata())
        which = request.WhichOneof("agent")
        if which == "node":
            self._auth.require_node_token(metadata)
            registration = register_node(self._ctx, wire.node_info(request.node), self._ca, rng=self._rng)
        elif which == "vm":
            account_id = self._auth.vm_account(metadata, request.SerializeToString(deterministic=True))
            registration = register_vm(self._ctx, wire.vm_info(request.vm), account_id, self._ca, rng=self._rng)
        else:
            raise MissingParameter("node or vm")
        return wire.register_response(registration, self._ctx.clock.now_us())

    @translate_errors
    def Heartbeat(self, request: pb.HeartbeatRequest, context: grpc.ServicerContext) -> pb.HeartbeatResponse:
        agent = self._auth.session(metadata_dict(context.invocation_metadata()))
        deadline = record_heartbeat(self._ctx, agent, self._rng)
        return pb.HeartbeatResponse(heartbeat=wire.heartbeat_deadline(deadline, self._ctx.clock.now_us()))

    @translate_errors
    def WatchDesiredState(self, request: pb.WatchRequest, context: grpc.ServicerContext) -> Iterator[pb.DesiredState]:
        metadata = metadata_dict(context.invocation_metadata())
        self._auth.session(metadata)  # refuse a bad token before the first poll
        changed = self._ctx.db.status_changed
        ended = threading.Event()
        context.add_callback(lambda: (ended.set(), changed.notify()))  # cancelled: stop waiting at once
        last, last_sent = None, float("-inf")
        while context.is_active():
            seen = changed.generation
            agent = self._auth.session(metadata)  # a newer Register ends this stream with UNAUTHENTICATED
            state = self._desired_state(agent)
            if state != last or time.monotonic() - last_sent >= self._watch.resend_s:
                yield self._desired_message(state)
                last, last_sent = state, time.monotonic()
            changed.wait_for_change(seen, self._watch.poll_s)  # a status change here, or the poll
            if ended.is_set():
                return

    @translate_errors
    def ReportActualState(self, request: pb.ActualStateReport, context: grpc.ServicerContext) -> pb.ReportAck:
        agent = self._auth.session(metadata_dict(context.invocation_metadata()))
        which = request.WhichOneof("agent")
        if which != agent.kind.value:
            raise InvalidParameter(
                f"This session belongs to a {agent.kind} agent; send the '{agent.kind}' part of the report."
            )
        if agent.kind is AgentKind.NODE:
            outcome = apply_node_report(self._ctx, agent.agent_id, wire.slice_reports(request.node))
        else:
            outcome = apply_vm_report(self._ctx, agent.agent_id, wire.channel_report(request.vm))
        return wire.report_ack(outcome)

    def _desired_state(self, agent: AgentIdentity) -> NodeDesired | VmDesired:
        if agent.kind is AgentKind.NODE:
            return node_desired_state(self._ctx, agent.agent_id)
        return vm_desired_state(self._ctx, agent.agent_id)

    def _desired_message(self, state: NodeDesired | VmDesired) -> pb.DesiredState:
        now = self._ctx.clock.now_us()
        if isinstance(state, NodeDesired):
            return wire.node_desired_message(state, now)
        return wire.vm_desired_message(state, now)
