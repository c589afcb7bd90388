"""A commit or a publish interrupted in the middle leaves nothing half-written.

Each test brings a session to a known state with one committed turn, starts a
second turn that changes everything a turn can change (three events, the position,
a variable set and one added, a usage delta) and interrupts it after some of its
writes have run:

- PostgreSQL, where a turn is one statement (a chain of data-modifying ``WITH``
  queries, its own transaction): the statement's own backend is terminated by a
  trigger on its last write (the usage row), after the session's update, the events
  and the variables; a trigger raises there; the backend is terminated from another
  connection while the statement waits on a lock the test holds; the commit's task is
  cancelled while it waits on that lock;
- SQLite, where a turn is a transaction of several statements: an exception is
  raised between two of them (after the variable upserts);
- both dialects: a publish fails half-way through writing the agent's rows.

Afterwards the session (version, position, counters), its events, its variables
and the usage counters are exactly as before, and the same turn committed again
with the same ``expected_version`` succeeds on the same store; the agent is as it
was before the failed publish, and publishing again succeeds.

A turn whose connection dies with its outcome unknown is reported as it landed:
once, whether the server committed it or not, and also when it lands only after the
store first found it had not (a backend that went on alone).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg  # type: ignore[import-untyped]  # no stubs, no py.typed
import pytest
import sqlalchemy as sa

from parlant_runtime.model import EventType, Session
from parlant_runtime.storage import publishing
from parlant_runtime.storage.port import (
    NewEvent,
    NotFound,
    SessionStart,
    StorageError,
    TurnCommit,
    VariableChange,
)
from parlant_runtime.storage.sql import schema as t
from parlant_runtime.storage.sql._sqlite_turns import _Commit
from parlant_runtime.storage.sql.store import SqlStore
from tests.storage_stress import WS, agent_bundle, asyncpg_dsn, upgraded_postgres, upgraded_sqlite

LOCK_WAIT = 10.0
"""Seconds to wait for the commit to block on the test's lock."""


class Interrupted(RuntimeError):
    """The failure the tests inject."""


@pytest.fixture
def postgres() -> Iterator[str]:
    with upgraded_postgres() as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        with upgraded_sqlite(tmp_path) as url:
            yield url
    else:
        with upgraded_postgres() as url:
            yield url


# ------------------------------------------------------------------ a session and its state


@dataclass(frozen=True, slots=True)
class Setup:
    agent_id: UUID
    session: Session
    positions: dict[str, tuple[UUID, UUID]]
    """State name -> (journey id, state id)."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything of a session a turn can change."""

    session: tuple[Any, ...]
    events: tuple[tuple[int, str, str], ...]
    variables: tuple[tuple[str, str], ...]
    usage: tuple[tuple[str, int], ...]
    rows: tuple[int, int, int]
    """Rows in parlant_event, session-scoped parlant_variable and usage_delta."""


async def _set_up(store: SqlStore) -> Setup:
    await store.ensure_workspace(WS)
    agent_id = (await store.publish(WS, agent_bundle())).agent_id
    journey = (await store.load_agent(WS, agent_id)).bundle.journeys[0]
    positions = {state.name: (journey.id, state.id) for state in journey.states}
    session = await store.create_session(WS, SessionStart(agent_id=agent_id, customer_id="c1"))
    journey_id, state_id = positions["s0"]
    first = TurnCommit(
        session_id=session.id,
        expected_version=session.version,
        events=[
            NewEvent(event_type=EventType.CUSTOMER_MESSAGE, content={"text": "hello"}),
            NewEvent(event_type=EventType.AGENT_MESSAGE, content={"text": "which day?"}),
        ],
        current_journey_id=journey_id,
        current_state_id=state_id,
        variables=[VariableChange(key="day", value="monday")],
    )
    session = await store.commit_turn(WS, first)
    return Setup(agent_id, session, positions)


