"""Per-flow locks in the state store, safe across processes and hosts.

Acquiring is a plain INSERT into ``locks`` whose primary key is the flow: the
database lets exactly one of two racing processes in. A lock whose holder
died expires after its ttl; taking it over deletes the expired row only
(``expires_at < now``), then inserts again, so two processes taking over the
same expired lock still cannot both win. Each step is its own short
transaction (PostgreSQL aborts a transaction after a failed INSERT).
"""

from __future__ import annotations

__all__ = ["acquire", "extend", "release", "default_owner"]

import datetime as dt
import logging
import os
import socket
import uuid

import sqlalchemy as sa

from crm2erp.errors import LockHeldError
from crm2erp.store.tables import locks
from crm2erp.store.types import utcnow

log = logging.getLogger(__name__)


def default_owner() -> str:
    """host:pid:random, unique per acquisition so a release never frees another's lock."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _try_insert(engine: sa.Engine, flow: str, owner: str, ttl: dt.timedelta) -> bool:
    now = utcnow()
    try:
        with engine.begin() as conn:
            conn.execute(locks.insert().values(
                flow=flow, owner=owner, acquired_at=now, expires_at=now + ttl))
    except sa.exc.IntegrityError:
        return False
    return True


def acquire(engine: sa.Engine, flow: str, owner: str | None, ttl: dt.timedelta) -> str:
    """Take ``flow``'s lock for ``owner``; returns the owner string used."""
    owner = owner or default_owner()
    if _try_insert(engine, flow, owner, ttl):
        return owner
    with engine.begin() as conn:
        taken_over = conn.execute(locks.delete().where(
            locks.c.flow == flow, locks.c.expires_at < utcnow())).rowcount
    if taken_over:
        log.warning("flow %s: taking over an expired lock", flow)
        if _try_insert(engine, flow, owner, ttl):
            return owner
    with engine.connect() as conn:
        held = conn.execute(sa.select(locks).where(locks.c.flow == flow)).first()
    if held is None:  # released in between: one more try, then give up
        if _try_insert(engine, flow, owner, ttl):
            return owner
        raise LockHeldError(f"flow {flow!r} is locked by another run that just started; "
                            "try again when it has finished")
    raise LockHeldError(
        f"flow {flow!r} is locked by {held.owner} since "
        f"{held.acquired_at:%Y-%m-%d %H:%M:%S} UTC; wait for that run to finish "
        f"(if it died, the lock expires at {held.expires_at:%Y-%m-%d %H:%M:%S} UTC)",
        retry_after=max(0.0, (held.expires_at - utcnow()).total_seconds()))


def extend(engine: sa.Engine, flow: str, owner: str, ttl: dt.timedelta) -> bool:
    """Push the expiry of ``owner``'s lock ``ttl`` from now (a heartbeat).

    Returns False when ``owner`` no longer holds the lock: it expired and
    another run took it over, so the caller must stop.
    """
    with engine.begin() as conn:
        return bool(conn.execute(locks.update().where(
            locks.c.flow == flow, locks.c.owner == owner).values(
            expires_at=utcnow() + ttl)).rowcount)


def release(engine: sa.Engine, flow: str, owner: str) -> bool:
    """Release ``flow``'s lock if ``owner`` still holds it; returns whether it did."""
    with engine.begin() as conn:
        released = conn.execute(locks.delete().where(
            locks.c.flow == flow, locks.c.owner == owner)).rowcount
    if not released:
        log.warning("flow %s: lock of %s was already gone (expired and taken over?)",
                    flow, owner)
    return bool(released)
