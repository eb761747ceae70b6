"""Usage in node reports is kept only when it is about the slice's current instance and attachment."""

from __future__ import annotations

import math

import pytest
from sqlmodel import select

from controller.agent_link import apply_node_report, apply_vm_report
from controller.agent_link.actual_state import ChannelReport, ChannelState, SlicePhase, SliceReport, WorkerState
from controller.states import Event, Status
from controller.tables import UsageSample
from controller.usage_samples import UsageFigures
from protos.eais.v1 import agents_pb2 as pb
from tests.agent_link.builders import (
    NODE_TOKEN, bearer, begin_attach, create_instance_on_slice, given_node, given_vm, move, new_account, node_request,
    release, status_of,
)

SLICE = "node-1/0"
BUSY = UsageFigures(gpu_core_percent=80.0, gpu_memory_percent=50.0, memory_used_mib=4096, cpu_percent=12.5,
                    memory_percent=6.0)


def worker(instance_id: str, attachment_id: str, usage: UsageFigures | None = BUSY) -> SliceReport:
    return SliceReport(SLICE, SlicePhase.READY, WorkerState.READY, attachment_id=attachment_id, instance_id=instance_id,
                       usage=usage)


def idle(instance_id: str = "", usage: UsageFigures | None = BUSY) -> SliceReport:
    return SliceReport(SLICE, SlicePhase.READY, WorkerState.NONE, memory_free=True, instance_id=instance_id,
                       usage=usage)


def samples(ctx) -> list[UsageSample]:
    with ctx.db.read() as session:
        return list(session.exec(select(UsageSample).order_by(UsageSample.at_us)).all())


@pytest.fixture
def account(ctx):
    account = new_account(ctx)
    given_node(ctx, "node-1", ("0", "1"))
    given_vm(ctx, account, "i-vm0001")
    return account


@pytest.fixture
def available(ctx, account) -> str:
    instance_id = create_instance_on_slice(ctx, account, SLICE)
    move(ctx, instance_id, Event.SLICE_READY)
    return instance_id


@pytest.fixture
def in_use(ctx, available) -> tuple[str, str]:
    attachment_id, _ = begin_attach(ctx, available, "i-vm0001")
    apply_node_report(ctx, "node-1", [worker(available, attachment_id, usage=None)])
    apply_vm_report(ctx, "i-vm0001", ChannelReport(attachment_id, ChannelState.PROVEN))
    assert status_of(ctx, available) == Status.IN_USE
    return available, attachment_id


def test_usage_of_the_current_attachments_worker_becomes_a_sample_of_its_instance(ctx, clock, in_use) -> None:
    instance_id, attachment_id = in_use

    apply_node_report(ctx, "node-1", [worker(instance_id, attachment_id)])

    [sample] = samples(ctx)
    assert (sample.instance_id, sample.attachment_id, sample.slice_id, sample.at_us) == (
        instance_id, attachment_id, SLICE, clock.now_us())
    assert (sample.gpu_core_percent, sample.gpu_memory_percent, sample.cpu_percent, sample.memory_percent) == (
        80.0, 50.0, 12.5, 6.0)


def test_the_report_that_completes_the_attach_already_leaves_a_sample(ctx, available) -> None:
    attachment_id, _ = begin_attach(ctx, available, "i-vm0001")

    apply_node_report(ctx, "node-1", [worker(available, attachment_id)])

    assert [s.instance_id for s in samples(ctx)] == [available]


def test_a_node_reporting_every_second_leaves_one_sample_per_interval(ctx, clock, in_use) -> None:
    instance_id, attachment_id = in_use

    for _ in range(30):
        apply_node_report(ctx, "node-1", [worker(instance_id, attachment_id)])
        clock.advance(1)

    assert len(samples(ctx)) == 3


def test_usage_on_an_idle_slice_is_ignored(ctx, account) -> None:
    apply_node_report(ctx, "node-1", [idle()])

    assert samples(ctx) == []


def test_usage_on_a_slice_whose_instance_has_no_attachment_is_ignored(ctx, available) -> None:
    apply_node_report(ctx, "node-1", [idle(available)])

    assert samples(ctx) == []


def test_usage_of_a_worker_from_an_earlier_attachment_is_ignored(ctx, clock, in_use) -> None:
    instance_id, old_attachment = in_use
    move(ctx, instance_id, Event.DETACH)
    apply_node_report(ctx, "node-1", [idle(instance_id, usage=None)])
    apply_vm_report(ctx, "i-vm0001", ChannelReport(old_attachment, ChannelState.CLOSED))
    assert status_of(ctx, instance_id) == Status.AVAILABLE
    new_attachment, _ = begin_attach(ctx, instance_id, "i-vm0001")

    apply_node_report(ctx, "node-1", [worker(instance_id, old_attachment)])
    assert samples(ctx) == []
    apply_node_report(ctx, "node-1", [worker(instance_id, new_attachment)])

    assert [s.attachment_id for s in samples(ctx)] == [new_attachment]


def test_usage_on_a_released_instances_draining_slice_is_ignored(ctx, in_use) -> None:
    instance_id, attachment_id = in_use
    release(ctx, instance_id)

    apply_node_report(ctx, "node-1", [worker(instance_id, attachment_id)])

    assert samples(ctx) == []


def test_usage_in_a_report_naming_another_instance_is_ignored(ctx, in_use) -> None:
    _, attachment_id = in_use

    apply_node_report(ctx, "node-1", [worker("", attachment_id)])

    assert samples(ctx) == []


def test_usage_that_is_not_a_number_is_dropped_with_a_note_and_the_report_still_counts(ctx, available) -> None:
    attachment_id, _ = begin_attach(ctx, available, "i-vm0001")
    broken = UsageFigures(math.nan, 1.0, 1, 1.0, 1.0)

    outcome = apply_node_report(ctx, "node-1", [worker(available, attachment_id, usage=broken)])

    assert samples(ctx) == []
    assert any("not numbers" in note for note in outcome.notes)
    assert outcome.transitions == [] and status_of(ctx, available) == Status.ATTACHING  # waits for the VM only


def test_usage_sent_over_grpc_reaches_the_samples_and_a_report_without_usage_leaves_none(ctx, clock, link) -> None:
    session = link.stub.Register(node_request("node-1", ("0",)), metadata=bearer(NODE_TOKEN)).session_token
    account = new_account(ctx)
    instance_id = create_instance_on_slice(ctx, account, SLICE)
    move(ctx, instance_id, Event.SLICE_READY)
    given_vm(ctx, account, "i-vm0001")
    attachment_id, _ = begin_attach(ctx, instance_id, "i-vm0001")

    def report(**usage: float) -> None:
        entry = pb.SliceActualState(slice_id=SLICE, phase=pb.SLICE_PHASE_READY, worker=pb.WORKER_STATE_READY,
                                    attachment_id=attachment_id, instance_id=instance_id)
        if usage:
            entry.usage.CopyFrom(pb.SliceUsage(**usage))
        link.stub.ReportActualState(pb.ActualStateReport(node=pb.NodeActualState(slices=[entry])), metadata=bearer(session))

    report()
    clock.advance(60)
    report(gpu_core_usage_percent=33.5, gpu_memory_usage_percent=20.0, memory_used_mib=1024, cpu_usage_percent=7.0,
           memory_usage_percent=2.5)

    [sample] = samples(ctx)
    assert (sample.gpu_core_percent, sample.gpu_memory_percent, sample.memory_used_mib, sample.cpu_percent,
            sample.memory_percent) == (33.5, 20.0, 1024, 7.0, 2.5)
