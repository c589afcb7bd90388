"""Turns on a SQLite file through the standard library's ``sqlite3`` (``_sqlite_turns``).

What the conformance suite cannot see: the rows written by the store's SQLite threads
have exactly the forms of the rows SQLAlchemy writes (the engine still writes the
other tables, and reads everything else); many sessions of one process commit
without "database is locked" (their commits queue in the writer's thread instead of
SQLite's busy handler, which used to let a commit wait out the 5 s busy timeout with
32 sessions); a write through the engine (a publish, a session's creation) beside a
stream of turns waits its turn in order and succeeds.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

from parlant_runtime import Runtime
from parlant_runtime.model import EventType, Session, ValueType, VariableScope
from parlant_runtime.storage.port import NewEvent, SessionStart, VariableChange
from parlant_runtime.storage.sql._turns import _Turns
from parlant_runtime.testing.conformance._support import (
    REPLY,
    WS,
    make_bundle,
    message,
    setup_agent,
    state_ids,
    turn,
    usage_key,
)
from tests.storage.support import open_sqlite

TABLES = {
    "parlant_session": "id",
    "session_state": "session_id",
    "parlant_event": "session_id",
    "event_key": "session_id",
    "parlant_variable": "session_id",
    "customer_variable": "customer_id",
    "usage_delta": "session_id",
}
"""The tables a turn writes, and the column that finds a session's rows."""


def _shape(value: Any) -> tuple[str, Any]:
    """A stored value's kind and form, without what differs between two turns (ids and
    times have their length, numbers and texts their type, JSON its keys)."""
    if isinstance(value, str) and value[:1] in "{[":
        return ("json", sorted(json.loads(value)))
    if isinstance(value, str):
        return ("text", len(value))
    return (type(value).__name__, None)


def _stored(path: Path, session: Session, customer: str) -> dict[str, list[dict[str, Any]]]:
    key = {"id": session.id.hex, "session_id": session.id.hex, "customer_id": customer}
    found: dict[str, list[dict[str, Any]]] = {}
    with sqlite3.connect(path) as connection:
        for table, column in TABLES.items():
            cursor = connection.execute(f"SELECT * FROM {table} WHERE {column} = ?", (key[column],))
            names = [d[0] for d in cursor.description]
            found[table] = [
                {name: _shape(value) for name, value in zip(names, row, strict=True)}
                for row in cursor.fetchall()
            ]
    return found


def test_rows_written_by_the_sqlite_threads_are_those_the_engine_writes(
    sqlite_template: Path, tmp_path: Path
) -> None:
    async def body() -> None:
        store = open_sqlite(sqlite_template, tmp_path)
        try:
            agent = await setup_agent(store)
            journey, ask = await state_ids(store, agent, "ask")
            sessions = []
            for customer, record in (("c-engine", _Turns.record_turn), ("c-thread", None)):
                session = await store.create_session(
                    WS, SessionStart(agent_id=agent, customer_id=customer)
                )
                change = turn(
                    session,
                    events=[
                        message("hello", key=f"k-{customer}"),
                        NewEvent(
                            event_type=EventType.JOURNEY_TRANSITION,
                            content={"to": "ask"},
                            journey_id=journey,
                            state_id=ask,
                        ),
                        REPLY,
                    ],
                    current_journey_id=journey,
                    current_state_id=ask,
                    metadata={"note": "x"},
                    variables=[
                        VariableChange(key="day", value="friday"),
                        VariableChange(
                            key="visits",
                            value=3,
                            scope=VariableScope.CUSTOMER,
                            value_type=ValueType.NUMBER,
                        ),
                    ],
                    usage={usage_key("agent", agent, "total_messages"): 2},
                )
                if record is None:
                    committed = await store.record_turn(WS, change)
                else:
                    committed = await record(store, WS, change)
                sessions.append((committed, customer))
            assert store._sqlite_writer is not None  # the second turn went through it
        finally:
            await store.close()
        path = tmp_path / "parlant.db"
        (by_engine, engine_customer), (by_thread, thread_customer) = sessions
        engine_rows = _stored(path, by_engine.session, engine_customer)
        thread_rows = _stored(path, by_thread.session, thread_customer)
        assert all(engine_rows[table] for table in TABLES), engine_rows
        assert thread_rows == engine_rows
        # and both read back alike through the store
        assert [e.content for e in by_thread.events] == [e.content for e in by_engine.events]

    asyncio.run(body())


def test_thirty_two_sessions_of_one_process_commit_without_database_is_locked(
    sqlite_template: Path, tmp_path: Path
) -> None:
    async def body() -> None:
        store = open_sqlite(sqlite_template, tmp_path)
        try:
            agent = await setup_agent(store)
            runtime = Runtime(store)
            sessions = [(await runtime.start_session(WS, agent)).id for _ in range(32)]

            async def talk(session_id: Any) -> None:
                for number in range(15):
                    await runtime.process_message(WS, session_id, f"message {number}")

            await asyncio.gather(*(talk(s) for s in sessions))
            for session_id in sessions:
                events = await store.list_events(WS, session_id)
                assert [e.offset for e in events] == list(range(len(events)))
                messages = [e for e in events if e.event_type is EventType.CUSTOMER_MESSAGE]
                assert len(messages) == 15
        finally:
            await store.close()

    asyncio.run(body())


def test_engine_writes_beside_a_stream_of_turns_wait_their_turn_and_succeed(
    sqlite_template: Path, tmp_path: Path
) -> None:
    """Publishes and session creations go through SQLAlchemy's connection; each holds the
    writer's thread between two of its transactions, so neither side starves."""

    async def body() -> None:
        store = open_sqlite(sqlite_template, tmp_path)
        try:
            agent = await setup_agent(store)
            runtime = Runtime(store)
            sessions = [(await runtime.start_session(WS, agent)).id for _ in range(16)]
            stop = asyncio.Event()
            turns = 0

            async def talk(session_id: Any) -> None:
                nonlocal turns
                while not stop.is_set():
                    await runtime.process_message(WS, session_id, "again")
                    turns += 1

            talking = [asyncio.ensure_future(talk(s)) for s in sessions]
            try:
                versions = []
                for day in ("tuesday", "wednesday", "thursday"):
                    versions.append((await store.publish(WS, make_bundle(day=day))).version)
                    created = await store.create_session(WS, SessionStart(agent_id=agent))
                    assert (await store.get_session(WS, created.id)).id == created.id
            finally:
                stop.set()
                await asyncio.gather(*talking)  # none of them failed
            assert versions == [2, 3, 4]
            assert turns > 0
        finally:
            await store.close()

    asyncio.run(body())
