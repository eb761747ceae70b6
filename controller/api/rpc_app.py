"""The EAIS RPC endpoint (``GET|POST /``): size limits, authentication, dispatch, the answer's format.

Handlers run in the thread pool (they block on the database); nothing here knows a rule. Errors
are raised, and ``controller.api.error_handling`` answers them with the EAIS error body. A client
that disconnects after its request was read does not stop the action: it runs to its end.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from fastapi import FastAPI, Request
from fastapi.responses import Response

from controller.accounts import KeyRing, remember_nonce
from controller.api.action_call import ActionCall
from controller.api.caller_auth import authenticate
from controller.api.dispatch import READ_ONLY_ACTIONS, action_label, claimed_action, handler_for
from controller.api.eais_responses import error_response, requested_format, success_response
from controller.api.error_handling import install_error_handler
from controller.api.request_outcome import outcome_of
from controller.api.rpc_request import RpcRequest, headers_from_raw, is_form, parse_query
from controller.clock import from_datetime, to_datetime
from controller.context import ControllerContext
from controller.errors import RequestTooLarge


class RpcEndpoint:
    def __init__(self, ctx: ControllerContext) -> None:
        self.ctx = ctx
        self.keys = KeyRing(ctx)
        self.window = timedelta(seconds=ctx.settings.api.signature_window_s)
        # Few threads: handlers are short and CPU-bound, and more threads only fight over the GIL. Reads get
        # their own: a read never queues behind writes waiting for the database's one writer.
        self._executor = ThreadPoolExecutor(max_workers=ctx.settings.api.handler_threads, thread_name_prefix="eais-api")
        self._read_executor = ThreadPoolExecutor(max_workers=ctx.settings.api.handler_threads,
                                                 thread_name_prefix="eais-api-read")

    async def __call__(self, request: Request) -> Response:
        outcome = outcome_of(request.scope)
        body = await self._read_body(request)
        rpc = RpcRequest(
            method=request.method, path=request.url.path,
            query=parse_query(request.scope.get("query_string", b"")),
            headers=headers_from_raw(request.scope["headers"]), body=body,
        )
        claimed = claimed_action(rpc)
        outcome.action = action_label(claimed)
        if is_form(rpc):
            outcome.response_format = requested_format(request.scope.get("query_string", b""), body)
        # The claimed action only picks the pool; handle() verifies the signature that covers it.
        executor = self._read_executor if claimed in READ_ONLY_ACTIONS else self._executor
        action, payload = await asyncio.get_running_loop().run_in_executor(executor, self.handle, rpc, outcome.request_id)
        return success_response(action, payload, outcome.request_id, outcome.response_format)

    def handle(self, rpc: RpcRequest, request_id: str) -> tuple[str, dict]:
        """Authenticate and run the action; its verified name and its answer's fields."""
        read_only = claimed_action(rpc) in READ_ONLY_ACTIONS

        def remember(access_key_id: str, nonce: str, signed_at: datetime) -> bool:
            # Called only once the signature (which covers the action) has been verified.
            return self._remember_nonce(access_key_id, nonce, signed_at, durable=not read_only)

        caller = authenticate(
            rpc, lookup_secret=self.keys.secret, remember_nonce=remember,
            now=to_datetime(self.ctx.clock.now_us()), window=self.window,
        )
        handler = handler_for(caller.action)
        account_id = self.keys.owner(caller.access_key_id).account_id
        return caller.action, handler(ActionCall(self.ctx, account_id, caller.params, request_id))

    def _remember_nonce(self, access_key_id: str, nonce: str, signed_at: datetime, *, durable: bool) -> bool:
        # Keyed by the signed time: a request dated ahead stays replayable until signed_at + window.
        seen_us = max(from_datetime(signed_at), self.ctx.clock.now_us())
        return remember_nonce(self.ctx, access_key_id, nonce, seen_us, durable=durable)

    async def _read_body(self, request: Request) -> bytes:
        limit = self.ctx.settings.api.max_body_bytes
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise RequestTooLarge(f"The request body is {declared} bytes; the limit is {limit}.")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise RequestTooLarge(f"The request body is over the limit of {limit} bytes.")
            chunks.append(chunk)
        return b"".join(chunks)


def mount_rpc(app: FastAPI, ctx: ControllerContext) -> None:
    """The RPC endpoint on ``/``, and the EAIS error body for every error outside ``/admin``."""
    endpoint = RpcEndpoint(ctx)
    app.add_api_route("/", endpoint, methods=["GET", "POST"], include_in_schema=False)
    host_id = ctx.settings.api.host_id
    install_error_handler(app, lambda error, outcome: error_response(error, outcome.request_id, host_id,
                                                                     outcome.response_format))
