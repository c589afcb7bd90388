"""The migrations, on SQLite and PostgreSQL: they build exactly the schema of ``schema.py``.

Each test gets an empty database of its own (a file under ``tmp_path``, or a
throwaway PostgreSQL database from ``tests/postgres.py``). Also here: the URL
rules, the ``db`` commands, and the packaging that ships the migrations.
"""

from __future__ import annotations

import ast
import asyncio
import sqlite3
import subprocess
import sys
import tomllib
import uuid
from collections.abc import Callable, Coroutine, Iterator
from contextlib import closing
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from parlant_runtime import DatabaseUnavailable, DatabaseURLError, MigrationError
from parlant_runtime.cli.db import db
from parlant_runtime.model.enums import (
    AgentStatus,
    CompositionMode,
    EventType,
    SessionMode,
    SessionStatus,
    StateType,
)
from parlant_runtime.storage import migrate
from parlant_runtime.storage.sql import schema
from parlant_runtime.storage.sql.engine import create_engine
from parlant_runtime.storage.url import DATABASE_URL_ENV, DEFAULT_DATABASE_URL, database_url
from tests.postgres import postgres_url

T = TypeVar("T")

ROOT = Path(__file__).resolve().parent.parent
SEED = "0001_seed_schema"
EXTENSIONS = "0002_runtime_extensions"
EVENT_LOG = "0003_event_log_keeps_positions"
OWN = "0004_runtime_schema"
SESSION_SIDE = "0005_runtime_session_state"
SESSION_VALUES = "0006_runtime_session_variables"
EVENT_KEYS = "0007_runtime_event_key_offset"
HEAD = EVENT_KEYS
REVISIONS = [SEED, EXTENSIONS, EVENT_LOG, OWN, SESSION_SIDE, SESSION_VALUES, EVENT_KEYS]
HOST_TABLES = set(schema.HOST_TABLES)
RUNTIME = schema.RUNTIME_SCHEMA


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


def on_database(url: str, work: Callable[[sa.Connection], T]) -> T:
    """Run ``work`` on a connection of the library's engine, in a transaction that commits."""

    async def go() -> T:
        engine = create_engine(database_url(url))
        try:
            async with engine.begin() as connection:
                return await connection.run_sync(work)
        finally:
            await engine.dispose()

    return run(go())


def table_names(url: str) -> set[str]:
    """The tables, those of the runtime's own schema named ``parlant_runtime.<table>``."""

    def read(connection: sa.Connection) -> set[str]:
        inspector = sa.inspect(connection)
        names = set(inspector.get_table_names())
        if connection.dialect.name == "postgresql" and inspector.has_schema(RUNTIME):
            names |= {f"{RUNTIME}.{name}" for name in inspector.get_table_names(schema=RUNTIME)}
        return names

    return on_database(url, read)


def head_tables(url: str) -> set[str]:
    """The tables of a database at head: the schema's, and Alembic's version table (in
    the runtime's own schema on PostgreSQL)."""
    if url.startswith("sqlite"):
        return {table.name for table in schema.metadata.tables.values()} | {"alembic_version"}
    return set(schema.metadata.tables) | {f"{RUNTIME}.alembic_version"}


def column_names(url: str, table: str) -> set[str]:
    def read(connection: sa.Connection) -> set[str]:
        return {column["name"] for column in sa.inspect(connection).get_columns(table)}

    return on_database(url, read)


def snapshot(url: str) -> dict[str, Any]:
    """Tables with their columns and indexes, as reflected: for before/after comparisons."""

    def read(connection: sa.Connection) -> dict[str, Any]:
        inspector = sa.inspect(connection)
        return {
            table: (
                [(c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)],
                sorted(index["name"] or "" for index in inspector.get_indexes(table)),
            )
            for table in inspector.get_table_names()
        }

    return on_database(url, read)


def table_of(difference: Any) -> str:
    """The table an Alembic ``compare_metadata`` entry is about."""
    entry = difference[0] if isinstance(difference, list) else difference
    kind, subject = entry[0], entry[1]
    if kind.endswith("_table"):
        return str(subject.name)
    if isinstance(subject, sa.Index | sa.Constraint):
        assert subject.table is not None
        return str(subject.table.name)
    return str(entry[2])  # column entries: (kind, schema, table, ...)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database, SQLite then PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'parlant.db'}"
    else:
        with postgres_url() as url:
            yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'parlant.db'}"


