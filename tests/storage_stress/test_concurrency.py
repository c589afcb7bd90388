"""Many processes commit turns to one session; two publishes of one agent race.

Turns: several processes (``multiprocessing``, spawn) run several asyncio tasks
each, all committing turns to the SAME session through their own
:class:`SqlStore`. A turn reads the session, appends two or three events that carry
its turn id and attempt number, moves the session to a state and commits with the
version it read; on :class:`ConcurrentUpdate` it reads again and retries, a bounded
number of times. Every attempt is recorded (accepted or refused) and sent back
through a queue. The first attempt of every task waits at a barrier shared by all
processes after its read, so at least one round is a real race whatever the
scheduler does: exactly one of those attempts can win.

Afterwards the log must be exactly the accepted attempts: offsets contiguous from
0, no duplicates, the session's version and counters equal to what was accepted,
each accepted attempt's events at the offsets its commit reported, no event of a
refused attempt, and the position of the last accepted turn.

Publishes: two publishes of different bundles of the same agent, forced to overlap
(each waits after its reads until the other has read too, or 1.5 s have passed),
must serialise: the version goes up by one per written publish and the stored
agent equals one of the two bundles.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing
import queue
import sqlite3
import traceback
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass, replace
from multiprocessing.context import SpawnProcess
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import asyncpg  # type: ignore[import-untyped]  # no stubs, no py.typed
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from parlant_runtime.model import EventType, Session
from parlant_runtime.storage import publishing
from parlant_runtime.storage.port import (
    ConcurrentUpdate,
    NewEvent,
    PublishReport,
    SessionStart,
    StorageError,
    TurnCommit,
)
from parlant_runtime.storage.sql.store import SqlStore
from tests.storage_stress import (
    WS,
    agent_bundle,
    asyncpg_dsn,
    upgraded_citus,
    upgraded_postgres,
    upgraded_sqlite,
)

try:
    from sqlalchemy.util import await_
except ImportError:  # SQLAlchemy 2.0 names it await_only
    from sqlalchemy.util import await_only as await_

PROCESSES = 3
TASKS = 4
TURNS = 4
MAX_ATTEMPTS = 40
WORKER_TIMEOUT = 60.0
PARTS = (EventType.CUSTOMER_MESSAGE, EventType.AGENT_MESSAGE, EventType.STATUS_UPDATE)


@pytest.fixture
def postgres() -> Iterator[str]:
    with upgraded_postgres() as url:
        yield url


@pytest.fixture
def citus() -> Iterator[str]:
    with upgraded_citus() as url:
        yield url


@pytest.fixture
def sqlite_file(tmp_path: Path) -> Iterator[str]:
    with upgraded_sqlite(tmp_path) as url:
        yield url


# ------------------------------------------------------------------ the workers


@dataclass(frozen=True, slots=True)
class Attempt:
    """One attempt to commit one turn, as the worker saw it."""

    turn: str
    attempt: int
    events: int
    expected_version: int
    position: int
    """Index into the positions the turn moves the session to."""
    accepted: bool
    error: str | None = None
    """The refused attempt's exception class."""
    version: int | None = None
    """The accepted attempt's session version, as ``commit_turn`` returned it."""
    event_count: int | None = None


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    url: str
    process: int
    session_id: UUID
    positions: tuple[tuple[UUID, UUID], ...]
    """(journey id, state id) pairs the turns move the session to."""
    busy_is_refusal: bool
    """Count a plain StorageError (SQLite: the database is busy) as a refusal."""


def _worker(spec: WorkerSpec, barrier: Barrier, results: Any) -> None:
    """A process: TASKS tasks of TURNS turns each; reports ("done"|"error", process, data)."""
    try:
        records = asyncio.run(_work(spec, barrier))
    except BaseException:
        barrier.abort()
        results.put(("error", spec.process, traceback.format_exc()))
    else:
        results.put(("done", spec.process, records))