def _second_turn(setup: Setup) -> TurnCommit:
    """A turn that changes everything: events, position, variables, usage."""
    journey_id, state_id = setup.positions["s1"]
    return TurnCommit(
        session_id=setup.session.id,
        expected_version=setup.session.version,
        events=[
            NewEvent(
                event_type=EventType.CUSTOMER_MESSAGE,
                content={"text": "tuesday"},
                idempotency_key="m2",
            ),
            NewEvent(event_type=EventType.JOURNEY_TRANSITION, content={"to": "s1"}),
            NewEvent(event_type=EventType.AGENT_MESSAGE, content={"text": "booked"}),
        ],
        current_journey_id=journey_id,
        current_state_id=state_id,
        variables=[
            VariableChange(key="day", value="tuesday"),
            VariableChange(key="note", value="asked twice"),
        ],
        usage={f"agent:{setup.agent_id}:total_messages": 2},
    )


async def _snapshot(store: SqlStore, setup: Setup) -> Snapshot:
    sid = setup.session.id
    session = await store.get_session(WS, sid)
    events = await store.list_events(WS, sid)
    variables = await store.get_variables(WS, sid)
    usage = await store.usage(WS, "agent", setup.agent_id)
    async with store.engine.connect() as conn:
        rows = (
            await conn.scalar(sa.select(sa.func.count()).select_from(t.event)),
            await conn.scalar(
                sa.select(sa.func.count()).where(t.variable.c.session_id.is_not(None))
            ),
            await conn.scalar(sa.select(sa.func.count()).select_from(t.usage_delta)),
        )
    return Snapshot(
        session=(
            session.version,
            session.current_journey_id,
            session.current_state_id,
            session.event_count,
            session.message_count,
            session.status,
            session.mode,
        ),
        events=tuple((e.offset, e.event_type.value, repr(e.content)) for e in events),
        variables=tuple((v.key, repr(v.value)) for v in variables),
        usage=tuple(sorted(usage.items())),
        rows=(int(rows[0] or 0), int(rows[1] or 0), int(rows[2] or 0)),
    )


async def _retry_succeeds(store: SqlStore, setup: Setup, before: Snapshot) -> None:
    """The interrupted turn, committed again with the same expected version, lands whole."""
    turn = _second_turn(setup)
    after = await store.commit_turn(WS, turn)
    assert after.version == setup.session.version + 1
    assert after.event_count == setup.session.event_count + 3
    assert (after.current_journey_id, after.current_state_id) == setup.positions["s1"]
    events = await store.list_events(WS, setup.session.id)
    assert [e.offset for e in events] == list(range(len(before.events) + 3))
    assert [e.content for e in events[-3:]] == [e.content for e in turn.events]
    variables = {v.key: v.value for v in await store.get_variables(WS, setup.session.id)}
    assert (variables["day"], variables["note"]) == ("tuesday", "asked twice")
    usage = await store.usage(WS, "agent", setup.agent_id)
    assert usage["total_messages"] == dict(before.usage)["total_messages"] + 2


async def _interrupted_commit(
    url: str,
    monkeypatch: pytest.MonkeyPatch,
    interrupt: Callable[[SqlStore, Setup, pytest.MonkeyPatch], Awaitable[BaseException | None]],
) -> None:
    """Set up, snapshot, interrupt the second turn, check nothing changed, retry."""
    store = SqlStore.open(url)
    try:
        setup = await _set_up(store)
        before = await _snapshot(store, setup)
        with monkeypatch.context() as patch:
            raised = await interrupt(store, setup, patch)
        assert raised is not None, "the interrupted commit reported success"
        assert await _snapshot(store, setup) == before
        await _retry_succeeds(store, setup, before)
    finally:
        await store.close()


async def _commit(store: SqlStore, setup: Setup) -> BaseException | None:
    try:
        await store.commit_turn(WS, _second_turn(setup))
    except (StorageError, Interrupted, asyncio.CancelledError) as exc:
        return exc
    return None


# ------------------------------------------------------------------ interruptions