# ------------------------------------------------------------------ the schema


def test_upgrade_builds_exactly_the_schema_of_the_tables(database: str) -> None:
    assert run(migrate.upgrade(database)) == REVISIONS
    assert run(migrate.current_revision(database)) == HEAD == migrate.head()
    assert table_names(database) == head_tables(database)
    assert run(migrate.differences(database)) == []


def test_upgrading_twice_changes_nothing(database: str) -> None:
    run(migrate.upgrade(database))
    before = snapshot(database)
    assert run(migrate.upgrade(database)) == []
    assert snapshot(database) == before
    assert run(migrate.current_revision(database)) == HEAD


def test_downgrade_to_base_and_back(database: str) -> None:
    run(migrate.upgrade(database))
    assert run(migrate.downgrade(database, "base")) == list(reversed(REVISIONS))
    assert table_names(database) == HOST_TABLES | {"alembic_version"}
    assert run(migrate.current_revision(database)) is None
    assert run(migrate.upgrade(database)) == REVISIONS
    assert run(migrate.differences(database)) == []


def test_step_by_step_the_seed_comes_first(database: str) -> None:
    assert run(migrate.upgrade(database, SEED)) == [SEED]
    assert run(migrate.current_revision(database)) == SEED
    assert "parlant_usage" not in table_names(database)
    assert "version" not in column_names(database, "parlant_agent")
    assert run(migrate.upgrade(database)) == REVISIONS[1:]
    assert run(migrate.differences(database)) == []


def test_enum_columns_refuse_unknown_values(database: str) -> None:
    run(migrate.upgrade(database))
    on_database(database, _insert_workspace)
    with pytest.raises(sa.exc.DBAPIError):
        on_database(
            database,
            lambda connection: connection.execute(
                sa.text(
                    "INSERT INTO parlant_agent (id, workspace_id, name, status) "
                    "VALUES (:id, 'ws-1', 'Support', 'deleted')"
                ),
                {"id": uuid.uuid4().hex},
            ),
        )


@pytest.mark.postgres
def test_enum_types_are_created_once_with_the_seed_values(postgres_database: str) -> None:
    run(migrate.upgrade(postgres_database))

    def read(connection: sa.Connection) -> dict[str, list[str]]:
        rows = connection.execute(
            sa.text(
                "SELECT t.typname, e.enumlabel FROM pg_type t "
                "JOIN pg_enum e ON e.enumtypid = t.oid ORDER BY t.typname, e.enumsortorder"
            )
        )
        types: dict[str, list[str]] = {}
        for name, label in rows:
            types.setdefault(name, []).append(label)
        return types

    expected = {
        "agent_status": AgentStatus,
        "composition_mode": CompositionMode,
        "event_type": EventType,
        "journey_state_type": StateType,
        "session_mode": SessionMode,
        "session_status": SessionStatus,
    }
    assert on_database(postgres_database, read) == {
        name: [member.value for member in enum] for name, enum in expected.items()
    }
    run(migrate.downgrade(postgres_database, "base"))
    assert on_database(postgres_database, read) == {}


# ------------------------------------------------------------------ data and host tables

AGENT, JOURNEY, STATE, SESSION = (uuid.uuid4() for _ in range(4))


def _insert_workspace(connection: sa.Connection) -> None:
    connection.execute(sa.insert(schema.workspace).values(id="ws-1", name="Acme"))


def _insert_seed_rows(connection: sa.Connection) -> None:
    """One row per seed table on the session path, written with seed columns only."""
    _insert_workspace(connection)
    connection.execute(
        sa.insert(schema.agent).values(id=AGENT, workspace_id="ws-1", name="Support")
    )
    connection.execute(sa.insert(schema.journey).values(id=JOURNEY, agent_id=AGENT, title="Book"))
    connection.execute(
        sa.insert(schema.journey_state).values(
            id=STATE, journey_id=JOURNEY, name="ask", state_type="chat", chat_prompt="When?"
        )
    )
    connection.execute(
        sa.insert(schema.session).values(
            id=SESSION,
            agent_id=AGENT,
            workspace_id="ws-1",
            current_journey_id=JOURNEY,
            current_state_id=STATE,
        )
    )
    connection.execute(
        sa.insert(schema.event).values(
            id=uuid.uuid4(),
            session_id=SESSION,
            offset=0,
            event_type="customer_message",
            content={"text": "hello"},
            state_id=STATE,
        )
    )


