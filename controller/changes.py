"""Which agents a committed transaction concerns, and how the news travels between controller processes.

Writers mark what they change on the session (``touch_node``, ``touch_vm``, ``touch_session``);
``lifecycle.apply`` marks the node of the instance's slice and its client VM itself. After the
commit, ``Database.write`` hands the marks to the process's :class:`ChangeHub`, whose subscribers
(the agent link's streams) recompute only the desired states concerned. On PostgreSQL the marks
also go out as ``NOTIFY eais_agent_changes`` sent inside the transaction: delivered to every
replica at commit, in commit order, and never for a transaction that rolled back. NOTIFY is not
replayed to a listener that was disconnected, so streams keep a slow resync as the safety net.

A payload is ``origin|change;change;...`` where a change is ``node:ID``, ``vm:ID``,
``node-session:ID`` or ``vm-session:ID`` (the agent registered again: its old session is void).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sqlmodel import Session

log = logging.getLogger(__name__)

NOTIFY_CHANNEL = "eais_agent_changes"
TOUCHED = "eais.touched"  # the session.info key holding the set of Change
MAX_PAYLOAD_BYTES = 7_000  # PostgreSQL refuses NOTIFY payloads of 8,000 bytes and more
_KINDS = ("node", "vm")


@dataclass(frozen=True, slots=True)
class Change:
    """The desired state of this agent may differ now; ``session`` says its session token was replaced."""

    kind: str  # "node" or "vm"
    agent_id: str
    session: bool = False

    def encoded(self) -> str:
        return f"{self.kind}{'-session' if self.session else ''}:{self.agent_id}"


# Published when this process may have missed news (its NOTIFY listener reconnected): check every stream.
RESYNC_ALL = Change("*", "*")


def touch_node(session: Session, node_id: str) -> None:
    _touched(session).add(Change("node", node_id))


def touch_vm(session: Session, client_instance_id: str) -> None:
    _touched(session).add(Change("vm", client_instance_id))


def touch_session(session: Session, kind: str, agent_id: str) -> None:
    """The agent registered again in this transaction: streams holding its old token must end."""
    _touched(session).update((Change(kind, agent_id), Change(kind, agent_id, session=True)))


def touched(session: Session) -> frozenset[Change]:
    return frozenset(session.info.get(TOUCHED, ()))


def _touched(session: Session) -> set[Change]:
    return session.info.setdefault(TOUCHED, set())


def encode_payloads(origin: str, changes: Iterable[Change], max_bytes: int = MAX_PAYLOAD_BYTES) -> list[str]:
    """Payloads carrying ``changes``, each under ``max_bytes`` (PostgreSQL's NOTIFY limit by default)."""
    payloads, batch, size = [], [], len(origin) + 1
    for text in sorted(change.encoded() for change in changes):
        if batch and size + len(text) + 1 > max_bytes:
            payloads.append(f"{origin}|{';'.join(batch)}")
            batch, size = [], len(origin) + 1
        batch.append(text)
        size += len(text) + 1
    if batch:
        payloads.append(f"{origin}|{';'.join(batch)}")
    return payloads


def decode_payload(payload: str) -> tuple[str, list[Change]]:
    """(origin, changes) of a payload; malformed parts are skipped (it came from the database, not a caller)."""
    origin, _, body = payload.partition("|")
    changes = []
    for text in filter(None, body.split(";")):
        label, _, agent_id = text.partition(":")
        kind, _, session = label.partition("-")
        if kind in _KINDS and agent_id and session in ("", "session"):
            changes.append(Change(kind, agent_id, session=bool(session)))
    return origin, changes


Subscriber = Callable[[frozenset[Change]], None]


class ChangeHub:
    """This process's fan-out of committed changes to its subscribers; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: list[Subscriber] = []

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        with self._lock:
            self._subscribers.append(subscriber)
        return lambda: self._unsubscribe(subscriber)

    def publish(self, changes: Iterable[Change]) -> None:
        batch = frozenset(changes)
        if not batch:
            return
        with self._lock:
            subscribers = list(self._subscribers)
        for subscriber in subscribers:
            try:
                subscriber(batch)
            except Exception:  # noqa: BLE001 - one broken subscriber must not stop the commit path
                log.exception("a change subscriber failed")

    def _unsubscribe(self, subscriber: Subscriber) -> None:
        with self._lock:
            if subscriber in self._subscribers:
                self._subscribers.remove(subscriber)
