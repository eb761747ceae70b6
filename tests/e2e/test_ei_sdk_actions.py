"""The EI family's whole lifecycle through both official SDKs, with every wrong-state refusal on the way.

v3: ``alibabacloud_eais20190624``'s own request models; v2: ``aliyun-python-sdk-eais``'s request
classes. The agents' part (worker ready, channel proven, memory free, channel closed) is played by
the same report functions the agent link calls; ``tests/dataplane/test_ei_lifecycle.py`` runs real ones.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from alibabacloud_eais20190624 import models as m
from alibabacloud_tea_openapi.exceptions import ClientException
from aliyunsdkcore.acs_exception.exceptions import ServerException
from aliyunsdkeais.request.v20190624.AttachEaiRequest import AttachEaiRequest
from aliyunsdkeais.request.v20190624.AttachEaisEiRequest import AttachEaisEiRequest
from aliyunsdkeais.request.v20190624.CreateEaiEcsRequest import CreateEaiEcsRequest
from aliyunsdkeais.request.v20190624.CreateEaiRequest import CreateEaiRequest
from aliyunsdkeais.request.v20190624.CreateEaisEiRequest import CreateEaisEiRequest
from aliyunsdkeais.request.v20190624.DeleteEaisEiRequest import DeleteEaisEiRequest
from aliyunsdkeais.request.v20190624.DescribeEaisRequest import DescribeEaisRequest
from aliyunsdkeais.request.v20190624.DetachEaisEiRequest import DetachEaisEiRequest
from aliyunsdkeais.request.v20190624.StartEaisEiRequest import StartEaisEiRequest
from aliyunsdkeais.request.v20190624.StopEaisEiRequest import StopEaisEiRequest

from controller.agent_link import apply_node_report, apply_vm_report
from controller.agent_link.actual_state import ChannelReport, ChannelState, SlicePhase, SliceReport, WorkerState
from controller.states import Status
from controller.tables import Instance
from tests.api.sdk_capture import v2_do
from tests.fleet_rows import REGION, add_client, add_node
from tests.rules.lifecycle_steps import status_of

TYPE, SMALL = "eais.ei-a6.2xlarge", "eais.ei-a6.medium"
VM, VM2 = "i-vm1", "i-vm2"


class V3:
    """The EI actions through the v3 SDK; errors come back as (code, HTTP status)."""

    def __init__(self, sdk) -> None:
        self.sdk = sdk

    def create(self, instance_type: str = TYPE) -> str:
        return self.sdk.create_eais_ei(m.CreateEaisEiRequest(
            region_id=REGION, instance_type=instance_type, instance_name="ei-web", security_group_id="sg-1",
            v_switch_id="vsw-1")).body.ei_instance_id

    def attach(self, instance_id: str | None = None, client: str = VM, instance_type: str | None = None) -> dict:
        return self.sdk.attach_eais_ei(m.AttachEaisEiRequest(
            region_id=REGION, client_instance_id=client, ei_instance_id=instance_id, ei_instance_type=instance_type)).body.to_map()

    def start(self, instance_id: str) -> None:
        self.sdk.start_eais_ei(m.StartEaisEiRequest(region_id=REGION, ei_instance_id=instance_id))

    def stop(self, instance_id: str) -> None:
        self.sdk.stop_eais_ei(m.StopEaisEiRequest(region_id=REGION, ei_instance_id=instance_id))

    def detach(self, instance_id: str) -> None:
        self.sdk.detach_eais_ei(m.DetachEaisEiRequest(region_id=REGION, ei_instance_id=instance_id))

    def delete(self, instance_id: str, force: bool | None = None) -> None:
        self.sdk.delete_eais_ei(m.DeleteEaisEiRequest(region_id=REGION, ei_instance_id=instance_id, force=force))

    def describe(self, **kw) -> list[dict]:
        body = self.sdk.describe_eais(m.DescribeEaisRequest(region_id=REGION, **kw)).body.to_map()
        return body["Instances"]["Instance"]

    def create_eai(self) -> str:
        return self.sdk.create_eai(m.CreateEaiRequest(region_id=REGION, instance_type=TYPE)).body.elastic_accelerated_instance_id

    def attach_eai(self, instance_id: str) -> None:
        self.sdk.attach_eai(m.AttachEaiRequest(region_id=REGION, elastic_accelerated_instance_id=instance_id,
                                               client_instance_id=VM))

    def create_eai_ecs(self) -> None:
        self.sdk.create_eai_ecs(m.CreateEaiEcsRequest(region_id=REGION, eais_type=TYPE, security_group_id="sg-1",
                                                      v_switch_id="vsw-1"))

    @staticmethod
    def error(call: Callable[[], object]) -> tuple[str, int, str]:
        with pytest.raises(ClientException) as raised:
            call()
        return raised.value.code, raised.value.status_code, raised.value.message


class V2:
    """The same through the v2 SDK's request classes (HMAC-SHA1)."""

    def __init__(self, client) -> None:
        self.client = client

    def _do(self, request, **setters) -> dict:
        for name, value in setters.items():
            if value is not None:
                getattr(request, f"set_{name}")(value)
        return v2_do(self.client, request)

    def create(self, instance_type: str = TYPE) -> str:
        return self._do(CreateEaisEiRequest(), InstanceType=instance_type, InstanceName="ei-web", SecurityGroupId="sg-1",
                        VSwitchId="vsw-1")["EiInstanceId"]

    def attach(self, instance_id: str | None = None, client: str = VM, instance_type: str | None = None) -> dict:
        return self._do(AttachEaisEiRequest(), ClientInstanceId=client, EiInstanceId=instance_id, EiInstanceType=instance_type)

    def start(self, instance_id: str) -> None:
        self._do(StartEaisEiRequest(), EiInstanceId=instance_id)

    def stop(self, instance_id: str) -> None:
        self._do(StopEaisEiRequest(), EiInstanceId=instance_id)

    def detach(self, instance_id: str) -> None:
        self._do(DetachEaisEiRequest(), EiInstanceId=instance_id)

    def delete(self, instance_id: str, force: bool | None = None) -> None:
        self._do(DeleteEaisEiRequest(), EiInstanceId=instance_id, Force=force)

    def describe(self, **kw) -> list[dict]:
        names = {"elastic_accelerated_instance_ids": "ElasticAcceleratedInstanceIds", "status": "Status",
                 "client_instance_id": "ClientInstanceId"}
        return self._do(DescribeEaisRequest(), **{names[k]: v for k, v in kw.items()})["Instances"]["Instance"]

    def create_eai(self) -> str:
        return self._do(CreateEaiRequest(), InstanceType=TYPE)["ElasticAcceleratedInstanceId"]

    def attach_eai(self, instance_id: str) -> None:
        self._do(AttachEaiRequest(), ElasticAcceleratedInstanceId=instance_id, ClientInstanceId=VM)

    def create_eai_ecs(self) -> None:
        self._do(CreateEaiEcsRequest(), EaisType=TYPE, SecurityGroupId="sg-1", VSwitchId="vsw-1")

    @staticmethod
    def error(call: Callable[[], object]) -> tuple[str, int, str]:
        with pytest.raises(ServerException) as raised:
            call()
        return raised.value.get_error_code(), raised.value.get_http_status(), raised.value.get_error_msg()