def _session_row(connection: sa.Connection) -> tuple[Any, ...]:
    row = connection.execute(
        sa.select(schema.session.c.current_state_id, schema.event.c.state_id).join_from(
            schema.session, schema.event
        )
    ).one()
    return tuple(row)


def test_rows_survive_0002_up_and_down(database: str) -> None:
    run(migrate.upgrade(database, SEED))
    on_database(database, _insert_seed_rows)

    run(migrate.upgrade(database))
    assert on_database(database, _session_row) == (STATE, STATE)
    defaults = on_database(
        database,
        lambda connection: connection.execute(
            sa.select(schema.agent_state.c.version, schema.row_order.c.position)
            .join_from(schema.agent_state, schema.row_order, sa.true())
            .where(schema.row_order.c.row_id == STATE)
        ).one(),
    )
    assert tuple(defaults) == (1, 0)  # 0002's defaults, carried into the side tables by 0004

    # On SQLite batch mode rebuilds the tables: with foreign keys on, dropping the
    # old parlant_journey_state would have cleared the references to it.
    assert run(migrate.downgrade(database, SEED)) == REVISIONS[:0:-1]
    assert on_database(database, _session_row) == (STATE, STATE)
    assert run(migrate.upgrade(database)) == REVISIONS[1:]
    assert on_database(database, _session_row) == (STATE, STATE)


def test_events_keep_a_removed_state_from_0003_and_lose_it_below(database: str) -> None:
    run(migrate.upgrade(database, SEED))
    on_database(database, _insert_seed_rows)
    run(migrate.upgrade(database))

    def remove_state(connection: sa.Connection) -> None:
        connection.execute(sa.delete(schema.journey_state))

    on_database(database, remove_state)
    # the session's position is cleared (its foreign key); the event keeps its record
    assert on_database(database, _session_row) == (None, STATE)
    assert run(migrate.downgrade(database, EXTENSIONS)) == [
        HEAD,
        SESSION_VALUES,
        SESSION_SIDE,
        OWN,
        EVENT_LOG,
    ]
    assert on_database(database, _session_row) == (None, None)  # as SET NULL would have
    assert run(migrate.upgrade(database)) == [EVENT_LOG, OWN, SESSION_SIDE, SESSION_VALUES, HEAD]
    assert run(migrate.differences(database)) == []


GUIDELINE, TRANSITION = uuid.uuid4(), uuid.uuid4()


def _runtime_columns_at_0003(connection: sa.Connection) -> None:
    """Values in the runtime's columns of the platform's tables, as 0002 kept them."""
    connection.execute(
        sa.text(
            "UPDATE parlant_agent SET version = 7, no_match_response = 'Sorry.';"
            if connection.dialect.name == "postgresql"
            else "UPDATE parlant_agent SET version = 7, no_match_response = 'Sorry.'"
        )
    )
    connection.execute(
        sa.text(
            "INSERT INTO parlant_guideline (id, agent_id, condition, action, name, position) "
            "VALUES (:id, :agent, 'asked', 'answer', 'greet', 3)"
        ),
        {
            "id": GUIDELINE if connection.dialect.name == "postgresql" else GUIDELINE.hex,
            "agent": AGENT if connection.dialect.name == "postgresql" else AGENT.hex,
        },
    )
    connection.execute(sa.text("UPDATE parlant_journey_state SET position = 2"))


def _moved(connection: sa.Connection) -> tuple[Any, ...]:
    prefix = f"{RUNTIME}." if connection.dialect.name == "postgresql" else ""
    state = connection.execute(
        sa.text(f"SELECT version, no_match_response FROM {prefix}agent_state")
    ).one()
    order = connection.execute(
        sa.text(f"SELECT name, position FROM {prefix}row_order ORDER BY position")
    ).all()
    return tuple(state), [tuple(row) for row in order]


def _in_platform_columns(connection: sa.Connection) -> tuple[Any, ...]:
    return (
        tuple(
            connection.execute(
                sa.text("SELECT version, no_match_response FROM parlant_agent")
            ).one()
        ),
        tuple(connection.execute(sa.text("SELECT name, position FROM parlant_guideline")).one()),
        connection.execute(sa.text("SELECT position FROM parlant_journey_state")).scalar_one(),
    )


