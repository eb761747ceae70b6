"""The lifecycle of an EAIS instance, in one table.

Statuses are the API's names. Events name what happened. :data:`TRANSITIONS` is the only
description of which status an event leads to; :func:`next_status` reads it, and
``controller.lifecycle.apply`` is the only code that writes a status (and appends the
transition row in the same database transaction).

::

    (new) --create--> Pending --slice_preparing--> Starting --slice_ready--> Available
    Available --attach--> Attaching --attach_ready--> InUse
    Attaching --attach_failed | attach_timeout--> Available           (binding dropped)
    InUse --detach--> Detaching --detach_done--> Available
    Detaching --detach_timeout--> Unavailable                         (memory not confirmed free)
    Pending | Starting --start_timeout--> Unavailable
    Starting | Available | Attaching | InUse | Detaching --node_lost--> Unavailable
    Unavailable --node_recovered--> Available
    any but Released --release--> Released                            (DeleteEai rules below)
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    PENDING = "Pending"
    STARTING = "Starting"
    AVAILABLE = "Available"
    ATTACHING = "Attaching"
    IN_USE = "InUse"
    DETACHING = "Detaching"
    UNAVAILABLE = "Unavailable"
    RELEASED = "Released"


class Event(StrEnum):
    CREATE = "create"
    SLICE_PREPARING = "slice_preparing"
    SLICE_READY = "slice_ready"
    START_TIMEOUT = "start_timeout"
    ATTACH = "attach"
    ATTACH_READY = "attach_ready"
    ATTACH_FAILED = "attach_failed"
    ATTACH_TIMEOUT = "attach_timeout"
    DETACH = "detach"
    DETACH_DONE = "detach_done"
    DETACH_TIMEOUT = "detach_timeout"
    NODE_LOST = "node_lost"
    NODE_RECOVERED = "node_recovered"
    RELEASE = "release"


P, S, A, AT, U, D, X, R = (
    Status.PENDING, Status.STARTING, Status.AVAILABLE, Status.ATTACHING,
    Status.IN_USE, Status.DETACHING, Status.UNAVAILABLE, Status.RELEASED,
)

# (from status, event) -> to status. ``None`` as the from status means "not yet created".
TRANSITIONS: dict[tuple[Status | None, Event], Status] = {
    (None, Event.CREATE): P,
    (P, Event.SLICE_PREPARING): S,
    (P, Event.SLICE_READY): A,  # a node that prepares instantly may skip the Starting report
    (S, Event.SLICE_READY): A,
    (P, Event.START_TIMEOUT): X,
    (S, Event.START_TIMEOUT): X,
    (A, Event.ATTACH): AT,
    (AT, Event.ATTACH_READY): U,
    (AT, Event.ATTACH_FAILED): A,
    (AT, Event.ATTACH_TIMEOUT): A,
    (U, Event.DETACH): D,
    (D, Event.DETACH_DONE): A,
    (D, Event.DETACH_TIMEOUT): X,
    **{(s, Event.NODE_LOST): X for s in (S, A, AT, U, D)},
    (X, Event.NODE_RECOVERED): A,
    **{(s, Event.RELEASE): R for s in (P, S, A, AT, U, D, X)},
}

# Billed while the instance holds accelerator resources for the user (product-rules.md §3).
BILLABLE: frozenset[Status] = frozenset({A, AT, U, D})
# States that must end by themselves; each has a deadline in ``LifecycleSettings``.
TRANSITIONAL: frozenset[Status] = frozenset({P, S, AT, D})
STABLE: frozenset[Status] = frozenset({A, U})
# Pending is internal: the console does not show it (product-rules.md §3).
VISIBLE_IN_CONSOLE: frozenset[Status] = frozenset({S, A, AT, U, D, X})
# Statuses that hold a client binding.
BOUND: frozenset[Status] = frozenset({AT, U, D})
# DeleteEai: released without Force from these; Force is needed from FORCE_TO_RELEASE.
RELEASABLE_WITHOUT_FORCE: frozenset[Status] = frozenset({A, U, X})
FORCE_TO_RELEASE: frozenset[Status] = frozenset({P, S, AT, D})
# DescribeEais lists these (a released instance is gone).
LISTED: frozenset[Status] = frozenset(Status) - {R}


class IllegalTransition(Exception):
    """An event that the table does not allow from the current status (a bug or a lost race)."""

    def __init__(self, status: Status | None, event: Event) -> None:
        super().__init__(f"event {event.value!r} is not allowed from status {status}")
        self.status = status
        self.event = event


def next_status(status: Status | None, event: Event) -> Status:
    try:
        return TRANSITIONS[(status, event)]
    except KeyError:
        raise IllegalTransition(status, event) from None


def reachable_statuses() -> set[Status]:
    """Statuses reachable from creation through the table (used by tests and docs)."""
    seen: set[Status] = set()
    frontier: list[Status | None] = [None]
    while frontier:
        current = frontier.pop()
        for (source, _event), target in TRANSITIONS.items():
            if source == current and target not in seen:
                seen.add(target)
                frontier.append(target)
    return seen
