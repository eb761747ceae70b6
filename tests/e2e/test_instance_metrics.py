"""GetInstanceMetrics through both official SDKs, fed by a node agent's reports over the real AgentLink.

The node, the VM and the API all run for real (gRPC and uvicorn on port 0); only the controller's
clock is a fake one, started on a five-minute boundary within minutes of real time, so signatures
stay fresh and the points' buckets are known in advance.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from alibabacloud_eais20190624 import models as m
from aliyunsdkeais.request.v20190624.AttachEaiRequest import AttachEaiRequest
from aliyunsdkeais.request.v20190624.CreateEaiRequest import CreateEaiRequest
from aliyunsdkeais.request.v20190624.GetInstanceMetricsRequest import GetInstanceMetricsRequest

from controller.agent_link import WatchTiming, create_grpc_server
from controller.clock import US_PER_S, FakeClock
from controller.context import ControllerContext
from controller.settings import ControllerSettings, load_settings
from protos.eais.v1 import agents_pb2 as pb
from protos.eais.v1 import agents_pb2_grpc
from tests.agent_link.builders import NODE_TOKEN, XLARGE, bearer, node_request, signed, vm_request
from tests.agent_trust import secure_channel
from tests.api.sdk_capture import v2_do
from tests.rules.lifecycle_steps import status_of

FIVE_MINUTES_US = 300 * US_PER_S
SLICE = "node-1/0"
VM = "i-vm0001"
POD = re.compile(r"eais-[a-z0-9]+-[bcdfghjklmnpqrstvwxz2456789]{10}-[bcdfghjklmnpqrstvwxz2456789]{5}")


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> ControllerSettings:
    return load_settings(db_url=db_url, state_dir=tmp_path / "state", node_token=NODE_TOKEN)


@pytest.fixture
def clock() -> FakeClock:
    real_us = time.time_ns() // 1000
    return FakeClock(start_us=real_us - real_us % FIVE_MINUTES_US)


@pytest.fixture
def live_ctx(settings: ControllerSettings, clock: FakeClock) -> Iterator[ControllerContext]:
    context = ControllerContext.open(settings, clock)
    yield context
    context.db.dispose()


@dataclass
class Agents:
    """A node agent and a VM agent speaking the AgentLink protocol, one call at a time."""

    stub: agents_pb2_grpc.AgentLinkStub
    node_session: str = ""
    vm_session: str = ""

    def node_reports(self, attachment_id: str = "", **usage: float) -> None:
        """The slice ready (with a worker for ``attachment_id``), about the instance the desired state names."""
        entry = pb.SliceActualState(slice_id=SLICE, phase=pb.SLICE_PHASE_READY, attachment_id=attachment_id,
                                    worker=pb.WORKER_STATE_READY if attachment_id else pb.WORKER_STATE_NONE,
                                    memory_free=not attachment_id, usage=pb.SliceUsage(**usage),
                                    instance_id=self.desired_slice().instance.instance_id)
        report = pb.ActualStateReport(node=pb.NodeActualState(slices=[entry]))
        self.stub.ReportActualState(report, metadata=bearer(self.node_session))

    def vm_proves(self, attachment_id: str) -> None:
        report = pb.ActualStateReport(vm=pb.VmActualState(attachment_id=attachment_id, channel=pb.CHANNEL_STATE_PROVEN))
        self.stub.ReportActualState(report, metadata=bearer(self.vm_session))

    def attachment_the_node_should_serve(self) -> str:
        return self.desired_slice().attachment.attachment_id

    def desired_slice(self) -> pb.SliceDesiredState:
        stream = self.stub.WatchDesiredState(pb.WatchRequest(), metadata=bearer(self.node_session))
        try:
            return next(iter(stream)).node.slices[0]
        finally:
            stream.cancel()


@pytest.fixture
def agents(live_api, account) -> Iterator[Agents]:
    server, port = create_grpc_server(live_api.ctx, watch=WatchTiming(resync_s=0.5, resend_s=60.0))
    server.start()
    channel = secure_channel(live_api.ctx.settings, f"127.0.0.1:{port}")
    link = Agents(agents_pb2_grpc.AgentLinkStub(channel))
    link.node_session = link.stub.Register(node_request("node-1", ("0",)), metadata=bearer(NODE_TOKEN)).session_token
    vm = vm_request(VM)
    link.vm_session = link.stub.Register(vm, metadata=signed(vm, account)).session_token
    yield link
    channel.close()
    server.stop(grace=None).wait(5)


def feed_a_minute_of_usage(agents: Agents, clock: FakeClock, attachment_id: str) -> None:
    """Worker figures at +1 s, +11 s, +15 s (too soon: dropped) and +61 s from the clock's five-minute start."""
    clock.advance(1)
    agents.node_reports(attachment_id, gpu_core_usage_percent=30.0, cpu_usage_percent=10.0, memory_usage_percent=4.0)
    agents.vm_proves(attachment_id)
    clock.advance(10)
    agents.node_reports(attachment_id, gpu_core_usage_percent=50.0, cpu_usage_percent=20.0, memory_usage_percent=4.0)
    clock.advance(4)
    agents.node_reports(attachment_id, gpu_core_usage_percent=99.0, cpu_usage_percent=99.0, memory_usage_percent=99.0)
    clock.advance(46)
    agents.node_reports(attachment_id, gpu_core_usage_percent=70.0, cpu_usage_percent=25.0, memory_usage_percent=5.0,
                        gpu_memory_usage_percent=12.345)