@pytest.fixture(params=["v3", pytest.param("v2", marks=pytest.mark.sqlite_only)])
def sdk(request, live_api, account):
    add_node(live_api.ctx, slices={TYPE: 3, SMALL: 1})
    add_client(live_api.ctx, account.account_id, VM)
    add_client(live_api.ctx, account.account_id, VM2)
    return V3(live_api.v3(account)) if request.param == "v3" else V2(live_api.v2(account))


def node_reports(ctx, instance_id: str, worker: WorkerState) -> None:
    with ctx.db.read() as session:
        instance = session.get(Instance, instance_id)
    report = SliceReport(instance.slice_id, SlicePhase.READY, worker, attachment_id=instance.attachment_id or "",
                         instance_id=instance_id, memory_free=worker is WorkerState.NONE)
    apply_node_report(ctx, "node-1", [report])


def attachment_of(ctx, instance_id: str) -> str:
    with ctx.db.read() as session:
        return session.get(Instance, instance_id).attachment_id


def shown(sdk, instance_id: str) -> tuple[str, str, str]:
    item = sdk.describe(elastic_accelerated_instance_ids=json.dumps([instance_id]))[0]
    return item["Status"], item["Category"], item["ClientInstanceId"]


def refused(sdk, call: Callable[[], object], code: str = "InvalidEaiStatus", status: int = 400) -> str:
    got_code, got_status, message = sdk.error(call)
    assert (got_code, got_status) == (code, status), message
    return message


