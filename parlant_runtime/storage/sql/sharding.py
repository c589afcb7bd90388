"""What the SQL store does differently when Citus shards its tables.

The layout itself is made by :mod:`parlant_runtime.storage.citus` (``db upgrade``).
The store finds out once, at its first write, whether ``parlant_session`` is a
distributed table, and then:

- sends its notifications in statements of their own (``SELECT pg_notify(...)``),
  which run on the coordinator it is connected to, where its listening connection
  is; a ``pg_notify`` inside a statement Citus routes to a worker (the turn's
  compare-and-set ``UPDATE ... RETURNING``) would notify that worker's listeners,
  that is nobody (and Citus refuses volatile functions there anyway);
- takes the agent's advisory lock (shared) in a statement of its own before the
  turn's ``UPDATE``, on the coordinator where a publish takes it exclusively: inside
  the routed ``UPDATE`` it would be taken on the worker, where no publish meets it,
  and turns and publishes would deadlock on rows instead (measured: 22 of 227 turns
  beside publishes gave up after five deadlocks). The session's agent is looked up
  once per session and process (:class:`SessionAgents`; a session never changes
  agent);
- runs publishes and roll-ups with one connection per node
  (``citus.multi_shard_modify_mode = 'sequential'``): they write sharded tables and
  the reference tables those reference in one transaction, which Citus allows only
  over a single connection per node;
- when a node runs ``synchronous_commit = off``, commits each of its own
  transactions with ``synchronous_commit = local`` on the workers it writes
  (:func:`commit_written_out`). A shard move (``citus_rebalance_start``,
  ``citus_move_shard_placement`` with logical replication) blocks writes to the
  moving shards, then waits until the new placement has replayed the source's WAL up
  to ``pg_current_wal_lsn()``: the position the source has *written out*. An
  asynchronous commit is acknowledged while its WAL may still sit in the source's
  buffers past that position (up to three times ``wal_writer_delay``), so the move
  switches to the new placement without it and drops the old one: an acknowledged
  turn is lost without any crash (measured: 2 of 11 runs of the rebalance test; a
  replay of the catch-up test on plain logical replication lost the acknowledged
  row 5 times in 5). A commit that waits for its WAL to be written is always below
  that position. The nodes' setting is asked once per store, at its first write.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = [
    "EVENTS_CHANNEL",
    "SessionAgents",
    "commit_written_out",
    "commits_unwritten",
    "is_sharded",
    "notify_events",
    "one_connection_per_node",
]

EVENTS_CHANNEL = "parlant_events"

_SHARDED = sa.text(
    "SELECT EXISTS (SELECT 1 FROM pg_dist_partition "
    "WHERE logicalrelid = to_regclass('parlant_session'))"
)
_HAS_CITUS = sa.text("SELECT to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL")
_SEQUENTIAL = sa.text("SET LOCAL citus.multi_shard_modify_mode = 'sequential'")
_ASYNCHRONOUS_NODES = sa.text(
    "SELECT coalesce(bool_or(NOT success OR result = 'off'), false) "
    "FROM run_command_on_all_nodes('SHOW synchronous_commit')"
)
# Citus sends the transaction's SET LOCAL commands to every worker it opens a
# transaction on, with the BEGIN (no round trip of their own to the worker)
_WRITTEN_OUT = (
    sa.text("SET LOCAL citus.propagate_set_commands = 'local'"),
    sa.text("SET LOCAL synchronous_commit = local"),
)
_NOTIFY = sa.text(
    "SELECT pg_notify('" + EVENTS_CHANNEL + "', payload) FROM unnest(CAST(:payloads AS text[])) "
    "AS payload"
)


async def is_sharded(conn: AsyncConnection) -> bool:
    """Whether Citus distributes the sessions table of this database."""
    if not await conn.scalar(_HAS_CITUS):
        return False
    return bool(await conn.scalar(_SHARDED))


async def commits_unwritten(conn: AsyncConnection) -> bool:
    """Whether a node of the cluster acknowledges commits before their WAL is written
    (``synchronous_commit = off`` for this database and user; a node that cannot be
    asked counts as one)."""
    return bool(await conn.scalar(_ASYNCHRONOUS_NODES))


async def commit_written_out(conn: AsyncConnection) -> None:
    """Make this transaction's commit wait, on the coordinator and on each worker it
    writes, until its WAL is written (``synchronous_commit = local``): a shard move's
    catch-up then cannot leave it behind (see the module docstring)."""
    for statement in _WRITTEN_OUT:
        await conn.execute(statement)


async def one_connection_per_node(conn: AsyncConnection) -> None:
    """Run the rest of this transaction's multi-shard writes over one connection per node."""
    await conn.execute(_SEQUENTIAL)


async def notify_events(conn: AsyncConnection, last: Iterable[tuple[UUID, int]]) -> None:
    """``NOTIFY parlant_events, '<session>:<last offset>'`` for each pair, from the node
    the store is connected to (delivered at commit)."""
    payloads = [f"{session_id}:{offset}" for session_id, offset in last]
    if payloads:
        await conn.execute(_NOTIFY, {"payloads": payloads})


class SessionAgents:
    """The agent of the sessions this store wrote lately, for the agent's lock."""

    def __init__(self, agent_of: Any, lock_shared: Any, size: int = 10_000) -> None:
        self._agent_of = agent_of
        """``SELECT agent_id FROM parlant_session WHERE id = :sid AND workspace_id = :ws``"""
        self._lock_shared = lock_shared
        """``SELECT pg_advisory_xact_lock_shared(<the agent's key, from :agent>)``"""
        self._known: OrderedDict[UUID, UUID] = OrderedDict()
        self._size = size

    def remember(self, session_id: UUID, agent_id: UUID) -> None:
        self._known[session_id] = agent_id
        self._known.move_to_end(session_id)
        if len(self._known) > self._size:
            self._known.popitem(last=False)

    async def lock_shared(self, conn: AsyncConnection, ws: str, session_id: UUID) -> None:
        """Take the session's agent's lock, shared, on the coordinator (nothing for an
        unknown session: its compare-and-set will find no row)."""
        agent_id = self._known.get(session_id)
        if agent_id is None:
            agent_id = await conn.scalar(self._agent_of, {"sid": session_id, "ws": ws})
            if agent_id is None:
                return
            self.remember(session_id, agent_id)
        await conn.execute(self._lock_shared, {"agent": agent_id})
