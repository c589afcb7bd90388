"""The SQL store's sessions: creating, reading and listing them, their events and
variables, reading a turn, waiting for events.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from parlant_runtime.model import (
    Event,
    Session,
    SessionStatus,
    Variable,
)
from parlant_runtime.storage.checks import (
    check_session_start,
)
from parlant_runtime.storage.port import (
    InvalidData,
    NotFound,
    SessionStart,
    TurnRead,
)
from parlant_runtime.storage.sql import schema as t
from parlant_runtime.storage.sql._core import _SqlCore
from parlant_runtime.storage.sql._refusals import no_session
from parlant_runtime.storage.sql._statements import (
    _KEYS,
    _TURN_READ,
    _VARIABLES_OF_SESSION,
    _check_workspace,
    _event,
    _merged_variables,
    _session,
    _sessions,
    _storable,
    agent_lock,
)
from parlant_runtime.storage.sql.agents import (
    VERSION,
    WITH_STATE,
    agent_version,
)


class _Sessions(_SqlCore):
    """Sessions, events and variables of :class:`~.store.SqlStore`."""

    # ------------------------------------------------------------------ sessions

    async def create_session(self, workspace_id: str, start: SessionStart) -> Session:
        """A new session of an agent of this workspace."""
        _check_workspace(workspace_id)
        check_session_start(start)
        session_id = start.session_id or uuid.uuid4()

        async def work(conn: AsyncConnection) -> Session:
            # the agent's lock first, shared: a publish of the agent holds it exclusively,
            # so a creation waits for the publish before it holds anything a publish
            # could wait for (the insert's foreign-key checks key-share lock its rows)
            if await self._agent_for_session(conn, workspace_id, start.agent_id) is None:
                raise NotFound(f"no agent {start.agent_id} in workspace {workspace_id!r}")
            if (
                start.user_id is not None
                and (await conn.scalar(sa.select(t.user.c.id).where(t.user.c.id == start.user_id)))
                is None
            ):
                raise InvalidData(
                    f"user {start.user_id!r} is not a user of the host database; create the "
                    "user first or leave user_id out"
                )
            now = datetime.now(UTC)  # sub-second: sessions list in creation order on SQLite too
            statement = (
                self._insert(t.session)
                .values(
                    created_at=now,
                    updated_at=now,
                    started_at=now,
                    last_activity_at=now,
                    id=session_id,
                    agent_id=start.agent_id,
                    workspace_id=workspace_id,
                    user_id=start.user_id,
                    customer_id=start.customer_id,
                    mode=start.mode.value,
                    title=start.title,
                    metadata=start.metadata,
                    variables={},
                    tags=[],
                )
                .on_conflict_do_nothing(index_elements=["id"])
                .returning(*t.session.c)
            )
            row = (await conn.execute(statement)).first()
            if row is None:  # the id exists: the same session created again is a no-op
                existing = (
                    await conn.execute(_sessions().where(t.session.c.id == session_id))
                ).one()
                if existing.workspace_id != workspace_id or existing.agent_id != start.agent_id:
                    raise InvalidData(f"session id {session_id} is taken; choose another")
                return _session(existing)
            await self._record_usage(
                conn, workspace_id, session_id, 0, {f"agent:{start.agent_id}:total_sessions": 1}
            )
            return _session(row)

        return await self._transact(work, refused=f"session {session_id} cannot be created")

    async def _agent_for_session(
        self, conn: AsyncConnection, ws: str, agent_id: UUID
    ) -> int | None:
        """The agent's version, its lock taken shared on PostgreSQL (see "Locks")."""
        query = (
            sa.select(VERSION)
            .select_from(WITH_STATE)
            .where(
                t.agent.c.id == agent_id,
                t.agent.c.workspace_id == ws,
                t.agent.c.deleted_at.is_(None),
            )
        )
        if self.dialect == "postgresql":
            shared = sa.func.pg_advisory_xact_lock_shared(agent_lock(t.agent.c.id))
            query = query.where(shared.is_not(None))
        version: int | None = await conn.scalar(query)
        return version

    async def get_session(self, workspace_id: str, session_id: UUID) -> Session:
        """The session as stored."""
        _check_workspace(workspace_id)
        async with self._read() as conn:
            return _session(await self._session_row(conn, workspace_id, session_id))

    async def list_sessions(
        self, workspace_id: str, agent_id: UUID, *, status: SessionStatus | None = None
    ) -> Sequence[Session]:
        """The agent's sessions, oldest first; :class:`NotFound` for an agent the workspace
        does not have (checked only when no session is found: one query otherwise)."""
        _check_workspace(workspace_id)
        query = _sessions().where(
            t.session.c.workspace_id == workspace_id, t.session.c.agent_id == agent_id
        )
        if status is not None:
            query = query.where(t.session.c.status == status.value)
        async with self._read() as conn:
            rows = (
                await conn.execute(query.order_by(t.session.c.created_at, t.session.c.id))
            ).all()
            if not rows and await agent_version(conn, workspace_id, agent_id) is None:
                raise NotFound(f"no agent {agent_id} in workspace {workspace_id!r}")
        return [_session(row) for row in rows]

    def _events_query(self, ws: str, sid: UUID) -> Any:
        """The session's events, each with its idempotency key if it has one.

        The key is a subquery per event rather than an outer join: it is looked up by
        ``event_key``'s index of (session_id, offset) (migration 0007) whatever the
        planner's statistics say, so a page costs the same with keys as without. An
        outer join, with statistics of a table that grew since they were taken, was
        planned on PostgreSQL as a scan of every key of the session per event (a page
        of 10,000 keyed events 10 times one without keys). ``limit``: one value even
        if an offset had two keys (the runtime writes one)."""
        key = (
            sa.select(_KEYS.c.idempotency_key)
            .where(_KEYS.c.session_id == t.event.c.session_id, _KEYS.c.offset == t.event.c.offset)
            .limit(1)
            .scalar_subquery()
            .label(_KEYS.c.idempotency_key.name)
        )
        return (
            sa.select(t.event, key)
            .select_from(t.event.join(t.session, t.session.c.id == t.event.c.session_id))
            .where(t.event.c.session_id == sid, t.session.c.workspace_id == ws)
        )

    def _keyed_event_query(self, ws: str, sid: UUID, key: Any) -> Any:
        """The session's event recorded with the idempotency key ``key`` (found by
        ``event_key``'s primary key)."""
        keyed = sa.and_(
            _KEYS.c.session_id == t.event.c.session_id, _KEYS.c.offset == t.event.c.offset
        )
        return (
            sa.select(t.event, _KEYS.c.idempotency_key)
            .select_from(
                t.event.join(t.session, t.session.c.id == t.event.c.session_id).join(_KEYS, keyed)
            )
            .where(
                t.event.c.session_id == sid,
                t.session.c.workspace_id == ws,
                _KEYS.c.idempotency_key == key,
            )
        )

    async def list_events(
        self, workspace_id: str, session_id: UUID, *, after: int = -1, limit: int | None = None
    ) -> Sequence[Event]:
        """The session's events with an offset greater than ``after``, in order."""
        _check_workspace(workspace_id)
        if limit is not None and limit < 0:
            raise InvalidData(f"limit must not be negative, got {limit}")
        query = (
            self._events_query(workspace_id, session_id)
            .where(t.event.c.offset > after)
            .order_by(t.event.c.offset)
        )
        if limit is not None:
            query = query.limit(limit)
        async with self._read() as conn:
            rows = (await conn.execute(query)).all()
            if not rows:
                await self._session_row(conn, workspace_id, session_id)  # NotFound if not ours
        return [_event(row) for row in rows]

    async def find_message(
        self, workspace_id: str, session_id: UUID, idempotency_key: str
    ) -> Event | None:
        """The customer message recorded with this idempotency key, if any."""
        _check_workspace(workspace_id)
        if not _storable(idempotency_key):
            return None
        query = self._keyed_event_query(workspace_id, session_id, idempotency_key)
        async with self._read() as conn:
            row = (await conn.execute(query)).first()
            if row is None:
                await self._session_row(conn, workspace_id, session_id)
        return _event(row) if row is not None else None

    async def get_variables(self, workspace_id: str, session_id: UUID) -> Sequence[Variable]:
        """Definitions, then the customer's values, then the session's (later ones win)."""
        _check_workspace(workspace_id)
        async with self._read() as conn:
            rows = (
                await conn.execute(_VARIABLES_OF_SESSION, {"sid": session_id, "ws": workspace_id})
            ).all()
        if not rows:
            raise no_session(session_id, workspace_id)
        return _merged_variables(rows)

    async def read_turn(
        self, workspace_id: str, session_id: UUID, *, idempotency_key: str | None = None
    ) -> TurnRead:
        """The session, its agent's version and its variables in one statement (and the
        keyed message in a second one, when a key is given)."""
        _check_workspace(workspace_id)
        async with self._read() as conn:
            rows = (await conn.execute(_TURN_READ, {"sid": session_id, "ws": workspace_id})).all()
            if not rows:
                raise no_session(session_id, workspace_id)
            message = None
            if idempotency_key is not None and _storable(idempotency_key):
                query = self._keyed_event_query(workspace_id, session_id, idempotency_key)
                found = (await conn.execute(query)).first()
                message = _event(found) if found is not None else None
        first = rows[0]
        return TurnRead(_session(first), int(first.agent_version), _merged_variables(rows), message)

    # ------------------------------------------------------------------ waiting

    async def wait_for_events(
        self, workspace_id: str, session_id: UUID, *, after: int, timeout: float
    ) -> Sequence[Event]:
        """Events after ``after``; waits up to ``timeout`` seconds for the first one."""
        _check_workspace(workspace_id)
        self._check_open()  # a closed store refuses before it listens
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        async with self._notifier.watch(session_id, after) as woken:
            while True:
                events = await self.list_events(workspace_id, session_id, after=after)
                left = deadline - loop.time()
                if events or left <= 0:
                    return events
                await woken(left)