def as_ms(us: int) -> str:
    return str(us // 1000)


def test_v3_sdk_gets_per_minute_means_of_what_the_node_reported(live_api, account, agents, clock) -> None:
    sdk = live_api.v3(account)
    t0 = clock.now_us()
    instance_id = sdk.create_eai(m.CreateEaiRequest(region_id="cn-hangzhou", instance_type=XLARGE)).body \
        .elastic_accelerated_instance_id
    agents.node_reports()  # slice ready: Available
    sdk.attach_eai(m.AttachEaiRequest(region_id="cn-hangzhou", elastic_accelerated_instance_id=instance_id,
                                      client_instance_id=VM))
    feed_a_minute_of_usage(agents, clock, agents.attachment_the_node_should_serve())
    assert status_of(live_api.ctx, instance_id) == "InUse"

    body = sdk.get_instance_metrics(m.GetInstanceMetricsRequest(
        instance_id=instance_id, metric_type="GpuCoreUsage", start_time=as_ms(t0), end_time=as_ms(t0 + 120 * US_PER_S),
        time_step="1m")).body

    assert body.instance_id == instance_id and body.request_id
    [pod] = body.pod_metrics
    assert POD.fullmatch(pod.pod_id) and pod.pod_id.startswith(instance_id + "-")
    assert [(p.time, p.value) for p in pod.metrics] == [(as_ms(t0), "40"), (as_ms(t0 + 60 * US_PER_S), "70")]


def test_v3_sdk_defaults_to_the_last_hour_in_five_minute_steps(live_api, account, agents, clock) -> None:
    sdk = live_api.v3(account)
    t0 = clock.now_us()
    instance_id = sdk.create_eai(m.CreateEaiRequest(region_id="cn-hangzhou", instance_type=XLARGE)).body \
        .elastic_accelerated_instance_id
    agents.node_reports()
    sdk.attach_eai(m.AttachEaiRequest(region_id="cn-hangzhou", elastic_accelerated_instance_id=instance_id,
                                      client_instance_id=VM))
    feed_a_minute_of_usage(agents, clock, agents.attachment_the_node_should_serve())

    cpu = sdk.get_instance_metrics(m.GetInstanceMetricsRequest(instance_id=instance_id, metric_type="CpuCoreUsage"))
    gpu_memory = sdk.get_instance_metrics(m.GetInstanceMetricsRequest(
        instance_id=instance_id, metric_type="GpuMemoryUsage", region_id="cn-hangzhou", time_step="60"))

    assert [(p.time, p.value) for p in cpu.body.pod_metrics[0].metrics] == [(as_ms(t0), "18.33")]
    assert [(p.time, p.value) for p in gpu_memory.body.pod_metrics[0].metrics] == [
        (as_ms(t0), "0"), (as_ms(t0 + 60 * US_PER_S), "12.35")]


def test_v2_sdk_reads_the_same_series_with_utc_text_times(live_api, account, agents, clock) -> None:
    client = live_api.v2(account)
    t0 = clock.now_us()
    create = CreateEaiRequest()
    create.set_InstanceType(XLARGE)
    instance_id = v2_do(client, create)["ElasticAcceleratedInstanceId"]
    agents.node_reports()
    attach = AttachEaiRequest()
    attach.set_ElasticAcceleratedInstanceId(instance_id)
    attach.set_ClientInstanceId(VM)
    v2_do(client, attach)
    feed_a_minute_of_usage(agents, clock, agents.attachment_the_node_should_serve())
    request = GetInstanceMetricsRequest()
    request.set_InstanceId(instance_id)
    request.set_MetricType("MemoryUsage")
    request.set_StartTime(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t0 // US_PER_S)))
    request.set_TimeStep("1m")

    body = v2_do(client, request)

    assert body["InstanceId"] == instance_id and body["RequestId"]
    [pod] = body["PodMetrics"]
    assert POD.fullmatch(pod["PodId"])
    assert pod["Metrics"] == [{"Time": as_ms(t0), "Value": "4"}, {"Time": as_ms(t0 + 60 * US_PER_S), "Value": "5"}]
