"""The SQL store's turns on PostgreSQL: read and recorded with the least client work.

A persisted turn visits the store twice (:meth:`read_turn`, :meth:`record_turn`). On
PostgreSQL both go to the driver (asyncpg) directly, on a connection of the store's
pool, with its prepared-statement cache and without SQLAlchemy's statement machinery
in between (measured in ``benchmarks/bench_pg_paths.py``; ``docs/decisions.md``):

- the read is :data:`._statements._TURN_READ`, compiled once per store, in autocommit:
  one round trip (two with an idempotency key);
- the commit is one data-modifying statement (:mod:`._pg_statements`) in autocommit,
  which PostgreSQL runs as a transaction of its own: one round trip, no ``BEGIN`` or
  ``COMMIT``. Nothing is written when its compare-and-set finds another version.

On Citus the agent's lock and the ``NOTIFY`` are statements of their own on the
coordinator and the variables are written to reference tables: there the statement
runs in a transaction with them, through :meth:`_SqlCore._transact` as every other
write (see :mod:`.sharding`).

The driver's own errors get here what ``_transact`` gives SQLAlchemy's: a deadlock or
serialization failure, a worker out of reach and a connection that could not be had
are retried (:mod:`.faults`); a constraint violation is explained (an offset taken:
:class:`ConcurrentUpdate`, a key recorded: :class:`DuplicateMessage`); any other error
is :class:`StorageError`. A connection that dies under the statement leaves its outcome
unknown: the store asks whether the turn landed (its first event is in the log) before
it runs it again, and a run that then finds its version taken or its key recorded asks
once more, so a turn that landed unseen is reported as landed, never recorded twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NoReturn, cast
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from parlant_runtime.model import Event, Session
from parlant_runtime.storage.checks import check_turn
from parlant_runtime.storage.port import (
    CommittedTurn,
    ConcurrentUpdate,
    DuplicateMessage,
    StorageError,
    TurnCommit,
    TurnRead,
)
from parlant_runtime.storage.sql import faults, sharding
from parlant_runtime.storage.sql import schema as t
from parlant_runtime.storage.sql._core import _kind, _log, _Retry, _unavailable
from parlant_runtime.storage.sql._driver_load import CompiledLoad, on_asyncpg
from parlant_runtime.storage.sql._held import HeldConnections
from parlant_runtime.storage.sql._pg_statements import (
    EVENT_STORED,
    NOTIFY,
    SESSION_COLUMNS,
    Shape,
    diagnosis,
    turn_arguments,
    turn_statement,
)
from parlant_runtime.storage.sql._refusals import (
    changed_meanwhile,
    foreign_position,
    no_customer,
    no_session,
    stale_version,
)
from parlant_runtime.storage.sql._statements import (
    _EVENT,
    _SESSION,
    _STATE,
    _TURN_READ,
    _as_read,
    _check_workspace,
    _event,
    _merged_variables,
    _storable,
)
from parlant_runtime.storage.sql._turns import _Turns
from parlant_runtime.storage.sql.agents import StoredRows

__all__: list[str] = []

_FIRST_STATE = (
    postgresql.insert(_STATE)
    .values(session_id=sa.bindparam("sid"), version=0)
    .on_conflict_do_nothing(index_elements=["session_id"])
)
"""Citus: the version row of a session that has none (at 0), for the compare-and-set."""
_SETTLE = 5.0
"""Seconds a cancelled statement is given to be settled by the server (see :func:`_fetch`)."""

# where the session's and the events' fields are in a row of the turn's statement
_SESSION_PICKS = _SESSION.picks((*SESSION_COLUMNS, "version"))
_STORED_AT = len(SESSION_COLUMNS) + 1  # then the arrays of EVENT_STORED, in that order
assert EVENT_STORED == ("content", "metadata", "created_at")


class _Reads:
    """The reads of a turn as the driver takes them: text, parameter names, and the
    values of the parameters SQLAlchemy baked in (literals)."""

    def __init__(self, statement: Any, dialect: sa.Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        self.sql = str(compiled)
        self.names = tuple(compiled.positiontup or ())
        self.defaults = dict(compiled.params)
        self.columns: tuple[str, ...] | None = None
        self.session: tuple[tuple[int, str], ...] = ()

    def arguments(self, **given: Any) -> list[Any]:
        return [given[name] if name in given else self.defaults[name] for name in self.names]

    def located(self, record: Any) -> tuple[str, ...]:
        """The result's column names, and where the session's fields are (once)."""
        if self.columns is None:
            self.columns = tuple(record.keys())
            self.session = _SESSION.picks(self.columns)
        return self.columns


class _PgTurns(_Turns):
    """:meth:`read_turn` and :meth:`record_turn` of :class:`~.store.SqlStore` on
    PostgreSQL (see the module docstring); other databases take the generic path."""

    _pg_reads: tuple[_Reads, _Reads] | None = None
    _pg_load: CompiledLoad | None = None  # the load's statements, compiled once
    _held_connections: HeldConnections | None = None
    _notifying: set[asyncio.Task[None]] | None = None  # the NOTIFYs sent after their calls

    def _on_asyncpg(self) -> bool:
        """Whether this path applies: PostgreSQL through asyncpg (the library's driver; a
        store built on an engine of another driver takes the generic path)."""
        return self.dialect == "postgresql" and self._writer.dialect.driver == "asyncpg"

    def _held(self) -> HeldConnections:
        """The connections this path keeps between calls (see :mod:`._held`)."""
        if self._held_connections is None:
            self._held_connections = HeldConnections(self._writer)
        return self._held_connections

    async def close(self) -> None:
        """Send the pending ``NOTIFY``s, give the kept connections back, then close as
        every store does."""
        if self._notifying:
            await asyncio.gather(*self._notifying, return_exceptions=True)
        if self._held_connections is not None:
            await self._held_connections.release()
        await super().close()

    # ------------------------------------------------------------------ reading a turn

    async def read_turn(
        self, workspace_id: str, session_id: UUID, *, idempotency_key: str | None = None
    ) -> TurnRead:
        """The session, its agent's version and its variables in one statement (and the
        keyed message in a second one, when a key is given)."""
        if not self._on_asyncpg():
            return await super().read_turn(
                workspace_id, session_id, idempotency_key=idempotency_key
            )
        _check_workspace(workspace_id)
        turn_read, by_key = self._reads()
        keyed = idempotency_key is not None and _storable(idempotency_key)

        async def read(driver: Any) -> tuple[list[Any], Any]:
            rows = await _fetch(
                driver, turn_read.sql, turn_read.arguments(sid=session_id, ws=workspace_id)
            )
            found = None
            if rows and keyed:
                arguments = by_key.arguments(sid=session_id, ws=workspace_id, key=idempotency_key)
                found = await driver.fetchrow(by_key.sql, *arguments)
            return rows, found

        rows, found = await self._on_driver(read)
        if not rows:
            raise no_session(session_id, workspace_id)
        first = rows[0]
        columns = turn_read.located(first)
        session = _SESSION.picked(first, turn_read.session)
        message = None
        if found is not None:
            message = _as_read(_EVENT.picked(found, _EVENT.picks(tuple(found.keys()))))
        agent_version = int(first[columns.index("agent_version")])
        return TurnRead(session, agent_version, _merged_variables(rows, columns), message)

    async def _load_stored(self, ws: str, agent_id: UUID) -> StoredRows:
        """An agent's load on the driver, in one read-only transaction of one snapshot
        (see :mod:`._driver_load`)."""
        if not self._on_asyncpg():
            return await super()._load_stored(ws, agent_id)
        if self._pg_load is None:
            self._pg_load = CompiledLoad(self._writer.dialect)
        load = self._pg_load
        calls = load.statements(ws, agent_id)
        raw = await self._on_driver(lambda driver: on_asyncpg(driver, calls, _fetch))
        return load.stored(ws, agent_id, raw)

    def _reads(self) -> tuple[_Reads, _Reads]:
        if self._pg_reads is None:
            dialect = self._writer.dialect
            ws, sid = cast(Any, sa.bindparam("ws")), cast(Any, sa.bindparam("sid", type_=t.UUID))
            by_key = self._keyed_event_query(ws, sid, sa.bindparam("key"))
            self._pg_reads = (_Reads(_TURN_READ, dialect), _Reads(by_key, dialect))
        return self._pg_reads

    async def _on_driver(self, read: Callable[[Any], Awaitable[Any]]) -> Any:
        """``read`` on the driver's connection of a pooled connection (autocommit: no
        transaction is begun); getting the connection is retried as :meth:`_read` does."""
        # every failure to connect is retried (the driver's raw errors too)
        raw = await self._retried("read connection", self._held().take, transient=Exception)
        self._busy += 1
        try:
            return await read(raw.driver_connection)
        except Exception as exc:
            lost = _lost(raw.driver_connection, exc)
            if _sqlstate(exc) is None and not lost:
                raise  # not the database's: a bug, raised as it is
            if not lost and faults.node_unreachable(_dressed(exc)):
                raise _unavailable(_dressed(exc)) from exc
            raise StorageError(f"the database refused the read: {_message(exc)}") from exc
        finally:
            await self._held().give(raw)
            self._busy -= 1

    # ------------------------------------------------------------------ recording a turn

    async def record_turn(self, workspace_id: str, turn: TurnCommit) -> CommittedTurn:
        """Write one turn atomically in one statement; the session as it now is and the
        events as stored (returned by the statement that wrote them)."""
        if not self._on_asyncpg():
            return await super().record_turn(workspace_id, turn)
        _check_workspace(workspace_id)
        check_turn(turn)
        # ids chosen once: a commit whose outcome is unknown is looked up by them
        event_ids = [uuid.uuid4() for _ in turn.events]
        citus = await self._sharded_now()
        dumps = self._writer.dialect._json_serializer or json.dumps
        shape, values = turn_arguments(workspace_id, turn, event_ids, citus=citus, dumps=dumps)
        if citus:
            committed = await self._record_on_citus(workspace_id, turn, shape, values, event_ids)
        else:
            committed = await self._record_at_once(workspace_id, turn, shape, values, event_ids)
        self._notifier.local_commit(turn.session_id)
        return committed

    async def _sharded_now(self) -> bool:
        """Whether Citus shards the tables (asked once)."""
        if self._sharded is None:
            async with self._read() as conn:
                await self._on_citus(conn)
        return bool(self._sharded)

    async def _record_at_once(
        self,
        ws: str,
        turn: TurnCommit,
        shape: Shape,
        values: dict[str, Any],
        event_ids: list[UUID],
    ) -> CommittedTurn:
        """The turn's one statement in autocommit, retried by :meth:`_retried` as
        :meth:`_transact` is (see the module docstring for a connection lost under it)."""
        sql, names = turn_statement(shape)
        arguments = [values[name] for name in names]
        unsure = False  # an attempt's connection died under it: it may have landed

        async def attempt() -> CommittedTurn:
            nonlocal unsure
            try:
                return await self._attempt(ws, turn, (sql, arguments), values, event_ids)
            except _Lost as exc:  # the outcome is unknown: did it land?
                lost = exc.__cause__ or exc
                unsure = True
                if await self._resolve(lambda: self._landed(turn, event_ids), lost):
                    return await self._read_back(ws, turn, event_ids)
                raise _Retry from _dressed(lost, lost=True)
            except (ConcurrentUpdate, DuplicateMessage):
                if unsure and await self._landed(turn, event_ids):
                    return await self._read_back(ws, turn, event_ids)
                raise
            except (StorageError, _Retry):
                raise
            except Exception as exc:
                state = _sqlstate(exc)
                if state is None:
                    raise  # not the database's: a bug, raised as it is
                if state.startswith("23"):  # a constraint: nothing was written
                    if unsure and await self._landed(turn, event_ids):
                        return await self._read_back(ws, turn, event_ids)
                    await self._explain_integrity_error(ws, turn, _integrity(exc, sql))
                dressed = _dressed(exc)
                if faults.conflict(dressed) or faults.node_unreachable(dressed):
                    raise _Retry from dressed
                raise StorageError(f"the database refused the write: {_message(exc)}") from exc

        return await self._retried("write", attempt)

    async def _attempt(
        self,
        ws: str,
        turn: TurnCommit,
        statement: tuple[str, list[Any]],
        values: dict[str, Any],
        event_ids: list[UUID],
    ) -> CommittedTurn:
        """One run of the turn's ``statement`` (text, arguments) on a connection (its
        ``NOTIFY`` follows once the call has returned).

        Raises:
            _Retry: no connection could be had.
            _Lost: the connection died under the statement.
        """
        try:
            raw = await self._held().take()
        except Exception as exc:  # the driver's raw errors too
            raise _Retry from exc
        driver = raw.driver_connection
        given = False  # whether the connection went to the NOTIFY sent after the call
        try:
            rows = await _fetch(driver, *statement)
            if not rows:
                await self._diagnose(_fetchrow(driver), ws, turn, values)
            committed = _committed(rows[0], turn, event_ids)
            if committed.events:
                self._notify_after(raw, committed.events[-1])
                given = True
            return committed
        except StorageError:
            raise
        except Exception as exc:
            if _lost(driver, exc):
                raise _Lost from exc
            raise
        finally:
            if not given:
                await self._held().give(raw)

    def _notify_after(self, raw: Any, last: Event) -> None:
        """Send the ``NOTIFY`` of a committed turn's events on its connection once the
        call has returned (the turn does not wait for it), then give the connection back;
        :meth:`close` waits for it."""
        if self._notifying is None:
            self._notifying = set()
        self._busy += 1
        task = asyncio.get_running_loop().create_task(self._notify_then_give(raw, last))
        self._notifying.add(task)
        task.add_done_callback(self._notifying.discard)

    async def _notify_then_give(self, raw: Any, last: Event) -> None:
        try:
            await _notify(raw.driver_connection, last)
        finally:
            await self._held().give(raw)
            self._busy -= 1

    async def _record_on_citus(
        self,
        ws: str,
        turn: TurnCommit,
        shape: Shape,
        values: dict[str, Any],
        event_ids: list[UUID],
    ) -> CommittedTurn:
        """The turn in one transaction of router queries: the agent's lock (on the
        coordinator), the compare-and-set and the session's update as one statement (a
        chain of ``UPDATE``s, which Citus routes to the session's shard; one with an
        ``INSERT`` it does not), the events, keys, variables and usage as statements of
        their own, the ``NOTIFY`` (on the coordinator); see :mod:`.sharding`."""
        sql, names = turn_statement(shape)
        arguments = tuple(values[name] for name in names)

        async def work(conn: AsyncConnection) -> CommittedTurn:
            await self._session_agents.lock_shared(conn, ws, turn.session_id)
            if turn.expected_version == 0:  # a session without a version row is at 0
                await conn.execute(_FIRST_STATE, {"sid": turn.session_id})
            row = (await conn.exec_driver_sql(sql, arguments)).first()
            if row is None:

                async def fetchrow(sql: str, arguments: Sequence[Any]) -> Any:
                    return (await conn.exec_driver_sql(sql, tuple(arguments))).first()

                await self._diagnose(fetchrow, ws, turn, values)
            self._session_agents.remember(row.id, row.agent_id)
            events = await self._append_events(conn, turn, row.event_count, event_ids)
            await self._write_variables(conn, row, turn)
            await self._record_usage(conn, ws, turn.session_id, row.version, turn.usage)
            if turn.events:  # from the coordinator, where the listeners are
                await sharding.notify_events(conn, [(row.id, row.event_count - 1)])
            return CommittedTurn(_SESSION.picked(row, _SESSION_PICKS), events)

        async def explain(exc: IntegrityError) -> NoReturn:
            await self._explain_integrity_error(ws, turn, exc)

        return await self._transact(
            work, committed=lambda: self._landed(turn, event_ids), explain=explain
        )

    async def _diagnose(
        self,
        fetchrow: Callable[[str, Sequence[Any]], Awaitable[Any]],
        ws: str,
        turn: TurnCommit,
        values: dict[str, Any],
    ) -> NoReturn:
        """Why the turn's statement wrote nothing, as the error that says so."""
        customer = any(c.scope.value == "customer" for c in turn.variables)
        sql, names = diagnosis(customer=customer)
        row = await fetchrow(sql, [values[name] for name in names])
        if row is None:
            raise no_session(turn.session_id, ws)
        version, fits, has_customer = row[0], row[1], row[2]
        if version != turn.expected_version:
            raise stale_version(turn, version)
        if not fits:
            raise foreign_position(turn)
        if not has_customer:
            raise no_customer(turn)
        raise changed_meanwhile(turn)

    async def _read_back(self, ws: str, turn: TurnCommit, event_ids: list[UUID]) -> CommittedTurn:
        """A turn that landed while its connection died: the session as it now is and
        the turn's events as stored."""
        session = await self.get_session(ws, turn.session_id)
        events: list[Event] = []
        if event_ids:
            query = (
                self._events_query(ws, turn.session_id)
                .where(t.event.c.id.in_(event_ids))
                .order_by(t.event.c.offset)
            )
            async with self._read() as conn:
                events = [_event(row) for row in (await conn.execute(query)).all()]
        return CommittedTurn(session, events)


