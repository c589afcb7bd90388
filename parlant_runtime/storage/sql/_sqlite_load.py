"""An agent's load on a SQLite file, in one call into the reader's thread.

Through SQLAlchemy's aiosqlite dialect the twelve statements of a load
(:data:`~.agents.LOAD_STATEMENTS`) cost about fifty hops to the driver's thread and
back (``BEGIN``, each statement, its fetch, ``ROLLBACK``). Here they are compiled once
for SQLite and run by the reader's thread of :mod:`._sqlite_thread` in one call: a
read transaction (``BEGIN`` ... ``COMMIT``, one snapshot), every statement fetched
whole. Back on the event loop the values are converted by SQLAlchemy's own type
processors for the engine's dialect (UUIDs, JSON, booleans, enums), into named tuples
standing in for its rows, and :func:`~.agents.stored_rows` builds the agent from them
as it does from SQLAlchemy's.
"""

from __future__ import annotations

import sqlite3
from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from parlant_runtime.storage.port import NotFound
from parlant_runtime.storage.sql.agents import LOAD_STATEMENTS, StoredRows, stored_rows

__all__ = ["SqliteLoad"]

Processor = Callable[[Any], Any]


class _Statement:
    """One statement of the load compiled for SQLite: its SQL, how its parameters are
    made, and how a raw row becomes a row of named columns."""

    def __init__(self, name: str, statement: Any, dialect: sa.Dialect) -> None:
        # the runtime's own schema is the main file on SQLite (see engine.create_engine)
        compiled = statement.compile(
            dialect=dialect,
            schema_translate_map={"parlant_runtime": "main"},
            render_schema_translate=True,
        )
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


class SqliteLoad:
    """The load's statements compiled for one SQLite dialect (see the module docstring)."""

    def __init__(self, dialect: sa.Dialect) -> None:
        self._statements = {
            name: _Statement(name, statement, dialect)
            for name, statement in LOAD_STATEMENTS["sqlite"].items()
        }

    def statements(self, ws: str, agent_id: UUID) -> list[tuple[str, str, list[Any]]]:
        """The load's statements for this agent: name, SQL and parameters of each, as
        ``sqlite3`` gets them."""
        given = {"agent": agent_id, "ws": ws}
        return [
            (name, statement.sql, statement.parameters(given))
            for name, statement in self._statements.items()
        ]

    def work(
        self, ws: str, agent_id: UUID
    ) -> Callable[[sqlite3.Connection], dict[str, list[tuple[Any, ...]]] | None]:
        """What the reader's thread runs: every statement in one read transaction; the raw
        rows by statement, ``None`` when the workspace has no such agent."""
        calls = self.statements(ws, agent_id)

        def run(connection: sqlite3.Connection) -> dict[str, list[tuple[Any, ...]]] | None:
            connection.execute("BEGIN")  # deferred: the snapshot is taken at the first read
            try:
                fetched: dict[str, list[tuple[Any, ...]]] = {}
                for name, sql, parameters in calls:
                    fetched[name] = connection.execute(sql, parameters).fetchall()
                    if name == "agent" and not fetched[name]:
                        return None
                return fetched
            finally:
                connection.execute("COMMIT")

        return run

    def stored(
        self, ws: str, agent_id: UUID, raw: Mapping[str, Sequence[Any]] | None
    ) -> StoredRows:
        """The agent built from what :meth:`work` gave."""
        if raw is None:
            raise NotFound(f"no agent {agent_id} in workspace {ws!r}")
        rows = {name: self._statements[name].rows(list(values)) for name, values in raw.items()}
        agent_row = rows.pop("agent")[0]
        return stored_rows(agent_row, rows, "sqlite")
