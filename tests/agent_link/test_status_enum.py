"""Statuses cross the agent link as the ``InstanceStatus`` enum; agents name them as the API does."""

from __future__ import annotations

from agent.instance_status import status_name
from controller.agent_link.wire import AGENT_VIEW, INSTANCE_STATUSES
from controller.states import EI_STATUSES, LISTED, Status
from protos.eais.v1 import agents_pb2 as pb

EAI_STATUSES = LISTED - EI_STATUSES


def test_every_eai_status_an_agent_can_be_shown_has_its_own_enum_value() -> None:
    assert set(INSTANCE_STATUSES) == set(LISTED)
    assert len({INSTANCE_STATUSES[s] for s in EAI_STATUSES}) == len(EAI_STATUSES)
    assert pb.INSTANCE_STATUS_UNSPECIFIED not in INSTANCE_STATUSES.values()


def test_agents_name_each_enum_value_as_the_api_names_the_status() -> None:
    shown = {status: status_name(INSTANCE_STATUSES[status]) for status in EAI_STATUSES}
    assert shown == {s: s.value for s in EAI_STATUSES}
    assert status_name(pb.INSTANCE_STATUS_IN_USE) == Status.IN_USE.value == "InUse"


def test_ei_statuses_reach_agents_as_the_eai_status_doing_the_same_work() -> None:
    assert set(AGENT_VIEW) == EI_STATUSES
    assert status_name(INSTANCE_STATUSES[Status.STARTING_WORKER]) == "Attaching"  # start the worker, prove the channel
    assert status_name(INSTANCE_STATUSES[Status.STOPPING_WORKER]) == "Detaching"  # stop it, free the memory
    assert status_name(INSTANCE_STATUSES[Status.BOUND]) == "Available"  # no worker, no data path
    assert status_name(INSTANCE_STATUSES[Status.CREATING]) == "Starting"


def test_an_unset_or_unknown_status_is_named_without_failing() -> None:
    assert status_name(pb.INSTANCE_STATUS_UNSPECIFIED) == ""
    assert status_name(99) == "status 99"