def _committed(row: Any, turn: TurnCommit, event_ids: Sequence[UUID]) -> CommittedTurn:
    """The session and the events of the row of a turn's statement (see
    :data:`EVENT_STORED`: the rest of each event is as it was sent)."""
    session: Session = _SESSION.picked(row, _SESSION_PICKS)
    if not turn.events:
        return CommittedTurn(session, [])
    contents, metadatas, times = row[_STORED_AT], row[_STORED_AT + 1], row[_STORED_AT + 2]
    base = session.event_count - len(turn.events)
    events = [
        _as_read(
            _EVENT(
                {
                    "id": event_ids[index],
                    "session_id": session.id,
                    "offset": base + index,
                    "event_type": event.event_type,
                    "content": contents[index],
                    "metadata": metadatas[index],
                    "tool_call_id": event.tool_call_id,
                    "journey_id": event.journey_id,
                    "state_id": event.state_id,
                    "created_at": times[index],
                    "idempotency_key": event.idempotency_key,
                }
            )
        )
        for index, event in enumerate(turn.events)
    ]
    return CommittedTurn(session, events)


async def _fetch(driver: Any, sql: str, arguments: Sequence[Any]) -> list[Any]:
    """The rows of one statement. A statement whose caller is cancelled is cancelled on
    the server too (asyncpg asks it); the cancellation waits until the server has
    settled it (rolled back, or committed if it was done), so that what a cancelled
    call leaves is decided when the call ends."""
    try:
        rows: list[Any] = await driver.fetch(sql, *arguments)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            # the driver runs the next statement once the server has answered the cancel
            await asyncio.shield(asyncio.wait_for(driver.fetchval("SELECT 1"), _SETTLE))
        raise
    return rows


