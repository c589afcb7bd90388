"""An agent's load on the driver directly: its statements compiled once, run in one
read transaction without SQLAlchemy's execution machinery, the rows built as from
SQLAlchemy's.

The twelve statements of a load (:data:`~.agents.LOAD_STATEMENTS`) are compiled once
per store for its dialect. The rows' values are converted by SQLAlchemy's own type
processors for that dialect (UUIDs, JSON, booleans, enums: on asyncpg most are the
driver's already) into named tuples standing in for its rows, and
:func:`~.agents.stored_rows` builds the agent from them as it does from SQLAlchemy's.

- SQLite (a file): through the aiosqlite dialect a load was about fifty hops to the
  driver's thread and back (``BEGIN``, each statement, its fetch, ``ROLLBACK``); here it
  is one call into the reader's thread of :mod:`._sqlite_thread`
  (:func:`in_sqlite_thread`): ``BEGIN`` (deferred: the snapshot is taken at the first
  read), every statement fetched whole, ``COMMIT``.
- PostgreSQL (asyncpg): the statements on the driver's connection of a pooled
  connection (:func:`on_asyncpg`), in one ``REPEATABLE READ READ ONLY`` transaction.
"""

from __future__ import annotations

import sqlite3
from collections import namedtuple
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from parlant_runtime.storage.port import NotFound
from parlant_runtime.storage.sql.agents import LOAD_STATEMENTS, StoredRows, stored_rows

__all__ = ["CompiledLoad", "in_sqlite_thread", "on_asyncpg"]

Processor = Callable[[Any], Any]


class _Statement:
    """One statement of the load compiled for a dialect: its SQL, how its parameters are
    made, and how a raw row becomes a row of named columns."""

    def __init__(self, name: str, statement: Any, dialect: sa.Dialect) -> None:
        if dialect.name == "sqlite":
            # the runtime's own schema is the main file on SQLite (see engine.create_engine)
            compiled = statement.compile(
                dialect=dialect,
                schema_translate_map={"parlant_runtime": "main"},
                render_schema_translate=True,
            )
        else:
            compiled = statement.compile(dialect=dialect)
        self.sql: str = compiled.string
        defaults = compiled.params
        self.order: list[str] = list(compiled.positiontup or ())
        self.defaults = [defaults[key] for key in self.order]
        self.binds: dict[str, Processor | None] = {
            key: compiled.binds[key].type.dialect_impl(dialect).bind_processor(dialect)
            for key in self.order
        }
        columns = list(statement.selected_columns)
        self.row: Any = namedtuple(name, [column.key for column in columns])  # type: ignore[misc]
        self.processors = [
            (index, processor)
            for index, column in enumerate(columns)
            if (processor := column.type.dialect_impl(dialect).result_processor(dialect, None))
            is not None
        ]

    def parameters(self, given: dict[str, Any]) -> list[Any]:
        values = []
        for key, default in zip(self.order, self.defaults, strict=True):
            value = given.get(key, default)
            bind = self.binds[key]
            values.append(bind(value) if bind is not None and value is not None else value)
        return values

    def rows(self, raw: list[tuple[Any, ...]]) -> list[Any]:
        """The raw rows converted as SQLAlchemy converts them, as named tuples."""
        make, processors = self.row._make, self.processors
        if not processors:
            return [make(values) for values in raw]
        out = []
        for values in raw:
            row = list(values)
            for index, processor in processors:
                value = row[index]
                if value is not None:
                    row[index] = processor(value)
            out.append(make(row))
        return out


Calls = list[tuple[str, str, list[Any]]]
"""The statements of one load: name, SQL and parameters of each, ``"agent"`` first."""
Fetched = dict[str, list[Any]] | None
"""The raw rows of each statement of a load; ``None``: the workspace has no such agent."""


class CompiledLoad:
    """The load's statements compiled for one dialect (see the module docstring)."""

    def __init__(self, dialect: sa.Dialect) -> None:
        self.dialect = dialect.name
        self._statements = {
            name: _Statement(name, statement, dialect)
            for name, statement in LOAD_STATEMENTS[dialect.name].items()
        }

    def statements(self, ws: str, agent_id: UUID) -> Calls:
        """The load's statements for this agent: name, SQL and parameters of each, as
        the driver gets them."""
        given = {"agent": agent_id, "ws": ws}
        return [
            (name, statement.sql, statement.parameters(given))
            for name, statement in self._statements.items()
        ]

    def stored(
        self, ws: str, agent_id: UUID, raw: Mapping[str, Sequence[Any]] | None
    ) -> StoredRows:
        """The agent built from the raw rows of its statements."""
        if raw is None:
            raise NotFound(f"no agent {agent_id} in workspace {ws!r}")
        rows = {name: self._statements[name].rows(list(values)) for name, values in raw.items()}
        agent_row = rows.pop("agent")[0]
        return stored_rows(agent_row, rows, self.dialect)


def in_sqlite_thread(calls: Calls) -> Callable[[sqlite3.Connection], Fetched]:
    """What the reader's thread runs: every statement in one read transaction."""

    def run(connection: sqlite3.Connection) -> Fetched:
        connection.execute("BEGIN")  # deferred: the snapshot is taken at the first read
        try:
            fetched: dict[str, list[Any]] = {}
            for name, sql, parameters in calls:
                fetched[name] = connection.execute(sql, parameters).fetchall()
                if name == "agent" and not fetched[name]:
                    return None
            return fetched
        finally:
            connection.execute("COMMIT")

    return run


async def on_asyncpg(
    driver: Any, calls: Calls, fetch: Callable[[Any, str, list[Any]], Awaitable[list[Any]]]
) -> Fetched:
    """Every statement on an asyncpg connection (each by ``fetch(driver, sql, parameters)``),
    in one read-only transaction of one snapshot."""
    async with driver.transaction(isolation="repeatable_read", readonly=True):
        fetched: dict[str, list[Any]] = {}
        for name, sql, parameters in calls:
            fetched[name] = await fetch(driver, sql, parameters)
            if name == "agent" and not fetched[name]:
                return None
        return fetched