def test_0004_moves_the_runtimes_columns_into_its_own_tables_and_back(database: str) -> None:
    run(migrate.upgrade(database, EVENT_LOG))
    on_database(database, _insert_seed_rows)
    on_database(database, _runtime_columns_at_0003)

    assert run(migrate.upgrade(database, OWN)) == [OWN]
    assert on_database(database, _moved) == (
        (7, "Sorry."),
        [(None, 0), (None, 2), ("greet", 3)],
    )  # journey, state, guideline
    for table in (schema.agent, schema.guideline, schema.journey_state):  # the platform's shape
        assert column_names(database, table.name) == {column.name for column in table.c}
    if database.startswith("postgresql"):  # the version table moved into the runtime's schema
        assert "alembic_version" not in table_names(database)
        assert f"{RUNTIME}.alembic_version" in table_names(database)

    assert run(migrate.downgrade(database, EVENT_LOG)) == [OWN]
    assert on_database(database, _in_platform_columns) == ((7, "Sorry."), ("greet", 3), 2)
    assert run(migrate.current_revision(database)) == EVENT_LOG
    assert "alembic_version" in table_names(database)  # back where older releases read it
    assert not {name for name in table_names(database) if name.startswith(RUNTIME)}
    assert run(migrate.upgrade(database, OWN)) == [OWN]


def _runtime_state_of_0003(connection: sa.Connection) -> None:
    """What the runtime kept in the platform's tables before 0005: a session's version,
    a message's idempotency key, a customer value and a pending usage delta."""
    connection.exec_driver_sql("UPDATE parlant_session SET version = 7")
    connection.exec_driver_sql("UPDATE parlant_event SET idempotency_key = 'm-1'")
    agent = AGENT.hex if connection.dialect.name == "sqlite" else str(AGENT)
    connection.execute(
        sa.text(
            "INSERT INTO parlant_variable (id, agent_id, key, scope, value, value_type, "
            "is_private, customer_id) VALUES (:id, :agent, 'tier', 'customer', :value, "
            "'string', false, 'c-1')"
        ).bindparams(sa.bindparam("value", type_=schema.JSON)),
        {"id": uuid.uuid4().hex, "agent": agent, "value": "gold"},
    )
    connection.execute(
        sa.text(
            "INSERT INTO parlant_usage (workspace_id, entity, entity_id, counter, delta) "
            "VALUES ('ws-1', 'agent', :agent, 'total_messages', 2), "
            "('ws-1', 'agent', :agent, 'total_messages', 3)"
        ),
        {"agent": agent},
    )


def _runtime_state(connection: sa.Connection) -> tuple[Any, ...]:
    """The same, read from the runtime's own tables (0005)."""
    return (
        connection.execute(sa.select(schema.session_state.c.version)).scalar_one(),
        tuple(
            connection.execute(
                sa.select(schema.event_key.c.idempotency_key, schema.event_key.c.offset)
            ).one()
        ),
        tuple(
            connection.execute(
                sa.select(
                    schema.customer_variable.c.customer_id,
                    schema.customer_variable.c.key,
                    schema.customer_variable.c.value,
                )
            ).one()
        ),
        connection.execute(sa.select(schema.usage_delta.c.deltas)).scalar_one(),
        connection.execute(sa.select(sa.func.count()).select_from(schema.variable)).scalar_one(),
    )


