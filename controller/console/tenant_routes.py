"""The tenant's pages: instances of a region (live), one instance (actions, tags, charts, history), the bill.

Routes translate and delegate: lists and charts come from the EAIS handlers (DescribeEais,
GetInstanceMetrics) run for the signed-in account, everything else from ``tenant_reads``.
Fragments (``…/rows``, ``…/panel``, ``…/charts``) are the same markup the pages embed, fetched
again by the page's script when the live stream says something changed.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from controller.accounts import existing_account
from controller.clock import US_PER_S
from controller.console import tenant_reads
from controller.console.action_routes import run_action
from controller.console.charts import WINDOWS, Point, line_chart
from controller.console.guards import ConsoleAuth
from controller.console.sessions import TENANT, Session
from controller.console.tenant_views import FILTER_STATUSES, PAGE_SIZES, Filters, instance_row, release_rules, type_options
from controller.console.web import BASE, render
from controller.context import ControllerContext
from controller.errors import InstanceNotFound

CHARTS = [("GpuCoreUsage", "Accelerator use"), ("GpuMemoryUsage", "Accelerator memory"),
          ("CpuCoreUsage", "Worker CPU"), ("MemoryUsage", "Worker memory")]


def tenant_routes(ctx: ControllerContext, auth: ConsoleAuth) -> APIRouter:
    router = APIRouter()

    async def common(request: Request) -> dict[str, Any]:
        session = auth.session(request, TENANT)
        region = request.query_params.get("RegionId") or await run_in_threadpool(
            tenant_reads.default_region, ctx, session.account_id)
        account = await run_in_threadpool(existing_account, ctx, session.account_id)
        return {"session": session, "csrf_token": auth.seal.csrf_token(session), "region": region[:64],
                "regions": ctx.settings.regions, "account": account}

    async def listing(request: Request, page: dict[str, Any]) -> dict[str, Any]:
        filters = Filters.from_query(request.query_params)
        answer = await run_action(ctx, request, page["session"].account_id, "DescribeEais",
                                  filters.describe_params(page["region"]))
        rows = [instance_row(i) for i in answer["Instances"]["Instance"]]
        return {**page, "filters": filters, "rows": rows, "total": answer["TotalCount"], "page_sizes": PAGE_SIZES,
                "statuses": FILTER_STATUSES, "types": type_options(ctx.settings), "release": release_rules()}

    @router.get("/")
    def home() -> Response:
        return RedirectResponse(f"{BASE}/instances", status_code=303)

    @router.get("/instances")
    async def instances(request: Request) -> Response:
        page = await listing(request, await common(request))
        vms = await run_in_threadpool(tenant_reads.client_vms, ctx, page["session"].account_id, page["region"])
        return render("instances.html", **page, vms=vms, client_token=_client_token())

    @router.get("/instances/rows")
    async def rows(request: Request) -> Response:
        page = await listing(request, await common(request))
        vms = await run_in_threadpool(tenant_reads.client_vms, ctx, page["session"].account_id, page["region"])
        return render("_instance_rows.html", **page, vms=vms)

    async def one_instance(request: Request, instance_id: str) -> dict[str, Any]:
        page = await common(request)
        ids = json.dumps([instance_id[:64]])
        answer = await run_action(ctx, request, page["session"].account_id, "DescribeEais",
                                  {"RegionId": page["region"], "ElasticAcceleratedInstanceIds": ids})
        if not answer["Instances"]["Instance"]:
            raise InstanceNotFound(f"The instance {instance_id[:64]!r} does not exist in region {page['region']}; "
                                   "the instance list shows yours.")
        row = instance_row(answer["Instances"]["Instance"][0])
        account_id = page["session"].account_id
        history = await run_in_threadpool(tenant_reads.instance_history, ctx, account_id, row.id)
        vms = await run_in_threadpool(tenant_reads.client_vms, ctx, account_id, page["region"])
        return {**page, "row": row, "history": history, "vms": vms, "release": release_rules()}

    @router.get("/instances/{instance_id}")
    async def instance(request: Request, instance_id: str) -> Response:
        page = await one_instance(request, instance_id)
        window = WINDOWS.get(request.query_params.get("window", ""), WINDOWS["1h"])
        charts = await _charts(ctx, request, page["session"], page["row"].id, page["region"], window.name)
        return render("instance.html", **page, charts=charts, window=window, windows=WINDOWS)

    @router.get("/instances/{instance_id}/panel")
    async def panel(request: Request, instance_id: str) -> Response:
        return render("_instance_panel.html", **await one_instance(request, instance_id))

    @router.get("/instances/{instance_id}/charts")
    async def charts(request: Request, instance_id: str) -> Response:
        page = await common(request)
        window = request.query_params.get("window", "1h")
        drawn = await _charts(ctx, request, page["session"], instance_id[:64], page["region"], window)
        return render("_charts.html", charts=drawn)

    @router.get("/bill")
    async def bill(request: Request) -> Response:
        page = await common(request)
        account_bill = await run_in_threadpool(tenant_reads.tenant_bill, ctx, page["session"].account_id)
        return render("bill.html", **page, bill=account_bill)

    return router


async def _charts(ctx: ControllerContext, request: Request, session: Session, instance_id: str, region_id: str,
                  window_name: str) -> list[dict[str, str]]:
    """One SVG per metric over the window, each from GetInstanceMetrics as the API answers it."""
    window = WINDOWS.get(window_name, WINDOWS["1h"])
    end_us = ctx.clock.now_us()
    start_us = end_us - window.length_s * US_PER_S
    drawn = []
    for metric, label in CHARTS:
        answer = await run_action(ctx, request, session.account_id, "GetInstanceMetrics", {
            "RegionId": region_id, "InstanceId": instance_id, "MetricType": metric, "TimeStep": window.step,
            "StartTime": str(start_us // US_PER_S), "EndTime": str(end_us // US_PER_S)})
        points = [Point(int(m["Time"]) * 1000, float(m["Value"])) for pod in answer["PodMetrics"] for m in pod["Metrics"]]
        latest = f"{points[-1].percent:.1f}%" if points else "no data"
        drawn.append({"metric": metric, "label": label, "latest": latest,
                      "svg": line_chart(f"{label} over {window.name}", points, start_us, end_us, window)})
    return drawn


def _client_token() -> str:
    """A ClientToken for the create form: sending the same form twice creates one instance (CreateEai is idempotent)."""
    return f"console-{secrets.token_hex(12)}"