async def _work(spec: WorkerSpec, barrier: Barrier) -> list[Attempt]:
    store = SqlStore.open(spec.url)
    try:
        await store.get_session(WS, spec.session_id)  # connect before the race
        per_task = await asyncio.gather(
            *(_turns(store, spec, task, barrier) for task in range(TASKS))
        )
    finally:
        await store.close()
    return [attempt for attempts in per_task for attempt in attempts]


async def _turns(store: SqlStore, spec: WorkerSpec, task: int, barrier: Barrier) -> list[Attempt]:
    records: list[Attempt] = []
    for number in range(TURNS):
        turn = f"p{spec.process}-t{task}-n{number}"
        size = 2 + (spec.process + task + number) % 2
        position = (spec.process * 7 + task * 3 + number) % len(spec.positions)
        journey_id, state_id = spec.positions[position]
        for attempt in range(MAX_ATTEMPTS):
            session = await store.get_session(WS, spec.session_id)
            if number == 0 and attempt == 0:  # every task of every process has read: race
                await asyncio.to_thread(barrier.wait, WORKER_TIMEOUT)
            commit = TurnCommit(
                session_id=spec.session_id,
                expected_version=session.version,
                events=[
                    NewEvent(
                        event_type=PARTS[part],
                        content={"turn": turn, "attempt": attempt, "part": part},
                    )
                    for part in range(size)
                ],
                current_journey_id=journey_id,
                current_state_id=state_id,
            )
            seen = Attempt(turn, attempt, size, session.version, position, accepted=False)
            try:
                after = await store.commit_turn(WS, commit)
            except ConcurrentUpdate:
                records.append(replace(seen, error="ConcurrentUpdate"))
                continue
            except StorageError as exc:
                if not spec.busy_is_refusal or type(exc) is not StorageError:
                    raise
                records.append(replace(seen, error="StorageError"))
                continue
            records.append(
                replace(seen, accepted=True, version=after.version, event_count=after.event_count)
            )
            break
    return records


# ------------------------------------------------------------------ the parent


async def _prepare(url: str) -> tuple[UUID, tuple[tuple[UUID, UUID], ...]]:
    store = SqlStore.open(url)
    try:
        await store.ensure_workspace(WS)
        report = await store.publish(WS, agent_bundle())
        journey = (await store.load_agent(WS, report.agent_id)).bundle.journeys[0]
        positions = tuple((journey.id, state.id) for state in journey.states if not state.is_final)
        session = await store.create_session(WS, SessionStart(agent_id=report.agent_id))
    finally:
        await store.close()
    assert session.version == 0
    return session.id, positions


def _run_workers(
    url: str, session_id: UUID, positions: tuple[tuple[UUID, UUID], ...], *, busy: bool
) -> list[Attempt]:
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(PROCESSES * TASKS)
    results = context.Queue()
    workers: list[SpawnProcess] = [
        context.Process(
            target=_worker,
            args=(WorkerSpec(url, number, session_id, positions, busy), barrier, results),
            daemon=True,
        )
        for number in range(PROCESSES)
    ]
    for worker in workers:
        worker.start()
    attempts: list[Attempt] = []
    errors: list[str] = []
    pending = set(range(PROCESSES))
    loop_deadline = 3 * WORKER_TIMEOUT
    waited = 0.0
    try:
        while pending and waited < loop_deadline:
            try:
                kind, process, data = results.get(timeout=0.5)
            except queue.Empty:
                waited += 0.5
                dead = [w for i, w in enumerate(workers) if i in pending and not w.is_alive()]
                if dead and results.empty():
                    errors.append(f"workers died without a report: {[w.exitcode for w in dead]}")
                    break
                continue
            pending.discard(process)
            if kind == "error":
                errors.append(f"process {process}:\n{data}")
            else:
                attempts.extend(data)
    finally:
        for worker in workers:
            worker.join(timeout=10)
            if worker.is_alive():
                worker.kill()
                worker.join()
        results.close()
        results.join_thread()
    assert not errors, "\n".join(errors)
    assert not pending, f"no report from processes {sorted(pending)}"
    return attempts


