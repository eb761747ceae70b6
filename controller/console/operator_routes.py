"""The operator's pages, behind the admin token: nodes and their slices, client VMs and their agents,
accounts and balances (with top-ups), and which replica leads the reconciler.

They read through the admin API's own functions (``admin_reads``, ``admin_fleet``) and change
balances through ``accounts.top_up``, as ``POST /admin/v1/accounts/{id}/top-up`` does.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from controller import accounts, ledger
from controller.api import admin_fleet, admin_reads
from controller.console.guards import CSRF_FIELD, ConsoleAuth
from controller.console.sessions import OPERATOR
from controller.console.web import BASE, form_fields, render
from controller.context import ControllerContext
from controller.errors import InvalidParameter, MissingParameter

PAGES = f"{BASE}/operator"


def fleet_view(ctx: ControllerContext) -> dict[str, Any]:
    """Nodes with their slices, the lease, and which client VM holds which instance."""
    slices = admin_fleet.slices(ctx)
    by_node: dict[str, list] = {}
    for one in slices:
        by_node.setdefault(one.node_id, []).append(one)
    holds = {s.client_instance_id: s.instance_id for s in slices if s.client_instance_id}
    return {"nodes": admin_reads.nodes(ctx), "slices": by_node, "lease": admin_fleet.reconciler_lease(ctx),
            "holds": holds, "now_us": ctx.clock.now_us()}


def accounts_view(ctx: ControllerContext) -> list[dict[str, Any]]:
    return [{"account": a, "running_micro": ledger.running_charges(ctx, a.account_id).amount_micro}
            for a in admin_reads.accounts(ctx)]


def operator_routes(ctx: ControllerContext, auth: ConsoleAuth) -> APIRouter:
    router = APIRouter(prefix="/operator")

    def page(request: Request) -> dict[str, Any]:
        session = auth.session(request, OPERATOR)
        return {"csrf_token": auth.seal.csrf_token(session), "operator": True}

    @router.get("/")
    def home() -> Response:
        return RedirectResponse(f"{PAGES}/nodes", status_code=303)

    @router.get("/nodes")
    async def nodes(request: Request) -> Response:
        return render("operator_nodes.html", **page(request), **await run_in_threadpool(fleet_view, ctx))

    @router.get("/vms")
    async def vms(request: Request) -> Response:
        context = page(request)
        fleet = await run_in_threadpool(fleet_view, ctx)
        clients = await run_in_threadpool(admin_reads.client_instances, ctx, None)
        return render("operator_vms.html", **context, clients=clients, holds=fleet["holds"], lease=fleet["lease"])

    @router.get("/accounts")
    async def account_list(request: Request) -> Response:
        context = page(request)
        return render("operator_accounts.html", **context, accounts=await run_in_threadpool(accounts_view, ctx),
                      lease=admin_fleet.reconciler_lease(ctx), done=request.query_params.get("done", "")[:200])

    @router.post("/accounts/top-up")
    async def top_up(request: Request) -> Response:
        session = auth.session(request, OPERATOR)
        fields = await form_fields(request)
        auth.check_change(request, session, fields.get(CSRF_FIELD))
        account_id, amount = fields.get("account_id", ""), _amount(fields.get("amount", ""))
        account = await run_in_threadpool(accounts.top_up, ctx, account_id[:64], amount)
        done = f"Added {amount} CNY to {account.name}; the balance is {admin_reads.account_public(account).balance} CNY."
        return RedirectResponse(f"{PAGES}/accounts?{urlencode({'done': done})}", status_code=303)

    return router


def _amount(text: str) -> Decimal:
    if not text.strip():
        raise MissingParameter("Amount")
    try:
        return Decimal(text.strip())
    except InvalidOperation:
        raise InvalidParameter(f"Amount {text[:40]!r} is not a number; give CNY such as 100 or 12.5.",
                               detail="Amount") from None
