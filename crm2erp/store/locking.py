"""Per-flow locks in the state store, safe across processes and hosts, and self-healing.

Acquiring is a plain INSERT into ``locks`` whose primary key is the flow: the
database lets exactly one of two racing processes in. The owner is
``host:pid:random``; on Linux the host part carries the process namespace
(``name/namespace``), so two containers sharing a host name are not taken
for one machine.

A lock whose holder is gone is taken over:

* a holder on **this host** is gone when its process no longer runs (no such
  pid, a zombie, or a newer process that reused the pid): taken over at once.
  While the process runs, the lock stays, whatever its lease says;
* a holder on **another host** is gone when its lease expired. The lease is
  short (:data:`DEFAULT_LEASE`, or ``$CRM2ERP_LOCK_LEASE``) and the running
  holder renews it with every batch it commits (the heartbeat, :func:`extend_on`).

Taking over deletes only the row of the holder that was judged gone, and only
if it did not renew since, then inserts again: two processes taking over the
same lock still cannot both win. The runs that holder left ``running`` become
``crashed`` in the same transaction. Each step is its own short transaction
(PostgreSQL aborts a transaction after a failed INSERT).
"""

from __future__ import annotations

__all__ = ["Holder", "acquire", "extend", "extend_on", "release", "force_release", "holders",
           "holder", "holder_of", "default_owner", "this_host", "lease_from_env", "DEFAULT_LEASE",
           "ENV_LEASE"]

import datetime as dt
import logging
import os
import socket
import uuid
from dataclasses import dataclass
from functools import cache

import psutil
import sqlalchemy as sa

from crm2erp.configtypes import parse_duration
from crm2erp.errors import ConfigError, LockHeldError
from crm2erp.store.tables import locks, runs
from crm2erp.store.types import utcnow

log = logging.getLogger(__name__)

ENV_LEASE = "CRM2ERP_LOCK_LEASE"
DEFAULT_LEASE = dt.timedelta(minutes=10)
_TRIES = 3
# a process created this long after the lock was taken is not its holder (pid reused);
# process start times are only known to about a clock tick
_START_SLACK = dt.timedelta(seconds=2)


def lease_from_env() -> dt.timedelta:
    """The lease of a lock: ``$CRM2ERP_LOCK_LEASE`` (``90s``, ``10m``, ``1h``) or 10 minutes."""
    text = os.environ.get(ENV_LEASE, "").strip()
    if not text:
        return DEFAULT_LEASE
    try:
        lease = parse_duration(text)
    except ValueError as exc:
        raise ConfigError(f"{ENV_LEASE}: {exc}") from None
    if lease <= dt.timedelta(0):
        raise ConfigError(f"{ENV_LEASE}={text!r}: a lock lease must be longer than 0s")
    return lease


@cache
def this_host() -> str:
    """The host part of an owner: host name, plus the pid namespace on Linux."""
    name = socket.gethostname()
    try:
        return f"{name}/{os.stat('/proc/self/ns/pid').st_ino}"
    except OSError:
        return name


def default_owner() -> str:
    """host:pid:random, unique per acquisition so a release never frees another's lock."""
    return f"{this_host()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _local_pid(owner: str) -> int | None:
    """The pid of an owner on this host, None for another host or a free-form owner."""
    parts = owner.rsplit(":", 2)
    if len(parts) != 3 or parts[0] != this_host() or not parts[1].isdigit():
        return None
    return int(parts[1])


def _process_runs(pid: int, since: dt.datetime) -> bool:
    """Whether process ``pid``, started before ``since``, is still running."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        started = dt.datetime.fromtimestamp(process.create_time(), dt.UTC)
    except psutil.NoSuchProcess:   # includes ZombieProcess
        return False
    except psutil.Error:           # exists, but we may not look at it: assume it runs
        return True
    return started <= since + _START_SLACK


@dataclass(frozen=True)
class Holder:
    """One held lock: the flow (or partition) it locks and who holds it since when."""

    flow: str
    owner: str
    acquired_at: dt.datetime
    expires_at: dt.datetime

    @property
    def pid(self) -> int | None:
        """The holder's process id when it runs on this host."""
        return _local_pid(self.owner)

    def gone(self, now: dt.datetime | None = None) -> str | None:
        """Why the holder no longer runs, or None while it may still run."""
        now = now or utcnow()
        pid = self.pid
        if pid is not None:
            if _process_runs(pid, self.acquired_at):
                return None
            return f"its process {pid} on this host is no longer running"
        if self.expires_at < now:
            return f"its lease expired at {self.expires_at:%Y-%m-%d %H:%M:%S} UTC"
        return None

    def describe(self, now: dt.datetime | None = None) -> str:
        """One line for people: who, since when, and whether it still runs."""
        why = self.gone(now)
        if why is not None:
            state = f"gone: {why}"
        elif self.pid is not None:
            state = f"process {self.pid} on this host is running"
        else:
            state = f"on another host, lease until {self.expires_at:%Y-%m-%d %H:%M:%S} UTC"
        return (f"{self.flow}: held by {self.owner} since "
                f"{self.acquired_at:%Y-%m-%d %H:%M:%S} UTC ({state})")


def _holder(row) -> Holder:
    return Holder(row.flow, row.owner, row.acquired_at, row.expires_at)


def holders(engine: sa.Engine, flow: str | None = None) -> list[Holder]:
    """The held locks of ``flow`` and of its partitions (``flow#p1of4``...), or all."""
    query = sa.select(locks).order_by(locks.c.flow)
    if flow is not None:
        query = query.where(sa.or_(locks.c.flow == flow,
                                   locks.c.flow.startswith(f"{flow}#p", autoescape=True)))
    with engine.connect() as conn:
        return [_holder(row) for row in conn.execute(query)]


