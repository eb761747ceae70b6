"""Signed requests with hostile parameters: a documented 4xx every time, never a 500, state intact."""

from __future__ import annotations

import pytest
from alibabacloud_tea_openapi.exceptions import ClientException
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.api.dispatch import HANDLERS
from controller.errors import ERROR_TABLE
from controller.states import Event
from tests.api.sdk_capture import v3_call
from tests.e2e.test_documented_errors import snapshot
from tests.fleet_rows import add_client, add_node
from tests.rules.lifecycle_steps import step

pytestmark = pytest.mark.sqlite_only
KNOWN_CODES = {spec.code for spec in ERROR_TABLE.values()}
NAMES = ["RegionId", "InstanceType", "ElasticAcceleratedInstanceId", "ClientInstanceId", "ElasticAcceleratedInstanceIds",
         "PageSize", "PageNumber", "Force", "Status", "InstanceName", "ClientToken", "Tag.1.Key", "Tag.1.Value",
         "Tag.21.Key", "ResourceId.1", "ResourceType", "TagKey.1", "All", "NextToken", "ResourceGroupId",
         "ResourceRegionId", "VSwitchId", "EiInstanceId", "EiInstanceType", "SecurityGroupId", "EaisType", "EaisName",
         "EnvironmentVar", "InstanceId"]
EI_ACTIONS = sorted(a for a in HANDLERS if a.endswith("EaisEi"))
hostile_text = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["cn-hangzhou", "eais.ei-a6.2xlarge", "[", "[]", '["a"]', "[1]", "{}", "null", "-1", "0",
                     "99999999999999999999", "True", "false", "*", "%", "\\", "rg-1", "i-vm1", "instance",
                     "x" * 3000, "'; DROP TABLE instances; --", "\u202e\u0000", "vsw-1", "sg-1",
                     '[{"Key":"A","Value":"1"}]', '[{"Key":"HOME","Value":"/"}]', '[{"Key":1}]', '[{"Key":"A"},{"Key":"A"}]',
                     '[{"Key":"A","Value":{"x":1}}]', "[" * 5000, '{"Key":"A"}']),
)


@pytest.fixture
def signed_client(live_api, account):
    add_node(live_api.ctx, slices={"eais.ei-a6.2xlarge": 4})
    add_client(live_api.ctx, account.account_id, "i-vm1")
    return live_api.v3(account)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(action=st.sampled_from(sorted(HANDLERS)),
       params=st.dictionaries(st.sampled_from(NAMES), hostile_text, max_size=6))
def test_hostile_parameters_get_a_documented_code_and_never_a_server_error(live_api, signed_client, action, params):
    clean = {k: v.replace("\x00", "") for k, v in params.items()}  # the SDK itself cannot send NUL in a URL
    before = snapshot(live_api.ctx)
    try:
        answer = v3_call(signed_client, action, clean)
    except ClientException as error:
        assert error.status_code < 500
        base = error.code
        assert any(base == code or base.startswith(code + ".") for code in KNOWN_CODES), base
        assert snapshot(live_api.ctx) == before
    else:
        assert answer["statusCode"] == 200 and answer["body"]["RequestId"]


@pytest.fixture
def ei_instances(live_api, signed_client):
    """One EI instance Bindable and one Bound, so hostile calls meet every EI action's rules."""
    ids = [v3_call(signed_client, "CreateEaisEi", {"RegionId": "cn-hangzhou", "InstanceType": "eais.ei-a6.2xlarge",
                                                   "SecurityGroupId": "sg-1", "VSwitchId": "vsw-1"})["body"]["EiInstanceId"]
           for _ in range(2)]
    for instance_id in ids:
        step(live_api.ctx, instance_id, Event.SLICE_READY)
    v3_call(signed_client, "AttachEaisEi", {"RegionId": "cn-hangzhou", "EiInstanceId": ids[1], "ClientInstanceId": "i-vm1"})
    return ids


ei_text = st.one_of(hostile_text, st.sampled_from(["i-vm1", "eais.ei-a6.2xlarge", "sg-1", "vsw-1", "true", "True"]))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(action=st.sampled_from(EI_ACTIONS), data=st.data())
def test_hostile_parameters_to_the_ei_actions_get_a_documented_code(live_api, signed_client, ei_instances, action, data):
    names = st.sampled_from(["RegionId", "EiInstanceId", "EiInstanceType", "ClientInstanceId", "InstanceType", "Force",
                             "SecurityGroupId", "VSwitchId", "InstanceName", "ClientToken", "Tag.1.Key"])
    values = st.one_of(ei_text, st.sampled_from(ei_instances))
    params = data.draw(st.dictionaries(names, values, max_size=7))
    clean = {k: v.replace("\x00", "") for k, v in params.items()}
    before = snapshot(live_api.ctx)
    try:
        answer = v3_call(signed_client, action, clean)
    except ClientException as error:
        assert error.status_code < 500
        assert any(error.code == code or error.code.startswith(code + ".") for code in KNOWN_CODES), error.code
        assert snapshot(live_api.ctx) == before
    else:
        assert answer["statusCode"] == 200 and answer["body"]["RequestId"]
