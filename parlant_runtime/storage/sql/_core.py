"""The SQL store's core: its engines, closing, transactions with their retries
and the translation of driver errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, NoReturn, Self
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from parlant_runtime.model import (
    VariableScope,
)
from parlant_runtime.storage.checks import (
    parse_usage_key,
)
from parlant_runtime.storage.port import (
    DatabaseUnavailable,
    InvalidData,
    StorageError,
)
from parlant_runtime.storage.sql import faults, sharding
from parlant_runtime.storage.sql._refusals import no_session
from parlant_runtime.storage.sql._statements import (
    _AGENT_OF_SESSION,
    _CLOSE_GRACE,
    _INSERT_USAGE,
    _LOCK_AGENT_SHARED,
    _PUBLISH,
    _RESOLVE_WINDOW,
    _SESSION_BY_ID,
    T,
    _TurnShape,
)
from parlant_runtime.storage.sql.agents import StoredRows, read_stored_bundle
from parlant_runtime.storage.sql.columns import LiveColumns
from parlant_runtime.storage.sql.engine import READS_ONLY
from parlant_runtime.storage.sql.notify import EventNotifier
from parlant_runtime.storage.url import redact

_log = logging.getLogger("parlant_runtime.storage")


def _reason(exc: BaseException | None) -> str:
    """The driver's message, without SQLAlchemy's wrapping."""
    if exc is None:
        return "no connection"
    orig = getattr(exc, "orig", None)
    return str(orig if orig is not None else exc) or type(exc).__name__


def _kind(exc: BaseException | None) -> str:
    """What failed, for the log: the driver error's class, never its message (which may
    quote the data written)."""
    orig = getattr(exc, "orig", None) or exc
    return type(orig).__name__ if orig is not None else "no connection"


async def _release(conn: AsyncConnection) -> None:
    """Give a connection back to the pool; one that died is discarded by the pool, and
    closing it must not turn a committed write into a reported failure."""
    with contextlib.suppress(DBAPIError, OSError):
        await conn.close()


class _Retry(Exception):
    """An attempt of :meth:`_SqlCore._retried` failed transiently (its cause says how):
    nothing was written, it runs again."""


def _unavailable(last: BaseException | None) -> StorageError:
    """The error of a write or read that gave up: :class:`DatabaseUnavailable` when a
    node of a Citus cluster holding the rows cannot be reached, else :class:`StorageError`."""
    if last is not None and faults.node_unreachable(last):
        return DatabaseUnavailable(
            f"a node of the database holding these rows is unavailable: {_reason(last)}; "
            "nothing was written, retry later"
        )
    return StorageError(
        f"the database is unavailable (gave up after {faults.ATTEMPTS} attempts): {_reason(last)}"
    )


class _SqlCore:
    """What every part of :class:`~.store.SqlStore` stands on (see the module docstring)."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        writer: AsyncEngine | None = None,
        poll_interval: float = 0.05,
    ) -> None:
        self._engine: AsyncEngine | None = engine
        self._writer = writer or engine
        self.dialect = engine.dialect.name
        # reads run in autocommit (no BEGIN/ROLLBACK round trips, on SQLite no calls to
        # the driver's thread for them); an engine with the option set shares the pool
        # and sets it at checkout
        self._reader = (
            engine.execution_options(isolation_level="AUTOCOMMIT")
            if self.dialect == "postgresql"
            else engine.execution_options(**{READS_ONLY: True})
        )
        # reads of several statements that must agree (an agent's definitions): one
        # read-only transaction, one snapshot (on SQLite the engine's deferred BEGIN: a
        # WAL reader's snapshot is taken at its first SELECT and kept to the end)
        self._snapshots = (
            engine.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
            if self.dialect == "postgresql"
            else engine
        )
        self._updates: dict[_TurnShape, Any] = {}
        self._busy = 0  # operations holding a connection (close waits for them)
        self._upserts: dict[tuple[VariableScope, bool], Any] = {}
        self._bump: Any = None  # the compare-and-set upsert of the session's version
        self._live: LiveColumns | None = None  # the publish tables' constraints, reflected once
        self._sharded: bool | None = None  # whether Citus shards the tables (found once)
        self._unwritten: bool | None = None  # whether a Citus node commits asynchronously
        self._session_agents = sharding.SessionAgents(_AGENT_OF_SESSION, _LOCK_AGENT_SHARED)
        self._notifier = EventNotifier(engine, poll_interval=poll_interval)
        faults.drop_dead_connections(engine)

    async def _on_citus(self, conn: AsyncConnection) -> bool:
        """Whether Citus shards this database's tables (asked once; see :mod:`.sharding`)."""
        if self._sharded is None:
            self._sharded = self.dialect == "postgresql" and await sharding.is_sharded(conn)
        return self._sharded

    async def _commit_written_out(self, conn: AsyncConnection) -> None:
        """On Citus with a node at ``synchronous_commit = off``: this transaction's
        commit waits for its WAL to be written (a shard move could lose it otherwise;
        see :mod:`.sharding`). Asked once per store."""
        if not await self._on_citus(conn):
            return
        if self._unwritten is None:
            try:  # on a connection of its own: a refusal must not abort this transaction
                async with self._read() as reader:
                    self._unwritten = await sharding.commits_unwritten(reader)
            except StorageError:  # cannot be asked (no right to, say): assume the worst
                self._unwritten = True
            if self._unwritten:
                _log.warning(
                    "a node of the Citus cluster runs synchronous_commit = off, which lets a "
                    "shard move lose acknowledged commits; the runtime commits its own writes "
                    "with synchronous_commit = local (see docs/operations.md)"
                )
        if self._unwritten:
            await sharding.commit_written_out(conn)

    def _check_open(self) -> AsyncEngine:
        if self._engine is None:
            raise StorageError("the store is closed")
        return self._engine

    @property
    def engine(self) -> AsyncEngine:
        """The engine; a closed store refuses every operation."""
        return self._check_open()

    async def __aenter__(self) -> Self:
        """``async with SqlStore.open(url) as store:`` closes the store at the end."""
        self._check_open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def url(self) -> str:
        """The database's URL with its password hidden (for logs and messages)."""
        return redact(self._writer.url.render_as_string(hide_password=False))

    def __repr__(self) -> str:
        state = "closed" if self._engine is None else self.url
        return f"<parlant_runtime.SqlStore {state}>"

    async def _transact(
        self,
        work: Callable[[AsyncConnection], Awaitable[T]],
        *,
        committed: Callable[[], Awaitable[bool]] | None = None,
        refused: str = "the write breaks a database constraint",
        explain: Callable[[IntegrityError], Awaitable[NoReturn]] | None = None,
    ) -> T:
        """Run ``work`` in one write transaction, again when the failure was transient.

        This is the one place where the driver's errors become the library's: every
        write of the store runs here (reads in :meth:`_read`).

        A deadlock or serialization failure, a connection that could not be had and one
        that died before ``COMMIT`` wrote nothing: ``work`` runs again on a new
        connection, up to :data:`faults.ATTEMPTS` times. When the connection dies during
        ``COMMIT`` the outcome is unknown: ``committed`` asks the database whether the
        transaction landed (the result is then returned as if nothing had happened);
        without it the work is one that may run twice (idempotent). A constraint
        violation goes to ``explain`` (which raises the error that says what happened),
        else becomes :class:`InvalidData` beginning with ``refused``; every other driver
        error becomes :class:`StorageError`. Either way the transaction is rolled back
        and nothing is written.
        """

        async def attempt() -> T:
            try:
                conn = await self._writer.connect()
            except Exception as exc:  # the driver's raw errors too
                raise _Retry from exc
            committing = False
            try:
                try:
                    await conn.begin()
                    if self.dialect == "postgresql":
                        await self._commit_written_out(conn)
                    result = await work(conn)
                    committing = True
                    await conn.commit()
                finally:
                    await _release(conn)  # rolls back what was not committed
                return result
            except IntegrityError as exc:
                if explain is not None:
                    await explain(exc)
                raise InvalidData(f"{refused}: {_reason(exc)}") from exc
            except (DBAPIError, OSError) as exc:
                if faults.conflict(exc) or faults.node_unreachable(exc):
                    raise _Retry from exc
                if not faults.disconnected(exc):
                    raise StorageError(f"the database refused the write: {_reason(exc)}") from exc
                if committing and committed is not None and await self._resolve(committed, exc):
                    return result
                raise _Retry from exc

        async with self._writing():
            return await self._retried("write", attempt)

    def _writing(self) -> contextlib.AbstractAsyncContextManager[object]:
        """What a write through the engine holds for all its attempts: nothing here (a
        SQLite file's store holds its writer thread, see :mod:`._sqlite_turns`)."""
        return contextlib.nullcontext()

    async def _retried(
        self,
        what: str,
        attempt: Callable[[], Awaitable[T]],
        *,
        transient: type[Exception] = _Retry,
    ) -> T:
        """``attempt()``, run again while it fails transiently: the one place that retries
        an operation on a lost or unavailable connection (the engine's and the driver's).

        An attempt that raises ``transient`` (:class:`_Retry`, whose cause is the failure,
        unless another class is given) runs again after :func:`faults.pause`, logged as
        ``what`` retried, up to :data:`faults.ATTEMPTS` attempts; then the last failure
        becomes the error of :func:`_unavailable`. Each attempt finds the store open and
        counts as an operation under way (:meth:`close` waits for it); any other error is
        the operation's.
        """
        last: BaseException | None = None
        for n in range(faults.ATTEMPTS):
            if n:
                _log.info("%s retried (attempt %d): %s", what, n + 1, _kind(last))
                await asyncio.sleep(faults.pause(n - 1))
            self._check_open()
            self._busy += 1
            try:
                return await attempt()
            except transient as exc:
                last = exc.__cause__ if isinstance(exc, _Retry) else exc
            finally:
                self._busy -= 1
        raise _unavailable(last) from last

    async def _resolve(self, committed: Callable[[], Awaitable[bool]], lost: BaseException) -> bool:
        """Whether a transaction whose connection died during ``COMMIT`` landed, asked
        again until the database answers (for up to :data:`_RESOLVE_WINDOW` seconds)."""
        _log.warning("connection lost during COMMIT (%s); asking whether it landed", _kind(lost))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _RESOLVE_WINDOW
        attempt = 0
        while True:
            try:
                return await committed()
            except StorageError as exc:
                if loop.time() >= deadline or self._engine is None:
                    raise StorageError(
                        "the connection was lost while the write was committed, and the "
                        "database could not be asked whether it landed; send the call again "
                        "(with the same idempotency key, a message recorded already is "
                        f"replayed, not recorded twice): {_reason(lost)}"
                    ) from exc
            await asyncio.sleep(faults.pause(attempt))
            attempt += 1

    @contextlib.asynccontextmanager
    async def _read(self, *, snapshot: bool = False) -> AsyncIterator[AsyncConnection]:
        """A connection for reads; on PostgreSQL in autocommit (no BEGIN/ROLLBACK round trips).

        ``snapshot``: the statements run in one read-only transaction, so that they all
        see the database as it was at the first of them, whatever commits meanwhile
        (``REPEATABLE READ READ ONLY`` on PostgreSQL, a deferred ``BEGIN`` on SQLite);
        for reads of several statements whose rows must agree, as an agent's load.

        Getting the connection is retried like a write's (a server restarting refuses
        connections for a moment); a read that fails midway is :class:`StorageError`.
        """
        engine = self._snapshots if snapshot else self._reader
        # every failure to connect is retried (the driver's raw errors too)
        conn = await self._retried("read connection", engine.connect, transient=Exception)
        self._busy += 1
        try:
            if snapshot:
                await conn.begin()  # ended (rolled back) by _release
            yield conn
        except (DBAPIError, OSError) as exc:
            if faults.node_unreachable(exc):
                raise _unavailable(exc) from exc
            raise StorageError(f"the database refused the read: {_reason(exc)}") from exc
        finally:
            await _release(conn)
            self._busy -= 1

    async def _load_stored(self, ws: str, agent_id: UUID) -> StoredRows:
        """The agent's rows, read in one snapshot (see :meth:`_read`) and built; the SQLite
        and PostgreSQL driver paths override it."""
        async with self._read(snapshot=True) as conn:
            return await read_stored_bundle(conn, ws, agent_id)

    async def close(self) -> None:
        """Stop listening and release every connection."""
        engine = self._engine
        if engine is None:
            return
        self._engine = None  # closed first: woken waiters find it closed, open nothing
        await self._notifier.close()
        # operations under way (a waiter's poll, say) give their connection back first: one
        # given back to a disposed pool would never be closed
        deadline = asyncio.get_running_loop().time() + _CLOSE_GRACE
        while self._busy and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.005)
        await engine.dispose()
        if self._writer is not engine:
            await self._writer.dispose()

    # ------------------------------------------------------------------ helpers

    def _insert(self, table: sa.Table) -> Any:
        return postgresql.insert(table) if self.dialect == "postgresql" else sqlite.insert(table)

    async def _session_row(self, conn: AsyncConnection, ws: str, sid: UUID) -> sa.Row[Any]:
        row = (await conn.execute(_SESSION_BY_ID, {"sid": sid, "ws": ws})).first()
        if row is None:
            raise no_session(sid, ws)
        return row

    async def _lock_publishing(self, conn: AsyncConnection, ws: str) -> None:
        """Queue behind the workspace's other publishes (PostgreSQL; SQLite has one writer)."""
        if self.dialect == "postgresql":
            await conn.execute(
                sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtextextended(_PUBLISH + ws, 0)))
            )

    # ------------------------------------------------------------------ usage

    async def _record_usage(
        self, conn: AsyncConnection, ws: str, sid: UUID, seq: int, usage: Mapping[str, int]
    ) -> None:
        """A commit's usage deltas, all in one row keyed by the session and its version."""
        if not usage:
            return
        deltas = {}
        for key, delta in usage.items():
            entity, entity_id, counter = parse_usage_key(key)
            deltas[f"{entity}:{entity_id}:{counter}"] = delta
        await conn.execute(
            _INSERT_USAGE, {"session_id": sid, "seq": seq, "workspace_id": ws, "deltas": deltas}
        )
