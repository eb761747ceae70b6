"""The notebook actions (CreateEaiJupyter, StartEaiJupyter, StopEaiJupyter; DescribeEais JupyterUrl) through both
official SDKs, the agents' reports stood in for by the report functions they call."""

from __future__ import annotations

import json

import pytest
from alibabacloud_eais20190624 import models as m
from alibabacloud_tea_openapi.exceptions import ClientException
from aliyunsdkcore.acs_exception.exceptions import ServerException
from aliyunsdkeais.request.v20190624.CreateEaiJupyterRequest import CreateEaiJupyterRequest
from aliyunsdkeais.request.v20190624.DescribeEaisRequest import DescribeEaisRequest
from aliyunsdkeais.request.v20190624.StartEaiJupyterRequest import StartEaiJupyterRequest
from aliyunsdkeais.request.v20190624.StopEaiJupyterRequest import StopEaiJupyterRequest

from controller.tables import Notebook
from tests.api.sdk_capture import v2_do
from tests.e2e.conftest import v2_call
from tests.fleet_rows import REGION, add_client, add_node
from tests.rules.notebook_steps import URL, let_go, row, run_to_in_use

TYPE = "eais.ei-a6.2xlarge"


@pytest.fixture
def fleet(live_api, account):
    add_node(live_api.ctx, slices={TYPE: 2, "eais.ei-a6.xlarge": 1})
    add_client(live_api.ctx, account.account_id, "i-vm1")


def token_of(ctx, instance_id) -> str:
    with ctx.db.read() as session:
        return ctx.box.open(session.get(Notebook, instance_id).token_ciphertext)


def v3_describe(sdk, instance_id):
    request = m.DescribeEaisRequest(region_id=REGION, elastic_accelerated_instance_ids=json.dumps([instance_id]))
    return sdk.describe_eais(request).body.instances.instance


def test_v3_sdk_walks_a_notebook_through_create_in_use_stop_start(live_api, account, fleet):
    sdk = live_api.v3(account)
    request = m.CreateEaiJupyterRequest(
        region_id=REGION, eais_type=TYPE, eais_name="nb-1", security_group_id="sg-1", v_switch_id="vsw-1",
        client_token="nb-token", tag=[m.CreateEaiJupyterRequestTag(key="team", value="ml")],
        environment_var=[m.CreateEaiJupyterRequestEnvironmentVar(key="DATA_DIR", value="/data")])
    instance_id = sdk.create_eai_jupyter(request).body.elastic_accelerated_instance_id
    assert sdk.create_eai_jupyter(request).body.elastic_accelerated_instance_id == instance_id  # ClientToken
    run_to_in_use(live_api.ctx, instance_id)
    [item] = v3_describe(sdk, instance_id)
    assert (item.category, item.status, item.instance_name, item.client_instance_id) == ("jupyter", "InUse", "nb-1", "i-vm1")
    assert item.jupyter_url == f"{URL}?token={token_of(live_api.ctx, instance_id)}"
    assert [(t.tag_key, t.tag_value) for t in item.tags.tag] == [("team", "ml")]

    stop = sdk.stop_eai_jupyter(m.StopEaiJupyterRequest(region_id=REGION, instance_id=instance_id)).body
    assert stop.request_id and stop.access_denied_detail is None
    let_go(live_api.ctx, instance_id)
    [item] = v3_describe(sdk, instance_id)
    assert (item.status, item.jupyter_url) == ("Stopped", "")
    sdk.start_eai_jupyter(m.StartEaiJupyterRequest(region_id=REGION, instance_id=instance_id))
    assert row(live_api.ctx, instance_id).status == "Attaching"


def test_v2_sdk_creates_stops_and_starts_a_notebook_over_http(live_api, account, fleet):
    client = live_api.v2(account)
    create = CreateEaiJupyterRequest()
    create.set_EaisType(TYPE)
    create.set_SecurityGroupId("sg-1")
    create.set_VSwitchId("vsw-1")
    create.set_EnvironmentVar([{"Key": "A", "Value": "1"}, {"Key": "B", "Value": "two words"}])
    instance_id = v2_do(client, create)["ElasticAcceleratedInstanceId"]
    with live_api.ctx.db.read() as session:
        assert json.loads(session.get(Notebook, instance_id).environment_json) == [["A", "1"], ["B", "two words"]]
    run_to_in_use(live_api.ctx, instance_id)
    describe = DescribeEaisRequest()
    describe.set_ElasticAcceleratedInstanceIds(json.dumps([instance_id]))
    [item] = v2_do(client, describe)["Instances"]["Instance"]
    assert item["JupyterUrl"].endswith(token_of(live_api.ctx, instance_id)) and item["Category"] == "jupyter"
    stop = StopEaiJupyterRequest()
    stop.set_InstanceId(instance_id)
    assert v2_do(client, stop)["RequestId"]
    let_go(live_api.ctx, instance_id)
    start = StartEaiJupyterRequest()
    start.set_InstanceId(instance_id)
    v2_do(client, start)
    assert row(live_api.ctx, instance_id).status == "Attaching"


@pytest.mark.parametrize(("params", "code"), [
    ({"EaisType": "eais.ei-a6.xlarge", "SecurityGroupId": "sg-1", "VSwitchId": "vsw-1"}, "InvalidInstanceType"),
    ({"EaisType": TYPE, "VSwitchId": "vsw-1"}, "MissingParameter"),
    ({"EaisType": TYPE, "SecurityGroupId": "sg-1"}, "MissingParameter"),
    ({"EaisType": TYPE, "SecurityGroupId": "sg-1", "VSwitchId": "vsw-9"}, "InvalidVSwitchId.NotFound"),
    ({"EaisType": TYPE, "SecurityGroupId": "sg-1", "VSwitchId": "vsw-1",
      "EnvironmentVar": '[{"Key":"EAIS_TF_ENDPOINT","Value":"evil:1"}]'}, "InvalidParameter"),
])
def test_create_eai_jupyter_refusals_carry_documented_codes(live_api, account, fleet, params, code):
    with pytest.raises(ServerException) as refused:
        v2_call(live_api.v2(account), live_api.endpoint, "CreateEaiJupyter", {"RegionId": REGION, **params})
    assert refused.value.get_error_code().startswith(code)


def test_start_and_stop_of_an_unknown_or_ordinary_instance_are_refused(live_api, account, fleet):
    sdk = live_api.v3(account)
    plain = sdk.create_eai(m.CreateEaiRequest(region_id=REGION, instance_type=TYPE)).body.elastic_accelerated_instance_id
    with pytest.raises(ClientException) as refused:
        sdk.stop_eai_jupyter(m.StopEaiJupyterRequest(region_id=REGION, instance_id="eais-nosuchinstance000000"))
    assert refused.value.code == "InvalidParameter.InstanceId.NotFound"
    with pytest.raises(ClientException) as refused:
        sdk.start_eai_jupyter(m.StartEaiJupyterRequest(region_id=REGION, instance_id=plain))
    assert refused.value.code == "InvalidEaiStatus"
    with pytest.raises(ClientException) as refused:
        sdk.stop_eai_jupyter(m.StopEaiJupyterRequest(region_id=REGION))
    assert refused.value.code == "MissingParameter.InstanceId"
