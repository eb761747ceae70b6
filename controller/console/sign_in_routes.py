"""Signing in and out of the console, as a tenant (AccessKey) or as an operator (admin token).

The sign-in form is itself CSRF-protected (a short-lived pre-session cookie and its token), so
another site cannot sign a browser into an account of its choosing. The secret travels only in
the POST body; the answer is a redirect, so it never stays in the browser's history or a URL.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from controller.console.guards import CSRF_FIELD, ConsoleAuth
from controller.console.sessions import OPERATOR, SIGN_IN, TENANT
from controller.console.web import BASE, form_fields, render
from controller.errors import EaisError, InvalidParameter

LANDING = {TENANT: f"{BASE}/instances", OPERATOR: f"{BASE}/operator/nodes"}


def safe_next(target: str | None, role: str) -> str:
    """Where to go after signing in: a console page of the same role, never another site."""
    landing = LANDING[role]
    if not target or not target.startswith(f"{BASE}/") or target.startswith("//") or "\\" in target:
        return landing
    if (role == OPERATOR) != target.startswith(f"{BASE}/operator/"):
        return landing
    return target[:512]


def sign_in_routes(auth: ConsoleAuth) -> APIRouter:
    router = APIRouter()

    def form(request: Request, role: str, *, status_code: int = 200, error: EaisError | None = None,
             access_key_id: str = "", reason: str = "", next_target: str | None = None) -> Response:
        pre = auth.seal.new(SIGN_IN)
        auth.start(request, pre)
        return render("sign_in.html", status_code, operator=role == OPERATOR, csrf_token=auth.seal.csrf_token(pre), error=error,
                      access_key_id=access_key_id, next=safe_next(next_target or request.query_params.get("next"), role),
                      reason=reason or request.query_params.get("reason", "")[:200])

    async def submit(request: Request, role: str) -> Response:
        fields = await form_fields(request)
        try:
            pre = auth.seal.open(request.cookies.get("eais_sign_in"), SIGN_IN)
            if pre is None:
                raise InvalidParameter("The sign-in form has expired, or this browser does not keep cookies; reload "
                                       "the page and sign in again.", detail="CsrfToken")
            auth.check_change(request, pre, fields.get(CSRF_FIELD))
            session = (auth.sign_in_tenant(fields.get("access_key_id", "").strip(), fields.get("access_key_secret", ""))
                       if role == TENANT else auth.sign_in_operator(fields.get("admin_token", "")))
        except EaisError as error:
            return form(request, role, status_code=error.http_status, error=error,
                        access_key_id=fields.get("access_key_id", "")[:128], next_target=fields.get("next"))
        auth.end(request, SIGN_IN)
        auth.start(request, session)
        return RedirectResponse(safe_next(fields.get("next"), role), status_code=303)

    async def sign_out(request: Request, role: str) -> Response:
        fields = await form_fields(request)
        session = auth.session(request, role)
        auth.check_change(request, session, fields.get(CSRF_FIELD))
        auth.end(request, role)
        return RedirectResponse(f"{LANDING[role].rsplit('/', 1)[0]}/sign-in?reason=Signed+out.", status_code=303)

    for role, prefix in ((TENANT, ""), (OPERATOR, "/operator")):
        router.add_api_route(f"{prefix}/sign-in", _bound(form, role), methods=["GET"])
        router.add_api_route(f"{prefix}/sign-in", _bound(submit, role), methods=["POST"])
        router.add_api_route(f"{prefix}/sign-out", _bound(sign_out, role), methods=["POST"])
    return router


def _bound(handler: Callable[..., Any], role: str) -> Callable[[Request], Any]:
    """``handler`` as a route of one role (FastAPI reads the route's own signature: only the request)."""
    if inspect.iscoroutinefunction(handler):
        async def route(request: Request) -> Response:
            return await handler(request, role)
    else:
        def route(request: Request) -> Response:
            return handler(request, role)
    return route
