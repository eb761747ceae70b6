"""What the VM agent tells the controller about this VM: identity and network from the settings,
size from the machine itself (psutil), and the address of the local TensorFlow endpoint."""

from __future__ import annotations

import psutil

from agent.vm.settings import AgentIdentity
from protos.eais.v1 import agents_pb2 as pb

MIB = 1024 * 1024
CLIENT_KINDS = {"ECS": pb.CLIENT_KIND_ECS, "ECI": pb.CLIENT_KIND_ECI}


def machine_size() -> tuple[int, int]:
    """(vCPUs, memory MiB) of this machine."""
    return psutil.cpu_count(logical=True) or 1, max(1, psutil.virtual_memory().total // MIB)


def vm_registration(identity: AgentIdentity, tf_endpoint: str) -> pb.RegisterRequest:
    vcpu, memory_mib = machine_size()
    return pb.RegisterRequest(vm=pb.VmRegistration(
        client_instance_id=identity.client_instance_id, region_id=identity.region_id, zone_id=identity.zone_id,
        vpc_id=identity.vpc_id, vswitch_id=identity.vswitch_id, kind=CLIENT_KINDS[identity.kind],
        name=identity.name, instance_type=identity.instance_type, vcpu=vcpu, memory_mib=memory_mib,
        tf_endpoint=tf_endpoint,
    ))
