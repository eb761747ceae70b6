"""The controller's HTTP application: EAIS RPC on ``/``, admin REST under ``/admin``, the console under ``/console``,
signed tenant reads under ``/tenant/v1``, ``/metrics``, ``/healthz``."""

from __future__ import annotations

from fastapi import FastAPI

from controller.api.admin_app import create_admin_app
from controller.api.metrics_route import mount_metrics
from controller.api.request_metrics import RequestMetrics
from controller.api.rpc_app import mount_rpc
from controller.console.app import create_console_app
from controller.console.signed_routes import mount_signed_routes
from controller.context import ControllerContext


def create_app(ctx: ControllerContext) -> FastAPI:
    app = FastAPI(title="eais controller", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(RequestMetrics)
    mount_rpc(app, ctx)
    mount_metrics(app, ctx)
    app.mount("/admin", create_admin_app(ctx))
    mount_signed_routes(app, ctx)
    app.mount("/console", create_console_app(ctx))

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
