"""One reconciler at a time among the controller replicas: a lease row, on the database's clock.

Every replica tries ``hold_lease`` each reconcile tick: one statement takes the lease when it is
free or expired and renews it when it is the caller's; the row then says who holds it. Time is
the database's (PostgreSQL ``clock_timestamp()``, SQLite's own clock), never a replica's, so
replicas with skewed clocks still agree on when a lease ran out. The holder renews every tick
(2 s) for ``lease_ttl_s`` (10 s): a dead leader is replaced within about a TTL plus a tick.

``epoch`` grows whenever the lease changes hands or its holder let it lapse (a full disk stopped
its renewals). A new epoch is a new term: the reconciler gives every agent a full heartbeat period
plus grace before it may declare one lost, because the time the control plane was away is not
time an agent was silent. ``fence`` lets a write check, inside its own transaction, that its
term is still current.
"""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass

from sqlalchemy import Connection, case, select, text
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session

from controller.context import ControllerContext
from controller.tables import Lease

RECONCILER = "reconciler"
_DB_NOW_US = {
    "postgresql": text("SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000000 AS BIGINT)"),
    "sqlite": text("SELECT CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER)"),
}


class LeaseLost(Exception):
    """This replica's term ended (another replica holds the lease now); the work is abandoned."""


def replica_name() -> str:
    """Who this process is, in the lease row and in logs: host, pid and a random tag (pids repeat)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


@dataclass(frozen=True, slots=True)
class LeaseState:
    name: str
    holder: str
    epoch: int
    acquired_us: int
    expires_us: int
    db_now_us: int
    mine: bool


@dataclass(frozen=True, slots=True)
class Term:
    """A lease held: the fence every write of this term checks."""

    name: str
    holder: str
    epoch: int


def database_now_us(connection: Connection) -> int:
    return int(connection.execute(_DB_NOW_US[connection.dialect.name]).scalar_one())


def hold_lease(ctx: ControllerContext, holder: str, ttl_s: float, name: str = RECONCILER) -> LeaseState:
    """Take ``name`` if free or expired, renew it if ours; the lease as it stands afterwards."""
    with ctx.db.write_connection() as connection:
        now = database_now_us(connection)
        expires = now + round(ttl_s * 1_000_000)
        insert = postgresql_insert if connection.dialect.name == "postgresql" else sqlite_insert
        statement = insert(Lease).values(name=name, holder=holder, epoch=1, acquired_us=now, expires_us=expires)
        current = (Lease.holder == holder) & (Lease.expires_us >= now)  # ours and not lapsed: a renewal
        connection.execute(statement.on_conflict_do_update(
            index_elements=["name"],
            set_={
                "holder": holder, "expires_us": expires,
                "epoch": case((current, Lease.epoch), else_=Lease.epoch + 1),
                "acquired_us": case((current, Lease.acquired_us), else_=now),
            },
            where=(Lease.holder == holder) | (Lease.expires_us < now),
        ))
        row = connection.execute(select(Lease).where(Lease.name == name)).one()
    return LeaseState(name, row.holder, row.epoch, row.acquired_us, row.expires_us, now, mine=row.holder == holder)


def fence(session: Session, term: Term) -> None:
    """Raise LeaseLost unless ``term`` still holds its lease (checked in the caller's transaction)."""
    connection = session.connection()
    now = database_now_us(connection)
    held = session.exec(select(Lease.name).where(
        Lease.name == term.name, Lease.holder == term.holder, Lease.epoch == term.epoch, Lease.expires_us >= now
    )).first()
    if held is None:
        raise LeaseLost(f"the {term.name} lease of {term.holder} (epoch {term.epoch}) ended")


def current_lease(ctx: ControllerContext, name: str = RECONCILER) -> Lease | None:
    with ctx.db.read() as session:
        return session.get(Lease, name)

