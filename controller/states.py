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
    InUse --channel_lost--> Unavailable                               (the VM saw the data path break)
    Detaching --detach_timeout--> Unavailable                         (memory not confirmed free)
    Pending | Starting --start_timeout--> Unavailable
    Starting | Available | Attaching | InUse | Detaching --node_lost--> Unavailable
    Unavailable --node_recovered--> Available
    any but Released --release--> Released                            (DeleteEai rules below)

Notebooks (Category ``jupyter``, CreateEaiJupyter) use the same rows plus the jupyter block::

    Available --attach--> Attaching --attach_ready--> InUse           (attach_ready also needs the server up)
    InUse --notebook_stop--> Stopping --detach_done--> Stopped        (StopEaiJupyter: server and worker gone)
    Available --notebook_stop--> Stopped                              (a notebook whose start failed)
    Stopped --attach--> Attaching                                     (StartEaiJupyter)
    Stopping --detach_timeout--> Unavailable;  Stopping | Stopped --node_lost--> Unavailable
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
    # --- jupyter block (issue 12, notebooks) ---
    STOPPING = "Stopping"
    STOPPED = "Stopped"
    # --- end of jupyter block ---


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
    CHANNEL_LOST = "channel_lost"
    NODE_LOST = "node_lost"
    NODE_RECOVERED = "node_recovered"
    RELEASE = "release"
    # --- jupyter block (issue 12, notebooks) ---
    NOTEBOOK_STOP = "notebook_stop"
    # --- end of jupyter block ---


PENDING, STARTING, AVAILABLE, ATTACHING = Status.PENDING, Status.STARTING, Status.AVAILABLE, Status.ATTACHING
IN_USE, DETACHING, UNAVAILABLE, RELEASED = Status.IN_USE, Status.DETACHING, Status.UNAVAILABLE, Status.RELEASED
STOPPING, STOPPED = Status.STOPPING, Status.STOPPED

# (from status, event) -> to status. ``None`` as the from status means "not yet created".
TRANSITIONS: dict[tuple[Status | None, Event], Status] = {
    (None, Event.CREATE): PENDING,
    (PENDING, Event.SLICE_PREPARING): STARTING,
    (PENDING, Event.SLICE_READY): AVAILABLE,  # a node that prepares instantly may skip the Starting report
    (STARTING, Event.SLICE_READY): AVAILABLE,
    (PENDING, Event.START_TIMEOUT): UNAVAILABLE,
    (STARTING, Event.START_TIMEOUT): UNAVAILABLE,
    (AVAILABLE, Event.ATTACH): ATTACHING,
    (ATTACHING, Event.ATTACH_READY): IN_USE,
    (ATTACHING, Event.ATTACH_FAILED): AVAILABLE,
    (ATTACHING, Event.ATTACH_TIMEOUT): AVAILABLE,
    (IN_USE, Event.DETACH): DETACHING,
    (DETACHING, Event.DETACH_DONE): AVAILABLE,
    (DETACHING, Event.DETACH_TIMEOUT): UNAVAILABLE,
    (IN_USE, Event.CHANNEL_LOST): UNAVAILABLE,
    **{(s, Event.NODE_LOST): UNAVAILABLE for s in (STARTING, AVAILABLE, ATTACHING, IN_USE, DETACHING)},
    (UNAVAILABLE, Event.NODE_RECOVERED): AVAILABLE,
    **{(s, Event.RELEASE): RELEASED for s in (PENDING, STARTING, AVAILABLE, ATTACHING, IN_USE, DETACHING, UNAVAILABLE)},
    # --- jupyter block (issue 12, notebooks): a notebook stops and starts instead of detaching ---
    (IN_USE, Event.NOTEBOOK_STOP): STOPPING,  # the server stops, the worker is released
    (AVAILABLE, Event.NOTEBOOK_STOP): STOPPED,  # nothing runs (a start that failed): stop billing at once
    (STOPPING, Event.DETACH_DONE): STOPPED,
    (STOPPING, Event.DETACH_TIMEOUT): UNAVAILABLE,
    (STOPPED, Event.ATTACH): ATTACHING,  # StartEaiJupyter binds the notebook's VM again
    (STOPPING, Event.NODE_LOST): UNAVAILABLE,
    (STOPPED, Event.NODE_LOST): UNAVAILABLE,
    (STOPPING, Event.RELEASE): RELEASED,
    (STOPPED, Event.RELEASE): RELEASED,
    # --- end of jupyter block ---
}

# Billed while the instance holds accelerator resources for the user (product-rules.md §3). Stopping is billed
# like Detaching (a worker still holds the slice); Stopped is not: no worker runs, the slice is only reserved.
BILLABLE: frozenset[Status] = frozenset({AVAILABLE, ATTACHING, IN_USE, DETACHING, STOPPING})
# Each transitional status ends by itself with this event once its deadline (``LifecycleSettings``) passes.
TIMEOUT_EVENTS: dict[Status, Event] = {
    PENDING: Event.START_TIMEOUT, STARTING: Event.START_TIMEOUT,
    ATTACHING: Event.ATTACH_TIMEOUT, DETACHING: Event.DETACH_TIMEOUT,
    STOPPING: Event.DETACH_TIMEOUT,  # jupyter block: stopping_deadline_s
}
# States that must end by themselves.
TRANSITIONAL: frozenset[Status] = frozenset(TIMEOUT_EVENTS)
STABLE: frozenset[Status] = frozenset({AVAILABLE, IN_USE, STOPPED})
# Pending is internal: the console does not show it (product-rules.md §3).
VISIBLE_IN_CONSOLE: frozenset[Status] = frozenset(
    {STARTING, AVAILABLE, ATTACHING, IN_USE, DETACHING, UNAVAILABLE, STOPPING, STOPPED})
# Statuses that hold a client binding.
BOUND: frozenset[Status] = frozenset({ATTACHING, IN_USE, DETACHING, STOPPING})
# A worker may run, and the attachment token is handed to the agents, only in these.
SERVING: frozenset[Status] = frozenset({ATTACHING, IN_USE})
# An instance in one of these is lost with its node: every status the table lets node_lost leave.
LOST_WITH_NODE: frozenset[Status] = frozenset(s for (s, e) in TRANSITIONS if e is Event.NODE_LOST and s is not None)
# DeleteEai: released without Force from these; Force is needed from FORCE_TO_RELEASE.
RELEASABLE_WITHOUT_FORCE: frozenset[Status] = frozenset({AVAILABLE, IN_USE, UNAVAILABLE, STOPPED})
FORCE_TO_RELEASE: frozenset[Status] = frozenset({PENDING, STARTING, ATTACHING, DETACHING, STOPPING})
# Statuses whose end of a binding is a detach: both agents let go, then detach_done (or detach_timeout).
LETTING_GO: frozenset[Status] = frozenset({DETACHING, STOPPING})
# DescribeEais lists these (a released instance is gone).
LISTED: frozenset[Status] = frozenset(Status) - {RELEASED}


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
