"""Desired state: what each agent should be doing now, computed from the database alone.

Level-triggered: the whole picture for one agent, so the agent can converge from any state and a
repeated or missed message is harmless. Each agent sees only its own part: a node its slices, a
VM the one attachment bound to it. Attachment tokens are handed out only while the instance is
Attaching or InUse.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from sqlmodel import Session, select

from controller.agent_link.notebook_grants import NotebookGrant, notebook_grants
from controller.context import ControllerContext
from controller.db import in_chunks
from controller.key_store import SecretBox
from controller.states import SERVING, Status
from controller.tables import Attachment, Instance, Node, Slice

T = TypeVar("T", Instance, Attachment, Node)


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
    notebooks: tuple[NotebookGrant, ...] = ()


def node_desired_state(ctx: ControllerContext, node_id: str) -> NodeDesired:
    return node_desired_states(ctx, [node_id])[node_id]


def node_desired_states(ctx: ControllerContext, node_ids: Collection[str]) -> dict[str, NodeDesired]:
    """The desired state of each node, in a few queries however many nodes (the streams' resync)."""
    slices: list[Slice] = []
    with ctx.db.read() as session:
        for chunk in in_chunks(node_ids):
            slices.extend(session.exec(select(Slice).where(Slice.node_id.in_(chunk))).all())
        instances = _by_id(session, Instance, [row.instance_id for row in slices if row.instance_id])
        serving = [i.attachment_id for i in instances.values() if i.attachment_id and i.status in SERVING]
        attachments = _by_id(session, Attachment, serving)
    by_node: dict[str, list[Slice]] = {node_id: [] for node_id in node_ids}
    for row in sorted(slices, key=lambda row: row.id):
        by_node[row.node_id].append(row)
    return {
        node_id: NodeDesired(node_id, tuple(
            _slice_desired(row, row.id.removeprefix(f"{node_id}/"), instances, attachments, ctx.box) for row in rows
        ))
        for node_id, rows in by_node.items()
    }


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
    return vm_desired_states(ctx, [client_instance_id])[client_instance_id]


def vm_desired_states(ctx: ControllerContext, client_instance_ids: Collection[str]) -> dict[str, VmDesired]:
    """The desired state of each VM, in a few queries however many VMs (the streams' resync)."""
    with ctx.db.read() as session:
        instances = [row for chunk in in_chunks(client_instance_ids)
                     for row in session.exec(select(Instance).where(Instance.client_instance_id.in_(chunk))).all()]
        attachments = _by_id(session, Attachment, [i.attachment_id for i in instances if i.attachment_id])
        nodes = _by_id(session, Node, [a.node_id for a in attachments.values()])
        notebooks = notebook_grants(session, client_instance_ids, ctx.box)
    states = {vm_id: VmDesired(vm_id, None, notebooks.get(vm_id, ())) for vm_id in client_instance_ids}
    for instance in instances:
        attachment = attachments.get(instance.attachment_id or "")
        # Defensive: only an attachment that binds this very VM is ever shown to it.
        if attachment is not None and attachment.client_instance_id == instance.client_instance_id:
            grant = _vm_grant(instance, attachment, nodes.get(attachment.node_id), ctx.box)
            vm_id = instance.client_instance_id
            states[vm_id] = VmDesired(vm_id, grant, states[vm_id].notebooks)
    return states


def _vm_grant(instance: Instance, attachment: Attachment, node: Node | None, box: SecretBox) -> VmGrant:
    serving = instance.status in SERVING and attachment.ended_us is None
    return VmGrant(
        instance_id=instance.id, instance_type=instance.instance_type, status=Status(instance.status),
        node_gateway_address=node.gateway_address if node else "", node_tf_version=node.tf_version if node else "",
        attachment_id=attachment.id, token=box.open(attachment.token_ciphertext) if serving else "",
    )


def _by_id(session: Session, table: type[T], ids: list[str]) -> dict[str, T]:
    rows = (row for chunk in in_chunks(ids) for row in session.exec(select(table).where(table.id.in_(chunk))).all())
    return {row.id: row for row in rows}
