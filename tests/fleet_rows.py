"""Inventory rows for rule tests that do not need live agents (the agent-link tests cover those).

These write exactly the rows a node agent's and a VM agent's registration write.
"""

from __future__ import annotations

from controller.context import ControllerContext
from controller.tables import ClientInstance, Node, Slice

REGION = "cn-hangzhou"
ZONE = "cn-hangzhou-a"


def add_node(
    ctx: ControllerContext, node_id: str = "node-1", *, region: str = REGION, zone: str = ZONE,
    slices: dict[str, int] | None = None, online: bool = True,
) -> list[str]:
    """A node with ``slices`` {instance type: count}; returns the slice ids."""
    now = ctx.clock.now_us()
    slices = slices or {"eais.ei-a6.2xlarge": 2}
    ids: list[str] = []
    with ctx.db.write() as session:
        session.add(Node(id=node_id, region_id=region, zone_id=zone, hostname=f"{node_id}.test",
                         gateway_address="127.0.0.1:1", backend="simulated", accelerator_model="simulated (no accelerator)",
                         online=online, heartbeat_deadline_us=now + 3_600_000_000, registered_us=now, last_seen_us=now))
        session.flush()
        for instance_type, count in slices.items():
            for n in range(count):
                slice_id = f"{node_id}/{instance_type}/{n}"
                session.add(Slice(id=slice_id, node_id=node_id, instance_type=instance_type, gpu_index=0, memory_mib=1024))
                ids.append(slice_id)
    return ids


def add_client(
    ctx: ControllerContext, account_id: str, client_id: str = "i-vm1", *, region: str = REGION, zone: str = ZONE,
    vpc: str = "vpc-1", vswitch: str = "vsw-1", vcpu: int = 2, memory_mib: int = 4096, kind: str = "ECS",
    online: bool = True,
) -> str:
    now = ctx.clock.now_us()
    with ctx.db.write() as session:
        session.add(ClientInstance(id=client_id, account_id=account_id, region_id=region, zone_id=zone, vpc_id=vpc,
                                   vswitch_id=vswitch, kind=kind, name=f"{client_id}-name", instance_type="ecs.g6.large",
                                   vcpu=vcpu, memory_mib=memory_mib, online=online,
                                   heartbeat_deadline_us=now + 3_600_000_000, registered_us=now, last_seen_us=now))
    return client_id
