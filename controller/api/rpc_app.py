"""The EAIS RPC endpoint (``GET|POST /``): size limits, authentication, dispatch, error bodies.

Handlers run in the thread pool (they block on the database); nothing here knows a rule.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from controller.accounts import KeyRing, remember_nonce
from controller.api.action_call import ActionCall
from controller.api.caller_auth import authenticate
from controller.api.dispatch import READ_ONLY_ACTIONS, claimed_action, handler_for
from controller.api.render import error_json
from controller.api.rpc_request import RpcRequest, headers_from_raw, parse_query
from controller.clock import from_datetime, to_datetime
from controller.context import ControllerContext
from controller.errors import EaisError, InternalError, RequestTooLarge
from controller.ids import new_request_id

log = logging.getLogger("eais.api")


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

    async def __call__(self, request: Request) -> JSONResponse:
        request_id = new_request_id()
        try:
            body = await self._read_body(request)
            rpc = RpcRequest(
                method=request.method, path=request.url.path,
                query=parse_query(request.scope.get("query_string", b"")),
                headers=headers_from_raw(request.scope["headers"]), body=body,
            )
            # The claimed action only picks the pool; handle() verifies the signature that covers it.
            executor = self._read_executor if claimed_action(rpc) in READ_ONLY_ACTIONS else self._executor
            payload = await asyncio.get_running_loop().run_in_executor(executor, self.handle, rpc, request_id)
            return self._answer(200, {"RequestId": request_id, **payload}, request_id)
        except EaisError as error:
            return self._error(error, request_id)
        except Exception:  # noqa: BLE001 - the one place a bug becomes a clean 500
            log.exception("request %s failed", request_id)
            return self._error(InternalError("The request processing has failed due to some unknown error."), request_id)

    def handle(self, rpc: RpcRequest, request_id: str) -> dict:
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
        return handler(ActionCall(self.ctx, account_id, caller.params, request_id))

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

    def _error(self, error: EaisError, request_id: str) -> JSONResponse:
        body = error_json(error, request_id=request_id, host_id=self.ctx.settings.api.host_id)
        return self._answer(error.http_status, body, request_id)

    @staticmethod
    def _answer(status: int, body: dict, request_id: str) -> JSONResponse:
        return JSONResponse(body, status_code=status, headers={"x-acs-request-id": request_id})


def mount_rpc(app: FastAPI, ctx: ControllerContext) -> None:
    endpoint = RpcEndpoint(ctx)
    app.add_api_route("/", endpoint, methods=["GET", "POST"], include_in_schema=False)
