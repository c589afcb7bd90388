"""The systems that ``bench_checkpointers.py`` compares, and the databases they use.

Each persists the same journey's turns (see that script's docstring): the runtime,
LangGraph with a checkpointer, and the raw driver. Needs LangGraph, which only the
benchmark's own environment has.
"""

from __future__ import annotations

import itertools
import json
import os
import secrets
import sqlite3
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypedDict

import aiosqlite
import asyncpg  # type: ignore[import-untyped]  # no stubs
import sqlalchemy as sa
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.graph import START, StateGraph
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from parlant_runtime import bundle_from_data
from parlant_runtime.engine import Runtime, ScriptedEvaluator, ToolRegistry
from parlant_runtime.storage.migrate import upgrade
from parlant_runtime.storage.sql.store import SqlStore

WS = "bench"
AGENT = "Checkpointer benchmark"
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
STATES = ("s0", "s1", "s2", "s3")  # s3 is final: the next message starts over at s0
POOL_MIN, POOL_MAX = 5, 15  # SQLAlchemy's default pool: 5, and 10 more on demand
SYSTEMS = ("runtime", "langgraph", "raw")


def next_state(state: str | None) -> str:
    """The journey: ``None`` (outside it) -> s0 -> s1 -> s2 -> s3 (final) -> s0 ..."""
    if state is None or state == STATES[-1]:
        return STATES[0]
    return STATES[STATES.index(state) + 1]


def turn_events(state: str | None, to: str, text: str) -> list[dict[str, Any]]:
    """The three events of a turn, as the runtime's event contents have them."""
    return [
        {"type": "customer_message", "content": {"text": text}},
        {"type": "journey_transition", "content": {"journey": "Steps", "from": state, "to": to}},
        {"type": "agent_message", "content": {"text": "Noted, Ada."}},
    ]


def agent_data() -> dict[str, Any]:
    """The journey as a runtime agent, strict composition."""
    states: list[dict[str, Any]] = [
        {"name": name, "stateType": "chat", "isInitial": i == 0, "chatPrompt": f"Step {i}?"}
        for i, name in enumerate(STATES[:-1])
    ]
    states.append({"name": STATES[-1], "stateType": "final"})
    return {
        "agent": {"name": AGENT, "compositionMode": "strict", "noMatchResponse": "Sorry."},
        "variables": [{"key": "name", "value": "Ada"}],
        "journeys": [
            {
                "title": "Steps",
                "conditions": ["{{ true }}"],
                "states": states,
                "transitions": [
                    {"from": a, "to": b, "condition": "{{ message | length > 0 }}"}
                    for a, b in itertools.pairwise(STATES)
                ],
            }
        ],
        "cannedResponses": [{"name": "noted", "template": "Noted, {{ vars.name }}."}],
    }


# ------------------------------------------------------------------ the systems


class System(Protocol):
    """One way of persisting the journey's turns."""

    async def session(self) -> Any:
        """A new session (thread), ready for turns."""

    async def turn(self, session: Any, text: str) -> None:
        """One customer message, persisted before it returns."""

    async def close(self) -> None: ...


@dataclass(slots=True)
class Places:
    """Where the systems keep their data (handed to worker processes as JSON)."""

    database: str  # "postgresql" or "sqlite"
    runtime: str  # SQLAlchemy URL
    langgraph: str  # psycopg conninfo, or a SQLite file
    raw: str  # asyncpg DSN, or a SQLite file
    pragmas: dict[str, str] = field(default_factory=dict)


class RuntimeSystem:
    def __init__(self, store: SqlStore, agent_id: uuid.UUID) -> None:
        self.store = store
        self.agent_id = agent_id
        self.runtime = Runtime(store, evaluator=ScriptedEvaluator(), tools=ToolRegistry())

    @classmethod
    async def open(cls, places: Places) -> RuntimeSystem:
        store = SqlStore.open(places.runtime)
        agent_id = await store.find_agent(WS, AGENT)
        assert agent_id is not None, "the agent is published before any system opens"
        return cls(store, agent_id)

    async def session(self) -> Any:
        return (await self.runtime.start_session(WS, self.agent_id)).id

    async def turn(self, session: Any, text: str) -> None:
        result = await self.runtime.process_message(WS, session, text)
        assert len(result.events) == 3, result.events

    async def close(self) -> None:
        await self.store.close()


class GraphState(TypedDict, total=False):
    state: str | None
    text: str
    events: list[dict[str, Any]]