async def _raise_between_statements(
    store: SqlStore, setup: Setup, patch: pytest.MonkeyPatch
) -> BaseException | None:
    """SQLite: the variables are upserted (after the session update and the events),
    then a raise, in the writer's thread (see ``_sqlite_turns``)."""
    real = _Commit._write_variables

    def write_then_raise(self: _Commit, connection: sqlite3.Connection, row: Any) -> None:
        real(self, connection, row)
        raise Interrupted("between two statements of the commit")

    patch.setattr(_Commit, "_write_variables", write_then_raise)
    raised = await _commit(store, setup)
    assert isinstance(raised, Interrupted)
    return raised


@asynccontextmanager
async def _trigger_on_usage(url: str, action: str) -> AsyncIterator[None]:
    """A trigger that runs ``action`` (PL/pgSQL) before the usage row of a commit is
    inserted: the commit's last write, after the session's update, the events and the
    variables."""
    admin = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await admin.execute(
            "CREATE FUNCTION test_interrupt() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN {action}; RETURN NEW; END $$;"
            "CREATE TRIGGER test_interrupt BEFORE INSERT ON parlant_runtime.usage_delta "
            "FOR EACH ROW EXECUTE FUNCTION test_interrupt()"
        )
        yield
    finally:
        await admin.execute(
            "DROP TRIGGER IF EXISTS test_interrupt ON parlant_runtime.usage_delta;"
            "DROP FUNCTION IF EXISTS test_interrupt()"
        )
        await admin.close()


def _in_the_statement(
    url: str, action: str
) -> Callable[[SqlStore, Setup, pytest.MonkeyPatch], Awaitable[BaseException | None]]:
    """PostgreSQL: ``action`` runs inside the turn's statement, at its last write."""

    async def interrupt(
        store: SqlStore, setup: Setup, patch: pytest.MonkeyPatch
    ) -> BaseException | None:
        del patch
        async with _trigger_on_usage(url, action):
            raised = await _commit(store, setup)
        assert type(raised) is StorageError, raised
        return raised

    return interrupt


@asynccontextmanager
async def _usage_locked(url: str) -> AsyncIterator[asyncpg.Connection]:
    """Hold a lock that stops the commit before it writes the usage row (PostgreSQL: before
    its one statement runs); yield an admin connection."""
    holder = await asyncpg.connect(asyncpg_dsn(url))
    admin = await asyncpg.connect(asyncpg_dsn(url))
    try:
        async with holder.transaction():
            await holder.execute("LOCK TABLE parlant_runtime.usage_delta IN EXCLUSIVE MODE")
            yield admin
    finally:
        await holder.close()
        await admin.close()


