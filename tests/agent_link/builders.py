"""Test builders: agents registered, and instances put in states without the (later) API layer.

Instances move only through ``controller.lifecycle.apply``, exactly as the API layer will do it.
"""

from __future__ import annotations

import secrets

from sqlmodel import select

from agent.controller_link import AccessKey, register_signature_metadata
from controller.accounts import NewAccount, create_account
from controller.agent_link.registration import register_node, register_vm
from controller.agent_link.registration_rules import NodeInfo, SliceOfferInfo, VmInfo
from controller.context import ControllerContext
from controller.ids import new_attachment_id, new_instance_id
from controller.lifecycle import apply
from controller.states import Event
from controller.tables import Attachment, Instance, Slice, Transition
from protos.eais.v1 import agents_pb2 as pb

NODE_TOKEN = "test-node-token-9f3c2b7d1e"
XLARGE = "eais.ei-a6.xlarge"
REGION, ZONE = "cn-hangzhou", "cn-hangzhou-a"


def bearer(token: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {token}")]


def node_request(node_id: str = "node-1", local_ids: tuple[str, ...] = ("0", "1"), instance_type: str = XLARGE) -> pb.RegisterRequest:
    return pb.RegisterRequest(node=pb.NodeRegistration(
        node_id=node_id, hostname=f"{node_id}.test", region_id=REGION, zone_id=ZONE,
        gateway_address=f"{node_id}.test:7000", backend=pb.BACKEND_SIMULATED,
        accelerator_model="simulated (no accelerator)", tf_version="2.16.1",
        slices=[pb.SliceOffer(local_id=i, instance_type=instance_type, gpu_index=0, memory_mib=8192) for i in local_ids],
    ))


def vm_request(client_instance_id: str = "i-vm0001") -> pb.RegisterRequest:
    return pb.RegisterRequest(vm=pb.VmRegistration(
        client_instance_id=client_instance_id, region_id=REGION, zone_id=ZONE, vpc_id="vpc-test",
        vswitch_id="vsw-test", kind=pb.CLIENT_KIND_ECS, name="test VM", instance_type="ecs.g7.large",
        vcpu=2, memory_mib=8192, tf_endpoint="127.0.0.1:8470",
    ))


def signed(request: pb.RegisterRequest, account: NewAccount, **kw) -> list[tuple[str, str]]:  # noqa: ANN003
    return register_signature_metadata(request, AccessKey(account.access_key_id, account.access_key_secret), **kw)


def new_account(ctx: ControllerContext, name: str = "alice") -> NewAccount:
    return create_account(ctx, name)


def given_node(ctx: ControllerContext, node_id: str = "node-1", local_ids: tuple[str, ...] = ("0",)) -> str:
    """Register a node through the plain function; returns its session token."""
    offers = tuple(SliceOfferInfo(i, XLARGE, 0, 8192) for i in local_ids)
    info = NodeInfo(node_id, f"{node_id}.test", REGION, ZONE, f"{node_id}.test:7000", "simulated",
                    "simulated (no accelerator)", "2.16.1", offers)
    return register_node(ctx, info).session_token


def given_vm(ctx: ControllerContext, account: NewAccount, client_instance_id: str = "i-vm0001") -> str:
    info = VmInfo(client_instance_id, REGION, ZONE, "vpc-test", "vsw-test", "ECS", "", "", 2, 8192, "")
    return register_vm(ctx, info, account.account_id).session_token


def create_instance_on_slice(ctx: ControllerContext, account: NewAccount, slice_id: str) -> str:
    """What CreateEai will do: a Pending instance with the slice assigned on both sides."""
    instance_id = new_instance_id()
    with ctx.db.write() as session:
        instance = Instance(id=instance_id, account_id=account.account_id, region_id=REGION, zone_id=ZONE,
                            instance_type=XLARGE, status="", status_since_us=0, slice_id=slice_id,
                            created_us=ctx.clock.now_us())
        apply(session, instance, Event.CREATE, now_us=ctx.clock.now_us(), reason="test creates it")
        slice_row = session.get(Slice, slice_id)
        slice_row.instance_id = instance_id
        session.add(slice_row)
    return instance_id


def move(ctx: ControllerContext, instance_id: str, *events: Event) -> None:
    for event in events:
        with ctx.db.write() as session:
            apply(session, session.get(Instance, instance_id), event, now_us=ctx.clock.now_us(), reason="test moves it")


def begin_attach(ctx: ControllerContext, instance_id: str, client_instance_id: str) -> tuple[str, str]:
    """What AttachEai will do: an Attachment row, the binding on the instance, then attach."""
    attachment_id, token = new_attachment_id(), secrets.token_urlsafe(24)
    with ctx.db.write() as session:
        instance = session.get(Instance, instance_id)
        node_id = session.get(Slice, instance.slice_id).node_id
        session.add(Attachment(id=attachment_id, instance_id=instance_id, client_instance_id=client_instance_id,
                               node_id=node_id, token_ciphertext=ctx.box.seal(token), created_us=ctx.clock.now_us()))
        instance.client_instance_id, instance.attachment_id = client_instance_id, attachment_id
        session.add(instance)
        apply(session, instance, Event.ATTACH, now_us=ctx.clock.now_us(), reason="test attaches it")
    return attachment_id, token


def release(ctx: ControllerContext, instance_id: str) -> None:
    """What DeleteEai will do: release, and leave the slice draining until the node frees it."""
    with ctx.db.write() as session:
        instance = session.get(Instance, instance_id)
        slice_row = session.get(Slice, instance.slice_id)
        apply(session, instance, Event.RELEASE, now_us=ctx.clock.now_us(), reason="test releases it")
        slice_row.instance_id, slice_row.draining = None, True
        session.add(slice_row)


def status_of(ctx: ControllerContext, instance_id: str) -> str:
    with ctx.db.read() as session:
        return session.get(Instance, instance_id).status


def transitions_of(ctx: ControllerContext, instance_id: str) -> list[Transition]:
    with ctx.db.read() as session:
        return list(session.exec(select(Transition).where(Transition.instance_id == instance_id).order_by(Transition.id)).all())


def attachment(ctx: ControllerContext, attachment_id: str) -> Attachment:
    with ctx.db.read() as session:
        return session.get(Attachment, attachment_id)


def available_instance(ctx: ControllerContext) -> str:
    """node-1 with one slice, VM i-vm0001 of a new account, and an Available instance on the slice."""
    account = new_account(ctx)
    given_node(ctx, "node-1", ("0",))
    given_vm(ctx, account, "i-vm0001")
    instance_id = create_instance_on_slice(ctx, account, "node-1/0")
    move(ctx, instance_id, Event.SLICE_READY)
    return instance_id


def in_use_instance(ctx: ControllerContext) -> tuple[str, str]:
    """``available_instance`` attached to i-vm0001 and InUse: (instance id, attachment id)."""
    instance_id = available_instance(ctx)
    attachment_id, _ = begin_attach(ctx, instance_id, "i-vm0001")
    move(ctx, instance_id, Event.ATTACH_READY)
    return instance_id, attachment_id
