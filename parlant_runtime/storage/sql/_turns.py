"""The SQL store's turns: recording a turn in one transaction (the compare-and-set
of the session, its events, variables and usage deltas).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, NoReturn
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from parlant_runtime.model import (
    Event,
    Session,
    VariableScope,
)
from parlant_runtime.storage.checks import (
    check_turn,
)
from parlant_runtime.storage.port import (
    CommittedTurn,
    InvalidData,
    TurnCommit,
)
from parlant_runtime.storage.sql import schema as t
from parlant_runtime.storage.sql import sharding
from parlant_runtime.storage.sql._refusals import (
    duplicate_message,
    foreign_position,
    no_customer,
    offset_taken,
    stale_version,
)
from parlant_runtime.storage.sql._sessions import _Sessions
from parlant_runtime.storage.sql._statements import (
    _CUSTOMER,
    _ENDED,
    _INSERT_EVENTS,
    _INSERT_KEYS,
    _MESSAGES,
    _SESSION_VALUES,
    _STATE,
    _check_workspace,
    _event,
    _session,
    _session_update,
    _stored_content,
    _TurnShape,
)


class _Turns(_Sessions):
    """Recording turns in :class:`~.store.SqlStore` (finds duplicates with the session reads)."""

    # ------------------------------------------------------------------ turns

    async def commit_turn(self, workspace_id: str, turn: TurnCommit) -> Session:
        """Write one turn atomically (see :meth:`Store.commit_turn`)."""
        return (await self.record_turn(workspace_id, turn)).session

    async def record_turn(self, workspace_id: str, turn: TurnCommit) -> CommittedTurn:
        """Write one turn atomically; the session as it now is and the events as stored
        (returned by the statements that wrote them)."""
        _check_workspace(workspace_id)
        check_turn(turn)
        # ids chosen once: a commit whose outcome is unknown is looked up by them
        event_ids = [uuid.uuid4() for _ in turn.events]

        async def work(conn: AsyncConnection) -> tuple[Session, list[Event]]:
            row = await self._advance_session(conn, workspace_id, turn)
            version = await self._bump_version(conn, workspace_id, turn)
            if row.customer_id is None and any(
                change.scope is VariableScope.CUSTOMER for change in turn.variables
            ):  # before the events: a duplicate key must not hide this error
                raise no_customer(turn)
            events = await self._append_events(conn, turn, row.event_count, event_ids)
            await self._write_variables(conn, row, turn)
            await self._record_usage(conn, workspace_id, turn.session_id, version, turn.usage)
            return _session(row, version=version), events

        async def explain(exc: IntegrityError) -> NoReturn:
            await self._explain_integrity_error(workspace_id, turn, exc)

        session, events = await self._transact(
            work, committed=lambda: self._landed(turn, event_ids), explain=explain
        )
        self._notifier.local_commit(turn.session_id)
        return CommittedTurn(session, events)

    async def _landed(self, turn: TurnCommit, event_ids: list[UUID]) -> bool:
        """Whether the turn, whose events were given ``event_ids``, landed: its first event
        is in the log (a turn without events: the session's version moved past the one it
        was computed at)."""
        async with self._read() as conn:
            if event_ids:
                found = await conn.scalar(
                    sa.select(t.event.c.id).where(t.event.c.id == event_ids[0])
                )
                return found is not None
            version = await conn.scalar(
                sa.select(_STATE.c.version).where(_STATE.c.session_id == turn.session_id)
            )
            return version is not None and version > turn.expected_version

    async def _append_events(
        self, conn: AsyncConnection, turn: TurnCommit, event_count: int, ids: list[UUID]
    ) -> list[Event]:
        """The turn's events at offsets ``event_count - n ..``, returned as stored; their
        idempotency keys in the runtime's own table."""
        if not turn.events:
            return []
        base = event_count - len(turn.events)
        at = datetime.now(UTC).isoformat()
        rows = (
            await conn.execute(
                _INSERT_EVENTS,
                [
                    {
                        "id": ids[index],
                        "session_id": turn.session_id,
                        "offset": base + index,
                        "event_type": event.event_type.value,
                        "content": _stored_content(event.event_type.value, event.content, at),
                        "metadata": event.metadata,
                        "tool_call_id": event.tool_call_id,
                        "journey_id": event.journey_id,
                        "state_id": event.state_id,
                    }
                    for index, event in enumerate(turn.events)
                ],
            )
        ).all()
        keys = [
            {
                "session_id": turn.session_id,
                "idempotency_key": event.idempotency_key,
                "offset": base + index,
            }
            for index, event in enumerate(turn.events)
            if event.idempotency_key is not None
        ]
        if keys:
            await conn.execute(_INSERT_KEYS, keys)
        return [
            _event(row, idempotency_key=event.idempotency_key)
            for row, event in zip(rows, turn.events, strict=True)
        ]

    async def _bump_version(self, conn: AsyncConnection, ws: str, turn: TurnCommit) -> int:
        """The compare-and-set: the session's version from the expected one to the next
        (a session without a state row is at 0); :class:`ConcurrentUpdate` when it moved."""
        if self._bump is None:
            first = self._insert(_STATE).values(session_id=sa.bindparam("sid"), version=1)
            self._bump = (
                sa.update(_STATE)
                .where(
                    _STATE.c.session_id == sa.bindparam("sid"),
                    _STATE.c.version == sa.bindparam("expected"),
                )
                .values(version=_STATE.c.version + 1)
                .returning(_STATE.c.version),
                first.on_conflict_do_nothing(index_elements=["session_id"]).returning(
                    _STATE.c.version
                ),
            )
        bump, first = self._bump
        parameters = {"sid": turn.session_id, "expected": turn.expected_version}
        version = await conn.scalar(bump, parameters)
        if version is None and turn.expected_version == 0:
            # no row: a session at version 0 (the platform created it, or no commit yet)
            version = await conn.scalar(first, {"sid": turn.session_id})
        if version is None:
            current = await conn.scalar(
                sa.select(_STATE.c.version).where(_STATE.c.session_id == turn.session_id)
            )
            raise stale_version(turn, current or 0)
        return int(version)

    async def _advance_session(
        self, conn: AsyncConnection, ws: str, turn: TurnCommit
    ) -> sa.Row[Any]:
        journeys = {e.journey_id for e in turn.events if e.journey_id is not None}
        if turn.current_journey_id is not None:
            journeys.add(turn.current_journey_id)
        states = {e.state_id for e in turn.events if e.state_id is not None}
        ends = turn.status in _ENDED
        citus = await self._on_citus(conn)  # see .sharding: lock and notify apart
        if citus:  # the agent's lock on the coordinator, before the session's row
            await self._session_agents.lock_shared(conn, ws, turn.session_id)
        shape = _TurnShape(
            mode=turn.mode is not None,
            metadata=turn.metadata is not None,
            status=turn.status is not None,
            ends=ends,
            state=turn.current_state_id is not None,
            journeys=bool(journeys),
            states=bool(states),
            notify=bool(turn.events) and self.dialect == "postgresql" and not citus,
            locks=self.dialect == "postgresql" and not citus,
        )
        statement = self._updates.get(shape)
        if statement is None:
            statement = self._updates[shape] = _session_update(shape)
        messages = sum(1 for event in turn.events if event.event_type.value in _MESSAGES)
        parameters: dict[str, Any] = {
            "sid": turn.session_id,
            "ws": ws,
            "new_events": len(turn.events),
            "new_messages": messages,
            "journey": turn.current_journey_id,
            "state": turn.current_state_id,
        }
        if turn.mode is not None:
            parameters["new_mode"] = turn.mode.value
        if turn.metadata is not None:
            parameters["new_metadata"] = turn.metadata
        if turn.status is not None:
            parameters["new_status"] = turn.status.value
        if journeys:
            parameters["journeys"] = sorted(journeys)
            parameters["journey_count"] = len(journeys)
        if states:
            parameters["states"] = sorted(states)
            parameters["state_count"] = len(states)
        row = (await conn.execute(statement, parameters)).first()
        if row is None:
            current = await self._session_row(conn, ws, turn.session_id)  # NotFound if gone
            if current.version != turn.expected_version:
                raise stale_version(turn, current.version)
            raise foreign_position(turn)
        if citus:
            self._session_agents.remember(row.id, row.agent_id)
            if turn.events:  # from the coordinator, where the listeners are
                await sharding.notify_events(conn, [(row.id, row.event_count - 1)])
        return row

    async def _write_variables(
        self, conn: AsyncConnection, session: sa.Row[Any], turn: TurnCommit
    ) -> None:
        # a session value lives in the platform's parlant_variable (where the host reads
        # it), except on Citus: there beside its session, in session_variable (0006)
        sharded = await self._on_citus(conn)
        by_scope: dict[VariableScope, list[dict[str, Any]]] = {}
        for change in turn.variables:
            row = {
                "id": uuid.uuid4(),
                "key": change.key,
                "value": change.value,
                "value_type": change.value_type.value,
                "is_private": change.is_private,
            }
            if change.scope is VariableScope.CUSTOMER:  # commit_turn checked it has a customer
                row["agent_id"] = session.agent_id
                row["customer_id"] = session.customer_id
            else:
                row["session_id"] = session.id
                if not sharded:  # the platform's table (the agent is the session's)
                    row["agent_id"] = session.agent_id
                    row["scope"] = change.scope.value
            by_scope.setdefault(change.scope, []).append(row)
        for scope, rows in by_scope.items():
            # in key order: two turns of one customer's sessions lock its rows in one order
            rows.sort(key=lambda row: str(row["key"]))
            key = (scope, sharded and scope is not VariableScope.CUSTOMER)
            statement = self._upserts.get(key)
            if statement is None:
                statement = self._upserts[key] = self._variable_upsert(*key)
            await conn.execute(statement, rows)

    def _variable_upsert(self, scope: VariableScope, sharded: bool) -> Any:
        """``INSERT ... ON CONFLICT DO UPDATE`` of one scope's variable rows (built once):
        a session's go to ``session_variable`` when ``sharded`` (Citus), otherwise to
        the platform's ``parlant_variable``."""
        if scope is VariableScope.CUSTOMER:
            table = _CUSTOMER
            conflict: dict[str, Any] = {"index_elements": ["agent_id", "customer_id", "key"]}
        else:
            table = _SESSION_VALUES if sharded else t.variable
            conflict = {"index_elements": ["session_id", "key"]}
        statement = self._insert(table)
        return statement.on_conflict_do_update(
            **conflict,
            set_={
                "value": statement.excluded.value,
                "value_type": statement.excluded.value_type,
                "is_private": statement.excluded.is_private,
                "updated_at": statement.excluded.updated_at,  # Citus: no function here
            },
        )

    async def _explain_integrity_error(
        self, ws: str, turn: TurnCommit, exc: IntegrityError
    ) -> NoReturn:
        if "offset" in str(exc.orig):  # nothing was written
            raise offset_taken(turn) from exc
        for event in turn.events:
            if event.idempotency_key is not None:
                found = await self.find_message(ws, turn.session_id, event.idempotency_key)
                if found is not None:
                    raise duplicate_message(event.idempotency_key, found.offset) from exc
        raise InvalidData(f"the turn breaks a database constraint: {exc.orig}") from exc
