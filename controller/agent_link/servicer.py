"""The ``eais.v1.AgentLink`` servicer (grpc.aio): authenticate, translate, delegate. No rules live here.

Every method is a coroutine on the agent link's event loop; database work runs on its small
executor (``run_in_db``). A heartbeat is answered from memory (``HeartbeatBook``) with the session
taken from ``SessionCache``; a desired-state stream waits on its own event (``StreamRegistry``)
and reads its agent's state only when woken.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc

from controller.agent_ca import load_or_create_agent_ca
from controller.agent_link import wire
from controller.agent_link.actual_state import apply_node_report, apply_vm_report
from controller.agent_link.auth import AgentAuthenticator, bearer_token, metadata_dict
from controller.agent_link.desired_state import NodeDesired, VmDesired, node_desired_state, vm_desired_state
from controller.agent_link.grpc_errors import translate_errors
from controller.agent_link.heartbeat_book import HeartbeatBook
from controller.agent_link.link_metrics import count_heartbeat
from controller.agent_link.notebook_reports import apply_notebook_reports
from controller.agent_link.registration import Registration, register_node, register_vm
from controller.agent_link.sessions import AgentIdentity, AgentKind, SessionCache, session_token_hash
from controller.agent_link.streams import Stream, StreamRegistry
from controller.context import ControllerContext
from controller.errors import InvalidParameter, MissingParameter
from protos.eais.v1 import agents_pb2 as pb
from protos.eais.v1 import agents_pb2_grpc

RunInDb = Callable[..., Awaitable[Any]]


@dataclass(frozen=True)
class WatchTiming:
    """How WatchDesiredState follows the database (seconds)."""

    resync_s: float = 10.0  # the safety net: every open stream is checked against the database this often
    resend_s: float = 15.0  # send the unchanged state again this often, so agents can trust silence less


class AgentLinkServicer(agents_pb2_grpc.AgentLinkServicer):
    def __init__(
        self, ctx: ControllerContext, *, run_in_db: RunInDb, sessions: SessionCache, book: HeartbeatBook,
        streams: StreamRegistry, watch: WatchTiming, rng: random.Random | None = None,
    ) -> None:
        self._ctx, self._db, self._rng = ctx, run_in_db, rng
        self._auth = AgentAuthenticator(ctx)
        self._ca = load_or_create_agent_ca(ctx.settings)
        self._sessions, self._book, self._streams, self._watch = sessions, book, streams, watch

    @translate_errors
    async def Register(self, request: pb.RegisterRequest, context: grpc.aio.ServicerContext) -> pb.RegisterResponse:
        metadata = metadata_dict(context.invocation_metadata())
        which, account_id = request.WhichOneof("agent"), None
        if which == "node":
            self._auth.require_node_token(metadata)
            registration = await self._db(register_node, self._ctx, wire.node_info(request.node), self._ca,
                                          rng=self._rng)
        elif which == "vm":
            account_id = await self._db(self._auth.vm_account, metadata, request.SerializeToString(deterministic=True))
            registration = await self._db(register_vm, self._ctx, wire.vm_info(request.vm), account_id, self._ca,
                                          rng=self._rng)
        else:
            raise MissingParameter("node or vm")
        self._remember(registration, account_id)
        return wire.register_response(registration, self._ctx.clock.now_us())

    @translate_errors
    async def Heartbeat(self, request: pb.HeartbeatRequest, context: grpc.aio.ServicerContext) -> pb.HeartbeatResponse:
        agent, token = await self._session(context)
        outcome = self._book.beat(agent, session_token_hash(token))
        count_heartbeat(agent.kind.value, outcome.late)
        return pb.HeartbeatResponse(heartbeat=wire.heartbeat_deadline(outcome.deadline_us, self._ctx.clock.now_us()))

    @translate_errors
    async def WatchDesiredState(self, request: pb.WatchRequest, context: grpc.aio.ServicerContext
                                ) -> AsyncIterator[pb.DesiredState]:
        agent, token = await self._session(context)  # refuse a bad token before anything is sent
        with self._streams.open(agent, session_token_hash(token)) as stream:
            sent_at = float("-inf")
            while True:
                if stream.session_void:  # a newer Register ends this stream with UNAUTHENTICATED
                    await self._db(self._sessions.load, token)
                    stream.session_void = False
                if stream.last_sent is None or stream.wake.is_set():  # woken: read the state; else a resend
                    stream.wake.clear()
                    state = await self._db(self._desired_state, agent)
                else:
                    state = stream.last_sent
                if state != stream.last_sent or time.monotonic() - sent_at >= self._watch.resend_s:
                    yield self._desired_message(state)
                    stream.last_sent, sent_at = state, time.monotonic()
                await _wait_for(stream, sent_at + self._watch.resend_s - time.monotonic())

    @translate_errors
    async def ReportActualState(self, request: pb.ActualStateReport, context: grpc.aio.ServicerContext
                                ) -> pb.ReportAck:
        agent, _ = await self._session(context)
        which = request.WhichOneof("agent")
        if which != agent.kind.value:
            raise InvalidParameter(
                f"This session belongs to a {agent.kind} agent; send the '{agent.kind}' part of the report."
            )
        if agent.kind is AgentKind.NODE:
            outcome = await self._db(apply_node_report, self._ctx, agent.agent_id, wire.slice_reports(request.node))
        else:
            outcome = await self._db(apply_vm_report, self._ctx, agent.agent_id, wire.channel_report(request.vm))
            notebooks = await self._db(apply_notebook_reports, self._ctx, agent.agent_id,
                                       wire.notebook_reports(request.vm))
            outcome.transitions.extend(notebooks.transitions)
            outcome.notes.extend(notebooks.notes)
        return wire.report_ack(outcome)

    async def _session(self, context: grpc.aio.ServicerContext) -> tuple[AgentIdentity, str]:
        token = bearer_token(metadata_dict(context.invocation_metadata()))
        agent = self._sessions.cached(token) or await self._db(self._sessions.load, token)
        return agent, token

    def _remember(self, registration: Registration, account_id: str | None) -> None:
        agent = AgentIdentity(registration.kind, registration.agent_id, account_id)
        self._sessions.remember(session_token_hash(registration.session_token), agent)
        self._book.handed_out(agent, registration.heartbeat_deadline_us)

    def _desired_state(self, agent: AgentIdentity) -> NodeDesired | VmDesired:
        if agent.kind is AgentKind.NODE:
            return node_desired_state(self._ctx, agent.agent_id)
        return vm_desired_state(self._ctx, agent.agent_id)

    def _desired_message(self, state: NodeDesired | VmDesired) -> pb.DesiredState:
        now = self._ctx.clock.now_us()
        if isinstance(state, NodeDesired):
            return wire.node_desired_message(state, now)
        return wire.vm_desired_message(state, now)


async def _wait_for(stream: Stream, timeout_s: float) -> None:
    """Until the stream is woken, or the resend is due (asyncio.timeout: no task per waiting stream, unlike wait_for)."""
    try:
        async with asyncio.timeout(max(0.0, timeout_s)):
            await stream.wake.wait()
    except TimeoutError:
        pass
