"""Tenant reads the EAIS API has no action for, signed like the API: ``GET /tenant/v1/bill`` and an instance's history.

The EAIS 2019-06-24 action set stays exactly Alibaba's; these live beside it on their own paths.
A request is signed with the caller's AccessKey exactly as an API call (ACS3-HMAC-SHA256 over
method, path, query and headers, as the v3 SDK's ``call_api`` does; or HMAC-SHA1 with ``Action``),
with ``Version=2019-06-24`` and the action that names the route (:data:`ROUTE_ACTIONS`), so a
signature made for one route cannot be used on another. Errors are the EAIS error body.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse

from controller.accounts import KeyRing, remember_nonce
from controller.api.admin_models import ID_PATTERN
from controller.api.caller_auth import authenticate
from controller.api.eais_responses import REQUEST_ID_HEADER
from controller.api.request_outcome import outcome_of
from controller.api.rpc_request import RpcRequest, headers_from_raw, parse_query
from controller.clock import from_datetime, to_datetime
from controller.console import tenant_reads
from controller.console.formatting import iso_utc, money
from controller.context import ControllerContext
from controller.errors import InvalidParameter

BILL, HISTORY = "DescribeTenantBill", "DescribeInstanceHistory"
ROUTE_ACTIONS = {"/tenant/v1/bill": BILL, "/tenant/v1/instances/{instance_id}/history": HISTORY}


class SignedCaller:
    """Authenticates a signed tenant request: the account it acts for, or the EAIS error."""

    def __init__(self, ctx: ControllerContext) -> None:
        self.ctx = ctx
        self.keys = KeyRing(ctx)
        self.window = timedelta(seconds=ctx.settings.api.signature_window_s)

    def account_of(self, request: Request, action: str) -> str:
        rpc = RpcRequest(method=request.method, path=request.url.path,
                         query=parse_query(request.scope.get("query_string", b"")),
                         headers=headers_from_raw(request.scope["headers"]), body=b"")

        def remember(access_key_id: str, nonce: str, signed_at: Any) -> bool:
            seen_us = max(from_datetime(signed_at), self.ctx.clock.now_us())
            return remember_nonce(self.ctx, access_key_id, nonce, seen_us, durable=False)  # reads: replay changes nothing

        caller = authenticate(rpc, lookup_secret=self.keys.secret, remember_nonce=remember,
                              now=to_datetime(self.ctx.clock.now_us()), window=self.window)
        if caller.action != action:
            raise InvalidParameter(f"This path answers the action {action}, not {caller.action[:64]!r}; "
                                   f"sign the request with Action={action}.", detail="Action")
        return self.keys.owner(caller.access_key_id).account_id


def bill_json(bill: tenant_reads.TenantBill) -> dict[str, Any]:
    def item(i: Any) -> dict[str, Any]:
        return {"InstanceId": i.instance_id, "InstanceType": i.instance_type, "HourStart": iso_utc(i.hour_start_us),
                "BilledSeconds": round(i.billed_us / 1e6, 3), "Amount": money(i.amount_micro)}

    return {"AccountId": bill.account_id, "AccountName": bill.account_name, "Currency": "CNY",
            "Balance": money(bill.balance_micro), "InDebt": bill.in_debt,
            "MinBalanceToCreate": money(bill.min_balance_to_create_micro),
            "RunningCharges": {"Amount": money(bill.running_micro), "Items": [item(i) for i in bill.running]},
            "Items": [item(i) for i in bill.closed]}


def history_json(instance_id: str, rows: list[tenant_reads.HistoryRow]) -> dict[str, Any]:
    return {"InstanceId": instance_id, "Transitions": [
        {"Time": iso_utc(r.at_us), "FromStatus": r.from_status or "", "ToStatus": r.to_status, "Event": r.event,
         "Reason": r.reason, "RequestId": r.request_id or ""} for r in rows]}


def mount_signed_routes(app: FastAPI, ctx: ControllerContext) -> None:
    caller = SignedCaller(ctx)
    router = APIRouter()

    @router.get("/tenant/v1/bill", include_in_schema=False)
    def bill(request: Request) -> JSONResponse:
        account_id = caller.account_of(request, _named(request, BILL))
        return _answer(request, bill_json(tenant_reads.tenant_bill(ctx, account_id)))

    @router.get("/tenant/v1/instances/{instance_id}/history", include_in_schema=False)
    def history(request: Request, instance_id: str) -> JSONResponse:
        account_id = caller.account_of(request, _named(request, HISTORY))
        if len(instance_id) > 64 or not _ID.match(instance_id):
            raise InvalidParameter(f"{instance_id[:64]!r} is not an instance ID.", detail="InstanceId")
        return _answer(request, history_json(instance_id, tenant_reads.instance_history(ctx, account_id, instance_id)))

    app.include_router(router)


def _named(request: Request, action: str) -> str:
    outcome_of(request.scope).action = action  # the metrics label, before anything can fail
    return action


def _answer(request: Request, body: dict[str, Any]) -> JSONResponse:
    request_id = outcome_of(request.scope).request_id
    return JSONResponse({"RequestId": request_id, **body}, headers={REQUEST_ID_HEADER: request_id})


_ID = re.compile(ID_PATTERN)
