"""The simulated fleet drives instances through the whole lifecycle over the real protocol."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agent.controller_link import AccessKey, ControllerLink, LinkRefused, NodeToken
from agent.controller_link_async import AsyncControllerLink
from agent.simulated_fleet import (
    AgentsInThread,
    SimulatedNode,
    SimulatedVm,
    node_registration,
    parse_args,
    simulated_slice_state,
    vm_registration,
)
from controller.states import Event, Status
from controller.tables import Node
from protos.eais.v1 import agents_pb2 as pb
from tests.agent_link.builders import NODE_TOKEN, REGION, ZONE, begin_attach, create_instance_on_slice, move, new_account, status_of
from tests.harness.waiting import eventually

REPO_ROOT = Path(__file__).resolve().parents[2]
SLICE = "sim-node/xlarge-0"



@pytest.fixture
def running(link) -> Iterator[Callable[[object], list[str]]]:
    """Start simulated agents on an event loop thread; everything they say is collected."""
    groups, lines = [], []

    def start(agent_factory):
        groups.append(AgentsInThread([agent_factory(lines.append)]))
        return lines

    yield start
    for group in groups:
        group.stop()


def test_simulated_node_and_vm_carry_an_instance_from_pending_through_attach_and_detach(ctx, link, running) -> None:
    account = new_account(ctx)
    node_request = node_registration("sim-node", REGION, ZONE, {"eais.ei-a6.xlarge": 8}, 1)
    node_link = AsyncControllerLink(link.target, node_request, NodeToken(NODE_TOKEN), trust=link.trust)
    lines = running(lambda say: SimulatedNode(node_link, say))
    vm_request = vm_registration("i-sim0001", REGION, ZONE, "vpc-sim", "vsw-sim", 2, 4096)
    key = AccessKey(account.access_key_id, account.access_key_secret)
    running(lambda say: SimulatedVm(AsyncControllerLink(link.target, vm_request, key, trust=link.trust), say))
    eventually(lambda: any("VM i-sim0001 registered" in line for line in lines))
    eventually(lambda: any("registered node sim-node" in line for line in lines))

    instance_id = create_instance_on_slice(ctx, account, SLICE)
    eventually(lambda: status_of(ctx, instance_id) == Status.AVAILABLE)
    begin_attach(ctx, instance_id, "i-sim0001")
    eventually(lambda: status_of(ctx, instance_id) == Status.IN_USE)
    eventually(lambda: any(f"instance {instance_id} attached to VM i-sim0001" in line for line in lines))
    move(ctx, instance_id, Event.DETACH)
    eventually(lambda: status_of(ctx, instance_id) == Status.AVAILABLE)

    with ctx.db.read() as session:
        node = session.get(Node, "sim-node")
    assert (node.backend, node.accelerator_model) == ("simulated", "simulated (no accelerator)")


def test_a_simulated_slice_report_names_the_instance_it_serves_and_none_while_idle_or_released() -> None:
    serving = pb.SliceDesiredState(slice_id=SLICE, role=pb.SLICE_ROLE_SERVE,
                                   instance=pb.AssignedInstance(instance_id="eais-sim1",
                                                                status=pb.INSTANCE_STATUS_PENDING))

    assert simulated_slice_state(serving).instance_id == "eais-sim1"
    for role in (pb.SLICE_ROLE_IDLE, pb.SLICE_ROLE_RELEASE):
        report = simulated_slice_state(pb.SliceDesiredState(slice_id=SLICE, role=role))
        assert (report.instance_id, report.worker, report.memory_free) == ("", pb.WORKER_STATE_NONE, True)


def test_the_link_registers_again_when_its_session_was_replaced(ctx, link) -> None:
    request = node_registration("sim-node", REGION, ZONE, {"eais.ei-a6.xlarge": 8}, 1)
    agent, usurper = (ControllerLink(link.target, request, NodeToken(NODE_TOKEN), trust=link.trust) for _ in range(2))
    agent.register()
    usurper.register()

    agent.heartbeat()  # UNAUTHENTICATED at first; the link registers again and retries

    assert agent.last_registration.session_token != usurper.last_registration.session_token
    agent.close()
    usurper.close()


def test_the_link_reports_a_wrong_node_token_as_a_refusal_not_a_retry(link) -> None:
    request = node_registration("sim-node", REGION, ZONE, {"eais.ei-a6.xlarge": 8}, 1)
    agent = ControllerLink(link.target, request, NodeToken("wrong-token"), trust=link.trust)

    with pytest.raises(LinkRefused, match="UNAUTHENTICATED SignatureDoesNotMatch"):
        agent.register_until_done(threading.Event())
    agent.close()


def test_the_fleet_command_refuses_vms_without_an_access_key() -> None:
    with pytest.raises(SystemExit):
        parse_args(["--vms", "1"])


def test_the_fleet_command_runs_until_interrupted_and_says_what_it_registered(ctx, link, tmp_path) -> None:
    account = new_account(ctx)
    token_file = tmp_path / "node.token"
    token_file.write_text(NODE_TOKEN + "\n")
    command = [sys.executable, "-m", "agent.simulated_fleet", "--controller", link.target,
               "--controller-ca", str(link.trust.ca_file), "--node-token-file", str(token_file),
               f"--access-key-id={account.access_key_id}", f"--access-key-secret={account.access_key_secret}",
               "--vms", "2", "--slices-per-type", "1"]
    fleet = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        seen = _read_until(fleet, lambda text: "registered node" in text and text.count("registered (simulated") == 2)
        fleet.send_signal(signal.SIGINT)
        output, _ = fleet.communicate(timeout=30)  # 10 s ran out once on a 2-core machine busy with TensorFlow
    finally:
        fleet.kill()

    assert "registered node sim-cn-hangzhou-node1 (simulated, no accelerator) with 5 slices" in seen
    assert "simulated fleet stopped" in output
    assert fleet.returncode == 0


def _read_until(process: subprocess.Popen, done: Callable[[str], bool], timeout_s: float = 15.0) -> str:
    text, deadline = "", time.monotonic() + timeout_s
    while not done(text):
        assert time.monotonic() < deadline and process.poll() is None, f"fleet output so far:\n{text}"
        text += process.stdout.readline()
    return text