def test_0005_moves_the_session_state_off_the_platform_tables_and_back(database: str) -> None:
    run(migrate.upgrade(database, SEED))
    on_database(database, _insert_seed_rows)
    run(migrate.upgrade(database, EVENT_LOG))
    on_database(database, _runtime_state_of_0003)
    run(migrate.upgrade(database, OWN))

    assert run(migrate.upgrade(database, SESSION_SIDE)) == [SESSION_SIDE]
    assert on_database(database, _runtime_state) == (
        7,
        ("m-1", 0),
        ("c-1", "tier", "gold"),
        {f"agent:{AGENT}:total_messages": 5},
        0,  # the customer value left the platform's table
    )
    assert "version" not in column_names(database, "parlant_session")
    assert "idempotency_key" not in column_names(database, "parlant_event")
    assert "customer_id" not in column_names(database, "parlant_variable")
    assert "parlant_usage" not in table_names(database)

    assert run(migrate.downgrade(database, OWN)) == [SESSION_SIDE]

    def back(connection: sa.Connection) -> tuple[Any, ...]:
        return (
            connection.exec_driver_sql("SELECT version FROM parlant_session").scalar_one(),
            connection.exec_driver_sql("SELECT idempotency_key FROM parlant_event").scalar_one(),
            tuple(
                connection.exec_driver_sql("SELECT customer_id, key FROM parlant_variable").one()
            ),
            connection.exec_driver_sql("SELECT sum(delta) FROM parlant_usage").scalar_one(),
        )

    assert on_database(database, back) == (7, "m-1", ("c-1", "tier"), 5)
    assert run(migrate.upgrade(database)) == [SESSION_SIDE, SESSION_VALUES, EVENT_KEYS]
    assert run(migrate.differences(database)) == []


def _values_of_0005(connection: sa.Connection) -> None:
    """An agent's definition and two session values, where turns wrote them before 0006."""
    long_ago = datetime(2026, 1, 1, tzinfo=UTC)
    rows: list[dict[str, Any]] = [
        {"session_id": None, "key": "day", "value": "monday"},  # the definition
        {"session_id": SESSION, "key": "day", "value": "friday"},
        {"session_id": SESSION, "key": "mood", "value": "calm"},
    ]
    for row in rows:
        connection.execute(
            sa.insert(schema.variable).values(
                id=uuid.uuid4(), agent_id=AGENT, scope="session", updated_at=long_ago, **row
            )
        )


def _variable_rows(connection: sa.Connection, table: sa.Table) -> set[tuple[Any, ...]]:
    session = table.c.session_id if "session_id" in table.c else sa.null()
    return {
        tuple(row) for row in connection.execute(sa.select(session, table.c.key, table.c.value))
    }


def test_0006_leaves_the_session_values_in_the_platform_table_on_one_server(
    database: str,
) -> None:
    """SQLite and one PostgreSQL: the runtime's table is created empty and the host keeps
    its sessions' values in its own parlant_variable (Citus moves them: test_citus)."""
    run(migrate.upgrade(database, SEED))
    on_database(database, _insert_seed_rows)
    run(migrate.upgrade(database, SESSION_SIDE))
    on_database(database, _values_of_0005)
    everything = {
        (None, "day", "monday"),
        (SESSION, "day", "friday"),
        (SESSION, "mood", "calm"),
    }

    assert run(migrate.upgrade(database, SESSION_VALUES)) == [SESSION_VALUES]
    assert on_database(database, lambda c: _variable_rows(c, schema.session_variable)) == set()
    assert on_database(database, lambda c: _variable_rows(c, schema.variable)) == everything
    assert run(migrate.downgrade(database, SESSION_SIDE)) == [SESSION_VALUES]
    assert "session_variable" not in table_names(database)
    assert on_database(database, lambda c: _variable_rows(c, schema.variable)) == everything
    assert run(migrate.upgrade(database)) == [SESSION_VALUES, EVENT_KEYS]
    assert run(migrate.differences(database)) == []


def _event_key_indexes(connection: sa.Connection) -> dict[str, list[str | None]]:
    schema_name = RUNTIME if connection.dialect.name == "postgresql" else None
    return {
        str(index["name"]): list(index["column_names"])
        for index in sa.inspect(connection).get_indexes("event_key", schema=schema_name)
    }


def test_0007_indexes_the_keys_by_their_event_and_drops_the_index_below(database: str) -> None:
    run(migrate.upgrade(database, SEED))
    on_database(database, _insert_seed_rows)
    run(migrate.upgrade(database, EVENT_LOG))
    on_database(database, _runtime_state_of_0003)  # a keyed message, moved by 0005
    run(migrate.upgrade(database, SESSION_VALUES))
    assert on_database(database, _event_key_indexes) == {}

    assert run(migrate.upgrade(database)) == [EVENT_KEYS]
    index = {"event_key_session_id_offset_idx": ["session_id", "offset"]}
    assert on_database(database, _event_key_indexes) == index
    assert run(migrate.differences(database)) == []
    assert run(migrate.downgrade(database, SESSION_VALUES)) == [EVENT_KEYS]
    assert on_database(database, _event_key_indexes) == {}
    keys = on_database(
        database,
        lambda c: c.execute(
            sa.select(schema.event_key.c.idempotency_key, schema.event_key.c.offset)
        ).all(),
    )
    assert [tuple(row) for row in keys] == [("m-1", 0)]  # the keys stay
    assert run(migrate.upgrade(database)) == [EVENT_KEYS]
    assert on_database(database, _event_key_indexes) == index


