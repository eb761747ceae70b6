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

The EI family (CreateEaisEi …) shares InUse, Unavailable and Released and has its own statuses
(block below); its events differ from the EAI family's wherever its outcome does, so the one table
stays a function of (status, event)::

    (new) --create_ei--> Creating --slice_ready--> Bindable
    Bindable --bind--> Bound --unbind--> Bindable                     (AttachEaisEi / DetachEaisEi)
    Bound --start--> StartingWorker --attach_ready--> InUse           (StartEaisEi: the attach machinery)
    StartingWorker --attach_failed | attach_timeout--> Bound
    InUse --stop--> StoppingWorker --detach_done--> Bound             (StopEaisEi: worker stopped, memory freed)
    StoppingWorker --detach_timeout--> Unavailable
    Creating --start_timeout--> Unavailable
    Creating | Bindable | Bound | StartingWorker | StoppingWorker --node_lost--> Unavailable
    InUse --channel_lost | node_lost--> Unavailable                   (the EAI rows: InUse is shared)
    Unavailable --node_recovered_ei--> Bindable                       (binding dropped)
    any but Released --release--> Released                            (DeleteEaisEi: Force unless Bindable)

Notebooks (Category ``jupyter``, CreateEaiJupyter) use the same rows plus the jupyter block::

    Available --attach--> Attaching --attach_ready--> InUse           (attach_ready also needs the server up)
    InUse --notebook_stop--> Stopping --detach_done--> Stopped        (StopEaiJupyter: server and worker gone)
    Available --notebook_stop--> Stopped                              (a notebook whose start failed)
    Stopped --attach--> Attaching                                     (StartEaiJupyter)
    Stopping --detach_timeout--> Unavailable;  Stopping | Stopped --node_lost--> Unavailable
