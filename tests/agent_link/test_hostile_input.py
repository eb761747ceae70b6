"""Hostile registrations and credentials get a clear EaisError, never a crash."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from controller.agent_link.auth import bearer_token
from controller.agent_link.registration_rules import NodeInfo, SliceOfferInfo, VmInfo, check_node, check_vm
from controller.errors import EaisError
from controller.settings import ControllerSettings

SETTINGS = ControllerSettings(node_token="unused-in-these-tests-1234")
text = st.text(max_size=300)


@settings(max_examples=200, deadline=None)
@given(node_id=text, region=text, zone=text, local_id=text, instance_type=text,
       memory=st.integers(min_value=0, max_value=2**64 - 1), backend=text)
def test_any_node_registration_is_accepted_or_refused_with_an_eais_error(
    node_id: str, region: str, zone: str, local_id: str, instance_type: str, memory: int, backend: str
) -> None:
    info = NodeInfo(node_id, "host", region, zone, "gw:1", backend, "", "",
                    (SliceOfferInfo(local_id, instance_type, 0, memory),))
    try:
        check_node(SETTINGS, info)
    except EaisError as refusal:
        assert refusal.spec.grpc_status.name == "INVALID_ARGUMENT" and refusal.message


@settings(max_examples=200, deadline=None)
@given(client_id=text, vpc=text, kind=text, vcpu=st.integers(min_value=0, max_value=2**32 - 1))
def test_any_vm_registration_is_accepted_or_refused_with_an_eais_error(client_id: str, vpc: str, kind: str, vcpu: int) -> None:
    info = VmInfo(client_id, "cn-hangzhou", "cn-hangzhou-a", vpc, "vsw-1", kind, "", "", vcpu, 1024, "")
    try:
        check_vm(SETTINGS, info)
    except EaisError as refusal:
        assert refusal.spec.grpc_status.name == "INVALID_ARGUMENT" and refusal.message


@given(header=text)
def test_any_authorization_header_yields_a_token_or_an_unauthenticated_error(header: str) -> None:
    try:
        token = bearer_token({"authorization": header})
    except EaisError as refusal:
        assert refusal.spec.grpc_status.name == "UNAUTHENTICATED"
    else:
        assert token and token == token.strip()
