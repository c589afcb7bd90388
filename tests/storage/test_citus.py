"""The distributed layout on a Citus cluster: what ``db upgrade`` makes of the tables,
that a turn's statements are router queries (one shard each), that waiters are woken
by notifications sent on the coordinator, and the command line's ``--citus``.

The behaviour of the store itself on Citus is the whole storage suite's (its ``citus``
backend); these are the properties only a cluster has.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from typing import Any

import asyncpg  # type: ignore[import-untyped]  # no stubs, no py.typed
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from parlant_runtime.cli import cli
from parlant_runtime.model import EventType, VariableScope
from parlant_runtime.storage import citus, migrate
from parlant_runtime.storage.port import NewEvent, SessionStart, VariableChange
from parlant_runtime.storage.sql.schema import metadata
from parlant_runtime.storage.sql.store import SqlStore
from tests.citus import citus_url
from tests.storage.support import (
    WS,
    make_bundle,
    message,
    reset_postgres,
    setup_agent,
    state_ids,
    turn,
    usage_key,
)

FOREVER = 60.0  # a waiter's timeout: a return well before it was a wake-up


def _raw(url: str) -> str:
    return sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def test_every_table_of_the_schema_has_a_place_in_the_layout() -> None:
    # a table a migration adds must be classified here, or db upgrade would leave it
    # on the coordinator alone, where sharded tables cannot join it
    placed = {*citus.DISTRIBUTED, *citus.REFERENCE, *citus.LOCAL}
    assert set(metadata.tables) - placed == set()
    # and every sharded table keys its rows by the column it is sharded by
    for name, spec in citus.DISTRIBUTED.items():
        if name in metadata.tables:  # the layout also names tables of older revisions
            assert spec.column in metadata.tables[name].c, name


@pytest.fixture(scope="module")
def laid_out() -> Iterator[str]:
    """A Citus database upgraded by the library (migrations, then the layout)."""
    with citus_url() as url:
        asyncio.run(migrate.upgrade(url))  # the extension is there: laid out by itself
        yield url


@pytest.mark.citus
def test_upgrade_shards_sessions_and_events_together_and_replicates_definitions(
    laid_out: str,
) -> None:
    async def body() -> None:
        connection = await asyncpg.connect(_raw(laid_out))
        try:
            rows = await connection.fetch(
                "SELECT logicalrelid::regclass::text AS name, partmethod::text, colocationid, "
                "column_to_column_name(logicalrelid, partkey) AS col FROM pg_dist_partition"
            )
            kinds = {r["name"].replace('"', ""): r["partmethod"] for r in rows}
            replicated = {name for name, kind in kinds.items() if kind == "n"}
            assert replicated == set(citus.REFERENCE) & set(metadata.tables)
            sharded = {
                r["name"]: (r["col"], r["colocationid"]) for r in rows if r["partmethod"] == "h"
            }
            assert sharded["parlant_session"][0] == "id"
            assert sharded["parlant_event"] == ("session_id", sharded["parlant_session"][1])
            key = await connection.fetch(
                "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
                "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = 'parlant_event'::regclass "
                "AND i.indisprimary ORDER BY array_position(i.indkey, a.attnum)"
            )
            assert [r["attname"] for r in key] == ["session_id", "id"]
        finally:
            await connection.close()
        # once more: nothing left to do
        assert await migrate.distribute(laid_out) == []

    asyncio.run(body())


@pytest.mark.citus
def test_distribute_refuses_a_host_unique_index_without_the_session_and_changes_nothing() -> None:
    with citus_url() as url:

        async def body() -> None:
            await migrate.upgrade(url, citus=False)
            connection = await asyncpg.connect(_raw(url))
            try:
                # a host's own unique index: Citus could not enforce it across shards
                await connection.execute(
                    "CREATE UNIQUE INDEX host_event_tool_call ON parlant_event (tool_call_id)"
                )
                with pytest.raises(citus.LayoutRefused, match="host_event_tool_call"):
                    await migrate.distribute(url, required=True)
                assert await connection.fetchval("SELECT count(*) FROM pg_dist_partition") == 0
            finally:
                await connection.close()

        asyncio.run(body())


@pytest.mark.citus
def test_session_values_move_to_their_shards_in_0006_and_back() -> None:
    """A cluster laid out at 0005 (session values in the replicated parlant_variable)
    upgrades to 0006: the values land beside their sessions, and come back down."""
    with citus_url() as url:

        async def values(session_id: Any) -> dict[str, Any]:
            store = SqlStore.open(url)
            try:
                return {v.key: v.value for v in await store.get_variables(WS, session_id)}
            finally:
                await store.close()

        async def body() -> None:
            await migrate.upgrade(url, "0005_runtime_session_state")
            store = SqlStore.open(url)
            try:
                agent = await setup_agent(store)
                session = await store.create_session(WS, SessionStart(agent_id=agent))
            finally:
                await store.close()
            connection = await asyncpg.connect(_raw(url))
            try:  # where a turn set a session value before 0006
                await connection.execute(
                    "INSERT INTO parlant_variable (id, agent_id, session_id, key, scope, value, "
                    "value_type) VALUES (gen_random_uuid(), $1, $2, 'day', 'session', "
                    "'\"friday\"', 'string')",
                    agent,
                    session.id,
                )
                assert await migrate.upgrade(url, "0006_runtime_session_variables") == [
                    "0006_runtime_session_variables"
                ]
                assert await _placement(url, {"parlant_runtime.session_variable"}) == {
                    "co-located with the sessions"
                }
                assert (await values(session.id))["day"] == "friday"
                assert (
                    await connection.fetchval(
                        "SELECT count(*) FROM parlant_variable WHERE session_id IS NOT NULL"
                    )
                    == 0
                )
                await migrate.downgrade(url, "0005_runtime_session_state")
                assert (
                    await connection.fetchval(
                        "SELECT value #>> '{}' FROM parlant_variable WHERE session_id = $1",
                        session.id,
                    )
                    == "friday"
                )
            finally:
                await connection.close()

        asyncio.run(body())


@pytest.mark.citus
def test_a_converted_database_moves_its_session_values_beside_the_sessions() -> None:
    """Unsharded, a turn's session value is in the platform's parlant_variable; the
    layout step moves it into session_variable, where a later turn finds and sets it."""
    with citus_url() as url:

        async def count(connection: Any, query: str) -> int:
            return int(await connection.fetchval(query))

        async def body() -> None:
            await migrate.upgrade(url, citus=False)  # one server's layout, at head
            store = SqlStore.open(url)
            try:
                agent = await setup_agent(store)
                session = await store.create_session(WS, SessionStart(agent_id=agent))
                session = await store.commit_turn(
                    WS, turn(session, variables=[VariableChange(key="day", value="friday")])
                )
            finally:
                await store.close()
            connection = await asyncpg.connect(_raw(url))
            try:
                in_platform = "SELECT count(*) FROM parlant_variable WHERE session_id IS NOT NULL"
                in_runtime = "SELECT count(*) FROM parlant_runtime.session_variable"
                assert await count(connection, in_platform) == 1  # where the host reads it
                assert await count(connection, in_runtime) == 0
                steps = await migrate.distribute(url, required=True)
                assert steps is not None
                assert (
                    "1 session values moved from parlant_variable to "
                    "parlant_runtime.session_variable" in steps
                )
                assert await count(connection, in_platform) == 0
                assert await count(connection, in_runtime) == 1
                store = SqlStore.open(url)
                try:
                    values = {v.key: v.value for v in await store.get_variables(WS, session.id)}
                    assert values["day"] == "friday"
                    session = await store.get_session(WS, session.id)
                    await store.commit_turn(
                        WS, turn(session, variables=[VariableChange(key="day", value="monday")])
                    )
                    values = {v.key: v.value for v in await store.get_variables(WS, session.id)}
                    assert values["day"] == "monday"
                finally:
                    await store.close()
                assert await count(connection, in_platform) == 0  # the turn wrote the shard
                assert (
                    await connection.fetchval(
                        "SELECT value #>> '{}' FROM parlant_runtime.session_variable"
                    )
                    == "monday"
                )
            finally:
                await connection.close()

        asyncio.run(body())


class Recorded:
    """The statements (and their parameters) the store's writer sends."""

    def __init__(self, store: SqlStore) -> None:
        self.statements: list[tuple[str, Any]] = []
        self._engine = store._writer.sync_engine
        sa.event.listen(self._engine, "before_cursor_execute", self._seen)

    def _seen(self, _conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        self.statements.append((statement, parameters))

    def stop(self) -> None:
        sa.event.remove(self._engine, "before_cursor_execute", self._seen)


@pytest.mark.citus
def test_every_statement_of_a_turn_is_a_router_query(laid_out: str) -> None:
    async def body() -> None:
        await reset_postgres(laid_out)
        store = SqlStore.open(laid_out)
        try:
            agent = await setup_agent(store)
            session = await store.create_session(WS, SessionStart(agent_id=agent))
            await store.commit_turn(WS, turn(session, events=[message("warm up")]))
            session = await store.get_session(WS, session.id)
            journey, state = await state_ids(store, agent, "confirm")
            recorded = Recorded(store)
            await store.commit_turn(
                WS,
                turn(
                    session,
                    current_journey_id=journey,
                    current_state_id=state,
                    events=[
                        message("hello", key="m-1"),
                        NewEvent(
                            event_type=EventType.JOURNEY_TRANSITION,
                            content={"to": "confirm"},
                            journey_id=journey,
                            state_id=state,
                        ),
                    ],
                    variables=[
                        VariableChange(key="day", value="friday", scope=VariableScope.SESSION)
                    ],
                    usage={usage_key("agent", agent, "total_messages"): 1},
                ),
            )
            recorded.stop()
        finally:
            await store.close()
        plans = await _explain(laid_out, recorded.statements)
        counts = {statement: re.findall(r"Task Count: (\d+)", plan) for statement, plan in plans}
        # every distributed statement runs on one shard (a router query); statements
        # without tables (the NOTIFY) run on the coordinator alone
        assert {n for found in counts.values() for n in found} == {"1"}, counts
        routed = [s for s, found in counts.items() if found]
        # the compare-and-set and the session's update are one statement (a chain of
        # UPDATEs, which Citus routes whole; with an INSERT in it, it would not)
        (chain,) = [s for s in routed if s.startswith("WITH")]
        assert "UPDATE parlant_runtime.session_state" in chain
        assert "UPDATE parlant_session" in chain
        assert "INSERT" not in chain
        for table in ("parlant_event", "parlant_runtime.event_key", "parlant_runtime.usage_delta"):
            assert any(s.startswith(f"INSERT INTO {table} ") for s in routed), table
        # on one worker, the session's
        nodes = {n for _, plan in plans for n in re.findall(r"Node: host=\S+ port=(\d+)", plan)}
        assert len(nodes) == 1, nodes
        # and every table the turn writes is sharded beside the session: no reference
        # table (a write to one is a write on every node, a two-phase commit)
        written = {name for s, _ in recorded.statements if (name := _written(s))}
        assert "parlant_runtime.session_variable" in written, written  # the variable
        assert await _placement(laid_out, written) == {"co-located with the sessions"}

    asyncio.run(body())


def _written(statement: str) -> str | None:
    """The table an ``INSERT`` or ``UPDATE`` writes."""
    found = re.match(r"\s*(?:INSERT INTO|UPDATE) ([\w.]+)", statement)
    return found.group(1) if found else None


async def _placement(url: str, tables: set[str]) -> set[str]:
    """How Citus holds each of ``tables``: co-located with the sessions, or otherwise."""
    connection = await asyncpg.connect(_raw(url))
    try:
        rows = await connection.fetch(
            "SELECT p.partmethod::text AS method, "
            "p.colocationid = (SELECT colocationid FROM pg_dist_partition "
            "WHERE logicalrelid = 'parlant_session'::regclass) AS beside "
            "FROM unnest($1::text[]) AS t(name) "
            "LEFT JOIN pg_dist_partition p ON p.logicalrelid = t.name::regclass",
            sorted(tables),
        )
    finally:
        await connection.close()
    return {
        "co-located with the sessions"
        if row["method"] == "h" and row["beside"]
        else f"{row['method'] or 'local'} table"
        for row in rows
    }


async def _explain(url: str, statements: list[tuple[str, Any]]) -> list[tuple[str, str]]:
    """``EXPLAIN`` (plans only: nothing runs) of each recorded statement with its
    parameters (the first row of an executemany)."""
    connection = await asyncpg.connect(_raw(url))
    plans = []
    try:
        for statement, parameters in statements:
            if not statement.lstrip().upper().startswith(("SELECT", "INSERT", "UPDATE", "WITH")):
                continue
            # an executemany's rows are a list: the first row's parameters
            given = parameters[0] if isinstance(parameters, list) else parameters
            rows = await connection.fetch("EXPLAIN " + statement, *tuple(given or ()))
            plans.append((statement, "\n".join(row[0] for row in rows)))
    finally:
        await connection.close()
    assert plans, "no statement recorded"
    return plans


@pytest.mark.citus
def test_a_waiter_is_woken_by_a_commit_of_another_store(laid_out: str) -> None:
    async def body() -> None:
        await reset_postgres(laid_out)
        # a long poll interval: only a notification can wake the waiter in time
        waiting, writing = SqlStore.open(laid_out, poll_interval=30), SqlStore.open(laid_out)
        heard: asyncio.Queue[str] = asyncio.Queue()
        listener = await asyncpg.connect(_raw(laid_out))  # a plain LISTEN on the coordinator
        try:
            await listener.add_listener("parlant_events", lambda *a: heard.put_nowait(a[-1]))
            agent = await setup_agent(writing)
            session = await writing.create_session(WS, SessionStart(agent_id=agent))
            waiter = asyncio.ensure_future(
                waiting.wait_for_events(WS, session.id, after=-1, timeout=FOREVER)
            )
            await asyncio.sleep(0.5)  # the waiter listens
            assert not waiter.done()
            await writing.commit_turn(WS, turn(session, events=[message("hi"), message("there")]))
            events = await asyncio.wait_for(waiter, 10.0)
            assert [e.content["text"] for e in events] == ["hi", "there"]
            assert await asyncio.wait_for(heard.get(), 5.0) == f"{session.id}:1"
        finally:
            await listener.close()
            await waiting.close()
            await writing.close()

    asyncio.run(body())


@pytest.mark.citus
def test_a_publish_that_moves_sessions_wakes_their_waiters(laid_out: str) -> None:

    async def body() -> None:
        await reset_postgres(laid_out)
        waiting, writing = SqlStore.open(laid_out, poll_interval=30), SqlStore.open(laid_out)
        try:
            agent = await setup_agent(writing)
            journey, state = await state_ids(writing, agent, "confirm")
            session = await writing.create_session(WS, SessionStart(agent_id=agent))
            session = await writing.commit_turn(
                WS,
                turn(
                    session,
                    events=[message("hi")],
                    current_journey_id=journey,
                    current_state_id=state,
                ),
            )
            waiter = asyncio.ensure_future(
                waiting.wait_for_events(WS, session.id, after=0, timeout=FOREVER)
            )
            await asyncio.sleep(0.5)
            await writing.publish(WS, make_bundle(("ask", "done")), force=True)
            events = await asyncio.wait_for(waiter, 10.0)
            assert [e.event_type.value for e in events] == ["journey_transition"]
        finally:
            await waiting.close()
            await writing.close()

    asyncio.run(body())


@pytest.mark.postgres
def test_upgrade_with_citus_on_plain_postgresql_says_what_is_missing(
    postgres_database: str,
) -> None:
    result = CliRunner().invoke(
        cli, ["db", "upgrade", "--citus", "--database-url", postgres_database]
    )
    assert result.exit_code != 0
    assert "no citus extension" in result.output
    assert "CREATE EXTENSION citus" in result.output


@pytest.mark.citus
def test_upgrade_on_a_coordinator_lays_the_tables_out_and_says_so() -> None:
    with citus_url() as url:
        first = CliRunner().invoke(cli, ["db", "upgrade", "--database-url", url])
        assert first.exit_code == 0, first.output
        assert "citus: parlant_session: distributed by id" in first.output
        assert "citus: parlant_agent: reference table" in first.output
        again = CliRunner().invoke(cli, ["db", "upgrade", "--database-url", url])
        assert again.exit_code == 0, again.output
        assert "citus: the distributed layout is complete" in again.output
        skipped = CliRunner().invoke(cli, ["db", "upgrade", "--no-citus", "--database-url", url])
        assert skipped.exit_code == 0, skipped.output
        assert "citus:" not in skipped.output


_KEY_INDEX_ON_SHARDS = (
    "SELECT result FROM run_command_on_shards('parlant_runtime.event_key', "
    "$cmd$SELECT count(*) FROM pg_index WHERE indrelid = '%s'::regclass "
    "AND NOT indisprimary$cmd$)"
)
"""Per shard of ``event_key``, how many indexes it has besides its primary key."""


@pytest.mark.citus
def test_a_laid_out_database_goes_below_0005_and_back_with_its_rows() -> None:
    """0007, 0006 and 0005 down on a cluster laid out at the newest revision (their
    statements mix distributed, reference and coordinator tables), then up again: the
    runtime's rows land in the platform's tables and come back, 0007's index is on
    every shard of event_key and off it, the recreated parlant_usage is distributed
    again, and the store finds everything afterwards."""
    with citus_url() as url:

        async def body() -> None:
            await migrate.upgrade(url)
            store = SqlStore.open(url)
            try:
                agent = await setup_agent(store)
                start = SessionStart(agent_id=agent, customer_id="c-1")
                session = await store.create_session(WS, start)
                tier = VariableChange(key="tier", value="gold", scope=VariableScope.CUSTOMER)
                changes = [VariableChange(key="day", value="friday"), tier]
                usage = {usage_key("agent", agent, "total_messages"): 3}
                session = await store.commit_turn(
                    WS,
                    turn(session, events=[message("hi", "k-1")], variables=changes, usage=usage),
                )
            finally:
                await store.close()
            connection = await asyncpg.connect(_raw(url))
            try:
                assert {r[0] for r in await connection.fetch(_KEY_INDEX_ON_SHARDS)} == {"1"}
                assert await migrate.downgrade(url, "0004_runtime_schema") == [
                    "0007_runtime_event_key_offset",
                    "0006_runtime_session_variables",
                    "0005_runtime_session_state",
                ]
                # created again by 0005's downgrade, and laid out as at 0004
                assert await _placement(url, {"parlant_usage"}) == {"h table"}
                assert await connection.fetchval("SELECT version FROM parlant_session") == 1
                assert await connection.fetchval("SELECT idempotency_key FROM parlant_event") == (
                    "k-1"
                )
                values = await connection.fetch(
                    "SELECT key, value #>> '{}' AS value, session_id IS NOT NULL AS of_session, "
                    "customer_id FROM parlant_variable WHERE session_id IS NOT NULL "
                    "OR customer_id IS NOT NULL ORDER BY key"
                )
                assert [tuple(row) for row in values] == [
                    ("day", "friday", True, None),
                    ("tier", "gold", False, "c-1"),
                ]
                assert (
                    await connection.fetchval(
                        "SELECT sum(delta) FROM parlant_usage WHERE counter = 'total_messages'"
                    )
                    == 3
                )
                assert await migrate.upgrade(url) == [
                    "0005_runtime_session_state",
                    "0006_runtime_session_variables",
                    "0007_runtime_event_key_offset",
                ]
                assert {r[0] for r in await connection.fetch(_KEY_INDEX_ON_SHARDS)} == {"1"}
                beside = {f"parlant_runtime.{name}" for name in ("session_state", "event_key")}
                beside |= {"parlant_runtime.usage_delta", "parlant_runtime.session_variable"}
                assert await _placement(url, beside) == {"co-located with the sessions"}
            finally:
                await connection.close()
            store = SqlStore.open(url)
            try:
                (event,) = await store.list_events(WS, session.id)
                assert event.idempotency_key == "k-1"
                assert await store.find_message(WS, session.id, "k-1") == event
                found = {v.key: v.value for v in await store.get_variables(WS, session.id)}
                assert (found["day"], found["tier"]) == ("friday", "gold")
                assert (await store.get_session(WS, session.id)).version == 1
            finally:
                await store.close()

        asyncio.run(body())