def build_graph() -> StateGraph[GraphState]:
    graph: StateGraph[GraphState] = StateGraph(GraphState)

    def node(at: str | None) -> Callable[[GraphState], dict[str, Any]]:
        def step(value: GraphState) -> dict[str, Any]:
            to = next_state(at)
            return {"state": to, "events": turn_events(at, to, value["text"])}

        return step

    names: dict[str | None, str] = {None: "enter", **{s: f"at_{s}" for s in STATES}}
    for at, name in names.items():
        graph.add_node(name, node(at))

    def route(value: GraphState) -> str:
        return names[value.get("state")]

    graph.add_conditional_edges(START, route, list(names.values()))
    return graph


class GraphSystem:
    def __init__(self, saver: Any, close: Callable[[], Awaitable[None]]) -> None:
        self.app = build_graph().compile(checkpointer=saver)
        self._close = close

    @classmethod
    async def open(cls, places: Places) -> GraphSystem:
        if places.database == "postgresql":
            pool = AsyncConnectionPool(
                places.langgraph,
                min_size=POOL_MIN,
                max_size=POOL_MAX,
                kwargs={"autocommit": False, "prepare_threshold": 0, "row_factory": dict_row},
                open=False,
            )
            await pool.open(wait=True)
            return cls(AsyncPostgresSaver(pool), pool.close)
        connection = await aiosqlite.connect(places.langgraph)
        await _apply_pragmas_async(connection, places.pragmas)
        saver = AsyncSqliteSaver(connection)
        await saver.setup()
        return cls(saver, connection.close)

    async def session(self) -> Any:
        return {"configurable": {"thread_id": str(uuid.uuid4())}}

    async def turn(self, session: Any, text: str) -> None:
        value = await self.app.ainvoke({"text": text}, session, durability="exit")
        assert len(value["events"]) == 3, value

    async def close(self) -> None:
        await self._close()


RAW_PG_TABLES = """
CREATE TABLE IF NOT EXISTS raw_session (
    id uuid PRIMARY KEY, state text, version integer NOT NULL, event_count integer NOT NULL,
    updated_at timestamptz NOT NULL);
CREATE TABLE IF NOT EXISTS raw_event (
    id uuid PRIMARY KEY, session_id uuid NOT NULL REFERENCES raw_session (id),
    "offset" integer NOT NULL, event_type text NOT NULL, content jsonb NOT NULL,
    created_at timestamptz NOT NULL, UNIQUE (session_id, "offset"));
"""
RAW_PG_INSERT = (
    'INSERT INTO raw_event (id, session_id, "offset", event_type, content, created_at) '
    "VALUES ($1, $2, $3, $4, $5, now())"
)
RAW_PG_UPDATE = (
    "UPDATE raw_session SET state = $3, version = version + 1, event_count = event_count + 3, "
    "updated_at = now() WHERE id = $1 AND version = $2 RETURNING version"
)


class RawPostgres:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @classmethod
    async def open(cls, places: Places) -> RawPostgres:
        async def codecs(connection: asyncpg.Connection) -> None:
            await connection.set_type_codec(
                "jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
            )

        pool = await asyncpg.create_pool(
            places.raw, min_size=POOL_MIN, max_size=POOL_MAX, init=codecs
        )
        return cls(pool)

    async def session(self) -> Any:
        sid = uuid.uuid4()
        await self.pool.execute("INSERT INTO raw_session VALUES ($1, NULL, 0, 0, now())", sid)
        return sid

    async def turn(self, session: Any, text: str) -> None:
        async with self.pool.acquire() as connection, connection.transaction():
            row = await connection.fetchrow("SELECT * FROM raw_session WHERE id = $1", session)
            to = next_state(row["state"])
            for i, event in enumerate(turn_events(row["state"], to, text)):
                await connection.execute(
                    RAW_PG_INSERT,
                    uuid.uuid4(),
                    session,
                    row["event_count"] + i,
                    event["type"],
                    event["content"],
                )
            if await connection.fetchval(RAW_PG_UPDATE, session, row["version"], to) is None:
                raise RuntimeError("the raw compare-and-set lost")

    async def close(self) -> None:
        await self.pool.close()


RAW_SQLITE_TABLES = """
CREATE TABLE IF NOT EXISTS raw_session (
    id text PRIMARY KEY, state text, version integer NOT NULL, event_count integer NOT NULL,
    updated_at text NOT NULL);
CREATE TABLE IF NOT EXISTS raw_event (
    id text PRIMARY KEY, session_id text NOT NULL REFERENCES raw_session (id),
    "offset" integer NOT NULL, event_type text NOT NULL, content text NOT NULL,
    created_at text NOT NULL, UNIQUE (session_id, "offset"));
"""