HOST_DDL = [
    "CREATE TABLE workspace (id TEXT PRIMARY KEY, name TEXT NOT NULL, owner_id TEXT, "
    "billing_plan TEXT NOT NULL DEFAULT 'free', "
    "created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, "
    "updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)",
    'CREATE TABLE "user" (id TEXT PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL, '
    "email_verified BOOLEAN NOT NULL DEFAULT FALSE, image TEXT, stripe_customer_id TEXT, "
    "created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, "
    "updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)",
    "CREATE TABLE knowledge_base (id TEXT PRIMARY KEY, user_id TEXT, workspace_id TEXT, "
    "name TEXT NOT NULL, description TEXT, token_count INTEGER NOT NULL DEFAULT 0, "
    "embedding_model TEXT)",
    "CREATE TABLE custom_tools (id TEXT PRIMARY KEY, user_id TEXT, title TEXT NOT NULL, "
    "schema JSON NOT NULL, code TEXT NOT NULL DEFAULT '', folder_id TEXT)",
    "INSERT INTO workspace (id, name, billing_plan) VALUES ('ws-host', 'Host', 'enterprise')",
    "INSERT INTO \"user\" (id, name, email) VALUES ('u-host', 'Ada', 'ada@example.com')",
]


def _host_rows(connection: sa.Connection) -> list[tuple[Any, ...]]:
    return [
        tuple(row)
        for row in connection.execute(
            sa.text('SELECT w.id, w.billing_plan, u.email FROM workspace w, "user" u ORDER BY w.id')
        )
    ]


def test_host_tables_that_exist_are_kept_with_their_columns_and_rows(database: str) -> None:
    def create_host_tables(connection: sa.Connection) -> None:
        for statement in HOST_DDL:
            connection.exec_driver_sql(statement)

    on_database(database, create_host_tables)
    assert run(migrate.upgrade(database)) == REVISIONS

    assert on_database(database, _host_rows) == [("ws-host", "enterprise", "ada@example.com")]
    assert "billing_plan" in column_names(database, "workspace")
    on_database(
        database,
        lambda connection: connection.execute(
            sa.insert(schema.agent).values(
                id=AGENT, workspace_id="ws-host", created_by="u-host", name="Support"
            )
        ),
    )
    # the host's own columns differ from ours, every parlant table is exact
    differences = run(migrate.differences(database))
    assert [entry for entry in differences if table_of(entry) not in HOST_TABLES] == []

    # and the downgrade leaves the host's tables and data alone
    run(migrate.downgrade(database, "base"))
    assert table_names(database) == HOST_TABLES | {"alembic_version"}
    assert on_database(database, _host_rows) == [("ws-host", "enterprise", "ada@example.com")]


# ------------------------------------------------------------------ transactions


def test_a_failed_upgrade_changes_nothing(database: str) -> None:
    # a table in the way of 0002's last step: everything before it must be undone
    def block(connection: sa.Connection) -> None:
        connection.exec_driver_sql("CREATE TABLE parlant_usage (id INTEGER PRIMARY KEY)")

    on_database(database, block)
    with pytest.raises(MigrationError, match="parlant_usage"):
        run(migrate.upgrade(database))
    assert run(migrate.current_revision(database)) is None
    assert table_names(database) == {"parlant_usage"}


def test_a_failed_upgrade_from_the_seed_keeps_the_seed(database: str) -> None:
    run(migrate.upgrade(database, SEED))
    on_database(
        database,
        lambda connection: connection.exec_driver_sql(
            "CREATE TABLE parlant_usage (id INTEGER PRIMARY KEY)"
        ),
    )
    with pytest.raises(MigrationError):
        run(migrate.upgrade(database))
    assert run(migrate.current_revision(database)) == SEED
    assert "version" not in column_names(database, "parlant_agent")


