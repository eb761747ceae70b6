"""The node agent serves an attachment end to end: real controller, real TensorFlow workers in their
own network namespaces, the real TLS gateway; this test stands in for the VM agent."""

from __future__ import annotations

import importlib.metadata
import os
import socket
import ssl
import subprocess
import sys

import grpc
import psutil
import pytest
from sqlmodel import select

from agent.gateway_protocol import MAGIC, GatewayRefused, Hello, read_answer, send_hello
from agent.gateway_tls import client_context
from agent.node.worker.probe import GET_STATUS, device_names
from agent.node.worker.process import WorkerProcess
from agent.tls_stream import TlsStream
from controller.agent_link.desired_state import vm_desired_state
from controller.binding import attach_instance, detach_instance
from controller.provisioning import CreateRequest, create_instance
from controller.release import delete_instance
from controller.states import Status
from controller.tables import Instance, Node, Slice, UsageSample
from protos.eais.v1 import agents_pb2 as pb
from tests.harness.metrics import scrape
from tests.harness.waiting import eventually
from tests.node_agent.conftest import REGION, VM_ID, XLARGE, Controller, RunningNode, Tenant
from tests.node_agent.gateway_client import LocalPort, open_channel

TF_REMOTE_CALL = """
import sys, tensorflow as tf
tf.config.experimental_connect_to_host(sys.argv[1], job_name="worker")
with tf.device("/job:worker/replica:0/task:0/device:CPU:0"):
    product = tf.matmul(tf.constant([[1.0, 2.0], [3.0, 4.0]]), tf.constant([[1.0], [1.0]]))
    print("placed on", product.device)
print("result", product.numpy().ravel().tolist())
"""


@pytest.fixture(scope="module")
def instance_id(controller: Controller, node: RunningNode, tenant: Tenant) -> str:
    return create_instance(controller.ctx, tenant.account.account_id, CreateRequest(REGION, XLARGE), request_id="t")


def attach(controller: Controller, tenant: Tenant, instance_id: str) -> tuple[str, str, str, float]:
    """AttachEai; returns (attachment id, token, gateway address, seconds from attach to worker READY)."""
    attach_instance(controller.ctx, tenant.account.account_id, REGION, instance_id, VM_ID, request_id="t")
    grant = vm_desired_state(controller.ctx, VM_ID).attachment
    ready_us = eventually(lambda: controller.attachment(grant.attachment_id).node_ready_us, 60, "worker READY")
    attach_to_ready_s = (ready_us - controller.attachment(grant.attachment_id).created_us) / 1e6
    print(f"attach -> worker READY reported: {attach_to_ready_s:.2f}s", flush=True)
    return grant.attachment_id, grant.token, grant.node_gateway_address, attach_to_ready_s


def prove_channel(controller: Controller, tenant: Tenant, instance_id: str, attachment_id: str) -> None:
    tenant.vm.report(pb.ActualStateReport(vm=pb.VmActualState(
        attachment_id=attachment_id, channel=pb.CHANNEL_STATE_PROVEN, round_trip_us=1000)))
    eventually(lambda: controller.status_of(instance_id) == Status.IN_USE, 10, "InUse")


def detach(controller: Controller, tenant: Tenant, instance_id: str, attachment_id: str) -> None:
    detach_instance(controller.ctx, tenant.account.account_id, REGION, instance_id, request_id="t")
    tenant.vm.report(pb.ActualStateReport(vm=pb.VmActualState(attachment_id=attachment_id,
                                                              channel=pb.CHANNEL_STATE_CLOSED)))
    eventually(lambda: controller.status_of(instance_id) == Status.AVAILABLE, 30, "Available after detach")


def worker_of(node: RunningNode, attachment_id: str, *, ready: bool = False) -> WorkerProcess | None:
    """The process serving the attachment now (the test looks inside the agent for it)."""
    target = node.agent._lookup(attachment_id)  # noqa: SLF001
    if target is None or target.served is None or (ready and target.served.state != "ready"):
        return None
    return target.served.worker


def usage_samples(controller: Controller, attachment_id: str) -> list[UsageSample]:
    with controller.ctx.db.read() as session:
        rows = list(session.exec(select(UsageSample).where(UsageSample.attachment_id == attachment_id)).all())
    for row in rows:  # the CPU backend has no accelerator: its figures are 0, never invented
        assert row.gpu_core_percent == 0 and row.gpu_memory_percent == 0 and row.memory_used_mib == 0
        assert 0 <= row.cpu_percent <= 100 and 0 < row.memory_percent <= 100
    return rows


def get_status_through(port: LocalPort) -> list[str]:
    with grpc.insecure_channel(port.address) as channel:
        return device_names(channel.unary_unary(GET_STATUS)(b"", timeout=15))


