"""Admin REST API for operators (``/admin/v1``; OpenAPI at ``/admin/openapi.json``, docs at ``/admin/docs``).

Every route needs ``Authorization: Bearer <admin token>`` (``EAIS_ADMIN_TOKEN`` or the
``admin.token`` file in the state directory).
"""

from __future__ import annotations

import hmac
from decimal import Decimal
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Query, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
from sqlmodel import select

from controller import ledger
from controller.accounts import create_account
from controller.bill_report import bill_report
from controller.clock import to_datetime
from controller.context import ControllerContext
from controller.errors import EaisError
from controller.key_store import admin_token
from controller.money import from_micro, to_micro
from controller.tables import Account, ClientInstance, Instance, Node, Slice, Transition

_bearer = HTTPBearer(auto_error=False)


class AccountPublic(BaseModel):
    account_id: str
    name: str
    balance: Decimal
    in_debt: bool
    real_name_verified: bool
    created_at: str


class AccountCreate(BaseModel):
    name: str = Field(min_length=1, max_length=128)
    balance: Decimal = Decimal(0)
    real_name_verified: bool = False


class AccountCreated(BaseModel):
    AccountId: str
    AccessKeyId: str
    AccessKeySecret: str


class TopUp(BaseModel):
    amount: Decimal = Field(description="CNY added to the balance (negative to correct)")


class NodePublic(BaseModel):
    node_id: str
    region_id: str
    zone_id: str
    hostname: str
    backend: str
    accelerator_model: str
    online: bool
    slices_total: int
    slices_free: int
    last_seen_at: str


class ClientInstancePublic(BaseModel):
    client_instance_id: str
    account_id: str
    region_id: str
    zone_id: str
    vpc_id: str
    vswitch_id: str
    vcpu: int
    memory_mib: int
    online: bool
    last_seen_at: str


class TransitionPublic(BaseModel):
    at: str
    from_status: str | None
    to_status: str
    event: str
    reason: str
    request_id: str | None


class BillItemPublic(BaseModel):
    account_id: str
    instance_id: str
    instance_type: str
    hour_start: str
    billed_seconds: float
    amount: Decimal


def _iso(us: int) -> str:
    return to_datetime(us).isoformat().replace("+00:00", "Z")


def create_admin_app(ctx: ControllerContext) -> FastAPI:
    token = admin_token(ctx.settings)

    def require_admin(credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> None:  # noqa: B008
        if credentials is None or not hmac.compare_digest(credentials.credentials.encode(), token.encode()):
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "admin token missing or wrong",
                                headers={"WWW-Authenticate": "Bearer"})

    # Every route needs the token; the OpenAPI document and docs pages do not.
    app = FastAPI(title="eais admin API", version="1", description=__doc__, dependencies=[Depends(require_admin)])

    @app.get("/v1/accounts", response_model=list[AccountPublic])
    def list_accounts() -> list[AccountPublic]:
        with ctx.db.read() as session:
            rows = session.exec(select(Account).order_by(Account.created_us)).all()
        return [_account_public(a) for a in rows]

    @app.post("/v1/accounts", response_model=AccountCreated, status_code=201)
    def add_account(body: AccountCreate) -> AccountCreated:
        try:
            made = create_account(ctx, body.name, balance=body.balance, real_name_verified=body.real_name_verified)
        except EaisError as error:
            raise HTTPException(status.HTTP_409_CONFLICT, error.message) from None
        return AccountCreated(**made.as_json())

    @app.post("/v1/accounts/{account_id}/top-up", response_model=AccountPublic)
    def top_up(account_id: str, body: TopUp) -> AccountPublic:
        with ctx.db.write() as session:
            account = session.get(Account, account_id)
            if account is None:
                raise HTTPException(status.HTTP_404_NOT_FOUND, f"no account {account_id}")
            account.balance_micro += to_micro(body.amount)
            session.add(account)
        return _account_public(account)

    @app.get("/v1/nodes", response_model=list[NodePublic])
    def list_nodes() -> list[NodePublic]:
        with ctx.db.read() as session:
            nodes = session.exec(select(Node).order_by(Node.id)).all()
            slices = session.exec(select(Slice)).all()
        return [_node_public(n, [s for s in slices if s.node_id == n.id]) for n in nodes]

    @app.get("/v1/client-instances", response_model=list[ClientInstancePublic])
    def list_client_instances(account_id: str | None = None) -> list[ClientInstancePublic]:
        query = select(ClientInstance).order_by(ClientInstance.id)
        if account_id:
            query = query.where(ClientInstance.account_id == account_id)
        with ctx.db.read() as session:
            rows = session.exec(query).all()
        return [ClientInstancePublic(client_instance_id=c.id, last_seen_at=_iso(c.last_seen_us),
                                     **c.model_dump(include={"account_id", "region_id", "zone_id", "vpc_id",
                                                             "vswitch_id", "vcpu", "memory_mib", "online"}))
                for c in rows]

    @app.get("/v1/instances/{instance_id}/transitions", response_model=list[TransitionPublic])
    def transitions(instance_id: str) -> list[TransitionPublic]:
        with ctx.db.read() as session:
            if session.get(Instance, instance_id) is None:
                raise HTTPException(status.HTTP_404_NOT_FOUND, f"no instance {instance_id}")
            rows = session.exec(select(Transition).where(Transition.instance_id == instance_id)
                                .order_by(Transition.at_us, Transition.id)).all()
        return [TransitionPublic(at=_iso(t.at_us), **t.model_dump(include={"from_status", "to_status", "event",
                                                                           "reason", "request_id"})) for t in rows]

    @app.get("/v1/bills", response_model=list[BillItemPublic])
    def bills(account_id: str | None = None, instance_id: str | None = None,
              limit: Annotated[int, Query(ge=1, le=10_000)] = 1000) -> list[BillItemPublic]:
        items = ledger.bill_items(ctx, account_id=account_id, instance_id=instance_id)[:limit]
        return [BillItemPublic(account_id=i.account_id, instance_id=i.instance_id, instance_type=i.instance_type,
                               hour_start=_iso(i.hour_start_us), billed_seconds=i.billed_us / 1e6,
                               amount=from_micro(i.amount_micro)) for i in items]

    @app.get("/v1/accounts/{account_id}/bill")
    def account_bill(account_id: str) -> dict:
        """Items, balance, debt state and the charges of the hour not yet closed, for one account."""
        with ctx.db.read() as session:
            if session.get(Account, account_id) is None:
                raise HTTPException(status.HTTP_404_NOT_FOUND, f"no account {account_id}")
        return bill_report(ctx, account_id=account_id)

    return app


def _account_public(account: Account) -> AccountPublic:
    return AccountPublic(account_id=account.id, name=account.name, balance=from_micro(account.balance_micro),
                         in_debt=account.balance_micro < 0, real_name_verified=account.real_name_verified,
                         created_at=_iso(account.created_us))


def _node_public(node: Node, slices: list[Slice]) -> NodePublic:
    free = sum(1 for s in slices if s.instance_id is None and not s.draining)
    return NodePublic(node_id=node.id, region_id=node.region_id, zone_id=node.zone_id, hostname=node.hostname,
                      backend=node.backend, accelerator_model=node.accelerator_model, online=node.online,
                      slices_total=len(slices), slices_free=free, last_seen_at=_iso(node.last_seen_us))
