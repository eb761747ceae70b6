"""A test-only stand-in for the node agent's gateway, so the VM agent can be tested before the real one exists.

It does what the node agent does on the wire: registers a CPU node with the real controller (the
gateway's CSR in the registration, the certificate the controller's agent CA signs back), serves
TLS with it, reads the VM agent's hello, checks the token against the attachments in its desired
state, and relays accepted channels to a real TensorFlow worker. Its slices are reported like
``simulated_slice_state`` (worker READY as soon as an attachment is desired).

Knobs for the refusal tests: ``untrusted`` serves a certificate from a CA of its own,
``refuse_every_token`` answers every hello as a wrong token, and ``open_for_channels`` (an
Event) keeps hellos refused as "worker not started yet" until it is set. For the data-path tests:
``worker_ready`` (an Event) keeps the worker reported STARTING until set (``report_again`` then
tells the controller), ``stall_probes(n)`` leaves the next ``n`` probe hellos unanswered, and
``go_away()`` stops listening and cuts every relay, as a node that died would.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import socket
import threading
import time

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from agent.controller_link import ControllerLink, NodeToken
from agent.controller_trust import ControllerTrust
from agent.gateway_protocol import PROBE, answer, read_hello
from agent.gateway_tls import GatewayKey, new_gateway_key, server_context
from agent.relay import RelaySet, close_listener, tune
from agent.simulated_fleet import node_registration, simulated_slice_state
from agent.tls_stream import TlsStream
from protos.eais.v1 import agents_pb2 as pb

XLARGE = "eais.ei-a6.xlarge"


class TestNodeGateway:
    __test__ = False  # a helper, not a test class

    def __init__(self, controller: str, trust: ControllerTrust, node_token: str, node_id: str, worker_port: int, *,
                 tf_version: str, region: str, zone: str, untrusted: bool = False, refuse_every_token: bool = False,
                 ) -> None:
        self._worker_port, self._untrusted, self._refuse_every_token = worker_port, untrusted, refuse_every_token
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self._key = new_gateway_key(node_id)
        request = node_registration(node_id, region, zone, {XLARGE: 8}, 1)
        request.node.backend, request.node.accelerator_model = pb.BACKEND_CPU, "CPU (test gateway)"
        request.node.gateway_address, request.node.tf_version = self.address, tf_version
        request.node.gateway_csr_pem = self._key.csr_pem
        self.link = ControllerLink(controller, request, NodeToken(node_token), trust=trust)
        self.slice_id = f"{node_id}/xlarge-0"
        self.open_for_channels = threading.Event()
        self.open_for_channels.set()
        self.worker_ready = threading.Event()
        self.worker_ready.set()
        self.probes: list[str] = []  # "accepted", a refusal, or "stalled", per probe hello
        self._stalls = 0
        self._last_desired: list[pb.SliceDesiredState] = []
        self.relays = RelaySet()
        self.hellos: list[tuple[str, str]] = []  # (attachment id, "accepted" or the refusal)
        self._tokens: dict[str, str] = {}
        self._stop = threading.Event()

    def start(self) -> TestNodeGateway:
        registration = self.link.register()
        self._tls = _serving_context(self._key, registration, self.address, untrusted=self._untrusted)
        for target in (self._accept_forever, self._follow_desired_state):
            threading.Thread(target=target, daemon=True).start()
        threading.Thread(target=self.link.run_heartbeats, args=(self._stop,), daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.link.close()
        close_listener(self._listener)
        self.relays.close_all()

    def go_away(self) -> None:
        """Stop listening and cut every relay (the node's process died; its heartbeats go on here)."""
        close_listener(self._listener)
        self.relays.close_all()

    def stall_probes(self, count: int) -> None:
        self._stalls = count

    def report_again(self) -> None:
        self._report(self._last_desired)

    def _follow_desired_state(self) -> None:
        for desired in self.link.desired_states(self._stop):
            slices = self._last_desired = list(desired.node.slices)
            self._tokens = {s.attachment.attachment_id: s.attachment.attachment_token
                            for s in slices if s.HasField("attachment")}
            self._report(slices)

    def _report(self, slices: list[pb.SliceDesiredState]) -> None:
        states = [simulated_slice_state(s) for s in slices]
        for state in states:
            if state.worker == pb.WORKER_STATE_READY and not self.worker_ready.is_set():
                state.worker = pb.WORKER_STATE_STARTING
        # the next desired state reports again; ValueError: the link was closed while stopping
        with contextlib.suppress(grpc.RpcError, ValueError):
            self.link.report(pb.ActualStateReport(observed_us=time.time_ns() // 1000,
                                                  node=pb.NodeActualState(slices=states)))

    def _accept_forever(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            tune(conn)
            threading.Thread(target=self._serve_channel, args=(conn,), daemon=True).start()

    def _serve_channel(self, conn: socket.socket) -> None:
        stream = TlsStream(conn, self._tls, server_side=True)
        try:
            conn.settimeout(5)
            stream.handshake()
            hello = read_hello(stream)
        except (OSError, ValueError):
            conn.close()  # e.g. the VM agent rejected our certificate
            return
        refusal = self._refusal_for(hello.attachment_id, hello.token)
        if hello.purpose == PROBE:
            self._answer_probe(conn, stream, refusal)
            return
        self.hellos.append((hello.attachment_id, refusal or "accepted"))
        answer(stream, refusal)
        if refusal:
            conn.close()
            return
        conn.settimeout(None)
        worker = socket.create_connection(("127.0.0.1", self._worker_port))
        tune(worker)  # Nagle would hold small gRPC frames back for a delayed ACK (40 ms)
        self.relays.start(stream, worker, name=f"gw-{hello.attachment_id}")

    def _answer_probe(self, conn: socket.socket, stream: TlsStream, refusal: str | None) -> None:
        if self._stalls > 0:
            self._stalls -= 1
            self.probes.append("stalled")
            time.sleep(3)  # longer than the agent waits for an answer
        else:
            self.probes.append(refusal or "accepted")
            with contextlib.suppress(OSError):
                answer(stream, refusal)
        conn.close()

    def _refusal_for(self, attachment_id: str, token: str) -> str | None:
        expected = self._tokens.get(attachment_id)
        if expected is None:
            return f"attachment {attachment_id} is not served by this node (yet)"
        if self._refuse_every_token or token != expected:
            return f"the token for attachment {attachment_id} does not match"
        if not self.open_for_channels.is_set():
            return f"the worker for attachment {attachment_id} is not started yet"
        return None


def _serving_context(key: GatewayKey, registration: pb.RegisterResponse, address: str, *, untrusted: bool):
    if not untrusted:
        return server_context(key.key_pem, registration.gateway_certificate_pem, registration.ca_certificate_pem)
    rogue_ca_key = ec.generate_private_key(ec.SECP256R1())
    rogue_ca_pem, certificate_pem = _rogue_certificates(rogue_ca_key, key, address.rpartition(":")[0])
    return server_context(key.key_pem, certificate_pem, rogue_ca_pem)


def _rogue_certificates(ca_key: ec.EllipticCurvePrivateKey, key: GatewayKey, host: str) -> tuple[str, str]:
    """A self-made CA and a certificate for ``host`` that it signed: right name, wrong issuer."""
    now = dt.datetime.now(dt.UTC)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "not the eais agent CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
          .not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True).sign(ca_key, hashes.SHA256()))
    csr = x509.load_pem_x509_csr(key.csr_pem.encode())
    leaf = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
            .issuer_name(ca_name).public_key(csr.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    return ca.public_bytes(pem).decode(), leaf.public_bytes(pem).decode()
