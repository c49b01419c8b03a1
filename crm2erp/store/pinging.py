"""Pooled connections pinged only after they sat idle long enough to have died.

SQLAlchemy's ``pool_pre_ping`` sends ``SELECT 1`` on every checkout: a sync reads the
state store two or three times a batch, each read a checkout, so a run spent a round
trip a read on a connection it had used milliseconds before. A connection that came
back to the pool less than :data:`IDLE_BEFORE_PING` seconds ago is handed out as it
is; an older one is pinged first, and one the server dropped (a restart, an idle
timeout) is replaced, with every other pooled connection, as pre-ping does.
"""

from __future__ import annotations

__all__ = ["IDLE_BEFORE_PING", "ping_when_idle"]

import time

import sqlalchemy as sa

#: Seconds a pooled connection may sit idle and still be handed out without a ping.
IDLE_BEFORE_PING = 5.0

_RETURNED_AT = "crm2erp_returned_at"


def ping_when_idle(engine: sa.Engine, idle_seconds: float | None = None) -> sa.Engine:
    """Ping ``engine``'s pooled connections on checkout when they were idle for
    ``idle_seconds`` (default :data:`IDLE_BEFORE_PING`) or longer; a new connection is
    never pinged. Returns ``engine``."""
    dialect = engine.dialect

    @sa.event.listens_for(engine, "checkin")
    def _returned(dbapi_connection, record) -> None:
        record.info[_RETURNED_AT] = time.monotonic()

    @sa.event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection, record, proxy) -> None:
        returned = record.info.get(_RETURNED_AT)
        idle = IDLE_BEFORE_PING if idle_seconds is None else idle_seconds
        if returned is None or time.monotonic() - returned < idle:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as exc:
            if dialect.is_disconnect(exc, dbapi_connection, None):
                raise sa.exc.InvalidatePoolError(
                    f"the database dropped a pooled connection: {exc}") from exc
            raise

    return engine