async def _check(
    url: str,
    session_id: UUID,
    positions: tuple[tuple[UUID, UUID], ...],
    attempts: list[Attempt],
    refusals: set[str],
) -> None:
    store = SqlStore.open(url)
    try:
        session = await store.get_session(WS, session_id)
        events = await store.list_events(WS, session_id)
    finally:
        await store.close()
    accepted = [a for a in attempts if a.accepted]
    refused = [a for a in attempts if not a.accepted]

    # every attempt is accounted for, and the race at the barrier had exactly one winner
    assert len(attempts) == len({(a.turn, a.attempt) for a in attempts})
    first_round = [a for a in attempts if a.turn.endswith("-n0") and a.attempt == 0]
    assert len(first_round) == PROCESSES * TASKS
    assert len({a.expected_version for a in first_round}) == 1
    assert sum(a.accepted for a in first_round) == 1
    assert Counter(a.turn for a in accepted).most_common(1)[0][1] == 1  # a turn lands once

    # the log: contiguous offsets, no duplicates, exactly the accepted attempts' events
    assert [e.offset for e in events] == list(range(len(events)))
    written = [(e.content["turn"], e.content["attempt"], e.content["part"]) for e in events]
    assert len(set(written)) == len(written)
    assert set(written) == {(a.turn, a.attempt, part) for a in accepted for part in range(a.events)}
    refused_keys = {(a.turn, a.attempt) for a in refused}
    assert not [w for w in written if (w[0], w[1]) in refused_keys]
    assert {a.error for a in refused} <= refusals

    # the session row agrees with what was accepted
    assert session.version == len(accepted)
    assert session.event_count == len(events) == sum(a.events for a in accepted)
    assert session.message_count == 2 * len(accepted)  # parts 0 and 1 are messages

    # each accepted attempt: a version of its own, its events where its commit said
    assert sorted(a.version or 0 for a in accepted) == list(range(1, len(accepted) + 1))
    offset_of = {key: event.offset for key, event in zip(written, events, strict=True)}
    for a in accepted:
        assert a.version == a.expected_version + 1
        assert a.event_count is not None
        assert [offset_of[(a.turn, a.attempt, p)] for p in range(a.events)] == list(
            range(a.event_count - a.events, a.event_count)
        )
    last = max(accepted, key=lambda a: a.version or 0)
    assert (session.current_journey_id, session.current_state_id) == positions[last.position]


def _stress(url: str, *, busy: bool, refusals: set[str]) -> None:
    session_id, positions = asyncio.run(_prepare(url))
    attempts = _run_workers(url, session_id, positions, busy=busy)
    asyncio.run(_check(url, session_id, positions, attempts, refusals))


@pytest.mark.postgres
def test_turns_from_several_processes_never_fork_or_lose_on_postgres(postgres: str) -> None:
    _stress(postgres, busy=False, refusals={"ConcurrentUpdate"})


@pytest.mark.citus
def test_turns_from_several_processes_never_fork_or_lose_on_citus(citus: str) -> None:
    _stress(citus, busy=False, refusals={"ConcurrentUpdate"})


def test_turns_from_several_processes_never_fork_or_lose_on_sqlite(sqlite_file: str) -> None:
    _stress(sqlite_file, busy=True, refusals={"ConcurrentUpdate", "StorageError"})


# ------------------------------------------------------------------ publishes


class Rendezvous:
    """Each caller waits until ``parties`` have arrived, or ``timeout`` seconds."""

    def __init__(self, parties: int, timeout: float) -> None:
        self.parties = parties
        self.timeout = timeout
        self.arrived = 0
        self._all = asyncio.Event()

    async def arrive(self) -> None:
        self.arrived += 1
        if self.arrived >= self.parties:
            self._all.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._all.wait(), self.timeout)


