"""Register: upsert a node and its slices, or a VM as a client instance of an account.

Registering again (agent restart, lost session) updates in place and hands out a new session
token; the old one stops working. A slice that has an instance assigned is never touched by a
registration; unassigned slices the node no longer offers are removed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from sqlalchemy import delete, update
from sqlmodel import Session, select

from controller.agent_ca import AgentCA, load_or_create_agent_ca
from controller.agent_link.heartbeats import next_heartbeat_deadline_us
from controller.agent_link.registration_rules import NodeInfo, SliceOfferInfo, VmInfo, check_node, check_vm
from controller.agent_link.sessions import AgentKind, new_session_token, session_token_hash
from controller.changes import touch_session, touch_vm
from controller.context import ControllerContext
from controller.errors import NoPermission
from controller.tables import ClientInstance, Instance, Node, Slice, slice_id_for


@dataclass(frozen=True, slots=True)
class Registration:
    """What Register returns: the session and the first heartbeat deadline."""

    kind: AgentKind
    agent_id: str
    session_token: str
    heartbeat_deadline_us: int
    gateway_certificate_pem: str = ""
    ca_certificate_pem: str = ""


def register_node(
    ctx: ControllerContext, info: NodeInfo, ca: AgentCA | None = None, *, rng: random.Random | None = None
) -> Registration:
    """Upsert the node (online, new session) and its slices; the caller checked the node token."""
    check_node(ctx.settings, info)
    ca = ca or load_or_create_agent_ca(ctx.settings)
    certificate = ca.sign_gateway(info.gateway_csr_pem, info.gateway_address) if info.gateway_csr_pem else ""
    now = ctx.clock.now_us()
    token = new_session_token(AgentKind.NODE)
    deadline = next_heartbeat_deadline_us(ctx.settings.lifecycle, now, rng)
    with ctx.db.write() as session:
        node = session.get(Node, info.node_id) or Node(id=info.node_id, registered_us=now)
        node.sqlmodel_update(
            {
                "region_id": info.region_id, "zone_id": info.zone_id, "hostname": info.hostname,
                "gateway_address": info.gateway_address, "backend": info.backend,
                "accelerator_model": info.accelerator_model, "tf_version": info.tf_version, "online": True,
                "session_token_hash": session_token_hash(token), "heartbeat_deadline_us": deadline,
                "last_seen_us": now,
            }
        )
        session.add(node)
        session.flush()  # the node row must exist before slices reference it
        _sync_slices(session, info.node_id, info.slices)
        touch_session(session, "node", info.node_id)
        for client_id in _clients_served_by(session, info.node_id):  # they dial its gateway address
            touch_vm(session, client_id)
    return Registration(AgentKind.NODE, info.node_id, token, deadline, certificate, ca.certificate_pem)


def _sync_slices(session: Session, node_id: str, offers: tuple[SliceOfferInfo, ...]) -> None:
    """Add new slices, reshape and drop unassigned ones; "unassigned" is re-checked in each statement
    because CreateEai may claim a slice between our read and our write."""
    existing = set(session.exec(select(Slice.id).where(Slice.node_id == node_id)).all())
    offered = {slice_id_for(node_id, offer.local_id): offer for offer in offers}
    for slice_id, offer in offered.items():
        shape = {"instance_type": offer.instance_type, "gpu_index": offer.gpu_index, "memory_mib": offer.memory_mib}
        if slice_id in existing:  # an assigned slice keeps its shape until its instance is gone
            session.execute(update(Slice).where(Slice.id == slice_id, Slice.instance_id.is_(None)).values(**shape))
        else:
            session.add(Slice(id=slice_id, node_id=node_id, **shape))
    gone = existing - offered.keys()
    if gone:
        session.execute(delete(Slice).where(Slice.id.in_(gone), Slice.instance_id.is_(None)))


def _clients_served_by(session: Session, node_id: str) -> list[str]:
    return list(session.exec(
        select(Instance.client_instance_id).join(Slice, Slice.instance_id == Instance.id)
        .where(Slice.node_id == node_id, Instance.client_instance_id.is_not(None))
    ).all())


def register_vm(
    ctx: ControllerContext, info: VmInfo, account_id: str, ca: AgentCA | None = None,
    *, rng: random.Random | None = None,
) -> Registration:
    """Upsert the VM as a client instance of ``account_id`` (the account whose AccessKey signed)."""
    check_vm(ctx.settings, info)
    now = ctx.clock.now_us()
    token = new_session_token(AgentKind.VM)
    deadline = next_heartbeat_deadline_us(ctx.settings.lifecycle, now, rng)
    with ctx.db.write() as session:
        vm = session.get(ClientInstance, info.client_instance_id)
        if vm is not None and vm.account_id != account_id:
            raise NoPermission(
                f"Client instance {info.client_instance_id} is registered to another account; "
                "sign with an AccessKey of the account that owns this VM."
            )
        vm = vm or ClientInstance(id=info.client_instance_id, account_id=account_id, registered_us=now)
        vm.sqlmodel_update(
            {
                "region_id": info.region_id, "zone_id": info.zone_id, "vpc_id": info.vpc_id,
                "vswitch_id": info.vswitch_id, "kind": info.kind, "name": info.name,
                "instance_type": info.instance_type, "vcpu": info.vcpu, "memory_mib": info.memory_mib,
                "tf_endpoint": info.tf_endpoint, "online": True, "session_token_hash": session_token_hash(token),
                "heartbeat_deadline_us": deadline, "last_seen_us": now,
            }
        )
        session.add(vm)
        touch_session(session, "vm", info.client_instance_id)
    ca = ca or load_or_create_agent_ca(ctx.settings)
    return Registration(AgentKind.VM, info.client_instance_id, token, deadline, "", ca.certificate_pem)
