"""Statuses cross the agent link as the ``InstanceStatus`` enum; agents name them as the API does."""

from __future__ import annotations

from agent.instance_status import status_name
from controller.agent_link.wire import INSTANCE_STATUSES
from controller.states import LISTED, Status
from protos.eais.v1 import agents_pb2 as pb


def test_every_status_an_agent_can_be_shown_has_its_own_enum_value() -> None:
    assert set(INSTANCE_STATUSES) == set(LISTED)
    assert len(set(INSTANCE_STATUSES.values())) == len(LISTED)
    assert pb.INSTANCE_STATUS_UNSPECIFIED not in INSTANCE_STATUSES.values()


def test_agents_name_each_enum_value_as_the_api_names_the_status() -> None:
    assert {status: status_name(value) for status, value in INSTANCE_STATUSES.items()} == {s: s.value for s in LISTED}
    assert status_name(pb.INSTANCE_STATUS_IN_USE) == Status.IN_USE.value == "InUse"


def test_an_unset_or_unknown_status_is_named_without_failing() -> None:
    assert status_name(pb.INSTANCE_STATUS_UNSPECIFIED) == ""
    assert status_name(99) == "status 99"
