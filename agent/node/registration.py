"""What the node agent tells the controller about itself when it registers."""

from __future__ import annotations

import importlib.metadata
import socket

from agent.node.inventory import Inventory
from agent.node.settings import NodeSettings
from agent.node.slicing import SliceSpec
from protos.eais.v1 import agents_pb2 as pb

TF_DISTRIBUTIONS = ("tensorflow-cpu", "tensorflow", "tensorflow-gpu", "tf-nightly")
BACKENDS = {"gpu": pb.BACKEND_GPU, "cpu": pb.BACKEND_CPU}


def tensorflow_version() -> str:
    """The installed TensorFlow's version, from package metadata (importing TensorFlow takes seconds)."""
    for distribution in TF_DISTRIBUTIONS:
        try:
            return importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            continue
    return ""


def gateway_address(settings: NodeSettings, bound_port: int) -> str:
    """HOST:PORT that VM agents dial: ``advertise`` (with or without a port), else this host's name."""
    advertised = settings.advertise or _own_host()
    host, sep, port = advertised.rpartition(":")
    if sep and port.isdigit() and (host.startswith("[") or ":" not in host):
        return advertised  # HOST:PORT given (a NAT or port forward in front of the gateway)
    host = advertised
    return f"[{host}]:{bound_port}" if ":" in host else f"{host}:{bound_port}"


def _own_host() -> str:
    name = socket.getfqdn() or socket.gethostname()
    try:
        socket.getaddrinfo(name, None)
    except OSError:
        return "127.0.0.1"  # a name nobody can resolve would only make VM agents fail later
    return name


def node_registration(settings: NodeSettings, inventory: Inventory, slices: list[SliceSpec], address: str,
                      csr_pem: str) -> pb.RegisterRequest:
    return pb.RegisterRequest(node=pb.NodeRegistration(
        node_id=settings.resolved_node_id(), hostname=socket.gethostname(), region_id=settings.region,
        zone_id=settings.resolved_zone(), gateway_address=address, backend=BACKENDS[inventory.backend],
        accelerator_model=inventory.accelerator_model[:128], tf_version=tensorflow_version(),
        slices=[pb.SliceOffer(local_id=s.local_id, instance_type=s.instance_type, gpu_index=s.gpu_index,
                              memory_mib=s.memory_mib) for s in slices],
        gateway_csr_pem=csr_pem,
    ))