async def _race_publishes(url: str, monkeypatch: pytest.MonkeyPatch, *, existing: bool) -> None:
    first = agent_bundle(("a1", "a2"), guidelines=("say hi",))
    second = agent_bundle(("b1", "b2", "b3"), guidelines=("say hello", "be kind"))
    agent_id = publishing.for_workspace(first, WS).agent.id
    stores = (SqlStore.open(url), SqlStore.open(url))
    try:
        await stores[0].ensure_workspace(WS)
        base = (await stores[0].publish(WS, agent_bundle())).version if existing else 0

        # publish asks for the sessions stranded by the change after it has read the agent
        # and before it writes: hold each publish there until the other has read too
        rendezvous = Rendezvous(2, timeout=1.5)
        real_stranded = SqlStore._stranded

        async def stranded(self: SqlStore, conn: AsyncConnection, removed: Any) -> Any:
            await rendezvous.arrive()
            return await real_stranded(self, conn, removed)

        with monkeypatch.context() as patch:
            patch.setattr(SqlStore, "_stranded", stranded)
            reports = await asyncio.gather(
                stores[0].publish(WS, first), stores[1].publish(WS, second), return_exceptions=True
            )
        stored = await stores[0].load_agent(WS, agent_id)
    finally:
        for store in stores:
            await store.close()
    assert rendezvous.arrived == 2
    written = [r for r in reports if isinstance(r, PublishReport) and r.written]
    failed = [r for r in reports if not isinstance(r, PublishReport)]
    assert all(isinstance(r, StorageError) for r in failed), failed  # a refusal is fine
    assert written, reports
    states = [state.name for state in stored.bundle.journeys[0].states]
    expected = {
        "first": publishing.for_workspace(first, WS),
        "second": publishing.for_workspace(second, WS),
    }
    matches = [name for name, bundle in expected.items() if stored.bundle == bundle]
    assert matches, f"the stored agent is neither bundle; its states: {states}"
    assert sorted(r.version for r in written) == list(range(base + 1, base + len(written) + 1))
    assert stored.version == base + len(written)
    versions = {
        name: report.version
        for name, report in zip(expected, reports, strict=True)
        if isinstance(report, PublishReport) and report.written
    }
    assert matches == [max(versions, key=versions.__getitem__)]  # the publish that came last


@pytest.mark.postgres
@pytest.mark.parametrize(
    "existing",
    [
        pytest.param(True, id="republish"),
        pytest.param(False, id="first-publish"),
    ],
)
def test_concurrent_publishes_serialise_on_postgres(
    postgres: str, monkeypatch: pytest.MonkeyPatch, existing: bool
) -> None:
    asyncio.run(_race_publishes(postgres, monkeypatch, existing=existing))


@pytest.mark.parametrize("existing", [True, False], ids=["republish", "first-publish"])
def test_concurrent_publishes_serialise_on_sqlite(
    sqlite_file: str, monkeypatch: pytest.MonkeyPatch, existing: bool
) -> None:
    asyncio.run(_race_publishes(sqlite_file, monkeypatch, existing=existing))


# ------------------------------------------------------------------ statement-level races


@contextlib.contextmanager
def before_statement(
    store: SqlStore, prefix: str, action: Callable[[], Awaitable[None]], *, once: bool = False
) -> Iterator[list[str]]:
    """Await ``action`` just before the store sends a statement that starts with ``prefix``
    (inside SQLAlchemy's greenlet, so the statement waits for it). Yields the statements
    it paused before."""
    paused: list[str] = []

    def hook(*args: Any) -> None:
        statement = str(args[2]).lstrip()
        if statement.upper().startswith(prefix.upper()) and not (once and paused):
            paused.append(statement)
            await_(action())

    target = store._writer.sync_engine  # writes go through the writer engine
    sa.event.listen(target, "before_cursor_execute", hook)
    try:
        yield paused
    finally:
        sa.event.remove(target, "before_cursor_execute", hook)


