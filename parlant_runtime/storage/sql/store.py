"""The SQL adapter of the storage port: SQLite (aiosqlite) and PostgreSQL (asyncpg).

One class serves both dialects through SQLAlchemy Core; what differs (upserts,
LISTEN/NOTIFY versus polling) is chosen by the dialect at run time. A turn is one
transaction: a compare-and-set ``UPDATE ... RETURNING`` of the session row (which
also checks that the new journey and state belong to the session's agent), the
events in one ``executemany`` with offsets taken from the updated row, the variable
upserts and the usage deltas. Nothing is read before it, so a turn costs three
to five statements and one round trip each. The statements of the hot path are
built once and reused with bound parameters, and rows become models without being
validated again (:mod:`.trusted`); see "Speed" in ``docs/storage.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, NoReturn, Self, TypeVar
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from parlant_runtime.bundle.schema import AgentBundle
from parlant_runtime.model import (
    Event,
    EventType,
    Session,
    SessionStatus,
    Variable,
    VariableScope,
)
from parlant_runtime.storage import publishing
from parlant_runtime.storage.checks import (
    TOOL_DEGRADED,
    TOOL_HEALTHY,
    check_bundle,
    check_session_start,
    check_text,
    check_turn,
    check_workspace,
    counters_of,
    parse_usage_key,
    storable,
)
from parlant_runtime.storage.port import (
    CommittedTurn,
    ConcurrentUpdate,
    DatabaseUnavailable,
    DuplicateMessage,
    InvalidData,
    NotFound,
    PublishRefused,
    PublishReport,
    SessionStart,
    StorageError,
    StoredAgent,
    TurnCommit,
    TurnRead,
)
from parlant_runtime.storage.sql import faults, sharding
from parlant_runtime.storage.sql import schema as t
from parlant_runtime.storage.sql.agents import (
    VERSION,
    WITH_STATE,
    agent_version,
    chunks,
    delete_stale,
    read_stored_bundle,
    refuse_ids_of_others,
    upsert_bundle,
)
from parlant_runtime.storage.sql.columns import LiveColumns, fill_defaults, live_columns
from parlant_runtime.storage.sql.engine import READS_ONLY, create_engine
from parlant_runtime.storage.sql.notify import EventNotifier
from parlant_runtime.storage.sql.trusted import Trusted
from parlant_runtime.storage.url import database_url, redact

__all__ = ["SqlStore"]

T = TypeVar("T")

_CLOSE_GRACE = 5.0
"""Seconds close() waits for operations under way to give their connections back."""
_AGENT_LOCK = "parlant-runtime agent "
"""The text whose hash (with the agent's id) names an agent's advisory lock."""
_PUBLISH = "parlant-runtime publish "
"""The text whose hash names a workspace's advisory publish lock."""
_RESOLVE_WINDOW = 10.0
"""Seconds a write whose ``COMMIT`` lost its connection keeps asking whether it landed."""
_MESSAGES = (EventType.CUSTOMER_MESSAGE.value, EventType.AGENT_MESSAGE.value)
_ENDED = (SessionStatus.COMPLETED, SessionStatus.ABANDONED)

# the table holding each entity's usage counter columns
_USAGE_TABLES: dict[str, sa.Table] = {
    "agent": t.agent,
    "session": t.session,
    "guideline": t.guideline,
    "canned_response": t.canned_response,
    "journey": t.journey,
    "transition": t.journey_transition,
    "journey_guideline": t.journey_guideline,
    "tool": t.tool,
    "tool_integration": t.tool_integration,
    "agent_knowledge_base": t.agent_knowledge_base,
}


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


def _storable(*texts: str) -> bool:
    """Whether the database can hold these texts (see :func:`checks.storable`): a text it
    cannot hold names nothing that exists, so the operation answers as for any unknown
    workspace, name or key, instead of letting the driver's error through."""
    return storable(*texts)


def _check_workspace(workspace_id: str) -> None:
    if not _storable(workspace_id):
        raise NotFound(f"nothing of that id in workspace {workspace_id!r}")


_SESSION = Trusted(Session, "parlant_session")
_EVENT = Trusted(Event, "parlant_event")
_VARIABLE = Trusted(Variable, "parlant_variable")


def _session(row: sa.Row[Any], **more: Any) -> Session:
    return _SESSION.row(row, **more)


_SENDERS = {EventType.CUSTOMER_MESSAGE.value: "customer", EventType.AGENT_MESSAGE.value: "agent"}
_PLATFORM_FIELDS = ("message", "sender", "timestamp")


def _stored_content(event_type: str, content: dict[str, Any], at: str) -> dict[str, Any]:
    """A message's content as both writers read it: the runtime's ``text`` and the host
    platform's ``message``, ``sender`` and ``timestamp`` (see docs/host-database.md)."""
    sender = _SENDERS.get(event_type)
    if sender is None or not isinstance(content.get("text"), str):
        return content
    return {"message": content["text"], "sender": sender, "timestamp": at, **content}


def _event(row: sa.Row[Any], **more: Any) -> Event:
    event = _EVENT.row(row, **more)
    content = event.content
    if event.event_type.value in _SENDERS:
        if "text" not in content and isinstance(content.get("message"), str):
            # written by the platform: its message is the runtime's text
            event.content = {**content, "text": content["message"]}
        elif "message" in content and content.get("message") == content.get("text"):
            # written by the runtime: the platform's copies are not part of the event
            event.content = {k: v for k, v in content.items() if k not in _PLATFORM_FIELDS}
    return event


def _merged_variables(rows: Sequence[sa.Row[Any]]) -> list[Variable]:
    """The variables of :func:`_variables_of_session`'s rows, by key: the session's value
    wins over the customer's, which wins over the definition."""
    if not rows:
        return []
    picks = [(i, name[2:]) for i, name in enumerate(rows[0]._fields) if name.startswith("v_")]
    merged: dict[str, tuple[int, Variable]] = {}
    for row in rows:
        data = {name: row[index] for index, name in picks}
        if data["key"] is None:  # the row that stands for the session alone
            continue
        rank = 2 if data["session_id"] is not None else 1 if data["customer_id"] is not None else 0
        variable = _VARIABLE(data)
        if variable.key not in merged or merged[variable.key][0] <= rank:
            merged[variable.key] = (rank, variable)
    return [merged[key][1] for key in sorted(merged)]


# Statements of the hot path, built once: SQLAlchemy then finds their compiled form in
# its cache by a memoised key instead of building and hashing a new statement per call.
_STATE, _KEYS, _CUSTOMER = t.session_state, t.event_key, t.customer_variable
_DELTAS = t.usage_delta
# a session's version is in the runtime's own table; no row there (the platform created
# the session, or no turn was committed yet) is version 0
_VERSION = sa.func.coalesce(_STATE.c.version, 0).label("version")
_WITH_STATE = t.session.outerjoin(_STATE, _STATE.c.session_id == t.session.c.id)


def _sessions() -> Any:
    return sa.select(t.session, _VERSION).select_from(_WITH_STATE)


_SESSION_BY_ID = _sessions().where(
    t.session.c.id == sa.bindparam("sid"), t.session.c.workspace_id == sa.bindparam("ws")
)
_VARIABLE_FIELDS = (
    "id",
    "agent_id",
    "session_id",
    "customer_id",
    "key",
    "scope",
    "value",
    "value_type",
    "is_private",
    "description",
    "created_at",
    "updated_at",
)


def _variables_of_session(*session_columns: Any) -> Any:
    """The variables a session sees, found through its own row in one statement: the
    agent's definitions and the session's values (``parlant_variable``), then its
    customer's (``customer_variable``); ``session_columns`` come with every row, and a
    last row of them without a variable makes sure the session is there even without
    variables (no row at all: no such session)."""
    s, v, c = t.session, t.variable, _CUSTOMER
    where = (s.c.id == sa.bindparam("sid"), s.c.workspace_id == sa.bindparam("ws"))
    null_text, null_uuid = sa.cast(sa.null(), sa.Text), sa.cast(sa.null(), t.UUID)
    labels = [f"v_{name}" for name in _VARIABLE_FIELDS]
    defined = [
        v.c.id,
        v.c.agent_id,
        v.c.session_id,
        null_text,
        v.c.key,
        v.c.scope,
        v.c.value,
        v.c.value_type,
        v.c.is_private,
        v.c.description,
        v.c.created_at,
        v.c.updated_at,
    ]
    customer = [
        c.c.id,
        c.c.agent_id,
        null_uuid,
        c.c.customer_id,
        c.c.key,
        sa.literal(VariableScope.CUSTOMER.value, sa.Text),
        c.c.value,
        c.c.value_type,
        c.c.is_private,
        null_text,
        c.c.created_at,
        c.c.updated_at,
    ]
    nothing = [
        null_uuid,
        null_uuid,
        null_uuid,
        null_text,
        null_text,
        null_text,
        sa.cast(sa.null(), t.JSON),
        null_text,
        sa.cast(sa.null(), sa.Boolean),
        null_text,
        sa.cast(sa.null(), sa.DateTime(timezone=True)),
        sa.cast(sa.null(), sa.DateTime(timezone=True)),
    ]

    def branch(columns: list[Any]) -> Any:
        return sa.select(
            *session_columns,
            *(column.label(label) for column, label in zip(columns, labels, strict=True)),
        )

    return sa.union_all(
        branch(defined)
        .select_from(_session_scope().join(v, v.c.agent_id == s.c.agent_id))
        .where(*where, sa.or_(v.c.session_id == s.c.id, v.c.session_id.is_(None))),
        branch(customer)
        .select_from(
            _session_scope().join(
                c, sa.and_(c.c.agent_id == s.c.agent_id, c.c.customer_id == s.c.customer_id)
            )
        )
        .where(*where),
        branch(nothing).select_from(_session_scope()).where(*where),
    )


def _session_scope() -> Any:
    """The session's row with its state, its agent and the agent's state (one index
    look-up each)."""
    return _WITH_STATE.join(t.agent, t.agent.c.id == t.session.c.agent_id).outerjoin(
        t.agent_state, t.agent_state.c.agent_id == t.agent.c.id
    )


# the variables alone (get_variables); the session's id marks the row without one
_VARIABLES_OF_SESSION = _variables_of_session(t.session.c.id.label("sid"))
# what a turn reads: the session, its version, its agent's version and its variables
_TURN_READ = _variables_of_session(
    *t.session.c,
    _VERSION,
    sa.func.coalesce(t.agent_state.c.version, 1).label("agent_version"),
)
_INSERT_EVENTS = t.event.insert().returning(*t.event.c, sort_by_parameter_order=True)
_INSERT_MOVE_EVENTS = t.event.insert()
_INSERT_KEYS = _KEYS.insert()
_INSERT_USAGE = t.usage_delta.insert()
_AGENT_OF_SESSION = sa.select(t.session.c.agent_id).where(
    t.session.c.id == sa.bindparam("sid"), t.session.c.workspace_id == sa.bindparam("ws")
)
_EVENT_COLUMNS = ("content", "metadata", "tool_call_id", "journey_id", "state_id")


class SqlStore:
    """The storage port on a SQL database (see the module docstring)."""

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
        self._updates: dict[_TurnShape, Any] = {}
        self._busy = 0  # operations holding a connection (close waits for them)
        self._upserts: dict[VariableScope, Any] = {}
        self._bump: Any = None  # the compare-and-set upsert of the session's version
        self._live: LiveColumns | None = None  # the publish tables' constraints, reflected once
        self._sharded: bool | None = None  # whether Citus shards the tables (found once)
        self._session_agents = sharding.SessionAgents(_AGENT_OF_SESSION, _LOCK_AGENT_SHARED)
        self._notifier = EventNotifier(engine, poll_interval=poll_interval)
        faults.drop_dead_connections(engine)

    async def _on_citus(self, conn: AsyncConnection) -> bool:
        """Whether Citus shards this database's tables (asked once; see :mod:`.sharding`)."""
        if self._sharded is None:
            self._sharded = self.dialect == "postgresql" and await sharding.is_sharded(conn)
        return self._sharded

    def _check_open(self) -> AsyncEngine:
        if self._engine is None:
            raise StorageError("the store is closed")
        return self._engine

    @property
    def engine(self) -> AsyncEngine:
        """The engine; a closed store refuses every operation."""
        return self._check_open()

    @classmethod
    def open(
        cls, url: str | None = None, *, poll_interval: float = 0.05, **engine_options: Any
    ) -> SqlStore:
        """A store on the database at ``url`` (its schema must be upgraded already).

        ``url`` is read as the command line reads ``--database-url``
        (:func:`~parlant_runtime.storage.url.database_url`): ``sqlite:///file.db`` or
        ``postgresql://user@host/db`` with or without the async driver named, and without
        a URL ``$PARLANT_DATABASE_URL``, else ``./parlant.db``. Nothing connects yet.

        The store is an async context manager that closes it at the end of the block::

            async with SqlStore.open("sqlite:///parlant.db") as store:
                ...

        and without one, ``await store.close()`` releases its connections.

        ``engine_options`` go to SQLAlchemy's ``create_async_engine`` (pool size, ...).
        On SQLite, writes go through their own engine whose transactions begin with
        ``BEGIN IMMEDIATE``: a transaction that reads before it writes then waits for
        the write lock up front instead of failing when another writer got in between.

        Raises:
            DatabaseURLError: the URL cannot be read or is not SQLite or PostgreSQL.
        """
        resolved = database_url(url)
        engine = create_engine(resolved, **engine_options)
        writer = None
        if engine.dialect.name == "sqlite":
            writer = create_engine(resolved, sqlite_begin="BEGIN IMMEDIATE", **engine_options)
        return cls(engine, writer=writer, poll_interval=poll_interval)

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
        last: BaseException | None = None
        for attempt in range(faults.ATTEMPTS):
            if attempt:
                _log.info("write retried (attempt %d): %s", attempt + 1, _kind(last))
                await asyncio.sleep(faults.pause(attempt - 1))
            self._check_open()
            self._busy += 1
            committing = False
            try:
                try:
                    conn = await self._writer.connect()
                except Exception as exc:  # the driver's raw errors too
                    last = exc
                    continue
                try:
                    await conn.begin()
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
                last = exc
                if faults.conflict(exc) or faults.node_unreachable(exc):
                    continue
                if not faults.disconnected(exc):
                    raise StorageError(f"the database refused the write: {_reason(exc)}") from exc
                if committing and committed is not None and await self._resolve(committed, exc):
                    return result
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
    async def _read(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reads; on PostgreSQL in autocommit (no BEGIN/ROLLBACK round trips).

        Getting the connection is retried like a write's (a server restarting refuses
        connections for a moment); a read that fails midway is :class:`StorageError`.
        """
        last: BaseException | None = None
        for attempt in range(faults.ATTEMPTS):
            if attempt:
                _log.info("read connection retried (attempt %d): %s", attempt + 1, _kind(last))
                await asyncio.sleep(faults.pause(attempt - 1))
            self._check_open()
            try:
                conn = await self._reader.connect()
            except Exception as exc:  # the driver's raw errors too
                last = exc
                continue
            break
        else:
            raise _unavailable(last) from last
        self._busy += 1
        try:
            yield conn
        except (DBAPIError, OSError) as exc:
            if faults.node_unreachable(exc):
                raise _unavailable(exc) from exc
            raise StorageError(f"the database refused the read: {_reason(exc)}") from exc
        finally:
            await _release(conn)
            self._busy -= 1

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
            raise NotFound(f"no session {sid} in workspace {ws!r}")
        return row

    # ------------------------------------------------------------------ host rows

    async def ensure_workspace(
        self, workspace_id: str, name: str | None = None, *, owner_id: str | None = None
    ) -> None:
        """Create the host workspace row if it is missing (embedded use).

        On a host database whose ``workspace.owner_id`` is NOT NULL the host owns
        workspaces: one is created only with an ``owner_id`` naming a user of the host.

        Raises:
            InvalidData: no usable id, an unknown owner, or no owner where one is required.
        """
        check_workspace(workspace_id, name)
        check_text(owner_id, "the workspace owner id")

        async def work(conn: AsyncConnection) -> None:
            found = await conn.scalar(
                sa.select(t.workspace.c.id).where(t.workspace.c.id == workspace_id)
            )
            if found is not None:
                return
            live = await self._live_columns(conn)
            if owner_id is None and live.requires("workspace", "owner_id"):
                raise InvalidData(
                    f"no workspace {workspace_id!r}, and this database's workspaces belong to "
                    "the host platform: each needs an owner. Create it in the platform, or "
                    "give its owner (--created-by USER_ID, owner_id= in the API)"
                )
            if owner_id is not None:
                await self._check_user(conn, owner_id, "workspace owner")
            values: dict[str, Any] = {"id": workspace_id, "name": name or workspace_id}
            if owner_id is not None:
                values["owner_id"] = owner_id
            statement = self._insert(t.workspace).values(**values)
            await conn.execute(statement.on_conflict_do_nothing(index_elements=["id"]))

        await self._transact(work)

    async def _check_user(self, conn: AsyncConnection, user_id: str, role: str) -> None:
        if await conn.scalar(sa.select(t.user.c.id).where(t.user.c.id == user_id)) is None:
            raise InvalidData(
                f"user {user_id!r} ({role}) is not a user of the host database; give the id "
                "of an existing user (--created-by USER_ID, created_by= in the API)"
            )

    async def _live_columns(self, conn: AsyncConnection) -> LiveColumns:
        if self._live is None:
            self._live = await live_columns(conn)
        return self._live

    async def ensure_knowledge_bases(
        self, workspace_id: str, ids: Sequence[str], *, user_id: str | None = None
    ) -> None:
        """Create placeholder host knowledge-base rows (embedded use, before a publish).

        ``user_id`` owns them; required where the host's ``knowledge_base.user_id`` is
        NOT NULL (otherwise only the missing ones are an error, at publish). An id another
        workspace has stays that workspace's (a publish linking it here is refused).
        """
        check_workspace(workspace_id)
        for kb in ids:
            check_text(kb, "a knowledge base id")
        if not ids:
            return

        async def work(conn: AsyncConnection) -> None:
            live = await self._live_columns(conn)
            existing = set(
                (
                    await conn.execute(
                        sa.select(t.knowledge_base.c.id).where(t.knowledge_base.c.id.in_(ids))
                    )
                ).scalars()
            )
            missing = [kb for kb in ids if kb not in existing]
            if not missing:
                return
            if user_id is None and live.requires("knowledge_base", "user_id"):
                raise InvalidData(
                    f"knowledge base(s) {', '.join(map(repr, missing))} do not exist, and this "
                    "database's knowledge bases belong to a user of the host platform: create "
                    "them there, or give their owner (--created-by USER_ID)"
                )
            rows = [
                {"id": kb, "workspace_id": workspace_id, "name": kb, "user_id": user_id}
                for kb in missing
            ]
            statement = self._insert(t.knowledge_base).values(rows)
            await conn.execute(statement.on_conflict_do_nothing(index_elements=["id"]))

        await self._transact(work)

    # ------------------------------------------------------------------ agents

    async def find_agent(self, workspace_id: str, name: str) -> UUID | None:
        """The id of the workspace's agent with this name, if any."""
        if not _storable(workspace_id, name):
            return None
        async with self._read() as conn:
            found: UUID | None = await conn.scalar(
                sa.select(t.agent.c.id).where(
                    t.agent.c.workspace_id == workspace_id,
                    t.agent.c.name == name,
                    t.agent.c.deleted_at.is_(None),
                )
            )
        return found

    async def agent_version(self, workspace_id: str, agent_id: UUID) -> int:
        """The agent's current version, in one query."""
        _check_workspace(workspace_id)
        async with self._read() as conn:
            version = await agent_version(conn, workspace_id, agent_id)
        if version is None:
            raise NotFound(f"no agent {agent_id} in workspace {workspace_id!r}")
        return version

    async def load_agent(self, workspace_id: str, agent_id: UUID) -> StoredAgent:
        """Everything the runtime needs of an agent, in twelve queries."""
        _check_workspace(workspace_id)
        async with self._read() as conn:
            stored = await read_stored_bundle(conn, workspace_id, agent_id)
        return StoredAgent(
            workspace_id, agent_id, stored.version, stored.bundle, stored.host_written
        )

    async def publish(
        self,
        workspace_id: str,
        bundle: AgentBundle,
        *,
        state_mapping: Mapping[str, Mapping[str, str]] | None = None,
        force: bool = False,
        dry_run: bool = False,
        created_by: str | None = None,
    ) -> PublishReport:
        """Write an agent in one transaction (see :meth:`Store.publish`)."""
        _check_workspace(workspace_id)
        check_bundle(bundle)
        if created_by is not None and not _storable(created_by):
            raise InvalidData(f"{created_by!r} cannot be a user id")
        given = publishing.for_workspace(bundle, workspace_id)
        agent_id = given.agent.id

        async def work(conn: AsyncConnection) -> PublishReport:
            # the lock order of a publish (see "Locks and retries" in docs/storage.md):
            # the workspace's publish lock, the agent's lock, then the agent's row.
            # Publishes of a workspace queue, even the first one of an agent (whose row
            # does not exist yet to be locked); the workspace's lock is an advisory one,
            # not its row, because every session insert key-share locks that row through
            # its foreign key (which a FOR UPDATE waits for, and is waited for by)
            if await self._on_citus(conn):  # sharded and reference tables in one transaction
                await sharding.one_connection_per_node(conn)
            await self._lock_publishing(conn, workspace_id)
            lookup = sa.select(t.workspace.c.id, t.workspace.c.owner_id).where(
                t.workspace.c.id == workspace_id
            )
            workspace = (await conn.execute(lookup)).first()
            if workspace is None:
                raise NotFound(f"no workspace {workspace_id!r}; create it first")
            live = await self._live_columns(conn)
            new = fill_defaults(given, live)
            await self._refuse_knowledge_bases(conn, workspace_id, new)
            if self.dialect == "postgresql":  # then the agent's lock, exclusive
                await conn.execute(
                    sa.select(
                        sa.func.pg_advisory_xact_lock(agent_lock(sa.literal(agent_id, t.UUID)))
                    )
                )
            version = await self._lock_agent(conn, workspace_id, agent_id)
            if version is None:
                await self._refuse_taken_name(conn, workspace_id, new)
                creator = await self._creator(conn, workspace, created_by, live)
            else:  # kept as it is (an upsert's insert row must satisfy NOT NULL all the same)
                creator = await conn.scalar(
                    sa.select(t.agent.c.created_by).where(t.agent.c.id == agent_id)
                )
            await refuse_ids_of_others(conn, workspace_id, new)
            old = (await read_stored_bundle(conn, workspace_id, agent_id))[0] if version else None
            changes = publishing.diff(old, new)
            removed = publishing.removed_states(old, new)
            stranded = await self._stranded(conn, removed)
            report = PublishReport(
                agent_id=agent_id,
                version=version or 1,
                created=version is None,
                changes=changes,
                stranded_sessions={
                    f"{title}/{name}": count
                    for state_id, (title, name) in removed.items()
                    if (count := stranded.get(state_id, 0))
                },
            )
            try:
                moves = publishing.plan_moves(
                    new, {sid: removed[sid] for sid in stranded}, state_mapping, force=force
                )
            except PublishRefused as exc:
                raise PublishRefused(str(exc), report) from None
            if version is not None and changes.empty:
                return report
            if dry_run:
                return replace(
                    report, version=(version or 0) + 1, moved_sessions=sum(stranded.values())
                )
            new_version = (version or 0) + 1
            # new rows first, so that sessions can move onto new states; then the moves;
            # then the removal of what the bundle no longer has
            await upsert_bundle(conn, workspace_id, new, version=new_version, created_by=creator)
            moved = await self._move_sessions(conn, new, removed, moves, new_version)
            await delete_stale(conn, workspace_id, new)
            await self._notify_republish(conn, agent_id, new_version)
            return PublishReport(
                agent_id=agent_id,
                version=new_version,
                created=version is None,
                changes=changes,
                stranded_sessions=report.stranded_sessions,
                moved_sessions=moved,
                written=True,
            )

        return await self._transact(work, refused="the agent cannot be stored")

    async def _creator(
        self,
        conn: AsyncConnection,
        workspace: sa.Row[Any, Any],
        given: str | None,
        live: LiveColumns,
    ) -> str | None:
        """Who creates a new agent: ``given``, else the workspace's owner; checked here so
        that a missing or unknown user is a sentence, not a foreign-key error."""
        if given is not None:
            await self._check_user(conn, given, "the agent's creator")
            return given
        if workspace.owner_id is None and live.requires("parlant_agent", "created_by"):
            raise InvalidData(
                f"workspace {workspace.id!r} has no owner to credit with the new agent; give "
                "its creator (--created-by USER_ID, created_by= in the API)"
            )
        owner: str | None = workspace.owner_id
        return owner

    async def _refuse_knowledge_bases(
        self, conn: AsyncConnection, ws: str, new: AgentBundle
    ) -> None:
        ids = [link.knowledge_base_id for link in new.knowledge_bases]
        if not ids:
            return
        rows = await conn.execute(
            sa.select(t.knowledge_base.c.id, t.knowledge_base.c.workspace_id).where(
                t.knowledge_base.c.id.in_(ids)
            )
        )
        publishing.refuse_knowledge_bases(new, ws, {row.id: row.workspace_id for row in rows})

    async def _refuse_taken_name(self, conn: AsyncConnection, ws: str, new: AgentBundle) -> None:
        holder = await conn.scalar(
            sa.select(t.agent.c.id).where(
                t.agent.c.workspace_id == ws,
                t.agent.c.name == new.agent.name,
                t.agent.c.deleted_at.is_(None),
            )
        )
        if holder is not None:
            raise InvalidData(
                f"workspace {ws!r} already has an agent named {new.agent.name!r} with id "
                f"{holder}; publish it under that id or choose another name"
            )

    async def _lock_publishing(self, conn: AsyncConnection, ws: str) -> None:
        """Queue behind the workspace's other publishes (PostgreSQL; SQLite has one writer)."""
        if self.dialect == "postgresql":
            await conn.execute(
                sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtextextended(_PUBLISH + ws, 0)))
            )

    async def _lock_agent(self, conn: AsyncConnection, ws: str, agent_id: UUID) -> int | None:
        """The agent's version, locking its row so that two publishes queue."""
        query = (
            sa.select(VERSION, t.agent.c.workspace_id)
            .select_from(WITH_STATE)
            .where(t.agent.c.id == agent_id)
        )
        if self.dialect == "postgresql":
            query = query.with_for_update(of=t.agent)
        row = (await conn.execute(query)).first()
        if row is None:
            return None
        if row.workspace_id != ws:  # derived ids differ per workspace: only explicit ids clash
            raise InvalidData(f"agent id {agent_id} is taken by another workspace; give a new id")
        return int(row.version)

    async def _stranded(
        self, conn: AsyncConnection, removed: Mapping[UUID, Any]
    ) -> dict[UUID, int]:
        counts: dict[UUID, int] = {}
        for chunk in chunks(sorted(removed)):  # under the bind-parameter limit
            rows = await conn.execute(
                sa.select(t.session.c.current_state_id, sa.func.count())
                .where(
                    t.session.c.current_state_id.in_(chunk),
                    t.session.c.status == SessionStatus.ACTIVE.value,
                )
                .group_by(t.session.c.current_state_id)
            )
            counts.update({row[0]: int(row[1]) for row in rows})
        return counts

    async def _move_sessions(
        self,
        conn: AsyncConnection,
        new: AgentBundle,
        removed: Mapping[UUID, tuple[str, str]],
        moves: Mapping[UUID, tuple[UUID, UUID] | None],
        version: int,
    ) -> int:
        """Move the live sessions off removed states, each with a ``journey_transition``
        event that says so (the log alone gives the position); their version is bumped,
        so a turn computed on the old position gets a conflict."""
        moved = 0
        for old_state, target in moves.items():
            content, journey_id, state_id = publishing.move_record(
                new, removed[old_state], target, version
            )
            s = t.session
            returning: list[Any] = [s.c.id, s.c.event_count]
            citus = await self._on_citus(conn)
            if self.dialect == "postgresql" and not citus:  # wake waiters at commit
                payload = sa.cast(s.c.id, sa.Text) + ":" + sa.cast(s.c.event_count - 1, sa.Text)
                returning.append(sa.func.pg_notify("parlant_events", payload))
            rows = (
                await conn.execute(
                    sa.update(s)
                    .where(
                        s.c.current_state_id == old_state,
                        s.c.status == SessionStatus.ACTIVE.value,
                    )
                    .values(
                        current_journey_id=journey_id,
                        current_state_id=state_id,
                        event_count=s.c.event_count + 1,
                        updated_at=sa.func.now(),
                    )
                    .returning(*returning)
                )
            ).all()
            if rows and citus:  # from the coordinator, where the listeners are
                await sharding.notify_events(conn, [(r.id, r.event_count - 1) for r in rows])
            if rows:
                await self._bump_versions(conn, [row.id for row in rows])
                await conn.execute(
                    _INSERT_MOVE_EVENTS,
                    [
                        {
                            "id": uuid.uuid4(),
                            "session_id": row.id,
                            "offset": row.event_count - 1,
                            "event_type": EventType.JOURNEY_TRANSITION.value,
                            "content": content,
                            "metadata": {},
                            "tool_call_id": None,
                            "journey_id": journey_id,
                            "state_id": state_id,
                        }
                        for row in rows
                    ],
                )
            moved += len(rows)
        return moved

    async def _bump_versions(self, conn: AsyncConnection, sessions: list[UUID]) -> None:
        """Move the sessions' versions on (a turn computed before a publish moved its
        session then gets a conflict); in id order, the order turns lock them in."""
        statement = self._insert(_STATE).values(session_id=sa.bindparam("sid"), version=1)
        statement = statement.on_conflict_do_update(
            index_elements=["session_id"], set_={"version": _STATE.c.version + 1}
        )
        await conn.execute(statement, [{"sid": sid} for sid in sorted(sessions)])

    async def _notify_republish(self, conn: AsyncConnection, agent_id: UUID, version: int) -> None:
        if self.dialect == "postgresql":
            await conn.execute(
                sa.select(sa.func.pg_notify("parlant_agents", f"{agent_id}:{version}"))
            )

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
        keyed = sa.and_(
            _KEYS.c.session_id == t.event.c.session_id, _KEYS.c.offset == t.event.c.offset
        )
        return (
            sa.select(t.event, _KEYS.c.idempotency_key)
            .select_from(
                t.event.join(t.session, t.session.c.id == t.event.c.session_id).outerjoin(
                    _KEYS, keyed
                )
            )
            .where(t.event.c.session_id == sid, t.session.c.workspace_id == ws)
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
        query = self._events_query(workspace_id, session_id).where(
            _KEYS.c.idempotency_key == idempotency_key
        )
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
            raise NotFound(f"no session {session_id} in workspace {workspace_id!r}")
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
                raise NotFound(f"no session {session_id} in workspace {workspace_id!r}")
            message = None
            if idempotency_key is not None and _storable(idempotency_key):
                query = self._events_query(workspace_id, session_id).where(
                    _KEYS.c.idempotency_key == idempotency_key
                )
                found = (await conn.execute(query)).first()
                message = _event(found) if found is not None else None
        first = rows[0]
        return TurnRead(_session(first), int(first.agent_version), _merged_variables(rows), message)

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
                key = next(c.key for c in turn.variables if c.scope is VariableScope.CUSTOMER)
                raise InvalidData(
                    f"variable {key!r} is customer-scoped, but the session has no customer"
                )
            events = await self._append_events(conn, turn, row.event_count, event_ids)
            await self._write_variables(conn, row, turn)
            await self._record_usage(conn, workspace_id, turn.session_id, version, turn.usage)
            return _session(row, version=version), events

        async def committed() -> bool:
            """Whether the turn landed: its first event is in the log (a turn without
            events: the session's version moved past the one it was computed at)."""
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

        async def explain(exc: IntegrityError) -> NoReturn:
            await self._explain_integrity_error(workspace_id, turn, exc)

        session, events = await self._transact(work, committed=committed, explain=explain)
        self._notifier.local_commit(turn.session_id)
        return CommittedTurn(session, events)

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
            raise ConcurrentUpdate(
                f"session {turn.session_id} is at version {current or 0}, the turn was "
                f"computed at {turn.expected_version}; reload the session and retry"
            )
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
                raise ConcurrentUpdate(
                    f"session {turn.session_id} is at version {current.version}, the turn was "
                    f"computed at {turn.expected_version}; reload the session and retry"
                )
            raise InvalidData(
                f"state {turn.current_state_id} of journey {turn.current_journey_id}, or a "
                "journey or state an event names, is not a state of the session's agent"
            )
        if citus:
            self._session_agents.remember(row.id, row.agent_id)
            if turn.events:  # from the coordinator, where the listeners are
                await sharding.notify_events(conn, [(row.id, row.event_count - 1)])
        return row

    async def _write_variables(
        self, conn: AsyncConnection, session: sa.Row[Any], turn: TurnCommit
    ) -> None:
        by_scope: dict[VariableScope, list[dict[str, Any]]] = {}
        for change in turn.variables:
            row = {
                "id": uuid.uuid4(),
                "agent_id": session.agent_id,
                "key": change.key,
                "scope": change.scope.value,
                "value": change.value,
                "value_type": change.value_type.value,
                "is_private": change.is_private,
            }
            if change.scope is VariableScope.CUSTOMER:  # commit_turn checked it has a customer
                row["customer_id"] = session.customer_id
                del row["scope"]  # the table holds customer values only
            else:
                row["session_id"] = session.id
            by_scope.setdefault(change.scope, []).append(row)
        for scope, rows in by_scope.items():
            # in key order: two turns of one customer's sessions lock its rows in one order
            rows.sort(key=lambda row: str(row["key"]))
            statement = self._upserts.get(scope)
            if statement is None:
                statement = self._upserts[scope] = self._variable_upsert(scope)
            await conn.execute(statement, rows)

    def _variable_upsert(self, scope: VariableScope) -> Any:
        """``INSERT ... ON CONFLICT DO UPDATE`` of one scope's variable rows (built once)."""
        if scope is VariableScope.CUSTOMER:
            table = _CUSTOMER
            conflict: dict[str, Any] = {"index_elements": ["agent_id", "customer_id", "key"]}
        else:
            table = t.variable
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
        if "offset" in str(exc.orig):
            # another writer (the host platform numbers its events MAX(offset) + 1) took
            # an offset between this turn's count and its insert: nothing was written
            raise ConcurrentUpdate(
                f"another writer appended to session {turn.session_id} while the turn was "
                "committed; reload the session and retry"
            ) from exc
        for event in turn.events:
            if event.idempotency_key is not None:
                found = await self.find_message(ws, turn.session_id, event.idempotency_key)
                if found is not None:
                    raise DuplicateMessage(
                        f"a message with idempotency key {event.idempotency_key!r} is already "
                        f"recorded at offset {found.offset}",
                        offset=found.offset,
                    ) from exc
        raise InvalidData(f"the turn breaks a database constraint: {exc.orig}") from exc

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

    async def _lock_for_roll_up(self, conn: AsyncConnection, workspaces: list[str]) -> None:
        """Take, in the order publishes take them, the locks a roll-up's updates would
        otherwise take in the order of its deltas (PostgreSQL; SQLite has one writer)."""
        if self.dialect != "postgresql" or not workspaces:
            return
        for ws in workspaces:
            await self._lock_publishing(conn, ws)
        await conn.execute(
            sa.select(t.agent.c.id)
            .where(t.agent.c.workspace_id.in_(workspaces))
            .order_by(t.agent.c.id)
            .with_for_update(key_share=True)
        )

    async def usage(self, workspace_id: str, entity: str, entity_id: UUID) -> dict[str, int]:
        """Stored totals plus the deltas not yet rolled up."""
        table, counters = _usage_table(entity)  # an unknown kind is InvalidData first
        _check_workspace(workspace_id)
        async with self._read() as conn:
            row = (
                await conn.execute(
                    sa.select(*(table.c[c] for c in sorted(counters))).where(
                        table.c.id == entity_id, _owned_by(entity, workspace_id)
                    )
                )
            ).first()
            if row is None:  # unknown, or another workspace's: the same answer
                raise NotFound(f"no {entity} {entity_id} in workspace {workspace_id!r}")
            pending = await conn.execute(
                sa.select(_DELTAS.c.deltas).where(_DELTAS.c.workspace_id == workspace_id)
            )
            totals = {counter: int(value) for counter, value in row._mapping.items()}
            prefix = f"{entity}:{entity_id}:"
            for (deltas,) in pending:
                for key, delta in deltas.items():
                    if key.startswith(prefix):
                        counter = key[len(prefix) :]
                        totals[counter] = totals.get(counter, 0) + int(delta)
        return totals

    async def roll_up_usage(self) -> int:
        """Fold pending deltas into the counter columns, in one transaction.

        The deltas are deleted and returned by one statement, and exactly those are
        folded: a delta committed meanwhile stays for the next roll-up, never lost.
        """

        async def work(conn: AsyncConnection) -> int:
            if await self._on_citus(conn):  # sharded and reference tables in one transaction
                await sharding.one_connection_per_node(conn)
            deleted = await conn.execute(
                sa.delete(_DELTAS).returning(_DELTAS.c.workspace_id, _DELTAS.c.deltas)
            )
            sums: dict[tuple[str, str, UUID, str], int] = {}
            folded = 0
            for workspace_id, deltas in deleted.all():
                for name, delta in deltas.items():
                    entity, entity_id, counter = parse_usage_key(name)
                    key = (workspace_id, entity, entity_id, counter)
                    sums[key] = sums.get(key, 0) + int(delta)
                    folded += 1
            # the lock order of a publish: each workspace's publish lock, then its agents'
            # rows, then what belongs to them (counters of tools and journeys alike)
            await self._lock_for_roll_up(conn, sorted({key[0] for key in sums}))
            for (workspace_id, entity, entity_id, counter), delta in sums.items():
                table, counters = _usage_table(entity)
                if counter in counters:
                    column = table.c[counter]
                    # only the workspace's own entity: a delta naming another's is dropped
                    await conn.execute(
                        sa.update(table)
                        .where(table.c.id == entity_id, _owned_by(entity, workspace_id))
                        .values({column: column + delta})
                    )
            tools = {i for (_, entity, i, _) in sums if entity == "tool"}
            integrations = {i for (_, entity, i, _) in sums if entity == "tool_integration"}
            if tools or integrations:
                await _derive_tool_health(conn, tools, integrations)
            return folded

        return await self._transact(work)


async def _derive_tool_health(
    conn: AsyncConnection, tools: set[UUID], integrations: set[UUID]
) -> None:
    """``success_rate`` of the tools and ``health_status`` of their integrations, from
    the counters just rolled up, by the rule of ``parlant_runtime/engine/health.py``."""
    tool, ti = t.tool, t.tool_integration
    if integrations:
        owners = sa.select(ti.c.parlant_tool_id).where(ti.c.id.in_(integrations))
        tools = tools | set((await conn.execute(owners)).scalars())
    errors = (
        sa.select(sa.func.coalesce(sa.func.sum(ti.c.error_count), 0))
        .where(ti.c.parlant_tool_id == tool.c.id)
        .scalar_subquery()
    )
    rate = sa.case(
        (tool.c.use_count > 0, (100 * (tool.c.use_count - errors)) // tool.c.use_count),
        else_=100,
    )
    await conn.execute(sa.update(tool).where(tool.c.id.in_(tools)).values(success_rate=rate))
    uses = sa.select(tool.c.use_count).where(tool.c.id == ti.c.parlant_tool_id).scalar_subquery()
    share = (100 * (uses - ti.c.error_count)) // uses
    health = sa.case(
        (ti.c.enabled == sa.false(), "disabled"),
        (uses <= 0, "unknown"),
        (share >= TOOL_HEALTHY, "healthy"),
        (share >= TOOL_DEGRADED, "degraded"),
        else_="failing",
    )
    await conn.execute(
        sa.update(ti)
        .where(ti.c.parlant_tool_id.in_(tools))
        .values(health_status=health, last_health_check=sa.func.now())
    )


def _owned_by(entity: str, ws: str) -> Any:
    """A condition on the entity's table: the row belongs to workspace ``ws``."""
    table = _USAGE_TABLES[entity]
    agents_of_workspace = sa.select(t.agent.c.id).where(t.agent.c.workspace_id == ws)
    if entity in ("agent", "tool", "session"):
        return table.c.workspace_id == ws
    if entity == "tool_integration":
        tools = sa.select(t.tool.c.id).where(t.tool.c.workspace_id == ws)
        return table.c.parlant_tool_id.in_(tools)
    if entity in ("guideline", "canned_response", "journey", "agent_knowledge_base"):
        return table.c.agent_id.in_(agents_of_workspace)
    journeys = sa.select(t.journey.c.id).where(t.journey.c.agent_id.in_(agents_of_workspace))
    return table.c.journey_id.in_(journeys)  # transition, journey_guideline


def _usage_table(entity: str) -> tuple[sa.Table, frozenset[str]]:
    counters = counters_of(entity)  # InvalidData for a kind without counters
    return _USAGE_TABLES[entity], counters


@dataclass(frozen=True, slots=True)
class _TurnShape:
    """What the session UPDATE of a turn sets and checks (one statement per shape)."""

    mode: bool
    metadata: bool
    status: bool
    ends: bool
    state: bool
    journeys: bool
    states: bool
    notify: bool
    locks: bool
    """Take the agent's lock (PostgreSQL)."""


def agent_lock(agent_id: Any) -> Any:
    """The key of an agent's advisory lock: shared by its turns and session creations,
    exclusive for a publish of it."""
    return sa.func.hashtextextended(sa.literal(_AGENT_LOCK) + sa.cast(agent_id, sa.Text), 0)


# a turn's agent lock as a statement of its own (Citus: see .sharding)
_LOCK_AGENT_SHARED = sa.select(
    sa.func.pg_advisory_xact_lock_shared(agent_lock(sa.bindparam("agent", type_=t.UUID)))
)


def _session_update(shape: _TurnShape) -> Any:
    """The compare-and-set ``UPDATE ... RETURNING`` of a turn of this shape, with bound
    parameters (see :meth:`SqlStore._advance_session` for their names).

    Every journey and state the turn names (its position and its events') must belong to
    the session's agent: checked inside the compare-and-set, so they cost no round trip
    of their own.
    """
    s, j, st, e = t.session, t.journey, t.journey_state, t.event
    # the next offset comes from the log, not the counter: the host platform appends
    # events as MAX(offset) + 1 and leaves event_count alone (one index look-up)
    next_offset = (
        sa.select(sa.func.coalesce(sa.func.max(e.c.offset) + 1, 0))
        # the session's id as a parameter, not the outer row's column: Citus routes the
        # UPDATE to the session's shard only when each table is pinned by a value
        .where(e.c.session_id == sa.bindparam("sid"))
        .scalar_subquery()
    )
    values: dict[str, Any] = {
        "event_count": next_offset + sa.bindparam("new_events", type_=sa.Integer),
        "message_count": s.c.message_count + sa.bindparam("new_messages", type_=sa.Integer),
        "current_journey_id": sa.bindparam("journey", type_=s.c.current_journey_id.type),
        "current_state_id": sa.bindparam("state", type_=s.c.current_state_id.type),
        "last_activity_at": sa.func.now(),
        "updated_at": sa.func.now(),
    }
    if shape.mode:
        values["mode"] = sa.bindparam("new_mode", type_=s.c.mode.type)
    if shape.metadata:
        values["metadata"] = sa.bindparam("new_metadata", type_=s.c.metadata.type)
    if shape.status:
        values["status"] = sa.bindparam("new_status", type_=s.c.status.type)
    if shape.ends:
        values["ended_at"] = sa.func.now()
    conditions: list[Any] = [
        s.c.id == sa.bindparam("sid"),
        s.c.workspace_id == sa.bindparam("ws"),
    ]
    if shape.locks:
        # the turn's first lock (PostgreSQL): its agent's lock, shared. A publish takes
        # it exclusively, so a turn runs wholly before a publish of its agent or waits
        # for it here, holding nothing; the lock queues fairly, so a stream of turns
        # cannot starve a publish (see "Locks and retries" in docs/storage.md)
        conditions.append(
            sa.func.pg_advisory_xact_lock_shared(agent_lock(s.c.agent_id)).is_not(None)
        )
    if shape.state:  # the state is one of the agent's, of the journey given with it
        conditions.append(
            sa.exists(
                sa.select(st.c.id)
                .join(j, j.c.id == st.c.journey_id)
                .where(
                    st.c.id == sa.bindparam("state"),
                    j.c.id == sa.bindparam("journey"),
                    j.c.agent_id == s.c.agent_id,
                )
            )
        )
    if shape.journeys:
        owned = (
            sa.select(sa.func.count())
            .select_from(j)
            .where(
                j.c.id.in_(sa.bindparam("journeys", expanding=True)), j.c.agent_id == s.c.agent_id
            )
            .scalar_subquery()
        )
        conditions.append(owned == sa.bindparam("journey_count"))
    if shape.states:
        owned = (
            sa.select(sa.func.count())
            .select_from(st.join(j, j.c.id == st.c.journey_id))
            .where(
                st.c.id.in_(sa.bindparam("states", expanding=True)), j.c.agent_id == s.c.agent_id
            )
            .scalar_subquery()
        )
        conditions.append(owned == sa.bindparam("state_count"))
    returning: list[Any] = list(s.c)
    if shape.notify:  # tell listeners in the same round trip (delivered at commit)
        payload = (
            sa.cast(s.c.id, sa.Text)
            + ":"
            + sa.cast(s.c.event_count - 1, sa.Text)  # RETURNING sees the new count
        )
        returning.append(sa.func.pg_notify("parlant_events", payload).label("notified"))
    return sa.update(s).where(*conditions).values(values).returning(*returning)