def holder(engine: sa.Engine, flow: str) -> Holder | None:
    """The holder of exactly the lock ``flow``, if any."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(locks).where(locks.c.flow == flow)).first()
    return None if row is None else _holder(row)


def holder_of(engine: sa.Engine, owner: str) -> Holder | None:
    """The lock ``owner`` holds, if any."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(locks).where(locks.c.owner == owner)).first()
    return None if row is None else _holder(row)


def _try_insert(engine: sa.Engine, flow: str, owner: str, lease: dt.timedelta,
                now: dt.datetime) -> bool:
    try:
        with engine.begin() as conn:
            conn.execute(locks.insert().values(
                flow=flow, owner=owner, acquired_at=now, expires_at=now + lease))
    except sa.exc.IntegrityError:
        return False
    return True


def _remove(engine: sa.Engine, held: Holder, why: str, now: dt.datetime, *,
            unless_renewed: bool = True) -> bool:
    """Delete ``held``'s lock (unless it was renewed since it was read); its running
    runs become ``crashed`` with ``why`` in the same transaction."""
    query = locks.delete().where(locks.c.flow == held.flow, locks.c.owner == held.owner)
    if unless_renewed:
        query = query.where(locks.c.expires_at <= held.expires_at)
    with engine.begin() as conn:
        removed = conn.execute(query).rowcount
        if removed:
            conn.execute(runs.update().where(
                runs.c.owner == held.owner, runs.c.status == "running").values(
                status="crashed", finished_at=now,
                message=f"crashed: {why} (found {now:%Y-%m-%d %H:%M:%S} UTC); the next "
                        "run resumes after the last committed batch"))
    return bool(removed)


def acquire(engine: sa.Engine, flow: str, owner: str | None = None,
            lease: dt.timedelta | None = None, now: dt.datetime | None = None) -> str:
    """Take ``flow``'s lock for ``owner``; returns the owner string used.

    A holder that is gone (see :meth:`Holder.gone`) is taken over with a
    warning; a live holder raises :class:`LockHeldError`.
    """
    owner = owner or default_owner()
    lease = lease if lease is not None else lease_from_env()
    for _ in range(_TRIES):
        if _try_insert(engine, flow, owner, lease, now or utcnow()):
            return owner
        held = holder(engine, flow)
        if held is None:            # released in between: try again
            continue
        why = held.gone(now)
        if why is None:
            raise _held_error(held)
        if _remove(engine, held, why, now or utcnow()):
            log.warning("flow %s: taking over the lock of %s: %s; its run is recorded "
                        "as crashed", flow, held.owner, why)
    raise LockHeldError(f"flow {flow!r}: other runs took the lock {_TRIES} times in a "
                        "row while this one tried; try again when they have finished")


def _held_error(held: Holder) -> LockHeldError:
    if held.pid is not None:
        wait = (f"process {held.pid} on this host is still running it; wait for it to "
                "finish")
    else:
        wait = ("wait for that run to finish (if it died, the lock expires at "
                f"{held.expires_at:%Y-%m-%d %H:%M:%S} UTC)")
    return LockHeldError(
        f"flow {held.flow!r} is locked by {held.owner} since "
        f"{held.acquired_at:%Y-%m-%d %H:%M:%S} UTC; {wait}, or release it with "
        f"`crm2erp unlock {held.flow}`",
        retry_after=max(0.0, (held.expires_at - utcnow()).total_seconds()))


def extend(engine: sa.Engine, flow: str, owner: str, lease: dt.timedelta | None = None,
           now: dt.datetime | None = None) -> bool:
    """Push the expiry of ``owner``'s lock ``lease`` from now (a heartbeat).

    Returns False when ``owner`` no longer holds the lock: it was taken over
    or released by ``crm2erp unlock``, so the caller must stop.
    """
    with engine.begin() as conn:
        return extend_on(conn, flow, owner, lease, now)


def extend_on(conn: sa.Connection, flow: str, owner: str,
              lease: dt.timedelta | None = None, now: dt.datetime | None = None) -> bool:
    """:func:`extend` in the caller's transaction (a sync batch's commit carries the
    heartbeat: one transaction per batch, not two)."""
    lease = lease if lease is not None else lease_from_env()
    until = (now or utcnow()) + lease
    kept = bool(conn.execute(locks.update().where(
        locks.c.flow == flow, locks.c.owner == owner).values(expires_at=until)).rowcount)
    if kept:
        log.debug("flow %s: lock renewed until %s", flow, f"{until:%Y-%m-%d %H:%M:%S}")
    return kept


def release(engine: sa.Engine, flow: str, owner: str) -> bool:
    """Release ``flow``'s lock if ``owner`` still holds it; returns whether it did."""
    with engine.begin() as conn:
        released = conn.execute(locks.delete().where(
            locks.c.flow == flow, locks.c.owner == owner)).rowcount
    if not released:
        log.warning("flow %s: lock of %s was already gone (taken over or unlocked)",
                    flow, owner)
    return bool(released)


def force_release(engine: sa.Engine, held: Holder, by: str) -> bool:
    """Remove ``held``'s lock for an operator (``by`` says who); its running runs
    become ``crashed``. False when it was released meanwhile."""
    return _remove(engine, held, f"its lock was released by {by}", utcnow(),
                   unless_renewed=False)
