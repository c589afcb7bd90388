"""What the SQL store does when the database fails under it: which failures are
retried, how long it waits between attempts, and how a dead pooled connection is
noticed before it is used.

Three kinds of failure are transient:

- a **conflict**: PostgreSQL aborted the transaction to break a deadlock
  (``40P01``) or a serialization failure (``40001``). Nothing of it was written, so
  running it again is safe;
- **unavailable**: no connection could be had (the server is down, restarting, or
  refusing connections);
- **a node unreachable**: on Citus, the coordinator could not reach the worker that
  holds the rows (it may be restarting);
- **disconnected**: the connection died under a statement. Before ``COMMIT`` was
  sent nothing was written; during ``COMMIT`` the outcome is unknown and the caller
  must find out (see :meth:`SqlStore.commit_turn`).

Each is retried a bounded number of times (:data:`ATTEMPTS`) with a jittered,
growing pause, then reported as :class:`~parlant_runtime.storage.port.StorageError`.
"""

from __future__ import annotations

import random
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = [
    "ATTEMPTS",
    "conflict",
    "disconnected",
    "drop_dead_connections",
    "node_unreachable",
    "pause",
]

ATTEMPTS = 5
"""Attempts of one transaction (the first and four retries)."""
_FIRST_PAUSE = 0.02
_LONGEST_PAUSE = 1.0
_CONFLICTS = frozenset({"40P01", "40001"})  # deadlock_detected, serialization_failure


def conflict(exc: BaseException) -> bool:
    """Whether the database aborted the transaction to resolve a lock conflict."""
    if not isinstance(exc, DBAPIError):
        return False
    code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    return code in _CONFLICTS


def disconnected(exc: BaseException) -> bool:
    """Whether the connection died under a statement (or a commit)."""
    if isinstance(exc, DBAPIError):
        return bool(exc.connection_invalidated)
    return isinstance(exc, OSError)


def node_unreachable(exc: BaseException) -> bool:
    """Whether the server answered that it cannot reach another node (a Citus worker
    that holds the rows is down): SQLSTATE class 08 on a connection that is itself fine.
    Nothing was written (Citus commits on every node or none)."""
    if not isinstance(exc, DBAPIError) or exc.connection_invalidated:
        return False
    code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    return isinstance(code, str) and code.startswith("08")


def pause(attempt: int) -> float:
    """Seconds to wait before attempt ``attempt + 1``: doubling from 20 ms, capped at
    one second, jittered so that the processes of a conflict do not meet again."""
    base = min(_LONGEST_PAUSE, _FIRST_PAUSE * 2.0**attempt)
    jitter: float = random.uniform(0.5, 1.5)  # spreads the processes of a conflict apart
    return base * jitter


def drop_dead_connections(engine: AsyncEngine) -> None:
    """Make the pool replace, at checkout, a connection the server has already closed.

    asyncpg learns that its socket was closed (a restarted or stopped server ends every
    connection) as soon as the event loop reads the end of the stream, and says so
    in ``is_closed()``: checking that flag costs no round trip, where SQLAlchemy's
    ``pool_pre_ping`` sends three (``BEGIN``, a query, ``ROLLBACK``) per checkout. A
    connection whose death is not yet known (a network that drops silently) fails its
    first statement instead, and the write is retried on a new one.
    """
    if engine.dialect.name != "postgresql":
        return

    def checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        driver = getattr(dbapi_connection, "_connection", None)
        if driver is not None and driver.is_closed():
            raise DisconnectionError("the pooled connection was closed by the server")

    sa.event.listen(engine.sync_engine, "checkout", checkout)
