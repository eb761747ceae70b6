"""The console's web application, mounted by the controller at ``/console``.

Pages render on the server (Jinja2); one small script of ours (``static/console.js``) runs the
forms through the console API, keeps the instance list live and refreshes the charts. Nothing is
built on the user's machine. Errors: a page shows the EAIS code and message in its layout; the
console API answers the EAIS error body; a request without a live session is sent to sign in
(pages) or answered ``IncompleteSignature`` (API: the script then goes to the sign-in page).
"""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from controller.api.eais_responses import REQUEST_ID_HEADER
from controller.api.error_handling import as_eais_error
from controller.api.render import error_json
from controller.api.request_outcome import outcome_of
from controller.console.action_routes import action_routes
from controller.console.guards import ConsoleAuth, SignInRequired
from controller.console.operator_routes import operator_routes
from controller.console.sessions import OPERATOR
from controller.console.sign_in_routes import sign_in_routes
from controller.console.tenant_routes import tenant_routes
from controller.console.web import BASE, ConsoleHeaders, render
from controller.context import ControllerContext
from controller.errors import EaisError, IncompleteSignature, InternalError

log = logging.getLogger("eais.console")
STATIC = Path(__file__).with_name("static")


def create_console_app(ctx: ControllerContext) -> FastAPI:
    auth = ConsoleAuth(ctx)
    app = FastAPI(title="eais console", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(ConsoleHeaders)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for router in (sign_in_routes(auth), action_routes(ctx, auth), operator_routes(ctx, auth), tenant_routes(ctx, auth)):
        app.include_router(router)
    host_id = ctx.settings.api.host_id

    async def answer(request: Request, exc: Exception) -> Response:
        if isinstance(exc, SignInRequired):
            return _to_sign_in(request, exc, host_id)
        error = as_eais_error(exc, request)
        outcome = outcome_of(request.scope)
        outcome.error_code = error.code
        if isinstance(error, InternalError):
            log.error("console request %s failed", outcome.request_id, exc_info=exc)
        headers = {REQUEST_ID_HEADER: outcome.request_id, **error.response_headers}
        if _wants_json(request):
            return JSONResponse(error_json(error, request_id=outcome.request_id, host_id=host_id),
                                status_code=error.http_status, headers=headers)
        page = render("error.html", error.http_status, error=error, request_id=outcome.request_id,
                      operator=request.url.path.startswith(f"{BASE}/operator"))
        page.headers.update(headers)
        return page

    for kind in (EaisError, SignInRequired, HTTPException, RequestValidationError, Exception):
        app.add_exception_handler(kind, answer)
    return app


def _wants_json(request: Request) -> bool:
    path = request.url.path
    return path.startswith(f"{BASE}/api/") or request.headers.get("x-requested-with") == "console"


def _to_sign_in(request: Request, exc: SignInRequired, host_id: str) -> Response:
    outcome = outcome_of(request.scope)
    if _wants_json(request):
        error = IncompleteSignature(f"{exc.reason} Sign in again at {BASE}/sign-in.")
        outcome.error_code = error.code
        return JSONResponse(error_json(error, request_id=outcome.request_id, host_id=host_id),
                            status_code=error.http_status, headers={REQUEST_ID_HEADER: outcome.request_id})
    where = f"{BASE}/operator/sign-in" if exc.role == OPERATOR else f"{BASE}/sign-in"
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    query = {"reason": exc.reason, **({"next": target} if request.method == "GET" else {})}
    return RedirectResponse(f"{where}?{urlencode(query)}", status_code=303)
