"""Desired state: what each agent should be doing now, computed from the database alone.

Level-triggered: the whole picture for one agent, so the agent can converge from any state and a
repeated or missed message is harmless. Each agent sees only its own part: a node its slices, a
VM the one attachment bound to it. Attachment tokens are handed out only while the instance is
Attaching or InUse.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sqlmodel import Session, select

from controller.context import ControllerContext
from controller.key_store import SecretBox
from controller.states import SERVING, Status
from controller.tables import Attachment, Instance, Node, Slice


class SliceRole(StrEnum):
    IDLE = "idle"  # nothing assigned
    SERVE = "serve"  # an instance is assigned
    RELEASE = "release"  # its instance was released; free the memory


@dataclass(frozen=True, slots=True)
class NodeGrant:
    """The attachment a node's worker serves, with the token the VM will present."""

    attachment_id: str
    token: str
    client_instance_id: str


@dataclass(frozen=True, slots=True)
class SliceDesired:
    slice_id: str
    local_id: str
    instance_type: str
    gpu_index: int
    memory_mib: int
    role: SliceRole
    instance_id: str = ""
    instance_status: Status | None = None
    attachment: NodeGrant | None = None


@dataclass(frozen=True, slots=True)
class NodeDesired:
    node_id: str
    slices: tuple[SliceDesired, ...]


@dataclass(frozen=True, slots=True)
class VmGrant:
    """The instance bound to a VM; ``token`` is empty unless it is Attaching or InUse."""

    instance_id: str
    instance_type: str
    status: Status
    node_gateway_address: str
    node_tf_version: str
    attachment_id: str
    token: str


@dataclass(frozen=True, slots=True)
class VmDesired:
    client_instance_id: str
    attachment: VmGrant | None


def node_desired_state(ctx: ControllerContext, node_id: str) -> NodeDesired:
    with ctx.db.read() as session:
        slices = list(session.exec(select(Slice).where(Slice.node_id == node_id).order_by(Slice.id)).all())
        instances = _instances_by_id(session, [row.instance_id for row in slices if row.instance_id])
        attachments = _attachments_by_id(
            session, [i.attachment_id for i in instances.values() if i.attachment_id and i.status in SERVING]
        )
    local_ids = {row.id: row.id.removeprefix(f"{node_id}/") for row in slices}
    return NodeDesired(
        node_id,
        tuple(_slice_desired(row, local_ids[row.id], instances, attachments, ctx.box) for row in slices),
    )


def _slice_desired(
    row: Slice, local_id: str, instances: dict[str, Instance], attachments: dict[str, Attachment], box: SecretBox
) -> SliceDesired:
    shape = dict(slice_id=row.id, local_id=local_id, instance_type=row.instance_type,
                 gpu_index=row.gpu_index, memory_mib=row.memory_mib)
    instance = instances.get(row.instance_id) if row.instance_id else None
    if row.draining or (row.instance_id and (instance is None or instance.status == Status.RELEASED)):
        return SliceDesired(**shape, role=SliceRole.RELEASE)
    if instance is None:
        return SliceDesired(**shape, role=SliceRole.IDLE)
    attachment = attachments.get(instance.attachment_id or "")
    grant = None
    if instance.status in SERVING and attachment is not None and attachment.ended_us is None:
        grant = NodeGrant(attachment.id, box.open(attachment.token_ciphertext), attachment.client_instance_id)
    return SliceDesired(**shape, role=SliceRole.SERVE, instance_id=instance.id,
                        instance_status=Status(instance.status), attachment=grant)


def vm_desired_state(ctx: ControllerContext, client_instance_id: str) -> VmDesired:
    with ctx.db.read() as session:
        instance = session.exec(select(Instance).where(Instance.client_instance_id == client_instance_id)).first()
        attachment = session.get(Attachment, instance.attachment_id) if instance and instance.attachment_id else None
        # Defensive: only an attachment that binds this very VM is ever shown to it.
        if instance is None or attachment is None or attachment.client_instance_id != client_instance_id:
            return VmDesired(client_instance_id, None)
        node = session.get(Node, attachment.node_id)
    serving = instance.status in SERVING and attachment.ended_us is None
    grant = VmGrant(
        instance_id=instance.id, instance_type=instance.instance_type, status=Status(instance.status),
        node_gateway_address=node.gateway_address if node else "", node_tf_version=node.tf_version if node else "",
        attachment_id=attachment.id, token=ctx.box.open(attachment.token_ciphertext) if serving else "",
    )
    return VmDesired(client_instance_id, grant)


def _instances_by_id(session: Session, ids: list[str]) -> dict[str, Instance]:
    if not ids:
        return {}
    return {row.id: row for row in session.exec(select(Instance).where(Instance.id.in_(ids))).all()}


def _attachments_by_id(session: Session, ids: list[str]) -> dict[str, Attachment]:
    if not ids:
        return {}
    return {row.id: row for row in session.exec(select(Attachment).where(Attachment.id.in_(ids))).all()}