def test_sqlite_foreign_keys_are_checked_before_the_commit(sqlite_url: str) -> None:
    # migrations run with foreign keys off (batch mode rebuilds tables), so a row that
    # points nowhere must be caught before the commit rather than slip through
    run(migrate.upgrade(sqlite_url, SEED))
    path = sa.make_url(sqlite_url).database
    assert path is not None
    with closing(sqlite3.connect(path)) as connection:  # foreign keys are off by default
        connection.execute(
            "INSERT INTO parlant_journey (id, agent_id, title) VALUES (?, ?, 'Lost')",
            (uuid.uuid4().hex, uuid.uuid4().hex),
        )
        connection.commit()
    with pytest.raises(MigrationError, match="parlant_journey row 1 -> parlant_agent"):
        run(migrate.upgrade(sqlite_url))
    assert run(migrate.current_revision(sqlite_url)) == SEED


def test_concurrent_upgrades_in_one_process_take_turns(database: str) -> None:
    async def both() -> list[list[str]]:
        return list(await asyncio.gather(migrate.upgrade(database), migrate.upgrade(database)))

    assert sorted(run(both())) == [[], REVISIONS]
    assert run(migrate.differences(database)) == []


@pytest.mark.subprocess
def test_concurrent_upgrades_from_two_processes_apply_each_revision_once(database: str) -> None:
    """Backend processes starting together: the database lock lets one of them migrate."""
    code = (
        "import asyncio, sys\n"
        "from parlant_runtime.storage import migrate\n"
        "print(','.join(asyncio.run(migrate.upgrade(sys.argv[1]))))\n"
    )
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", code, database],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=120) for process in processes]
    assert [process.returncode for process in processes] == [0, 0], outputs
    assert sorted(out.strip() for out, _ in outputs) == ["", ",".join(REVISIONS)]


def test_an_unknown_revision_is_refused_with_the_known_ones(sqlite_url: str) -> None:
    with pytest.raises(MigrationError, match=f"0099_nope.*{', '.join(REVISIONS)}"):
        run(migrate.upgrade(sqlite_url, "0099_nope"))


def test_current_does_not_create_a_missing_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "missing.db"
    assert run(migrate.current_revision(f"sqlite:///{path}")) is None
    assert not path.exists()


def test_an_unreachable_database_is_reported_as_such(tmp_path: Path) -> None:
    with pytest.raises(DatabaseUnavailable, match="cannot open the database"):
        run(migrate.upgrade("postgresql://postgres@127.0.0.1:1/parlant"))
    with pytest.raises(DatabaseUnavailable, match=r"folder .* does not exist"):
        run(migrate.upgrade(f"sqlite:///{tmp_path / 'no' / 'such' / 'folder.db'}"))


# ------------------------------------------------------------------ URLs


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("sqlite:///parlant.db", "sqlite+aiosqlite:///parlant.db"),
        ("sqlite:////var/lib/parlant.db", "sqlite+aiosqlite:////var/lib/parlant.db"),
        ("sqlite+aiosqlite:///parlant.db", "sqlite+aiosqlite:///parlant.db"),
        ("postgresql://u:pw@db:5432/app", "postgresql+asyncpg://u:pw@db:5432/app"),
        ("postgres://u@db/app", "postgresql+asyncpg://u@db/app"),
        ("postgresql+asyncpg://u@db/app", "postgresql+asyncpg://u@db/app"),
        ("  postgresql://u@db/app\n", "postgresql+asyncpg://u@db/app"),
        ("postgresql://u@db/app?sslmode=require", "postgresql+asyncpg://u@db/app?ssl=require"),
    ],
)
def test_urls_name_the_async_drivers(given: str, expected: str) -> None:
    assert database_url(given) == expected


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("parlant.db", "not a database URL"),
        ("mysql://u:secret@db/app", "SQLite or PostgreSQL"),
        ("postgresql+psycopg2://u:secret@db/app", "write postgresql://"),
        ("sqlite+pysqlite:///parlant.db", "write sqlite://"),
    ],
)
def test_bad_urls_are_refused_with_a_hint(given: str, message: str) -> None:
    with pytest.raises(DatabaseURLError, match=message) as caught:
        database_url(given)
    assert "secret" not in str(caught.value)