def refusal(address: str, ca_pem: str, attachment_id: str, token: str) -> str:
    with pytest.raises(GatewayRefused) as refused:
        open_channel(address, ca_pem, attachment_id, token).close()
    return str(refused.value)


def test_the_node_registers_as_the_cpu_backend_and_a_new_instance_goes_starting_then_available(
        controller: Controller, instance_id: str) -> None:
    eventually(lambda: controller.status_of(instance_id) == Status.AVAILABLE, 20, "Available")

    statuses = [t.to_status for t in controller.transitions(instance_id)]
    assert statuses == [Status.PENDING, Status.STARTING, Status.AVAILABLE]
    with controller.ctx.db.read() as session:
        node_row = session.get(Node, "test-node")
    assert (node_row.backend, node_row.tf_version) == ("cpu", importlib.metadata.version("tensorflow-cpu"))
    assert node_row.accelerator_model.startswith("CPU backend (no accelerator): ")


def test_an_attached_instance_is_served_only_through_the_gateway(
        controller: Controller, node: RunningNode, tenant: Tenant, instance_id: str) -> None:
    eventually(lambda: controller.status_of(instance_id) == Status.AVAILABLE, 20, "Available")
    attachment_id, token, address, _ = attach(controller, tenant, instance_id)
    worker = worker_of(node, attachment_id)

    with LocalPort(address, tenant.ca_pem, attachment_id, token) as port:
        assert get_status_through(port) == ["/job:worker/replica:0/task:0/device:CPU:0"]
        prove_channel(controller, tenant, instance_id, attachment_id)
        remote = subprocess.run([sys.executable, "-c", TF_REMOTE_CALL, port.address], capture_output=True,
                                text=True, timeout=90, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
        assert "result [3.0, 7.0]" in remote.stdout, remote.stderr[-2000:]
        assert "/job:worker/replica:0/task:0/device:CPU:0" in remote.stdout

        assert "wrong token" in refusal(address, tenant.ca_pem, attachment_id, token[:-2] + "xx")
        assert "unknown to this node" in refusal(address, tenant.ca_pem, "att-doesnotexist", token)
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", node.agent.settings.worker_port), timeout=2)
        assert os.stat(f"/proc/{worker.pid}/ns/net").st_ino != os.stat("/proc/self/ns/net").st_ino
        assert usage_samples(controller, attachment_id), "the READY worker's usage reaches the controller"

        held = open_channel(address, tenant.ca_pem, attachment_id, token)  # a connection open across the detach
        detach(controller, tenant, instance_id, attachment_id)
        assert _closed_soon(held), "detach cut the attachment's open connections"

    assert not psutil.pid_exists(worker.pid)
    assert "unknown to this node or has ended" in refusal(address, tenant.ca_pem, attachment_id, token)
    detached = controller.transitions(instance_id)[-1]
    assert detached.to_status == Status.AVAILABLE and "memory free" in detached.reason


def test_a_warm_worker_from_the_pool_makes_the_next_attach_fast(
        controller: Controller, node: RunningNode, tenant: Tenant, instance_id: str) -> None:
    eventually(lambda: controller.status_of(instance_id) == Status.AVAILABLE, 20, "Available")
    eventually(lambda: node.agent.pool.counts()[0] >= 1, 90, "a warm worker in the pool")

    attachment_id, token, address, attach_to_ready_s = attach(controller, tenant, instance_id)

    with LocalPort(address, tenant.ca_pem, attachment_id, token) as port:
        assert get_status_through(port)
    prove_channel(controller, tenant, instance_id, attachment_id)
    detach(controller, tenant, instance_id, attachment_id)
    assert attach_to_ready_s < 3.0, f"attach took {attach_to_ready_s:.2f}s with a warm worker"


def test_the_metrics_show_the_worker_the_pool_the_relayed_bytes_and_the_heartbeats(
        controller: Controller, node: RunningNode, tenant: Tenant, instance_id: str) -> None:
    eventually(lambda: controller.status_of(instance_id) == Status.AVAILABLE, 20, "Available")
    attachment_id, token, address, _ = attach(controller, tenant, instance_id)
    prove_channel(controller, tenant, instance_id, attachment_id)
    with LocalPort(address, tenant.ca_pem, attachment_id, token) as port, grpc.insecure_channel(port.address) as app:
        app.unary_unary(GET_STATUS)(b"", timeout=15)  # its connection stays open while the metrics are read
        serving = scrape(node.agent.metrics.url)
    detach(controller, tenant, instance_id, attachment_id)
    after = eventually(lambda: (m := scrape(node.agent.metrics.url))['eais_node_heartbeats_total{outcome="ok"}'] >= 1
                       and m, 20, "a heartbeat counted")

    assert serving['eais_node_workers{state="ready"}'] == 1
    assert serving['eais_node_gateway_bytes_total{direction="to_worker"}'] > 0
    assert serving['eais_node_gateway_bytes_total{direction="from_worker"}'] > 0
    assert serving['eais_node_gateway_connections_total{outcome="relay"}'] >= 1
    assert serving["eais_node_gateway_relays_open"] == 1 and serving["eais_node_worker_pool_takes_total"] >= 1
    assert serving['eais_node_slices{role="serve"}'] == 1
    assert after['eais_node_workers{state="ready"}'] == 0 and after["eais_node_gateway_relays_open"] == 0
    assert after['eais_node_worker_pool{state="warm"}'] + after['eais_node_worker_pool{state="warming"}'] >= 1
    assert after["process_threads"] > 0 and after["process_open_fds"] > 0


def test_an_in_use_instance_whose_worker_died_gets_a_fresh_worker_for_the_same_attachment(
        controller: Controller, node: RunningNode, tenant: Tenant, instance_id: str) -> None:
    eventually(lambda: controller.status_of(instance_id) == Status.AVAILABLE, 20, "Available")
    attachment_id, token, address, _ = attach(controller, tenant, instance_id)
    prove_channel(controller, tenant, instance_id, attachment_id)
    crashed = worker_of(node, attachment_id)

    crashed.process.kill()  # like the kernel's OOM killer

    eventually(lambda: node.said(f"{attachment_id} its worker died"), 10, "the death noticed")
    fresh = eventually(lambda: worker_of(node, attachment_id, ready=True), 60, "a fresh worker READY")
    assert fresh.pid != crashed.pid
    with LocalPort(address, tenant.ca_pem, attachment_id, token) as port:
        assert get_status_through(port)
    assert controller.status_of(instance_id) == Status.IN_USE


def test_releasing_an_instance_frees_its_slice_once_the_worker_is_gone(
        controller: Controller, node: RunningNode, tenant: Tenant, instance_id: str) -> None:
    eventually(lambda: controller.status_of(instance_id) in (Status.AVAILABLE, Status.IN_USE), 20, "settled")
    worker = worker_of(node, _current_attachment(controller, instance_id))

    delete_instance(controller.ctx, tenant.account.account_id, REGION, instance_id, force=True, request_id="t")

    slice_row = eventually(lambda: _idle_slice(controller, "test-node/cpu-xlarge-0"), 30, "the slice handed back")
    assert slice_row.instance_id is None and not slice_row.draining
    assert worker is None or not psutil.pid_exists(worker.pid)


def _current_attachment(controller: Controller, instance_id: str) -> str:
    with controller.ctx.db.read() as session:
        return session.get(Instance, instance_id).attachment_id or ""


def _idle_slice(controller: Controller, slice_id: str) -> Slice | None:
    with controller.ctx.db.read() as session:
        row = session.get(Slice, slice_id)
    return row if row is not None and not row.draining and row.instance_id is None else None


def test_connections_that_are_not_a_proper_tls_hello_are_refused_and_the_gateway_keeps_serving(
        node: RunningNode, tenant: Tenant) -> None:
    address = ("127.0.0.1", node.agent.gateway.port)

    with socket.create_connection(address, timeout=5) as plain:  # plain TCP, no TLS
        plain.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        assert _closed_soon(plain)
    silent = _tls(address, tenant.ca_pem)  # TLS, then no hello at all
    assert silent.recv_into(bytearray(10)) == 0, "closed after the handshake timeout"
    garbled = _tls(address, tenant.ca_pem)
    garbled.sendall(b"NOTMAGIC" + b"\x00\x02{}")
    with pytest.raises(GatewayRefused, match="wrong magic"):
        read_answer(garbled)
    oversized = _tls(address, tenant.ca_pem)
    oversized.sendall(MAGIC + b"\xff\xff")
    with pytest.raises(GatewayRefused, match="limit"):
        read_answer(oversized)
    with pytest.raises(ssl.SSLError):  # a client that does not trust the agent CA
        _tls(address, _unrelated_ca())

    still_serving = _tls(address, tenant.ca_pem)
    send_hello(still_serving, Hello("att-none", "x"))
    with pytest.raises(GatewayRefused, match="unknown to this node"):
        read_answer(still_serving)


def _tls(address: tuple[str, int], ca_pem: str) -> TlsStream:
    stream = TlsStream(socket.create_connection(address, timeout=5), client_context(ca_pem), server_side=False,
                       server_hostname=address[0])
    stream.handshake()
    return stream


def _closed_soon(connection: socket.socket | TlsStream) -> bool:
    """True when the peer closes within 5 s (whatever it sent before, e.g. the worker's HTTP/2 settings)."""
    connection.settimeout(5)
    buffer = bytearray(4096)
    try:
        while connection.recv_into(buffer):
            pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        pass
    return True


def _unrelated_ca() -> str:
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "someone else")])
    now = dt.datetime.now(dt.UTC)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(1).not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                   .sign(key, hashes.SHA256()))
    return certificate.public_bytes(serialization.Encoding.PEM).decode()