def test_the_whole_ei_lifecycle_with_every_wrong_state_refused(sdk, live_api):
    ctx = live_api.ctx
    instance_id = sdk.create()
    assert shown(sdk, instance_id) == ("Creating", "ei", "")
    refused(sdk, lambda: sdk.attach(instance_id))
    refused(sdk, lambda: sdk.start(instance_id))
    refused(sdk, lambda: sdk.delete(instance_id))
    node_reports(ctx, instance_id, WorkerState.NONE)
    assert shown(sdk, instance_id) == ("Bindable", "ei", "")

    for wrong in (sdk.start, sdk.stop, sdk.detach):  # Bindable
        refused(sdk, lambda wrong=wrong: wrong(instance_id))
    answer = sdk.attach(instance_id)
    assert (answer["EiInstanceId"], answer["ClientInstanceId"]) == (instance_id, VM) and answer["RequestId"]
    assert shown(sdk, instance_id) == ("Bound", "ei", VM)

    refused(sdk, lambda: sdk.attach(instance_id, client=VM2))  # Bound
    refused(sdk, lambda: sdk.stop(instance_id))
    refused(sdk, lambda: sdk.delete(instance_id))
    sdk.start(instance_id)
    assert shown(sdk, instance_id) == ("Bound", "ei", VM)  # StartingWorker: still shown Bound until InUse
    assert "StartEaisEi is in progress" in refused(sdk, lambda: sdk.detach(instance_id))
    refused(sdk, lambda: sdk.start(instance_id))
    node_reports(ctx, instance_id, WorkerState.READY)
    apply_vm_report(ctx, VM, ChannelReport(attachment_of(ctx, instance_id), ChannelState.PROVEN))
    assert shown(sdk, instance_id) == ("InUse", "ei", VM)

    for wrong in (sdk.start, sdk.detach, sdk.delete):  # InUse
        refused(sdk, lambda wrong=wrong: wrong(instance_id))
    attachment_id = attachment_of(ctx, instance_id)
    sdk.stop(instance_id)
    assert shown(sdk, instance_id) == ("InUse", "ei", VM)  # StoppingWorker: still shown InUse until Bound
    assert "StopEaisEi is in progress" in refused(sdk, lambda: sdk.detach(instance_id))
    node_reports(ctx, instance_id, WorkerState.NONE)
    apply_vm_report(ctx, VM, ChannelReport(attachment_id, ChannelState.CLOSED))
    assert shown(sdk, instance_id) == ("Bound", "ei", VM)

    sdk.detach(instance_id)
    assert shown(sdk, instance_id) == ("Bindable", "ei", "")
    sdk.delete(instance_id)  # Bindable: no Force needed
    assert status_of(ctx, instance_id) == Status.RELEASED
    assert sdk.describe(elastic_accelerated_instance_ids=json.dumps([instance_id])) == []


def test_attach_by_type_binds_the_first_bindable_instance_of_that_type(sdk, live_api):
    small, large = sdk.create(SMALL), sdk.create(TYPE)
    for instance_id in (small, large):
        node_reports(live_api.ctx, instance_id, WorkerState.NONE)

    answer = sdk.attach(client=VM, instance_type=TYPE)

    assert (answer["EiInstanceId"], answer["ClientInstanceId"]) == (large, VM)
    assert shown(sdk, large) == ("Bound", "ei", VM) and shown(sdk, small)[0] == "Bindable"
    assert sdk.attach(client=VM2)["EiInstanceId"] == small  # no type: the first Bindable of any type
    third = sdk.create()
    node_reports(live_api.ctx, third, WorkerState.NONE)
    refused(sdk, lambda: sdk.attach(third, client=VM2), "InvalidClientInstanceId.AlreadyBound")  # one per VM


def test_attach_by_type_with_nothing_bindable_is_not_found(sdk, live_api):
    message = refused(sdk, lambda: sdk.attach(client=VM, instance_type=TYPE), "InvalidParameter.InstanceId.NotFound", 404)
    assert "CreateEaisEi" in message


def test_delete_with_force_releases_an_in_use_instance_and_ends_its_attachment(sdk, live_api):
    ctx = live_api.ctx
    instance_id = sdk.create()
    node_reports(ctx, instance_id, WorkerState.NONE)
    sdk.attach(instance_id)
    sdk.start(instance_id)
    node_reports(ctx, instance_id, WorkerState.READY)
    apply_vm_report(ctx, VM, ChannelReport(attachment_of(ctx, instance_id), ChannelState.PROVEN))

    sdk.delete(instance_id, force=True)

    assert status_of(ctx, instance_id) == Status.RELEASED


def test_eai_and_ei_actions_refuse_each_others_instances_with_invalid_instance_id(sdk, live_api):
    ei, eai = sdk.create(), sdk.create_eai()
    node_reports(live_api.ctx, ei, WorkerState.NONE)
    node_reports(live_api.ctx, eai, WorkerState.NONE)

    assert "AttachEaisEi" in refused(sdk, lambda: sdk.attach_eai(ei), "InvalidInstanceId")
    assert "AttachEai" in refused(sdk, lambda: sdk.attach(eai), "InvalidInstanceId")
    refused(sdk, lambda: sdk.start(eai), "InvalidInstanceId")
    refused(sdk, lambda: sdk.delete(eai, force=True), "InvalidInstanceId")
    assert (shown(sdk, ei)[0], shown(sdk, eai)[:2]) == ("Bindable", ("Available", "eais"))


def test_create_eai_ecs_says_why_it_is_unsupported_and_what_to_use(sdk):
    message = refused(sdk, sdk.create_eai_ecs, "UnsupportedOperation")
    assert "no ECS or ECI compute provider" in message and "CreateEaisEi" in message and "AttachEai" in message
