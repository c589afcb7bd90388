"""What the SQL store does differently when Citus shards its tables.

The layout itself is made by :mod:`parlant_runtime.storage.citus` (``db upgrade``).
The store finds out once, at its first write, whether ``parlant_session`` is a
distributed table, and then:

- sends its notifications in statements of their own (``SELECT pg_notify(...)``),
  which run on the coordinator it is connected to, where its listening connection
  is; a ``pg_notify`` inside a statement Citus routes to a worker (the turn's
  compare-and-set ``UPDATE ... RETURNING``) would notify that worker's listeners,
  that is nobody (and Citus refuses volatile functions there anyway);
- does not take the agent's advisory lock inside the turn's ``UPDATE`` (an advisory
  lock lives on one node: taken on the worker, it would never meet the publish's lock
  on the coordinator); a turn and a publish that meet on rows wait for each other
  through row locks, and Citus's distributed deadlock detection aborts one of them
  when they wait in a circle, which the store retries (``40P01``);
- runs publishes and roll-ups with one connection per node
  (``citus.multi_shard_modify_mode = 'sequential'``): they write sharded tables and
  the reference tables those reference in one transaction, which Citus allows only
  over a single connection per node.
"""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = ["EVENTS_CHANNEL", "is_sharded", "notify_events", "one_connection_per_node"]

EVENTS_CHANNEL = "parlant_events"

_SHARDED = sa.text(
    "SELECT EXISTS (SELECT 1 FROM pg_dist_partition "
    "WHERE logicalrelid = to_regclass('parlant_session'))"
)
_HAS_CITUS = sa.text("SELECT to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL")
_SEQUENTIAL = sa.text("SET LOCAL citus.multi_shard_modify_mode = 'sequential'")
_NOTIFY = sa.text(
    "SELECT pg_notify('" + EVENTS_CHANNEL + "', payload) FROM unnest(CAST(:payloads AS text[])) "
    "AS payload"
)


async def is_sharded(conn: AsyncConnection) -> bool:
    """Whether Citus distributes the sessions table of this database."""
    if not await conn.scalar(_HAS_CITUS):
        return False
    return bool(await conn.scalar(_SHARDED))


async def one_connection_per_node(conn: AsyncConnection) -> None:
    """Run the rest of this transaction's multi-shard writes over one connection per node."""
    await conn.execute(_SEQUENTIAL)


async def notify_events(conn: AsyncConnection, last: Iterable[tuple[UUID, int]]) -> None:
    """``NOTIFY parlant_events, '<session>:<last offset>'`` for each pair, from the node
    the store is connected to (delivered at commit)."""
    payloads = [f"{session_id}:{offset}" for session_id, offset in last]
    if payloads:
        await conn.execute(_NOTIFY, {"payloads": payloads})