class RawSqlite:
    def __init__(self, connection: sqlite3.Connection) -> None:
        self.db = connection

    @classmethod
    async def open(cls, places: Places) -> RawSqlite:
        connection = sqlite3.connect(places.raw, isolation_level=None)
        for name, value in places.pragmas.items():
            connection.execute(f"PRAGMA {name}={value}")
        return cls(connection)

    async def session(self) -> Any:
        sid = str(uuid.uuid4())
        self.db.execute("INSERT INTO raw_session VALUES (?, NULL, 0, 0, datetime('now'))", (sid,))
        return sid

    async def turn(self, session: Any, text: str) -> None:
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            state, version, count = db.execute(
                "SELECT state, version, event_count FROM raw_session WHERE id = ?", (session,)
            ).fetchone()
            to = next_state(state)
            for i, event in enumerate(turn_events(state, to, text)):
                db.execute(
                    'INSERT INTO raw_event (id, session_id, "offset", event_type, content, '
                    "created_at) VALUES (?, ?, ?, ?, ?, strftime('%Y-%m-%d %H:%M:%f', 'now'))",
                    (str(uuid.uuid4()), session, count + i, event["type"], json.dumps(event)),
                )
            updated = db.execute(
                "UPDATE raw_session SET state = ?, version = version + 1, "
                "event_count = event_count + 3, updated_at = datetime('now') "
                "WHERE id = ? AND version = ?",
                (to, session, version),
            )
            if updated.rowcount != 1:
                raise RuntimeError("the raw compare-and-set lost")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    async def close(self) -> None:
        self.db.close()


async def _apply_pragmas_async(connection: aiosqlite.Connection, pragmas: dict[str, str]) -> None:
    for name, value in pragmas.items():
        await connection.execute(f"PRAGMA {name}={value}")


async def open_system(name: str, places: Places) -> System:
    if name == "runtime":
        return await RuntimeSystem.open(places)
    if name == "langgraph":
        return await GraphSystem.open(places)
    if places.database == "postgresql":
        return await RawPostgres.open(places)
    return await RawSqlite.open(places)


# ------------------------------------------------------------------ the databases


def admin_url() -> str:
    return (
        os.environ.get("PARLANT_BENCH_POSTGRES_URL")
        or os.environ.get("PARLANT_TEST_POSTGRES_URL")
        or DEFAULT_ADMIN_URL
    )


def _plain(url: sa.URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


async def publish(url: str) -> dict[str, str]:
    """The runtime's schema and agent at ``url``; its SQLite settings (on SQLite)."""
    await upgrade(url)
    store = SqlStore.open(url)
    try:
        await store.ensure_workspace(WS)
        await store.publish(WS, bundle_from_data(agent_data()))
        if store.dialect != "sqlite":
            return {}
        async with store.engine.connect() as connection:
            pragmas = {}
            for name in ("journal_mode", "synchronous", "busy_timeout"):
                pragmas[name] = str((await connection.exec_driver_sql(f"PRAGMA {name}")).scalar())
            return pragmas
    finally:
        await store.close()


@asynccontextmanager
async def postgres_places() -> AsyncIterator[tuple[Places, str]]:
    server = sa.make_url(admin_url())
    name = f"parlant_bench_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(_plain(server), timeout=10)
    try:
        version = str(await admin.fetchval("SHOW server_version")).split()[0]
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    database = server.set(database=name)
    try:
        runtime = database.set(drivername="postgresql+asyncpg").render_as_string(
            hide_password=False
        )
        await publish(runtime)
        raw = await asyncpg.connect(_plain(database))
        try:
            await raw.execute(RAW_PG_TABLES)
        finally:
            await raw.close()
        conninfo = _plain(database)
        async with AsyncPostgresSaver.from_conn_string(conninfo) as saver:
            await saver.setup()  # needs autocommit (CREATE INDEX CONCURRENTLY)
        yield Places("postgresql", runtime, conninfo, _plain(database)), version
    finally:
        admin = await asyncpg.connect(_plain(server), timeout=10)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def sqlite_places(folder: Path) -> Places:
    runtime = folder / "runtime.db"
    pragmas = await publish(f"sqlite:///{runtime}")
    pragmas.setdefault("busy_timeout", "5000")
    raw = folder / "raw.db"
    connection = sqlite3.connect(raw)
    try:
        connection.executescript(RAW_SQLITE_TABLES)
    finally:
        connection.close()  # a connection left open would hold the file in the parent
    return Places("sqlite", f"sqlite:///{runtime}", str(folder / "langgraph.db"), str(raw), pragmas)