async def _notify(driver: Any, last: Event) -> None:
    """Tell the other processes' waiters of the turn's events (see :data:`NOTIFY`); a
    notification that cannot be sent costs their waiters a read at their timeout."""
    try:
        await driver.fetch(NOTIFY, f"{last.session_id}:{last.offset}")
    except Exception as exc:  # the turn is committed: this must not undo its answer
        _log.info("the NOTIFY of a committed turn failed: %s", _kind(exc))


def _fetchrow(driver: Any) -> Callable[[str, Sequence[Any]], Awaitable[Any]]:
    async def fetchrow(sql: str, arguments: Sequence[Any]) -> Any:
        return await driver.fetchrow(sql, *arguments)

    return fetchrow


class _Lost(Exception):
    """The connection died under a statement (its cause is the driver's error)."""


def _sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of an error the server sent (asyncpg's ``PostgresError``)."""
    state = getattr(exc, "sqlstate", None)
    return state if isinstance(state, str) else None


def _lost(driver: Any, exc: BaseException) -> bool:
    """Whether ``exc`` is the connection dying (asyncpg then says it is closed)."""
    return isinstance(exc, OSError) or (isinstance(exc, Exception) and driver.is_closed())


def _message(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def _dressed(exc: BaseException, *, lost: bool = False) -> BaseException:
    """A driver error dressed as SQLAlchemy's, for :mod:`.faults` (which reads ``orig``);
    ``lost``: its connection died under it."""
    if isinstance(exc, DBAPIError) or not isinstance(exc, Exception):
        return exc
    return DBAPIError(None, None, exc, connection_invalidated=lost)


def _integrity(exc: BaseException, sql: str) -> IntegrityError:
    return IntegrityError(sql, None, exc)
