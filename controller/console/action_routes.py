"""The console's API: EAIS actions run for the signed-in tenant, and the live status stream.

``POST /console/api/actions/{Action}`` takes the action's parameters under the API's own names
as a form body, with the session's CSRF token in ``X-CSRF-Token``, and runs the very handler the
RPC endpoint runs (``controller.api.dispatch.handler_for``): the same rules, the same error table.
It answers the action's JSON, or the EAIS error body (``Code``, ``Message``, ``RequestId``) with
the code's HTTP status, which the page shows as it is.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from controller.api.action_call import ActionCall
from controller.api.dispatch import handler_for
from controller.api.eais_responses import REQUEST_ID_HEADER
from controller.api.request_outcome import outcome_of
from controller.catalogue import require_region
from controller.console.guards import CSRF_HEADER, ConsoleAuth
from controller.console.live import instance_events
from controller.console.sessions import TENANT
from controller.console.web import form_fields
from controller.context import ControllerContext


async def run_action(ctx: ControllerContext, request: Request, account_id: str, action: str,
                     params: dict[str, str]) -> dict[str, Any]:
    """Run an EAIS action's handler for ``account_id``, in the thread pool (handlers block on the database)."""
    handler = handler_for(action)  # InvalidAction.NotFound / UnsupportedOperation as on the API
    call = ActionCall(ctx, account_id, params, outcome_of(request.scope).request_id)
    return await run_in_threadpool(handler, call)


def action_routes(ctx: ControllerContext, auth: ConsoleAuth) -> APIRouter:
    router = APIRouter()

    @router.post("/api/actions/{action}")
    async def act(request: Request, action: str) -> JSONResponse:
        session = auth.session(request, TENANT)
        auth.check_change(request, session, request.headers.get(CSRF_HEADER))
        params = await form_fields(request)
        body = await run_action(ctx, request, session.account_id, action[:64], params)
        request_id = outcome_of(request.scope).request_id
        return JSONResponse({"RequestId": request_id, **body}, headers={REQUEST_ID_HEADER: request_id})

    @router.get("/api/events")
    async def events(request: Request) -> StreamingResponse:
        session = auth.session(request, TENANT)
        region_id = require_region(ctx.settings, request.query_params.get("RegionId", "")[:64])
        return StreamingResponse(instance_events(ctx, session.account_id, region_id), media_type="text/event-stream",
                                 headers={"X-Accel-Buffering": "no"})

    return router
