"""Admin REST API for operators (``/admin/v1``; OpenAPI at ``/admin/openapi.json``, docs at ``/admin/docs``).

Every route needs ``Authorization: Bearer <admin token>`` (``EAIS_ADMIN_TOKEN`` or the
``admin.token`` file in the state directory). Every error is ``{"code", "message", "request_id"}``
with the HTTP status of its code, from the same error table as the EAIS API.
"""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from controller import accounts
from controller.api import admin_fleet as fleet
from controller.api import admin_reads as reads
from controller.api.admin_models import (
    AccountCreate,
    AccountCreated,
    AccountPublic,
    AdminError,
    BillItemPublic,
    ClientInstancePublic,
    IdPath,
    IdQuery,
    LeasePublic,
    NodePublic,
    SlicePublic,
    TopUp,
    TransitionPublic,
)
from controller.api.eais_responses import REQUEST_ID_HEADER
from controller.api.error_handling import install_error_handler
from controller.api.request_outcome import Outcome
from controller.bill_report import bill_report
from controller.context import ControllerContext
from controller.errors import ERROR_TABLE, AdminTokenRejected, EaisError
from controller.key_store import admin_token

_bearer = HTTPBearer(auto_error=False)
# Every status an admin error can have, each documented with the one error body.
_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": AdminError} for status in sorted({spec.http_status for spec in ERROR_TABLE.values()})
}


def admin_error_response(error: EaisError, outcome: Outcome) -> JSONResponse:
    body = AdminError(code=error.code, message=error.message, request_id=outcome.request_id)
    return JSONResponse(body.model_dump(), status_code=error.http_status,
                        headers={REQUEST_ID_HEADER: outcome.request_id, **error.response_headers})


def create_admin_app(ctx: ControllerContext) -> FastAPI:
    token = admin_token(ctx.settings)

    def require_admin(credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> None:  # noqa: B008
        if credentials is None or not hmac.compare_digest(credentials.credentials.encode(), token.encode()):
            raise AdminTokenRejected("The admin token is missing or wrong; send Authorization: Bearer <admin token>.")

    # Every route needs the token; the OpenAPI document and docs pages do not.
    app = FastAPI(title="eais admin API", version="1", description=__doc__, dependencies=[Depends(require_admin)],
                  responses=_ERROR_RESPONSES)
    install_error_handler(app, admin_error_response)
    app.openapi = lambda: _openapi_without_422(app)  # type: ignore[method-assign]

    @app.get("/v1/accounts", response_model=list[AccountPublic])
    def list_accounts() -> list[AccountPublic]:
        return reads.accounts(ctx)

    @app.post("/v1/accounts", response_model=AccountCreated, status_code=201)
    def add_account(body: AccountCreate) -> AccountCreated:
        made = accounts.create_account(ctx, body.name, balance=body.balance, real_name_verified=body.real_name_verified)
        return AccountCreated(**made.as_json())

    @app.post("/v1/accounts/{account_id}/top-up", response_model=AccountPublic)
    def top_up(account_id: IdPath, body: TopUp) -> AccountPublic:
        return reads.account_public(accounts.top_up(ctx, account_id, body.amount))

    @app.get("/v1/nodes", response_model=list[NodePublic])
    def list_nodes() -> list[NodePublic]:
        return reads.nodes(ctx)

    @app.get("/v1/slices", response_model=list[SlicePublic])
    def list_slices(node_id: IdQuery = None) -> list[SlicePublic]:
        """Every slice with the instance on it and the latest usage its node reported."""
        return fleet.slices(ctx, node_id)

    @app.get("/v1/reconciler", response_model=LeasePublic | None)
    def reconciler() -> LeasePublic | None:
        """The reconciler lease: which replica leads (null before any replica took it)."""
        return fleet.reconciler_lease(ctx)

    @app.get("/v1/client-instances", response_model=list[ClientInstancePublic])
    def list_client_instances(account_id: IdQuery = None) -> list[ClientInstancePublic]:
        return reads.client_instances(ctx, account_id)

    @app.get("/v1/instances/{instance_id}/transitions", response_model=list[TransitionPublic])
    def transitions(instance_id: IdPath) -> list[TransitionPublic]:
        return reads.transitions(ctx, instance_id)

    @app.get("/v1/bills", response_model=list[BillItemPublic])
    def bills(account_id: IdQuery = None, instance_id: IdQuery = None,
              limit: Annotated[int, Query(ge=1, le=10_000)] = 1000) -> list[BillItemPublic]:
        return reads.bill_items(ctx, account_id, instance_id, limit)

    @app.get("/v1/accounts/{account_id}/bill")
    def account_bill(account_id: IdPath) -> dict:
        """Items, balance, debt state and the charges of the hour not yet closed, for one account."""
        accounts.existing_account(ctx, account_id)
        return bill_report(ctx, account_id=account_id)

    return app


def _openapi_without_422(app: FastAPI) -> dict[str, Any]:
    """FastAPI documents a 422 for every route with parameters; this API answers 400 InvalidParameter instead."""
    if app.openapi_schema is None:
        schema = FastAPI.openapi(app)
        for operation in (op for path in schema.get("paths", {}).values() for op in path.values()):
            operation.get("responses", {}).pop("422", None)
        for unused in ("HTTPValidationError", "ValidationError"):
            schema.get("components", {}).get("schemas", {}).pop(unused, None)
        app.openapi_schema = schema
    return app.openapi_schema
