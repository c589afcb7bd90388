"""The SQL store's turns on a SQLite file: read and committed through the standard
library's ``sqlite3``, each in one call into a thread of its own (:mod:`._sqlite_thread`).

The port's behaviour is the same as through SQLAlchemy (:mod:`._turns`, which still
serves PostgreSQL and in-memory SQLite databases): the same checks, the same errors in
the same order, the same rows. What differs is how the statements run:

- :meth:`read_turn` (and :meth:`get_session`) is one call into the reader's thread:
  ``BEGIN`` (deferred: a read transaction, so that the session and its variables come
  from one snapshot), the session with its version and its agent's version, its
  variables, the keyed message when there is a key, ``COMMIT``. WAL readers take no
  lock that a writer waits for.
- :meth:`record_turn` is one call into the writer's thread, which runs the commit
  synchronously in a ``BEGIN IMMEDIATE`` transaction (possibly with other turns
  queued meanwhile, each in a savepoint: see :mod:`._sqlite_thread`): the session's
  ``UPDATE ... RETURNING`` (which also checks that every journey and state the turn
  names is the agent's), the version's compare-and-set, the events and their keys
  (``executemany``), the variables (an upsert per scope) and the usage row.

The statements are SQL text written for SQLite (:mod:`._sqlite_statements`), prepared
once by ``sqlite3``'s statement cache. Values cross in the forms SQLAlchemy gives them
(its type processors, taken from the store's engine, turn UUIDs, JSON, times and
booleans into what the columns hold and back), so rows written here and rows written
through the engine cannot be told apart. Parameters are made and rows become models
on the event loop; the threads only run SQL, so the write lock is held for the
statements alone.

A database in memory (``sqlite://``) is one connection SQLAlchemy keeps (its
``StaticPool``): the store leaves it to the engine.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, NoReturn, TypeVar
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncEngine

from parlant_runtime.model import Event, Session, VariableScope
from parlant_runtime.storage.checks import check_turn, parse_usage_key
from parlant_runtime.storage.port import (
    CommittedTurn,
    InvalidData,
    StorageError,
    TurnCommit,
    TurnRead,
)
from parlant_runtime.storage.sql._core import _Retry
from parlant_runtime.storage.sql._driver_load import CompiledLoad, in_sqlite_thread
from parlant_runtime.storage.sql._refusals import (
    duplicate_message,
    foreign_position,
    no_customer,
    no_session,
    offset_taken,
    stale_version,
)
from parlant_runtime.storage.sql._sqlite_statements import (
    _AGENT_AT,
    _BUMP,
    _COUNT_AT,
    _CUSTOMER_AT,
    _FIRST,
    _INSERT_EVENT,
    _INSERT_KEY,
    _INSERT_USAGE,
    _KEY_OFFSET,
    _MESSAGE_OF,
    _SESSION_OF,
    _UPSERT_CUSTOMER_VARIABLE,
    _UPSERT_SESSION_VARIABLE,
    _VARIABLES_OF,
    _VERSION_NOW,
    _VERSION_OF_STATE,
    _Codecs,
    _EventRow,
    _random_ids,
    _row,
    _SessionRow,
    _update,
    _UpdatedRow,
    _VariableRow,
)
from parlant_runtime.storage.sql._sqlite_thread import SqliteThread, connect
from parlant_runtime.storage.sql._statements import (
    _ENDED,
    _MESSAGES,
    _check_workspace,
    _event,
    _merged_variables,
    _session,
    _storable,
    _stored_content,
)
from parlant_runtime.storage.sql._turns import _Turns
from parlant_runtime.storage.sql.agents import StoredRows

T = TypeVar("T")


class _CannotOpen(_Retry):
    """The connection could not be opened (no such folder, no permission): tried again."""


def _opener(engine: AsyncEngine) -> Callable[[], sqlite3.Connection] | None:
    """How to open the file of ``engine`` as the engine does; ``None`` for a database in
    memory (only the engine's one connection sees it)."""
    args, options = engine.dialect.create_connect_args(engine.url)
    database = str(args[0]) if args else ""
    if database in ("", ":memory:") or "mode=memory" in database:
        return None
    uri = bool(options.get("uri", False))

    def open_() -> sqlite3.Connection:
        try:
            return connect(database, uri=uri)
        except sqlite3.Error as exc:
            raise _CannotOpen(str(exc)) from exc

    return open_


class _SqliteTurns(_Turns):
    """Reads and commits of turns on a SQLite file (see the module docstring)."""

    def __init__(
        self, engine: AsyncEngine, *, writer: AsyncEngine | None = None, poll_interval: float = 0.05
    ) -> None:
        super().__init__(engine, writer=writer, poll_interval=poll_interval)
        self._sqlite_opener = _opener(engine) if self.dialect == "sqlite" else None
        self._sqlite_codecs = _Codecs(engine) if self._sqlite_opener is not None else None
        self._sqlite_reader: SqliteThread | None = None
        self._sqlite_writer: SqliteThread | None = None
        self._sqlite_load: CompiledLoad | None = None  # the load's statements, compiled once

    def _threads(self) -> tuple[SqliteThread, SqliteThread, _Codecs]:
        """The reader and the writer, started at first use (on a SQLite file only)."""
        assert self._sqlite_opener is not None
        assert self._sqlite_codecs is not None
        if self._sqlite_writer is None or self._sqlite_reader is None:
            self._check_open()
            self._sqlite_reader = SqliteThread(
                self._sqlite_opener, name="parlant-sqlite-reader", group=False
            )
            self._sqlite_writer = SqliteThread(self._sqlite_opener, name="parlant-sqlite-writer")
        return self._sqlite_reader, self._sqlite_writer, self._sqlite_codecs

    async def _in_thread(self, run: Callable[[], Awaitable[T]], *, what: str = "write") -> T:
        """``run()`` (one call into a thread), with ``_transact``'s translation of errors: a
        connection that cannot be opened is tried again (then :func:`_unavailable`), a
        constraint the work did not explain is :class:`InvalidData`, any other driver
        error :class:`StorageError`; the library's own errors pass through."""

        async def attempt() -> T:
            try:
                return await run()
            except sqlite3.IntegrityError as exc:
                raise InvalidData(f"the {what} breaks a database constraint: {exc}") from exc
            except sqlite3.Error as exc:
                raise StorageError(f"the database refused the {what}: {exc}") from exc

        return await self._retried(what, attempt)

    # ------------------------------------------------------------------ reads

    async def get_session(self, workspace_id: str, session_id: UUID) -> Session:
        """The session as stored."""
        if self._sqlite_opener is None:
            return await super().get_session(workspace_id, session_id)
        _check_workspace(workspace_id)
        reader, _, codecs = self._threads()
        key = (codecs.u(session_id), workspace_id)

        def work(connection: sqlite3.Connection) -> Any:
            return connection.execute(_SESSION_OF, key).fetchone()

        raw = await self._in_thread(lambda: reader.call(work), what="read")
        if raw is None:
            raise no_session(session_id, workspace_id)
        return _session(self._sqlite_session(codecs, raw))

    @staticmethod
    def _sqlite_session(codecs: _Codecs, raw: Sequence[Any]) -> Any:
        values = codecs.rows(raw, codecs.session)
        values += raw[len(values) :]  # the version and the agent's, plain integers
        return _row(_SessionRow, values)

    async def read_turn(
        self, workspace_id: str, session_id: UUID, *, idempotency_key: str | None = None
    ) -> TurnRead:
        """The session, its agent's version, its variables and the keyed message, from
        one snapshot, in one call into the reader's thread."""
        if self._sqlite_opener is None:
            return await super().read_turn(
                workspace_id, session_id, idempotency_key=idempotency_key
            )
        _check_workspace(workspace_id)
        reader, _, codecs = self._threads()
        sid = codecs.u(session_id)
        key = idempotency_key
        if key is not None and not _storable(key):
            key = None  # no store can hold it: nothing is recorded with it

        def work(connection: sqlite3.Connection) -> tuple[Any, list[Any], Any]:
            connection.execute("BEGIN")
            try:
                found = connection.execute(_SESSION_OF, (sid, workspace_id)).fetchone()
                if found is None:
                    return None, [], None
                variables = connection.execute(
                    _VARIABLES_OF,
                    {"agent": found[_AGENT_AT], "sid": sid, "customer": found[_CUSTOMER_AT]},
                ).fetchall()
                message = None
                if key is not None:
                    message = connection.execute(_MESSAGE_OF, (sid, key)).fetchone()
                return found, variables, message
            finally:
                connection.execute("COMMIT")

        found, variables, message = await self._in_thread(lambda: reader.call(work), what="read")
        if found is None:
            raise no_session(session_id, workspace_id)
        row = self._sqlite_session(codecs, found)
        merged = _merged_variables(
            [_row(_VariableRow, codecs.rows(raw, codecs.variable)) for raw in variables]
        )
        event = None
        if message is not None:
            values = codecs.rows(message, codecs.event)
            event = _event(_row(_EventRow, [*values, message[-1]]))
        return TurnRead(_session(row), int(row.agent_version), merged, event)

    async def _load_stored(self, ws: str, agent_id: UUID) -> StoredRows:
        """An agent's load in one call into the reader's thread, in one read transaction
        (see :mod:`._driver_load`)."""
        if self._sqlite_opener is None:
            return await super()._load_stored(ws, agent_id)
        reader, _, _ = self._threads()
        if self._sqlite_load is None:
            self._sqlite_load = CompiledLoad(self.engine.dialect)
        load = self._sqlite_load
        work = in_sqlite_thread(load.statements(ws, agent_id))
        raw = await self._in_thread(lambda: reader.call(work), what="read")
        return load.stored(ws, agent_id, raw)

    # ------------------------------------------------------------------ the commit

    async def record_turn(self, workspace_id: str, turn: TurnCommit) -> CommittedTurn:
        """Write one turn atomically, in one call into the writer's thread; the session as
        it now is and the events as stored."""
        if self._sqlite_opener is None:
            return await super().record_turn(workspace_id, turn)
        _check_workspace(workspace_id)
        check_turn(turn)
        _, writer, codecs = self._threads()
        commit = _Commit(codecs, workspace_id, turn)
        raw, version = await self._in_thread(lambda: writer.transact(commit.run))
        self._notifier.local_commit(turn.session_id)
        row = _row(_UpdatedRow, codecs.rows(raw, codecs.session))
        return CommittedTurn(_session(row, version=version), commit.events())

    # ------------------------------------------------------------------ other writes

    def _writing(self) -> contextlib.AbstractAsyncContextManager[object]:
        """A write through the engine (a publish, a session's creation, a roll-up) waits
        for the writer thread's transaction under way and holds the thread until it is
        done: this process's writes take the file's write lock one after another, in
        order (see :mod:`._sqlite_thread`)."""
        writer = self._sqlite_writer
        if writer is None or writer.closed:
            return super()._writing()
        return writer.paused()

    async def close(self) -> None:
        """Stop listening, release every connection and end the SQLite threads."""
        await super().close()
        for thread in (self._sqlite_writer, self._sqlite_reader):
            if thread is not None:
                await thread.close()


class _Commit:
    """One turn's commit: its parameters, made on the event loop, and :meth:`run`, the
    statements, run in the writer's thread (in its transaction)."""

    def __init__(self, codecs: _Codecs, workspace_id: str, turn: TurnCommit) -> None:
        self.codecs, self.turn, self.workspace_id = codecs, turn, workspace_id
        self.sid = codecs.u(turn.session_id)
        self.update, self.parameters = self._session_update()
        self.event_rows, self.event_values = self._events()
        self.keys = [
            (index, e.idempotency_key)
            for index, e in enumerate(turn.events)
            if e.idempotency_key is not None
        ]
        self.session_values, self.customer_values = self._variables()
        self.usage: str | None = None
        if turn.usage:
            deltas = {}
            for key, delta in turn.usage.items():
                entity, entity_id, counter = parse_usage_key(key)
                deltas[f"{entity}:{entity_id}:{counter}"] = delta
            self.usage = codecs.json(deltas)

    def _session_update(self) -> tuple[str, dict[str, Any]]:
        """The session's update for this turn's shape, and its parameters."""
        turn, u, json = self.turn, self.codecs.u, self.codecs.json
        journeys = {e.journey_id for e in turn.events if e.journey_id is not None}
        if turn.current_journey_id is not None:
            journeys.add(turn.current_journey_id)
        states = {e.state_id for e in turn.events if e.state_id is not None}
        sql = _update(
            (
                turn.mode is not None,
                turn.metadata is not None,
                turn.status is not None,
                turn.status in _ENDED,
                turn.current_state_id is not None,
                bool(journeys),
                bool(states),
            )
        )
        parameters: dict[str, Any] = {
            "sid": self.sid,
            "ws": self.workspace_id,
            "new_events": len(turn.events),
            "new_messages": sum(1 for e in turn.events if e.event_type.value in _MESSAGES),
            "journey": u(turn.current_journey_id),
            "state": u(turn.current_state_id),
        }
        if turn.mode is not None:
            parameters["new_mode"] = turn.mode.value
        if turn.metadata is not None:
            parameters["new_metadata"] = json(turn.metadata)
        if turn.status is not None:
            parameters["new_status"] = turn.status.value
        if journeys:
            parameters["journeys"] = json(sorted(u(j) for j in journeys))
            parameters["journey_count"] = len(journeys)
        if states:
            parameters["states"] = json(sorted(u(s) for s in states))
            parameters["state_count"] = len(states)
        return sql, parameters

    def _events(self) -> tuple[list[list[Any]], list[list[Any]]]:
        """The events' rows as stored, but for their offsets (from the updated session
        row), and their values as a read gives them back (JSON decoded from the text)."""
        binds, load = self.codecs.event_binds, self.codecs.json_result
        now = datetime.now(UTC)
        at = now.isoformat()
        # the time as the column's default (CURRENT_TIMESTAMP) writes it, and reads back
        stored_at = now.replace(microsecond=0, tzinfo=None)
        created = stored_at.strftime("%Y-%m-%d %H:%M:%S")
        rows, read = [], []
        ids = _random_ids(len(self.turn.events))
        for event, event_id in zip(self.turn.events, ids, strict=True):
            values = [
                event_id,
                self.turn.session_id,
                0,
                event.event_type.value,
                _stored_content(event.event_type.value, event.content, at),
                event.metadata,
                event.tool_call_id,
                event.journey_id,
                event.state_id,
                None,
            ]
            row = [
                value if bind is None or value is None else bind(value)
                for value, bind in zip(values, binds, strict=True)
            ]
            row[-1] = created
            rows.append(row)
            values[4:6] = (load(row[4]), load(row[5]))
            values[-1] = stored_at
            read.append(values)
        return rows, read

    def _variables(self) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        """The session-scoped and the customer-scoped values, in key order: two turns of
        one customer's sessions write its rows in one order."""
        value, boolean = self.codecs.variable_value, self.codecs.boolean
        session: list[tuple[Any, ...]] = []
        customer: list[tuple[Any, ...]] = []
        for change in sorted(self.turn.variables, key=lambda change: change.key):
            variable = (
                change.key,
                value(change.value) if value else change.value,
                change.value_type.value,
                boolean(change.is_private) if boolean else change.is_private,
            )
            if change.scope is VariableScope.CUSTOMER:
                customer.append(variable)
            else:
                session.append((change.scope.value, *variable))
        return session, customer

    def run(self, connection: sqlite3.Connection) -> tuple[Any, int]:
        """The statements (in the writer's transaction): the updated session row and the
        new version; the library's error for a turn the database refuses."""
        turn, sid = self.turn, self.sid
        row = connection.execute(self.update, self.parameters).fetchone()
        if row is None:
            current = connection.execute(_VERSION_NOW, (sid, self.workspace_id)).fetchone()
            if current is None:
                raise no_session(turn.session_id, self.workspace_id)
            if current[0] != turn.expected_version:
                raise stale_version(turn, current[0])
            raise foreign_position(turn)
        version = self._bump(connection)
        customer = row[_CUSTOMER_AT]
        if customer is None and self.customer_values:
            raise no_customer(turn)
        base = row[_COUNT_AT] - len(self.event_rows)
        try:
            self._write(connection, row, version, base)
        except sqlite3.IntegrityError as exc:
            self._explain(connection, exc, base)
        return row, version

    def _bump(self, connection: sqlite3.Connection) -> int:
        """The compare-and-set of the session's version (see :meth:`_Turns._bump_version`)."""
        turn, sid = self.turn, self.sid
        found = connection.execute(_BUMP, (sid, turn.expected_version)).fetchone()
        if found is None and turn.expected_version == 0:
            found = connection.execute(_FIRST, (sid,)).fetchone()
        if found is None:
            current = connection.execute(_VERSION_OF_STATE, (sid,)).fetchone()
            raise stale_version(turn, current[0] if current else 0)
        return int(found[0])

    def _write(self, connection: sqlite3.Connection, row: Any, version: int, base: int) -> None:
        """Everything after the compare-and-set: the events at offsets ``base ..`` and
        their keys, the variables, the usage deltas."""
        if self.event_rows:
            for index, values in enumerate(self.event_rows):
                values[2] = base + index
            connection.executemany(_INSERT_EVENT, self.event_rows)
            if self.keys:
                connection.executemany(
                    _INSERT_KEY, [(self.sid, key, base + index) for index, key in self.keys]
                )
        self._write_variables(connection, row)
        if self.usage is not None:
            connection.execute(_INSERT_USAGE, (self.sid, version, self.workspace_id, self.usage))

    def _write_variables(self, connection: sqlite3.Connection, row: Any) -> None:
        """The variable upserts, one ``executemany`` per scope."""
        agent, u = row[_AGENT_AT], self.codecs.u
        if self.session_values:
            ids = _random_ids(len(self.session_values))
            connection.executemany(
                _UPSERT_SESSION_VARIABLE,
                [
                    (u(new_id), agent, self.sid, key, scope, *rest)
                    for new_id, (scope, key, *rest) in zip(ids, self.session_values, strict=True)
                ],
            )
        if self.customer_values:
            customer = row[_CUSTOMER_AT]
            ids = _random_ids(len(self.customer_values))
            connection.executemany(
                _UPSERT_CUSTOMER_VARIABLE,
                [
                    (u(new_id), agent, customer, *values)
                    for new_id, values in zip(ids, self.customer_values, strict=True)
                ],
            )

    def _explain(
        self, connection: sqlite3.Connection, exc: sqlite3.IntegrityError, base: int
    ) -> NoReturn:
        """The library's error for a constraint the turn broke (as
        :meth:`_Turns._explain_integrity_error`, asked inside the transaction)."""
        turn = self.turn
        if "offset" in str(exc):
            raise offset_taken(turn) from exc
        for _, key in self.keys:
            found = connection.execute(_KEY_OFFSET, (self.sid, key, base)).fetchone()
            if found is not None:
                raise duplicate_message(key, int(found[0])) from exc
        raise InvalidData(f"the turn breaks a database constraint: {exc}") from exc

    def events(self) -> list[Event]:
        """The turn's events as stored (after :meth:`run`): the stored forms read back
        as a read would read them."""
        keys = dict(self.keys)
        events = []
        for index, (values, row) in enumerate(zip(self.event_values, self.event_rows, strict=True)):
            values[2] = row[2]  # the offset
            events.append(_event(_row(_EventRow, [*values, None]), idempotency_key=keys.get(index)))
        return events
