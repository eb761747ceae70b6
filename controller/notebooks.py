"""Notebooks (Category ``jupyter``): CreateEaiJupyter, StartEaiJupyter, StopEaiJupyter, each in one transaction.

A notebook is an instance plus a Jupyter server that the VM agent of one of the account's VMs runs
for it (the ``notebooks`` row: which VM, the token, the environment). The accelerator reaches that
VM through the ordinary attach machinery: the notebook's VM is bound as the instance's client.

- Create: the instance is created as CreateEai does (slice claimed, Pending); the VM is chosen in
  the same transaction (online, of the account, in the vSwitch, holding no instance and hosting
  no other notebook) and kept for the notebook's life, since its files live there. Once the node
  reports the slice ready, :func:`bind_new_notebook` binds the VM (Attaching); the instance is
  InUse once the worker, the channel and the server are all ready.
- Stop: InUse -> Stopping (server stopped, worker released) -> Stopped; Available -> Stopped.
- Start: Stopped or Available -> Attaching, the notebook's own VM bound again.
Start on a notebook already starting or running, and Stop on one already stopping or stopped,
succeed and change nothing (the SDKs retry).
"""

from __future__ import annotations

import json
import secrets

from sqlalchemy import exists, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from controller.agent_link.registration_rules import CLIENT_KINDS
from controller.binding import bind_client, usable_client
from controller.context import ControllerContext
from controller.errors import EaisError, InvalidEaiStatus, InvalidInstanceType, NoResources
from controller.lifecycle import apply, status_race_refused
from controller.ownership import owned_instance
from controller.provisioning import CreateRequest, create_instance
from controller.states import CATEGORY_JUPYTER, Event, Status
from controller.tables import ClientInstance, Instance, Notebook

# CreateEaiJupyter.EaisType accepts only this type (reference 1a, [META]).
NOTEBOOK_TYPES: tuple[str, ...] = ("eais.ei-a6.2xlarge",)


def create_notebook(ctx: ControllerContext, account_id: str, request: CreateRequest, *, request_id: str) -> str:
    """CreateEaiJupyter: an instance of Category jupyter and its notebook; returns the instance id."""
    if request.instance_type not in NOTEBOOK_TYPES:
        raise InvalidInstanceType(
            f"EaisType {request.instance_type[:64]!r} cannot run a notebook; CreateEaiJupyter accepts "
            f"{', '.join(NOTEBOOK_TYPES)}."
        )

    def add_notebook(session: Session, instance: Instance) -> None:
        vm = _free_vm(ctx, session, account_id, request)
        session.add(Notebook(
            instance_id=instance.id, account_id=account_id, client_instance_id=vm.id,
            token_ciphertext=ctx.box.seal(secrets.token_urlsafe(32)),
            environment_json=json.dumps([list(pair) for pair in request.environment]), created_us=instance.created_us,
        ))

    try:
        return create_instance(ctx, account_id, request, request_id=request_id, also=add_notebook)
    except IntegrityError:  # a concurrent CreateEaiJupyter took the same VM first (notebooks.client_instance_id)
        raise NoResources(f"The VM chosen in vSwitch {request.vswitch_id} was just taken by another notebook; "
                          "retry to get another one.") from None


def bind_new_notebook(ctx: ControllerContext, session: Session, instance: Instance, notes: list[str]) -> None:
    """A new notebook's slice is ready: bind its VM (Available -> Attaching); a refusal leaves it Available."""
    notebook = session.get(Notebook, instance.id)
    if notebook is None or instance.status != Status.AVAILABLE:
        return
    try:
        with session.begin_nested():
            client = usable_client(ctx, session, instance.account_id, instance.region_id, notebook.client_instance_id)
            bind_client(ctx, session, instance, client, reason=f"CreateEaiJupyter: notebook server on {client.id}",
                        request_id=None)
    except EaisError as refusal:  # the VM went away meanwhile: StartEaiJupyter retries once it is back
        notes.append(f"notebook {instance.id}: not started on {notebook.client_instance_id}: {refusal.message}")


def start_notebook(ctx: ControllerContext, account_id: str, region_id: str, instance_id: str, *, request_id: str) -> None:
    with status_race_refused(instance_id, "starting"), ctx.db.write() as session:
        instance, notebook = _owned_notebook(session, account_id, region_id, instance_id)
        if instance.status in (Status.ATTACHING, Status.IN_USE):
            return  # already starting or running
        if instance.status not in (Status.STOPPED, Status.AVAILABLE):
            raise InvalidEaiStatus(f"The notebook {instance_id} is {instance.status}; it can be started only when "
                                   "Stopped (or Available after a start that failed).")
        client = usable_client(ctx, session, account_id, region_id, notebook.client_instance_id)
        bind_client(ctx, session, instance, client, reason=f"StartEaiJupyter on {client.id}", request_id=request_id)


def stop_notebook(ctx: ControllerContext, account_id: str, region_id: str, instance_id: str, *, request_id: str) -> None:
    with status_race_refused(instance_id, "stopping"), ctx.db.write() as session:
        instance, notebook = _owned_notebook(session, account_id, region_id, instance_id)
        if instance.status in (Status.STOPPING, Status.STOPPED):
            return  # already stopping or stopped
        if instance.status not in (Status.IN_USE, Status.AVAILABLE):
            raise InvalidEaiStatus(f"The notebook {instance_id} is {instance.status}; it can be stopped when InUse "
                                   "(or Available). Wait until it is InUse, or delete it.")
        notebook.server_url, notebook.server_attachment_id = "", None  # the URL stops working now
        session.add(notebook)
        apply(session, instance, Event.NOTEBOOK_STOP, now_us=ctx.clock.now_us(), reason="StopEaiJupyter",
              request_id=request_id)


def _owned_notebook(session: Session, account_id: str, region_id: str, instance_id: str) -> tuple[Instance, Notebook]:
    instance = owned_instance(session, account_id, region_id, instance_id)
    notebook = session.get(Notebook, instance.id) if instance.category == CATEGORY_JUPYTER else None
    if notebook is None:
        raise InvalidEaiStatus(f"The instance {instance_id} is not a notebook (Category {instance.category}); "
                               "StartEaiJupyter and StopEaiJupyter apply to instances made by CreateEaiJupyter.")
    return instance, notebook


def _free_vm(ctx: ControllerContext, session: Session, account_id: str, request: CreateRequest) -> ClientInstance:
    """The first online VM of the account in the vSwitch that holds no instance and hosts no notebook."""
    rules = ctx.settings.accounts
    candidates = session.execute(
        select(ClientInstance).where(
            ClientInstance.account_id == account_id, ClientInstance.region_id == request.region_id,
            ClientInstance.vswitch_id == request.vswitch_id, ClientInstance.online.is_(True),
            ClientInstance.kind.in_(CLIENT_KINDS), ClientInstance.vcpu >= rules.client_min_vcpu,
            ClientInstance.memory_mib >= rules.client_min_memory_mib,
            ~exists().where(Instance.client_instance_id == ClientInstance.id),
            ~exists().where(Notebook.client_instance_id == ClientInstance.id),
        ).order_by(ClientInstance.id).limit(1)
    ).scalars().first()
    if candidates is None:
        raise NoResources(
            f"No VM of yours in vSwitch {request.vswitch_id} can host a notebook now: it needs a running VM agent "
            "on a VM that holds no EAIS instance and hosts no other notebook. Detach or delete one, or start a VM "
            "agent in that vSwitch, and retry."
        )
    return candidates
