"""CreateEai and CreateEaisEi: the rules of creating an instance, held inside one write transaction.

Both families are created alike; ``CreateRequest.category`` says which (``ei`` starts in Creating).

Order of checks: region and type (configuration), idempotency (ClientToken), the account
(real-name verification, balance), the network (VSwitchId), then capacity (a free slice of the
type in the region, claimed by compare-and-set so two creates cannot take one slice).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from controller.catalogue import require_instance_type, require_region
from controller.context import ControllerContext
from controller.errors import IdempotentParameterMismatch, InDebt, NoPermission, NoResources, VSwitchNotFound
from controller.ids import new_instance_id
from controller.lifecycle import apply
from controller.money import from_micro, to_micro
from controller.states import CATEGORY_EAI, CATEGORY_EI, CATEGORY_JUPYTER, Event
from controller.tables import Account, ClientInstance, IdempotencyRecord, Instance, InstanceTag, Node, Slice

# Per family: the action (its own ClientToken space), the event that creates, and the ID's name in the answer.
_FAMILY = {
    CATEGORY_EAI: ("CreateEai", Event.CREATE, "ElasticAcceleratedInstanceId"),
    CATEGORY_JUPYTER: ("CreateEaiJupyter", Event.CREATE, "ElasticAcceleratedInstanceId"),
    CATEGORY_EI: ("CreateEaisEi", Event.CREATE_EI, "EiInstanceId"),
}


@dataclass(frozen=True)
class CreateRequest:
    region_id: str
    instance_type: str
    name: str = ""
    resource_group_id: str = ""
    security_group_id: str = ""
    vswitch_id: str = ""
    image: str = ""
    tags: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    client_token: str | None = None
    category: str = CATEGORY_EAI  # CATEGORY_JUPYTER for CreateEaiJupyter, CATEGORY_EI for CreateEaisEi
    environment: tuple[tuple[str, str], ...] = field(default_factory=tuple)  # CreateEaiJupyter EnvironmentVar

    def fingerprint(self) -> str:
        body = {k: v for k, v in asdict(self).items() if k != "client_token"}
        if self.category == CATEGORY_EAI:  # as before notebooks existed: stored CreateEai tokens keep matching
            del body["category"], body["environment"]
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


# Runs in the creating transaction once the instance row exists (CreateEaiJupyter adds its notebook).
AlsoCreate = Callable[[Session, Instance], None]


def create_instance(
    ctx: ControllerContext, account_id: str, request: CreateRequest, *, request_id: str, also: AlsoCreate | None = None
) -> str:
    """Create an instance and return its ID (the same ID again for a repeated ClientToken)."""
    _check_catalogue(ctx, request)
    try:
        with ctx.db.write() as session:
            return _create_in_transaction(ctx, session, account_id, request, request_id, also)
    except IntegrityError:
        if request.client_token is None:
            raise
        # A concurrent request with the same ClientToken won the race: answer as it did.
        with ctx.db.read() as session:
            previous = _previous_result(session, account_id, request)
        if previous is None:
            raise
        return previous


def _create_in_transaction(
    ctx: ControllerContext, session: Session, account_id: str, request: CreateRequest, request_id: str,
    also: AlsoCreate | None,
) -> str:
    previous = _previous_result(session, account_id, request)
    if previous is not None:
        return previous
    _check_account(ctx, session, account_id)
    vpc_id = _vpc_of_vswitch(session, account_id, request) if request.vswitch_id else ""
    instance_id = new_instance_id()
    node = _claim_slice(session, request, instance_id)
    action, event, id_name = _FAMILY[request.category]
    instance = Instance(
        id=instance_id, account_id=account_id, region_id=request.region_id, zone_id=node.zone_id,
        name=request.name, instance_type=request.instance_type, status="", status_since_us=0,
        slice_id=node.slice_id, resource_group_id=request.resource_group_id,
        security_group_id=request.security_group_id, vswitch_id=request.vswitch_id, vpc_id=vpc_id,
        image=request.image, description=node.description, created_us=ctx.clock.now_us(), category=request.category,
    )
    apply(session, instance, event, now_us=instance.created_us,
          reason=f"{action} accepted; slice {node.slice_id} reserved", request_id=request_id)
    if also is not None:
        also(session, instance)
    session.add_all(InstanceTag(instance_id=instance_id, key=k, value=v) for k, v in request.tags)
    if request.client_token is not None:
        session.add(IdempotencyRecord(
            account_id=account_id, action=action, client_token=request.client_token,
            fingerprint=request.fingerprint(), result_json=json.dumps({id_name: instance_id}),
            created_us=instance.created_us,
        ))
    return instance_id


def _check_catalogue(ctx: ControllerContext, request: CreateRequest) -> None:
    require_region(ctx.settings, request.region_id)
    require_instance_type(ctx.settings, request.instance_type)


def _previous_result(session: Session, account_id: str, request: CreateRequest) -> str | None:
    if request.client_token is None:
        return None
    action, _event, id_name = _FAMILY[request.category]
    record = session.get(IdempotencyRecord, (account_id, action, request.client_token))
    if record is None:
        return None
    if record.fingerprint != request.fingerprint():
        raise IdempotentParameterMismatch(
            "This ClientToken was already used with other parameters; use a new ClientToken for a new request."
        )
    return json.loads(record.result_json)[id_name]


def _check_account(ctx: ControllerContext, session: Session, account_id: str) -> None:
    account = session.get(Account, account_id)
    if account is None or not account.real_name_verified:
        raise NoPermission("The account is not real-name verified; complete real-name verification before creating instances.")
    minimum = ctx.settings.accounts.min_balance_to_create
    if account.balance_micro < to_micro(minimum):
        state = "in debt" if account.balance_micro < 0 else "below the minimum"
        raise InDebt(
            f"The account balance {from_micro(account.balance_micro)} CNY is {state}: creating pay-as-you-go "
            f"instances needs at least {minimum} CNY. Top up the account and retry."
        )


def _vpc_of_vswitch(session: Session, account_id: str, request: CreateRequest) -> str:
    row = session.execute(
        select(ClientInstance.vpc_id).where(
            ClientInstance.account_id == account_id,
            ClientInstance.region_id == request.region_id,
            ClientInstance.vswitch_id == request.vswitch_id,
        ).limit(1)
    ).first()
    if row is None:
        raise VSwitchNotFound(
            f"VSwitch {request.vswitch_id!r} is not known in {request.region_id}: no client instance of yours is in it."
        )
    return row[0]


@dataclass(frozen=True)
class ClaimedSlice:
    slice_id: str
    zone_id: str
    description: str


def _claim_slice(session: Session, request: CreateRequest, instance_id: str) -> ClaimedSlice:
    candidates = session.execute(
        select(Slice.id, Node.zone_id, Node.backend, Node.hostname, Node.accelerator_model)
        .join(Node, Node.id == Slice.node_id)
        .where(
            Node.region_id == request.region_id,
            Node.online.is_(True),
            Slice.instance_type == request.instance_type,
            Slice.instance_id.is_(None),
            Slice.draining.is_(False),
        )
        .order_by(Slice.id)
        .limit(8)
    ).all()
    for slice_id, zone_id, backend, hostname, model in candidates:
        claimed = session.execute(
            update(Slice).where(Slice.id == slice_id, Slice.instance_id.is_(None)).values(instance_id=instance_id)
        )
        if claimed.rowcount == 1:
            return ClaimedSlice(slice_id, zone_id, f"{backend} backend on {hostname}: {model}".strip())
    raise NoResources(
        f"No free {request.instance_type} capacity in {request.region_id} right now; "
        "try another instance type or region, or retry later."
    )
