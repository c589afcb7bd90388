"""Storage speed: a turn commit and an agent load, beside raw-driver references.

Run: ``.venv/bin/python benchmarks/bench_storage.py`` (``--quick`` for fewer
iterations, ``--json`` for JSON). It needs a PostgreSQL server whose user may
create databases (``$PARLANT_BENCH_POSTGRES_URL``, else ``$PARLANT_TEST_POSTGRES_URL``,
else ``postgresql://postgres@127.0.0.1:5432/postgres``): it creates a throwaway
database ``parlant_bench_<random>`` and drops it at the end, and touches no other.
The SQLite figures use a file in a temporary folder.

(a) A turn on PostgreSQL, as the runtime does it: load the session
(:meth:`SqlStore.get_session`), append three events and move the session to a
state (:meth:`SqlStore.commit_turn`: the compare-and-set ``UPDATE ... RETURNING``,
the event insert, the ``NOTIFY``). Measured two ways:

- latency: turns one after another on one session; median and p99 per turn;
- client CPU: this process's CPU time per turn (median of the blocks), which holds
  better than wall time when the machine is busy with other work;
- throughput: 8 tasks, each on its own session, for a few seconds; turns/s.

The store is opened as ``SqlStore.open`` opens it (SQLAlchemy's default pool: 5
connections, 10 more on demand). The reference, ``asyncpg``, runs the same statements
on a raw asyncpg pool of 8 connections with the same JSON codecs, no SQLAlchemy and
no pydantic: ``SELECT *`` of the session row; then in one transaction the same ``UPDATE ... SET
version=version+1, event_count=<MAX(offset)+1 of the log>+3, ... WHERE id=$1 AND workspace_id=$2
AND version=$3 AND <state belongs to the agent> RETURNING *``, the three events with
``executemany`` and ``pg_notify``. Store and reference alternate in blocks on
sessions of their own, so that drift in the machine hits both. The ratio is store /
asyncpg (latency: higher is worse; throughput: asyncpg / store).

(b) Loading an agent of 10 journeys x 50 states (about 100 transitions each, 2
guideline links each) and 100 guidelines from PostgreSQL (:meth:`SqlStore.load_agent`):

- cold: a fresh store (engine, pool, connection) per measurement, its first load;
- first on a warm engine: a fresh store that has already run a query (connected),
  its first ``load_agent`` (SQLAlchemy compiles the twelve statements once per
  engine; asyncpg prepares them once per connection);
- warm: later loads on the same store, for reference, and their client CPU;
- connect: opening a store and running one small query, no load (part of cold).

References: ``driver``, the same twelve statements (captured from the store) run on
a warm raw connection, in one read transaction as the store runs them; ``model``,
``AgentBundle.model_validate`` of the bundle's data (the pydantic floor of building
the bundle). (c) is (b) on SQLite, the reference
driver being the standard library's ``sqlite3``.

Figures are medians of several runs (and p99 for turn latency). The machine line
names the CPU count: PostgreSQL shares the machine with the benchmark.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg  # type: ignore[import-untyped]  # no stubs, no py.typed
import sqlalchemy as sa
from persisted_turn import (  # a sibling script module
    TurnSettings,
    bench_persisted_turn,
    print_persisted_turn,
)
from timing import latency, p99, throughput  # a sibling script module

from parlant_runtime.bundle.schema import AgentBundle
from parlant_runtime.model import EventType
from parlant_runtime.storage.migrate import upgrade
from parlant_runtime.storage.port import NewEvent, SessionStart, TurnCommit
from parlant_runtime.storage.sql._driver_load import CompiledLoad
from parlant_runtime.storage.sql.store import SqlStore

WS = "bench"
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
CONCURRENT_SESSIONS = 8
TURN_EVENTS = (EventType.CUSTOMER_MESSAGE, EventType.JOURNEY_TRANSITION, EventType.AGENT_MESSAGE)
JOURNEYS, STATES, GUIDELINES = 10, 50, 100


@dataclass(frozen=True, slots=True)
class Settings:
    turns: int
    block: int
    seconds: float
    loads: int


FULL = Settings(turns=2_000, block=100, seconds=5.0, loads=15)
QUICK = Settings(turns=300, block=50, seconds=1.5, loads=5)


# ------------------------------------------------------------------ databases


def admin_url() -> str:
    return (
        os.environ.get("PARLANT_BENCH_POSTGRES_URL")
        or os.environ.get("PARLANT_TEST_POSTGRES_URL")
        or DEFAULT_ADMIN_URL
    )


def _dsn(url: sa.URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


@asynccontextmanager
async def throwaway_postgres(admin: str) -> AsyncIterator[str]:
    """A new database ``parlant_bench_<random>`` at head; dropped afterwards."""
    server = sa.make_url(admin)
    name = f"parlant_bench_{secrets.token_hex(6)}"
    connection = await asyncpg.connect(_dsn(server), timeout=10)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    url = server.set(drivername="postgresql+asyncpg", database=name)
    try:
        await upgrade(url.render_as_string(hide_password=False))
        yield url.render_as_string(hide_password=False)
    finally:
        connection = await asyncpg.connect(_dsn(server), timeout=10)
        try:
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await connection.close()


async def _json_codecs(connection: asyncpg.Connection) -> None:
    for name in ("json", "jsonb"):
        await connection.set_type_codec(
            name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
        )


# ------------------------------------------------------------------ the agent


def agent_data() -> dict[str, Any]:
    """10 journeys of 50 states (a chain, a conditional skip ahead, a final state), two
    guideline links per journey, 100 guidelines."""
    journeys = []
    for j in range(JOURNEYS):
        names = [f"step{i}" for i in range(STATES)]
        states: list[dict[str, Any]] = [
            {
                "name": name,
                "stateType": "chat",
                "isInitial": i == 0,
                "chatPrompt": f"Journey {j}, step {i}: {{{{ vars.name }}}}, go on?",
            }
            for i, name in enumerate(names[:-1])
        ]
        states.append({"name": names[-1], "stateType": "final"})
        transitions: list[dict[str, Any]] = []
        for i in range(STATES - 1):
            transitions.append({"from": names[i], "to": names[i + 1], "priority": 50})
            if i + 2 < STATES:
                transitions.append(
                    {
                        "from": names[i],
                        "to": names[i + 2],
                        "condition": f"the customer already answered step {i + 1}",
                        "priority": 200,
                    }
                )
        journeys.append(
            {
                "title": f"Journey {j}",
                "conditions": [f"the customer asks about topic {j}"],
                "states": states,
                "transitions": transitions,
                "guidelines": [
                    {"guideline": f"g{(j * 2 + k) % GUIDELINES}", "priorityOverride": 300}
                    for k in range(2)
                ],
            }
        )
    return {
        "agent": {"name": "Benchmark agent", "compositionMode": "fluid"},
        "guidelines": [
            {
                "name": f"g{i}",
                "condition": f"the customer mentions subject {i}",
                "action": f"Answer about subject {i} briefly and politely.",
                "priority": 100 + i % 7,
            }
            for i in range(GUIDELINES)
        ],
        "variables": [{"key": "name", "value": "Ada"}],
        "journeys": journeys,
    }


# ------------------------------------------------------------------ (a) turns


@dataclass(frozen=True, slots=True)
class TurnTarget:
    session_id: UUID
    journey_id: UUID
    state_ids: tuple[UUID, ...]


def _events(number: int) -> list[NewEvent]:
    return [
        NewEvent(event_type=kind, content={"text": f"turn {number}, event {i}"})
        for i, kind in enumerate(TURN_EVENTS)
    ]


async def store_turn(store: SqlStore, target: TurnTarget, number: int) -> None:
    session = await store.get_session(WS, target.session_id)
    await store.commit_turn(
        WS,
        TurnCommit(
            session_id=target.session_id,
            expected_version=session.version,
            events=_events(number),
            current_journey_id=target.journey_id,
            current_state_id=target.state_ids[number % len(target.state_ids)],
        ),
    )


RAW_SELECT = "SELECT * FROM parlant_session WHERE id = $1 AND workspace_id = $2"
RAW_UPDATE = """
UPDATE parlant_session
SET version = version + 1,
    event_count = (SELECT coalesce(max("offset") + 1, 0) FROM parlant_event
                   WHERE session_id = parlant_session.id) + 3,
    message_count = message_count + 2,
    current_journey_id = $4, current_state_id = $5, last_activity_at = now(), updated_at = now()