"""

from __future__ import annotations

from enum import StrEnum
from fractions import Fraction


class Status(StrEnum):
    PENDING = "Pending"
    STARTING = "Starting"
    AVAILABLE = "Available"
    ATTACHING = "Attaching"
    IN_USE = "InUse"
    DETACHING = "Detaching"
    UNAVAILABLE = "Unavailable"
    RELEASED = "Released"
    # --- EI family (CreateEaisEi, AttachEaisEi, StartEaisEi, StopEaisEi, DetachEaisEi, DeleteEaisEi) ---
    CREATING = "Creating"
    BINDABLE = "Bindable"
    BOUND = "Bound"
    STARTING_WORKER = "StartingWorker"  # internal: StartEaisEi in flight (DescribeEais shows Bound)
    STOPPING_WORKER = "StoppingWorker"  # internal: StopEaisEi in flight (DescribeEais shows InUse)
    # --- end of the EI family ---
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
    # --- EI family ---
    CREATE_EI = "create_ei"
    BIND = "bind"
    UNBIND = "unbind"
    START = "start"
    STOP = "stop"
    NODE_RECOVERED_EI = "node_recovered_ei"
    # --- end of the EI family ---
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
    (AVAILABLE, Event.NOTEBOOK_STOP): STOPPED,  # nothing runs (a start that failed): the reserve share from now on
    (STOPPING, Event.DETACH_DONE): STOPPED,
    (STOPPING, Event.DETACH_TIMEOUT): UNAVAILABLE,
    (STOPPED, Event.ATTACH): ATTACHING,  # StartEaiJupyter binds the notebook's VM again
    (STOPPING, Event.NODE_LOST): UNAVAILABLE,
    (STOPPED, Event.NODE_LOST): UNAVAILABLE,
    (STOPPING, Event.RELEASE): RELEASED,
    (STOPPED, Event.RELEASE): RELEASED,
    # --- end of jupyter block ---
}

# --- EI family: its statuses, and its rows of the one table ---
# ``Instance.category`` names the family: DescribeEais ``Category``; each family's actions refuse the other's.
CATEGORY_EAI, CATEGORY_EI = "eais", "ei"
CATEGORY_JUPYTER = "jupyter"  # a notebook (CreateEaiJupyter): an EAI-family instance with its server
CREATING, BINDABLE, EI_BOUND = Status.CREATING, Status.BINDABLE, Status.BOUND
STARTING_WORKER, STOPPING_WORKER = Status.STARTING_WORKER, Status.STOPPING_WORKER
EI_STATUSES: frozenset[Status] = frozenset({CREATING, BINDABLE, EI_BOUND, STARTING_WORKER, STOPPING_WORKER})
TRANSITIONS.update({
    (None, Event.CREATE_EI): CREATING,
    (CREATING, Event.SLICE_READY): BINDABLE,
    (CREATING, Event.START_TIMEOUT): UNAVAILABLE,
    (BINDABLE, Event.BIND): EI_BOUND,
    (EI_BOUND, Event.UNBIND): BINDABLE,
    (EI_BOUND, Event.START): STARTING_WORKER,
    (STARTING_WORKER, Event.ATTACH_READY): IN_USE,
    (STARTING_WORKER, Event.ATTACH_FAILED): EI_BOUND,
    (STARTING_WORKER, Event.ATTACH_TIMEOUT): EI_BOUND,
    (IN_USE, Event.STOP): STOPPING_WORKER,
    (STOPPING_WORKER, Event.DETACH_DONE): EI_BOUND,
    (STOPPING_WORKER, Event.DETACH_TIMEOUT): UNAVAILABLE,
    **{(s, Event.NODE_LOST): UNAVAILABLE for s in (CREATING, BINDABLE, EI_BOUND, STARTING_WORKER, STOPPING_WORKER)},
    (UNAVAILABLE, Event.NODE_RECOVERED_EI): BINDABLE,
    **{(s, Event.RELEASE): RELEASED for s in EI_STATUSES},
})


def recovery_event(category: str) -> Event:
    """The event that brings an Unavailable instance of this family back once its node frees the slice."""
    return Event.NODE_RECOVERED_EI if category == CATEGORY_EI else Event.NODE_RECOVERED
# --- end of the EI family ---

# Share of the type's price billed per second in each status (product-rules.md §3; README "Lifecycle and
# billing"): the full price while a slice is held for an EAI instance or a worker may run for an EI one
# (Stopping too: a notebook's worker still holds the slice, as in Detaching); RESERVE_SHARE while an instance
# holds its slice with no worker (EI Bindable and Bound, a Stopped notebook): StopEaisEi and StopEaiJupyter save the rest.
RESERVE_SHARE = Fraction(1, 5)
BILLED_SHARE: dict[Status, Fraction] = {
    AVAILABLE: Fraction(1), ATTACHING: Fraction(1), IN_USE: Fraction(1), DETACHING: Fraction(1),
    STARTING_WORKER: Fraction(1), STOPPING_WORKER: Fraction(1), BINDABLE: RESERVE_SHARE, EI_BOUND: RESERVE_SHARE,
    STOPPING: Fraction(1), STOPPED: RESERVE_SHARE,
}
# Billed at all (at the full price or the reserve share).
BILLABLE: frozenset[Status] = frozenset(BILLED_SHARE)
# Each transitional status ends by itself with this event once its deadline (``LifecycleSettings``) passes.
TIMEOUT_EVENTS: dict[Status, Event] = {
    PENDING: Event.START_TIMEOUT, STARTING: Event.START_TIMEOUT,
    ATTACHING: Event.ATTACH_TIMEOUT, DETACHING: Event.DETACH_TIMEOUT,
    CREATING: Event.START_TIMEOUT, STARTING_WORKER: Event.ATTACH_TIMEOUT, STOPPING_WORKER: Event.DETACH_TIMEOUT,
    STOPPING: Event.DETACH_TIMEOUT,  # jupyter block: stopping_deadline_s
}
# States that must end by themselves.
TRANSITIONAL: frozenset[Status] = frozenset(TIMEOUT_EVENTS)
STABLE: frozenset[Status] = frozenset({AVAILABLE, IN_USE, BINDABLE, EI_BOUND, STOPPED})
# Pending is internal: the console does not show it (product-rules.md §3).
# StartingWorker and StoppingWorker are internal too: shown as the status they are leaving (SHOWN_AS).
VISIBLE_IN_CONSOLE: frozenset[Status] = frozenset({
    STARTING, AVAILABLE, ATTACHING, IN_USE, DETACHING, UNAVAILABLE, CREATING, BINDABLE, EI_BOUND, STOPPING, STOPPED,
})
# Statuses that hold a client binding.
BOUND: frozenset[Status] = frozenset({ATTACHING, IN_USE, DETACHING, EI_BOUND, STARTING_WORKER, STOPPING_WORKER, STOPPING})
# A worker is being started and the channel proven (the attach machinery): AttachEai, StartEaisEi, StartEaiJupyter.
WORKER_STARTING: frozenset[Status] = frozenset({ATTACHING, STARTING_WORKER})
# The worker is being stopped and its memory freed (the detach machinery: both agents let go, then detach_done
# or detach_timeout): DetachEai, StopEaisEi, StopEaiJupyter.
WORKER_STOPPING: frozenset[Status] = frozenset({DETACHING, STOPPING_WORKER, STOPPING})
# A worker may run, and the attachment token is handed to the agents, only in these.
SERVING: frozenset[Status] = frozenset({ATTACHING, IN_USE, STARTING_WORKER})
# Slice being prepared (the node reports it ready): Pending/Starting (EAI), Creating (EI).
PREPARING: frozenset[Status] = frozenset({PENDING, STARTING, CREATING})
# An instance in one of these is lost with its node: every status the table lets node_lost leave.
LOST_WITH_NODE: frozenset[Status] = frozenset(s for (s, e) in TRANSITIONS if e is Event.NODE_LOST and s is not None)
# DeleteEai: released without Force from these; Force is needed from FORCE_TO_RELEASE.
RELEASABLE_WITHOUT_FORCE: frozenset[Status] = frozenset({AVAILABLE, IN_USE, UNAVAILABLE, STOPPED})
FORCE_TO_RELEASE: frozenset[Status] = frozenset({PENDING, STARTING, ATTACHING, DETACHING, STOPPING})
# DeleteEaisEi: without Force only from Bindable (reference §3); Force releases from any other status.
EI_RELEASABLE_WITHOUT_FORCE: frozenset[Status] = frozenset({BINDABLE})
EI_FORCE_TO_RELEASE: frozenset[Status] = frozenset({CREATING, EI_BOUND, STARTING_WORKER, IN_USE, STOPPING_WORKER, UNAVAILABLE})
# DescribeEais lists these (a released instance is gone).
LISTED: frozenset[Status] = frozenset(Status) - {RELEASED}
# DescribeEais shows an EI instance's internal status as the documented status it is leaving: a
# Start in flight is still Bound, a Stop in flight still InUse, until the agents confirm.
SHOWN_AS: dict[Status, Status] = {STARTING_WORKER: EI_BOUND, STOPPING_WORKER: IN_USE}


def shown_status(status: Status) -> Status:
    """The status DescribeEais reports for ``status``."""
    return SHOWN_AS.get(status, status)


def statuses_shown_as(shown: Status) -> frozenset[Status]:
    """Every stored status DescribeEais reports as ``shown`` (the ``Status`` filter)."""
    return frozenset(s for s in LISTED if shown_status(s) is shown)


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