async def _blocked_commit(admin: asyncpg.Connection) -> int:
    """The pid of the backend whose commit waits on the lock: the turn's one statement
    (``WITH v AS (...) ... INSERT INTO parlant_runtime.usage_delta ...``; PostgreSQL
    locks the tables a statement writes before it runs it, and shows the statement's
    first kilobyte only)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + LOCK_WAIT
    while loop.time() < deadline:
        pid: int | None = await admin.fetchval(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND query ILIKE 'WITH v AS%'"
        )
        if pid is not None:
            return pid
        await asyncio.sleep(0.02)
    raise AssertionError("the commit never waited on the lock")


def _while_blocked(
    url: str, stop: Callable[[asyncpg.Connection, int, asyncio.Task[BaseException | None]], Any]
) -> Callable[[SqlStore, Setup, pytest.MonkeyPatch], Awaitable[BaseException | None]]:
    async def interrupt(
        store: SqlStore, setup: Setup, patch: pytest.MonkeyPatch
    ) -> BaseException | None:
        del patch
        async with _usage_locked(url) as admin:
            task = asyncio.create_task(_commit(store, setup))
            pid = await _blocked_commit(admin)
            await stop(admin, pid, task)
            try:
                return await asyncio.wait_for(task, LOCK_WAIT)
            except asyncio.CancelledError as exc:
                return exc

    return interrupt


async def _terminate(admin: asyncpg.Connection, pid: int, task: asyncio.Task[Any]) -> None:
    del task
    assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)


async def _cancel(admin: asyncpg.Connection, pid: int, task: asyncio.Task[Any]) -> None:
    del admin, pid
    task.cancel()


# ------------------------------------------------------------------ the tests: turns


@pytest.mark.postgres
def test_a_commit_whose_connection_dies_mid_statement_leaves_nothing(
    postgres: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    asyncio.run(
        _interrupted_commit(
            postgres,
            monkeypatch,
            _in_the_statement(postgres, "PERFORM pg_terminate_backend(pg_backend_pid())"),
        )
    )


@pytest.mark.postgres
def test_a_commit_failing_at_its_last_write_leaves_nothing(
    postgres: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    asyncio.run(
        _interrupted_commit(
            postgres, monkeypatch, _in_the_statement(postgres, "RAISE EXCEPTION 'interrupted'")
        )
    )


@pytest.mark.postgres
def test_a_commit_terminated_while_it_waits_on_a_lock_leaves_nothing(
    postgres: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    asyncio.run(_interrupted_commit(postgres, monkeypatch, _while_blocked(postgres, _terminate)))


@pytest.mark.postgres
def test_a_commit_cancelled_while_it_waits_on_a_lock_leaves_nothing(
    postgres: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    asyncio.run(_interrupted_commit(postgres, monkeypatch, _while_blocked(postgres, _cancel)))


def test_an_exception_between_statements_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with upgraded_sqlite(tmp_path) as url:
        asyncio.run(_interrupted_commit(url, monkeypatch, _raise_between_statements))


# ------------------------------------------------------------------ the tests: publishing


@contextmanager
def _fails_at_transitions(store: SqlStore) -> Iterator[list[str]]:
    """Make the store's statements fail at the first write of journey transitions: by then
    a publish has written the agent row, its journeys and states. Yields the writes
    that ran before."""
    writes: list[str] = []

    def before_cursor_execute(*args: Any) -> None:
        statement = str(args[2]).lstrip().lower()
        if statement.startswith("insert into parlant_journey_transition"):
            raise Interrupted("the publish fails half-way")
        if statement.startswith(("insert", "update", "delete")):
            writes.append(statement.split("(")[0])

    target = store._writer.sync_engine  # writes go through the writer engine
    sa.event.listen(target, "before_cursor_execute", before_cursor_execute)
    try:
        yield writes
    finally:
        sa.event.remove(target, "before_cursor_execute", before_cursor_execute)


@pytest.mark.parametrize("existing", [True, False], ids=["republish", "first-publish"])
def test_a_publish_failing_half_way_leaves_the_agent_unchanged(
    database: str, existing: bool
) -> None:
    old = agent_bundle()
    new = agent_bundle(("s0", "x1", "x2"), guidelines=("be brief", "be kind"))
    agent_id = publishing.for_workspace(old, WS).agent.id

    async def body() -> None:
        store = SqlStore.open(database)
        try:
            await store.ensure_workspace(WS)
            if existing:
                await store.publish(WS, old)
            before = await store.load_agent(WS, agent_id) if existing else None
            with _fails_at_transitions(store) as writes, pytest.raises(Interrupted):
                await store.publish(WS, new)
            assert any("parlant_journey_state" in w for w in writes), writes  # half written
            if before is None:
                with pytest.raises(NotFound):
                    await store.load_agent(WS, agent_id)
                assert await store.find_agent(WS, "Stress") is None
            else:
                after = await store.load_agent(WS, agent_id)
                assert (after.version, after.bundle) == (before.version, before.bundle)
            report = await store.publish(WS, new)
            assert report.written
            again = await store.load_agent(WS, agent_id)
            assert again.version == (before.version + 1 if before else 1)
            assert again.bundle == publishing.for_workspace(new, WS)
        finally:
            await store.close()

    asyncio.run(body())


# ------------------------------------------------------------------ the tests: a lost commit


def _lose_the_statement(patch: pytest.MonkeyPatch, *, after: bool) -> list[str]:
    """Make the next turn statement (PostgreSQL: one statement in autocommit, its own
    commit) lose its connection: ``after`` the server committed it (the reply is lost) or
    before it was sent. Returns a list that records it happened."""
    real: Any = asyncpg.Connection.fetch
    lost: list[str] = []

    async def fetch(self: Any, query: str, *args: Any, **kwargs: Any) -> Any:
        if lost or not query.startswith("WITH v AS"):
            return await real(self, query, *args, **kwargs)
        lost.append("after" if after else "before")
        if after:
            await real(self, query, *args, **kwargs)
        self.terminate()  # the socket is gone, as in a server restart
        return await real(self, query, *args, **kwargs)  # the driver's "connection is closed"

    patch.setattr(asyncpg.Connection, "fetch", fetch)
    return lost


@pytest.mark.postgres
@pytest.mark.parametrize("after", [True, False], ids=["reply-lost", "statement-not-sent"])
def test_a_turn_whose_commit_loses_its_connection_is_reported_as_it_landed(
    postgres: str, monkeypatch: pytest.MonkeyPatch, after: bool
) -> None:
    """The turn landed once and the call says so, whether the server committed or not."""

    async def body() -> None:
        store = SqlStore.open(postgres)
        try:
            setup = await _set_up(store)
            before = await _snapshot(store, setup)
            with monkeypatch.context() as patch:
                lost = _lose_the_statement(patch, after=after)
                session = await store.commit_turn(WS, _second_turn(setup))
            assert lost == ["after" if after else "before"]
            assert session.version == setup.session.version + 1
            events = await store.list_events(WS, setup.session.id)
            assert [e.offset for e in events] == list(range(len(before.events) + 3))
            assert [e.idempotency_key for e in events].count("m2") == 1
        finally:
            await store.close()

    asyncio.run(body())


@pytest.mark.postgres
def test_a_turn_that_lands_after_its_connection_died_is_reported_as_landed(
    postgres: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The statement's connection dies before the reply and the store finds the turn has
    not landed; then it lands (a backend that went on alone), before the store's next
    attempt: that attempt finds the version taken and the key recorded, asks again, and
    the call reports the turn as landed, recorded once."""

    async def body() -> None:
        store = SqlStore.open(postgres)
        late = await asyncpg.connect(asyncpg_dsn(postgres))
        try:
            setup = await _set_up(store)
            before = await _snapshot(store, setup)
            sent: list[tuple[str, tuple[Any, ...]]] = []
            real_fetch: Any = asyncpg.Connection.fetch
            real_landed: Any = SqlStore._landed

            async def fetch(self: Any, query: str, *args: Any, **kwargs: Any) -> Any:
                if sent or not query.startswith("WITH v AS"):
                    return await real_fetch(self, query, *args, **kwargs)
                sent.append((query, args))  # not run here: the backend "goes on alone"
                self.terminate()
                return await real_fetch(self, query, *args, **kwargs)

            async def landed(self: SqlStore, *args: Any) -> bool:
                found: bool = await real_landed(self, *args)
                if not found and sent and len(sent) == 1:
                    query, arguments = sent[0]
                    await real_fetch(late, query, *arguments)  # it lands now
                    sent.append(("landed", ()))
                return found

            with monkeypatch.context() as patch:
                patch.setattr(asyncpg.Connection, "fetch", fetch)
                patch.setattr(SqlStore, "_landed", landed)
                session = await store.commit_turn(WS, _second_turn(setup))
            assert [query for query, _ in sent][1:] == ["landed"]
            assert session.version == setup.session.version + 1
            events = await store.list_events(WS, setup.session.id)
            assert [e.offset for e in events] == list(range(len(before.events) + 3))
            assert [e.idempotency_key for e in events].count("m2") == 1
        finally:
            await late.close()
            await store.close()

    asyncio.run(body())