WHERE id = $1 AND workspace_id = $2 AND version = $3
  AND EXISTS (
    SELECT s.id FROM parlant_journey_state s JOIN parlant_journey j ON j.id = s.journey_id
    WHERE s.id = $5 AND j.agent_id = parlant_session.agent_id AND j.id = $4)
RETURNING *
"""
RAW_INSERT = (
    'INSERT INTO parlant_event (id, session_id, "offset", event_type, content, metadata, '
    "tool_call_id, journey_id, state_id, idempotency_key) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
)
RAW_NOTIFY = "SELECT pg_notify('parlant_events', $1)"


async def raw_turn(pool: asyncpg.Pool, target: TurnTarget, number: int) -> None:
    session = await pool.fetchrow(RAW_SELECT, target.session_id, WS)
    assert session is not None
    state_id = target.state_ids[number % len(target.state_ids)]
    async with pool.acquire() as connection, connection.transaction():
        row = await connection.fetchrow(
            RAW_UPDATE, target.session_id, WS, session["version"], target.journey_id, state_id
        )
        if row is None:
            raise RuntimeError("the raw compare-and-set failed")
        base = row["event_count"] - len(TURN_EVENTS)
        await connection.executemany(
            RAW_INSERT,
            [
                (
                    uuid.uuid4(),
                    target.session_id,
                    base + i,
                    event.event_type.value,
                    event.content,
                    event.metadata,
                    None,
                    None,
                    None,
                    None,
                )
                for i, event in enumerate(_events(number))
            ],
        )
        await connection.execute(RAW_NOTIFY, f"{target.session_id}:{row['event_count'] - 1}")


Turn = Callable[[TurnTarget, int], Awaitable[None]]


async def bench_turns(url: str, settings: Settings) -> dict[str, Any]:
    """(a): latency and throughput of store turns and raw turns, alternating."""
    store = SqlStore.open(url)
    pool = await asyncpg.create_pool(
        _dsn(sa.make_url(url)),
        min_size=CONCURRENT_SESSIONS,
        max_size=CONCURRENT_SESSIONS,
        init=_json_codecs,
    )
    try:
        await store.ensure_workspace(WS)
        agent_id = (await store.publish(WS, AgentBundle.model_validate(agent_data()))).agent_id
        journey = (await store.load_agent(WS, agent_id)).bundle.journeys[0]
        states = tuple(state.id for state in journey.states[:5])

        async def new_target() -> TurnTarget:
            session = await store.create_session(WS, SessionStart(agent_id=agent_id))
            return TurnTarget(session.id, journey.id, states)

        async def by_store(on: TurnTarget, number: int) -> None:
            await store_turn(store, on, number)

        async def by_raw(on: TurnTarget, number: int) -> None:
            await raw_turn(pool, on, number)

        store_one, raw_one = await new_target(), await new_target()
        await latency(by_store, store_one, 50, 0)  # warm-up: connections, statement caches
        await latency(by_raw, raw_one, 50, 0)
        store_samples: list[float] = []
        raw_samples: list[float] = []
        store_cpu: list[float] = []
        raw_cpu: list[float] = []
        for start in range(50, 50 + settings.turns, settings.block):
            store_samples += await latency(by_store, store_one, settings.block, start, store_cpu)
            raw_samples += await latency(by_raw, raw_one, settings.block, start, raw_cpu)
        sent = await statements_of_a_turn(store, store_one)

        store_many = [await new_target() for _ in range(CONCURRENT_SESSIONS)]
        raw_many = [await new_target() for _ in range(CONCURRENT_SESSIONS)]
        half = settings.seconds / 2
        await throughput(by_store, store_many, 0.3)
        await throughput(by_raw, raw_many, 0.3)
        store_rates, raw_rates = [], []
        for _ in range(2):
            store_rates.append(await throughput(by_store, store_many, half))
            raw_rates.append(await throughput(by_raw, raw_many, half))

    finally:
        await pool.close()
        await store.close()
    store_rate, raw_rate = statistics.mean(store_rates), statistics.mean(raw_rates)
    return {
        "turns": len(store_samples),
        "store_median_ms": statistics.median(store_samples) * 1e3,
        "store_p99_ms": p99(store_samples) * 1e3,
        "raw_median_ms": statistics.median(raw_samples) * 1e3,
        "raw_p99_ms": p99(raw_samples) * 1e3,
        "latency_ratio": statistics.median(store_samples) / statistics.median(raw_samples),
        "p99_ratio": p99(store_samples) / p99(raw_samples),
        "store_cpu_ms": statistics.median(store_cpu) * 1e3,
        "raw_cpu_ms": statistics.median(raw_cpu) * 1e3,
        "cpu_ratio": statistics.median(store_cpu) / statistics.median(raw_cpu),
        "sessions": CONCURRENT_SESSIONS,
        "seconds": settings.seconds,
        "store_turns_per_s": store_rate,
        "raw_turns_per_s": raw_rate,
        "throughput_ratio": raw_rate / store_rate,
        "store_statements": sent,
        "raw_statements": ["SELECT", "BEGIN", "UPDATE", "INSERT", "SELECT", "COMMIT"],
    }


async def statements_of_a_turn(store: SqlStore, target: TurnTarget) -> list[str]:
    """What one store turn sends: statements and transaction boundaries (each one round
    trip on asyncpg), seen through SQLAlchemy's event hooks. Boundaries of connections
    in autocommit (the store's reads on PostgreSQL) send nothing and are left out."""
    seen: list[str] = []
    engine = store.engine.sync_engine

    def statement(*args: Any) -> None:
        seen.append(str(args[2]).split()[0])

    def boundary(name: str) -> Callable[..., None]:
        def record(connection: sa.Connection, *args: Any) -> None:
            del args
            if connection.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
                seen.append(name)

        return record

    hooks: list[tuple[str, Callable[..., None]]] = [
        ("before_cursor_execute", statement),
        ("begin", boundary("BEGIN")),
        ("commit", boundary("COMMIT")),
        ("rollback", boundary("ROLLBACK")),
    ]
    for name, hook in hooks:
        sa.event.listen(engine, name, hook)
    try:
        await store_turn(store, target, 0)
    finally:
        for name, hook in hooks:
            sa.event.remove(engine, name, hook)
    return seen


# ------------------------------------------------------------------ (b), (c) agent loads


async def captured_load(store: SqlStore, agent_id: UUID) -> list[tuple[str, Any]]:
    """The statements (and parameters, as the driver gets them) of one ``load_agent``:
    its ``SELECT`` statements, without the transaction around them (a replay runs them
    in a read transaction of its own, as the store does). The store runs them on the
    driver itself (:mod:`._driver_load`): they are its statements, compiled as it
    compiles them."""
    load = CompiledLoad(store.engine.dialect)
    return [(sql, parameters) for _, sql, parameters in load.statements(WS, agent_id)]


async def timed(action: Callable[[], Awaitable[object]]) -> float:
    began = time.perf_counter()
    await action()
    return time.perf_counter() - began


async def cpu_timed(action: Callable[[], Awaitable[object]]) -> float:
    """This process's CPU time for the action (the client's cost, whatever the load)."""
    began = time.process_time()
    await action()
    return time.process_time() - began


async def bench_load(
    url: str, runs: int, driver: Callable[[list[tuple[str, Any]], int], Awaitable[list[float]]]
) -> dict[str, float]:
    """Cold, first-on-warm-engine and warm loads of the big agent; the two references."""
    data = agent_data()
    setup = SqlStore.open(url)
    try:
        await setup.ensure_workspace(WS)
        agent_id = (await setup.publish(WS, AgentBundle.model_validate(data))).agent_id
        loaded = await setup.load_agent(WS, agent_id)
        states = sum(len(journey.states) for journey in loaded.bundle.journeys)
        transitions = sum(len(journey.transitions) for journey in loaded.bundle.journeys)
        assert (states, len(loaded.bundle.guidelines)) == (JOURNEYS * STATES, GUIDELINES)
        statements = await captured_load(setup, agent_id)
        warm = [await timed(lambda: setup.load_agent(WS, agent_id)) for _ in range(runs)]
        warm_cpu = [await cpu_timed(lambda: setup.load_agent(WS, agent_id)) for _ in range(runs)]
    finally:
        await setup.close()

    cold, first = [], []
    for _ in range(runs):
        began = time.perf_counter()
        store = SqlStore.open(url)
        await store.load_agent(WS, agent_id)
        cold.append(time.perf_counter() - began)
        await store.close()
        store = SqlStore.open(url)
        await store.find_agent(WS, "nobody")  # connected, dialect initialised
        first.append(await timed(lambda: store.load_agent(WS, agent_id)))  # noqa: B023
        await store.close()
    connect = []
    for _ in range(runs):
        began = time.perf_counter()
        store = SqlStore.open(url)
        await store.find_agent(WS, "nobody")
        connect.append(time.perf_counter() - began)
        await store.close()
    model = []
    for _ in range(runs):
        began = time.perf_counter()
        AgentBundle.model_validate(data)
        model.append(time.perf_counter() - began)
    return {
        "states": states,
        "transitions": transitions,
        "guidelines": len(loaded.bundle.guidelines),
        "statements": len(statements),
        "cold_ms": statistics.median(cold) * 1e3,
        "first_on_warm_engine_ms": statistics.median(first) * 1e3,
        "warm_ms": statistics.median(warm) * 1e3,
        "warm_cpu_ms": statistics.median(warm_cpu) * 1e3,
        "connect_ms": statistics.median(connect) * 1e3,
        "driver_ms": statistics.median(await driver(statements, runs)) * 1e3,
        "model_ms": statistics.median(model) * 1e3,
    }


def postgres_driver(url: str) -> Callable[[list[tuple[str, Any]], int], Awaitable[list[float]]]:
    async def replay(statements: list[tuple[str, Any]], runs: int) -> list[float]:
        connection = await asyncpg.connect(_dsn(sa.make_url(url)))
        try:
            await _json_codecs(connection)

            async def load() -> None:  # one snapshot, as the store reads it
                async with connection.transaction(isolation="repeatable_read", readonly=True):
                    for statement, parameters in statements:
                        await connection.fetch(statement, *parameters)

            await load()  # prepares the statements, as the store's connection has
            return [await timed(load) for _ in range(runs)]
        finally:
            await connection.close()

    return replay


def sqlite_driver(path: str) -> Callable[[list[tuple[str, Any]], int], Awaitable[list[float]]]:
    async def replay(statements: list[tuple[str, Any]], runs: int) -> list[float]:
        connection = sqlite3.connect(path, isolation_level=None)  # as the store's engine
        try:

            def load() -> None:
                connection.execute("BEGIN")  # one snapshot, as the store reads it
                for statement, parameters in statements:
                    rows = connection.execute(statement, parameters).fetchall()
                    for row in rows:  # the JSON columns, decoded as the store must
                        for value in row:
                            if isinstance(value, str) and value[:1] in "[{":
                                json.loads(value)
                connection.execute("COMMIT")

            load()
            samples = []
            for _ in range(runs):
                began = time.perf_counter()
                load()
                samples.append(time.perf_counter() - began)
            return samples
        finally:
            connection.close()

    return replay


# ------------------------------------------------------------------ the report


async def persisted_turn(settings: Settings, admin: str, folder: Path) -> dict[str, Any]:
    async with throwaway_postgres(admin) as url:
        return {
            "persisted_turn": await bench_persisted_turn(
                url,
                _dsn(sa.make_url(url)),
                str(folder / "turn.db"),
                TurnSettings(settings.turns // 2, settings.block, settings.seconds),
            )
        }


async def run(settings: Settings, admin: str, folder: Path) -> dict[str, Any]:
    results = await persisted_turn(settings, admin, folder)
    async with throwaway_postgres(admin) as url:
        connection = await asyncpg.connect(_dsn(sa.make_url(url)))
        try:
            server = str(await connection.fetchval("SHOW server_version")).split()[0]
        finally:
            await connection.close()
        turns = await bench_turns(url, settings)
    async with throwaway_postgres(admin) as url:
        postgres_load = await bench_load(url, settings.loads, postgres_driver(url))
    path = folder / "bench.db"
    sqlite_url = f"sqlite+aiosqlite:///{path}"
    await upgrade(sqlite_url)
    sqlite_load = await bench_load(sqlite_url, settings.loads, sqlite_driver(str(path)))
    return {
        **results,
        "machine": machine(server),
        "settings": {"turns": settings.turns, "seconds": settings.seconds, "runs": settings.loads},
        "turn": turns,
        "load_postgresql": postgres_load,
        "load_sqlite": sqlite_load,
    }


def machine(server: str) -> str:
    return (
        f"{platform.machine()}, {os.cpu_count()} cores, "
        f"{platform.python_implementation()} {platform.python_version()}, "
        f"PostgreSQL {server}, SQLite {sqlite3.sqlite_version}, SQLAlchemy {sa.__version__}, "
        f"asyncpg {asyncpg.__version__}"
    )


def print_table(results: dict[str, Any]) -> None:
    turn, pg, lite = results["turn"], results["load_postgresql"], results["load_sqlite"]
    print(f"storage ({results['machine']})")
    print()
    print_persisted_turn(results["persisted_turn"])
    print()
    print(
        f"(a) a turn on PostgreSQL: get_session + commit_turn of {len(TURN_EVENTS)} events "
        f"(latency: {turn['turns']:,} turns on one session; throughput: "
        f"{turn['sessions']} tasks x own session, {turn['seconds']:.1f} s)"
    )
    print(f"{'':44} {'store':>9} {'asyncpg':>9} {'ratio':>7}")
    rows = [
        ("latency median, ms", turn["store_median_ms"], turn["raw_median_ms"], "latency_ratio"),
        ("latency p99, ms", turn["store_p99_ms"], turn["raw_p99_ms"], "p99_ratio"),
        ("client CPU per turn, ms", turn["store_cpu_ms"], turn["raw_cpu_ms"], "cpu_ratio"),
        (
            f"throughput, {turn['sessions']} sessions, turns/s",
            turn["store_turns_per_s"],
            turn["raw_turns_per_s"],
            "throughput_ratio",
        ),
    ]
    for label, store, raw, ratio in rows:
        print(f"{label:44} {store:>9,.2f} {raw:>9,.2f} {turn[ratio]:>6.2f}x")
    print(
        f"{'round trips per turn':44} {len(turn['store_statements']):>9} "
        f"{len(turn['raw_statements']):>9}"
    )
    print(f"  store: {' '.join(turn['store_statements'])}")
    print(f"  asyncpg: {' '.join(turn['raw_statements'])}")
    print()
    print(
        f"(b, c) load_agent: {JOURNEYS} journeys x {STATES} states ({pg['transitions']:,} "
        f"transitions), {pg['guidelines']} guidelines; {pg['statements']} statements; "
        f"median of {results['settings']['runs']} runs, ms"
    )
    print(f"{'':44} {'PostgreSQL':>10} {'SQLite':>9}")
    for label, key in (
        ("cold: fresh store, first load", "cold_ms"),
        ("first load on a warm engine", "first_on_warm_engine_ms"),
        ("warm load (same store, again)", "warm_ms"),
        ("  its client CPU", "warm_cpu_ms"),
        ("  open a store and connect, no load", "connect_ms"),
        ("  driver: the same statements, raw", "driver_ms"),
        ("  model: AgentBundle.model_validate", "model_ms"),
    ):
        print(f"{label:44} {pg[key]:>10.2f} {lite[key]:>9.2f}")
    print()
    print(
        "aims: a turn within 1.3x of asyncpg and >= 800 turns/s with 8 sessions; "
        "an agent load under 15 ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations (a smoke run)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument(
        "--turn-only", action="store_true", help="only (t), the persisted turn and its references"
    )
    args = parser.parse_args()
    settings = QUICK if args.quick else FULL
    try:
        with tempfile.TemporaryDirectory(prefix="parlant-bench-") as folder:
            if args.turn_only:
                results = asyncio.run(persisted_turn(settings, admin_url(), Path(folder)))
                if not args.json:
                    print_persisted_turn(results["persisted_turn"])
                    return
            else:
                results = asyncio.run(run(settings, admin_url(), Path(folder)))
    except (OSError, asyncpg.PostgresError) as exc:
        sys.exit(f"bench_storage: PostgreSQL at {sa.make_url(admin_url())!r} is needed: {exc}")
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print_table(results)


if __name__ == "__main__":
    main()
