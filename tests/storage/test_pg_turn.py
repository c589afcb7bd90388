"""A turn on PostgreSQL: what goes over the wire, and the one statement of every shape.

The behaviour of a turn is the conformance suite's and the agreement machine's (they
run on PostgreSQL too); what only PostgreSQL has is checked here: a commit writes in
one statement with no ``BEGIN`` or ``COMMIT`` around it (then sends its ``NOTIFY`` in a
statement of its own), a read is one statement (two with an idempotency key), the
``NOTIFY`` is sent once with the last offset and not at all when nothing is written,
and the statement of every shape is valid SQL.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import asyncpg  # type: ignore[import-untyped]  # no stubs, no py.typed
import pytest
import sqlalchemy as sa

from parlant_runtime.model import Session, VariableScope
from parlant_runtime.storage.port import ConcurrentUpdate, SessionStart, TurnCommit, VariableChange
from parlant_runtime.storage.sql._pg_statements import Shape, diagnosis, turn_statement
from parlant_runtime.storage.sql.store import SqlStore
from tests.storage.support import (
    WS,
    message,
    reset_postgres,
    setup_agent,
    state_ids,
    turn,
    usage_key,
)

pytestmark = pytest.mark.postgres


def _raw(url: str) -> str:
    return sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


_DRIVERS_OWN = ("typeinfo_tree", "current_setting('jit')", "set_config('jit'")
"""Marks of the statements asyncpg sends to learn a statement's types (jit off around it)."""


class Sent:
    """The statements the store's connections send (asyncpg's query loggers: the driver
    logs every statement, SQLAlchemy's and those the store runs on it directly)."""

    def __init__(self, store: SqlStore) -> None:
        self.statements: list[str] = []
        self._engine = store.engine.sync_engine
        sa.event.listen(self._engine, "checkout", self._watch)
        # and the connections the store's driver path keeps between its calls
        held = store._held_connections
        for raw, _ in held._kept if held is not None else ():
            self._watch(raw)

    def _seen(self, record: Any) -> None:
        self.statements.append(record.query)

    def _watch(self, dbapi_connection: Any, *_: Any) -> None:
        driver = dbapi_connection.driver_connection
        driver.remove_query_logger(self._seen)
        driver.add_query_logger(self._seen)

    async def taken(self) -> list[str]:
        """The statements sent so far (the loggers report on the next loop turn), but
        the driver's own: learning the types of a statement new to a connection."""
        await asyncio.sleep(0.05)
        taken, self.statements = self.statements, []
        return [s for s in taken if not any(mark in s for mark in _DRIVERS_OWN)]

    def stop(self) -> None:
        sa.event.remove(self._engine, "checkout", self._watch)


def test_a_turn_is_one_statement_and_its_read_one_more(postgres_database: str) -> None:
    async def body() -> None:
        await reset_postgres(postgres_database)
        store = SqlStore.open(postgres_database)
        try:
            agent = await setup_agent(store)
            session = await store.create_session(WS, SessionStart(agent_id=agent, customer_id="c1"))
            journey, state = await state_ids(store, agent, "confirm")

            def everything(session: Session, key: str) -> TurnCommit:
                return turn(
                    session,
                    current_journey_id=journey,
                    current_state_id=state,
                    events=[message("hello", key=key), message("again")],
                    variables=[
                        VariableChange(key="day", value="friday"),
                        VariableChange(key="vip", value="yes", scope=VariableScope.CUSTOMER),
                    ],
                    usage={usage_key("agent", agent, "total_messages"): 2},
                )

            session = await store.commit_turn(WS, everything(session, "m-0"))
            sent = Sent(store)
            read = await store.read_turn(WS, session.id)
            assert [s.split()[0] for s in await sent.taken()] == ["SELECT"]
            await store.commit_turn(WS, everything(read.session, "m-1"))
            # no BEGIN, no COMMIT (autocommit): the turn, then the NOTIFY of its events
            commit, notify = await sent.taken()
            assert commit.startswith("WITH v AS")
            assert "pg_notify" in notify
            assert "pg_notify" not in commit
            read = await store.read_turn(WS, session.id, idempotency_key="m-1")
            assert read.message is not None
            assert read.message.content["text"] == "hello"
            assert [s.split()[0] for s in await sent.taken()] == ["SELECT", "SELECT"]
            sent.stop()
        finally:
            await store.close()

    asyncio.run(body())


def test_a_commit_notifies_once_with_its_last_offset_and_a_refused_one_not_at_all(
    postgres_database: str,
) -> None:
    async def body() -> None:
        await reset_postgres(postgres_database)
        store = SqlStore.open(postgres_database)
        heard: asyncio.Queue[str] = asyncio.Queue()
        listener = await asyncpg.connect(_raw(postgres_database))
        try:
            await listener.add_listener("parlant_events", lambda *a: heard.put_nowait(a[-1]))
            agent = await setup_agent(store)
            session = await store.create_session(WS, SessionStart(agent_id=agent))
            first = await store.commit_turn(
                WS, turn(session, events=[message("a"), message("b"), message("c")])
            )
            assert await asyncio.wait_for(heard.get(), 5.0) == f"{session.id}:2"
            with pytest.raises(ConcurrentUpdate):  # computed at the old version
                await store.commit_turn(WS, turn(session, events=[message("late")]))
            second = await store.commit_turn(WS, turn(first))  # no events: nothing to wake
            await store.commit_turn(WS, turn(second, events=[message("d")]))
            assert await asyncio.wait_for(heard.get(), 5.0) == f"{session.id}:3"
            await asyncio.sleep(0.2)
            assert heard.empty()
        finally:
            await listener.close()
            await store.close()

    asyncio.run(body())


_SHAPES = [
    Shape(*flags)
    for flags in itertools.product((False, True), repeat=7)
    if not (flags[0] and flags[6])  # on Citus the version row is made apart
]


def test_the_statement_of_every_shape_is_prepared_by_postgresql(postgres_database: str) -> None:
    async def body() -> None:
        connection = await asyncpg.connect(_raw(postgres_database))
        try:
            for shape in _SHAPES:
                sql, names = turn_statement(shape)
                statement = await connection.prepare(sql)
                assert len(statement.get_parameters()) == len(names), shape
                assert len(set(names)) == len(names), shape
            for customer in (False, True):
                sql, names = diagnosis(customer=customer)
                statement = await connection.prepare(sql)
                assert len(statement.get_parameters()) == len(names)
        finally:
            await connection.close()

    asyncio.run(body())