def test_the_url_comes_from_the_argument_then_the_environment_then_the_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(DATABASE_URL_ENV, raising=False)
    assert database_url() == DEFAULT_DATABASE_URL == "sqlite+aiosqlite:///parlant.db"
    monkeypatch.setenv(DATABASE_URL_ENV, "postgresql://u@db/app")
    assert database_url() == "postgresql+asyncpg://u@db/app"
    assert database_url("sqlite:///other.db") == "sqlite+aiosqlite:///other.db"


def test_passwords_are_hidden_in_messages() -> None:
    with pytest.raises(DatabaseUnavailable) as caught:
        run(migrate.upgrade("postgresql://postgres:hunter2@127.0.0.1:1/parlant"))
    assert "hunter2" not in str(caught.value)
    assert "***" in str(caught.value)


# ------------------------------------------------------------------ the db command


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(db, list(args), env=env)


def test_db_upgrade_reports_each_revision_then_nothing_to_do(sqlite_url: str) -> None:
    first = invoke("upgrade", "--database-url", sqlite_url)
    assert first.exit_code == 0, first.output
    assert first.stdout.splitlines()[: len(REVISIONS)] == [
        f"applied {revision}" for revision in REVISIONS
    ]
    assert first.stdout.rstrip().endswith(f"is at {HEAD}")

    again = invoke("upgrade", "--database-url", sqlite_url)
    assert again.exit_code == 0, again.output
    assert again.stdout.rstrip().endswith(f"is at {HEAD}; nothing to apply")


def test_db_current_says_how_far_the_database_is(sqlite_url: str) -> None:
    env = {DATABASE_URL_ENV: sqlite_url}
    assert invoke("current", env=env).stdout.startswith("none: no migration applied yet")
    assert invoke("upgrade", "--revision", SEED, env=env).exit_code == 0
    assert (
        invoke("current", env=env).stdout
        == f"{SEED} (head is {HEAD}: run `parlant-runtime db upgrade`)\n"
    )
    assert invoke("upgrade", env=env).exit_code == 0
    assert invoke("current", "--database-url", sqlite_url).stdout == f"{HEAD} (head)\n"


@pytest.mark.parametrize(
    ("command", "url", "message"),
    [
        (command, url, message)
        for command in ("upgrade", "current")
        for url, message in (
            ("mysql://u@db/app", "unsupported database URL scheme"),
            ("not a url", "not a database URL"),
            ("postgresql://postgres@127.0.0.1:1/parlant", "cannot open the database"),
        )
    ]
    # `current` of a file that does not exist is "none", without creating it
    + [("upgrade", "sqlite:////no/such/folder/parlant.db", "cannot open the database")],
)
def test_db_commands_exit_2_on_bad_or_unreachable_databases(
    command: str, url: str, message: str
) -> None:
    result = invoke(command, "--database-url", url)
    assert result.exit_code == 2
    assert isinstance(result.exception, SystemExit)
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_db_upgrade_exits_1_when_a_migration_fails(sqlite_url: str) -> None:
    result = invoke("upgrade", "--database-url", sqlite_url, "--revision", "0099_nope")
    assert result.exit_code == 1
    assert "0099_nope" in result.stderr
    assert "Traceback" not in result.output


# ------------------------------------------------------------------ packaging


def test_the_migrations_ship_inside_the_package() -> None:
    shipped = resources.files("parlant_runtime._migrations")
    assert shipped.joinpath("env.py").is_file()
    assert shipped.joinpath("script.py.mako").is_file()
    assert migrate.revisions() == REVISIONS


def test_pyproject_lists_every_package() -> None:
    """Packages are listed by hand (the migrations folder is mapped): none may be forgotten."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for init in (ROOT / "parlant_runtime").rglob("__init__.py")
    }
    mapped = {"parlant_runtime._migrations", "parlant_runtime._migrations.versions"}
    assert set(setuptools["packages"]) == found | mapped
    assert setuptools["package-dir"] == {"parlant_runtime._migrations": "storage"}


def test_migrations_are_frozen_snapshots() -> None:
    """A migration that imported the live tables would change when they do."""
    for path in (ROOT / "storage" / "versions").glob("0*.py"):
        imported: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                imported.add(node.module or "")
        assert imported <= {
            "__future__",
            "datetime",
            "typing",
            "sqlalchemy",
            "alembic",
            "sqlalchemy.dialects",
        }, path.name