@pytest.mark.parametrize(
    "dialect",
    [
        "sqlite",
        pytest.param("postgresql", marks=pytest.mark.postgres),
    ],
)
def test_concurrent_creations_of_one_session_id_both_get_the_session(
    dialect: str, tmp_path: Path
) -> None:
    async def body(url: str) -> None:
        stores = (SqlStore.open(url), SqlStore.open(url))
        try:
            await stores[0].ensure_workspace(WS)
            agent_id = (await stores[0].publish(WS, agent_bundle())).agent_id
            start = SessionStart(agent_id=agent_id, session_id=uuid4())
            rendezvous = Rendezvous(2, timeout=1.5)
            with (
                before_statement(stores[0], "INSERT INTO parlant_session", rendezvous.arrive),
                before_statement(stores[1], "INSERT INTO parlant_session", rendezvous.arrive),
            ):
                results = await asyncio.gather(
                    *(store.create_session(WS, start) for store in stores),
                    return_exceptions=True,
                )
            assert rendezvous.arrived >= 1  # the hook still finds the insert
            usage = await stores[0].usage(WS, "agent", agent_id)
            sessions = await stores[0].list_sessions(WS, agent_id)
        finally:
            for store in stores:
                await store.close()
        assert [type(r).__name__ for r in results] == ["Session", "Session"], results
        assert {r.id for r in results if isinstance(r, Session)} == {start.session_id}
        assert [s.id for s in sessions] == [start.session_id]
        assert usage["total_sessions"] == 1

    _on(dialect, tmp_path, body)


@pytest.mark.parametrize(
    "dialect",
    [
        "sqlite",
        pytest.param("postgresql", marks=pytest.mark.postgres),
    ],
)
def test_roll_up_loses_no_delta_committed_while_it_runs(dialect: str, tmp_path: Path) -> None:
    async def body(url: str) -> None:
        store = SqlStore.open(url)
        try:
            await store.ensure_workspace(WS)
            agent_id = (await store.publish(WS, agent_bundle())).agent_id
            # PostgreSQL: a delta that takes its id now and commits later, then one that
            # commits now; SQLite (one writer at a time): a delta committed by another
            # connection between the roll-up's reads and its first write
            late = await _late_delta(url, agent_id, "total_messages", 5)
            committed: list[bool] = []

            async def overtake() -> None:
                committed.append(await late())

            try:
                await store.create_session(WS, SessionStart(agent_id=agent_id))
                with (
                    before_statement(store, "UPDATE", overtake, once=True),
                    contextlib.suppress(StorageError),  # giving up is fine, losing is not
                ):
                    await store.roll_up_usage()
            finally:
                if not committed:
                    committed.append(await late())
            await store.roll_up_usage()  # whatever is left
            usage = await store.usage(WS, "agent", agent_id)
        finally:
            await store.close()
        assert (usage["total_sessions"], usage["total_messages"]) == (1, 5 if committed[0] else 0)

    _on(dialect, tmp_path, body)


async def _late_delta(
    url: str, agent_id: UUID, counter: str, delta: int
) -> Callable[[], Awaitable[bool]]:
    """What commits a usage delta later (returns whether it could). On PostgreSQL the
    delta is inserted now, in a transaction left open, so that it is older than the
    roll-up's statement."""
    deltas = json.dumps({f"agent:{agent_id}:{counter}": delta})
    if url.startswith("sqlite"):
        path = sa.make_url(url).database or ""

        async def commit_sqlite() -> bool:
            connection = sqlite3.connect(path, timeout=0.2, isolation_level=None)
            try:
                connection.execute(
                    "INSERT INTO usage_delta (session_id, seq, workspace_id, deltas) "
                    "VALUES (?, 0, ?, ?)",
                    (uuid4().hex, WS, deltas),
                )
            except sqlite3.OperationalError:  # the database is locked: no race to be had
                return False
            finally:
                connection.close()
            return True

        return commit_sqlite
    raw = await asyncpg.connect(asyncpg_dsn(url))
    transaction = raw.transaction()
    await transaction.start()
    await raw.execute(
        "INSERT INTO parlant_runtime.usage_delta (session_id, seq, workspace_id, deltas) "
        "VALUES ($1, 0, $2, $3::jsonb)",
        uuid4(),
        WS,
        deltas,
    )

    async def commit_postgres() -> bool:
        await transaction.commit()
        await raw.close()
        return True

    return commit_postgres


def _on(dialect: str, folder: Path, body: Callable[[str], Coroutine[Any, Any, None]]) -> None:
    """Run ``body`` on a fresh database of the dialect."""
    if dialect == "sqlite":
        with upgraded_sqlite(folder) as url:
            asyncio.run(body(url))
    else:
        with upgraded_postgres() as url:
            asyncio.run(body(url))
