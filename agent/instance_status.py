"""An instance's status as the agents receive it: the ``eais.v1.InstanceStatus`` enum, and its API name for people.

Agents decide on the enum values (``pb.INSTANCE_STATUS_IN_USE``), never on text; the name
(``"InUse"``) is only for messages and the endpoint's status answer.
"""

from __future__ import annotations

from protos.eais.v1 import agents_pb2 as pb

_PREFIX = "INSTANCE_STATUS_"


def status_name(value: int) -> str:
    """The API's name of an ``InstanceStatus`` value: INSTANCE_STATUS_IN_USE -> "InUse"; "" when unset."""
    if value == pb.INSTANCE_STATUS_UNSPECIFIED:
        return ""
    try:
        words = pb.InstanceStatus.Name(value).removeprefix(_PREFIX).split("_")
    except ValueError:  # a status this agent's proto does not know yet (a newer controller)
        return f"status {value}"
    return "".join(word.capitalize() for word in words)
