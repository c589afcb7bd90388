"""Adopting a host database: the platform's tables exist already, the runtime moves in.

A chat platform (Sim) creates the Parlant tables with its own schema tool, before the
runtime ever sees the database; ``db upgrade`` would try to create them again. Adoption
instead, in one transaction:

1. checks every table the platform has against what the runtime reads and writes
   (columns present, of a compatible type, enum types with every value the runtime
   writes, no NOT NULL column without a default that the runtime would leave empty)
   and, if anything does not fit, refuses with the whole list (table, column, what to
   do) and changes nothing;
2. creates the tables that are missing (any subset of the platform's may exist),
   exactly as ``db upgrade`` would;
3. creates the runtime's own tables (on PostgreSQL in the schema ``parlant_runtime``:
   ``agent_state``, ``row_order`` and a session's state); it adds nothing to the
   platform's tables;
4. records the newest schema revision (in ``parlant_runtime.alembic_version`` on
   PostgreSQL), so that later ``db upgrade`` runs apply only what comes after.

It never drops, renames or retypes anything the platform owns, and adopting an
adopted database does nothing. What the runtime adds, and what the platform's own
schema tool must be told about it, is in ``docs/host-database.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CreateIndex

from parlant_runtime.storage import migrate
from parlant_runtime.storage.own_schema import stored_revision, version_schema
from parlant_runtime.storage.port import MigrationError
from parlant_runtime.storage.sql.schema import (
    HOST_TABLES,
    RUNTIME_SCHEMA,
    RUNTIME_TABLES,
    metadata,
)
from parlant_runtime.storage.url import database_url

__all__ = ["NEEDED_INDEXES", "AdoptionRefused", "AdoptionReport", "TableMismatch", "adopt"]

_LOCK_KEY = 0x7061726C616E74  # the key storage/env.py takes: adopt and upgrade queue

NEEDED_INDEXES: tuple[str, ...] = ()
"""Unique indexes the runtime's upserts and checks rely on, created on adopted tables:
none since 0005 (the platform's tables keep the platform's indexes; the runtime's own
keys are the primary keys of its own tables)."""


@dataclass(frozen=True, slots=True)
class TableMismatch:
    """One way an existing table does not fit the runtime, and what to do about it."""

    table: str
    column: str | None
    problem: str
    fix: str

    def __str__(self) -> str:
        where = self.table if self.column is None else f"{self.table}.{self.column}"
        return f"{where} {self.problem}; {self.fix}"


@dataclass(slots=True)
class AdoptionReport:
    """What an adoption found and did."""

    checked: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    revision: str | None = None
    already: bool = False


class AdoptionRefused(MigrationError):
    """The platform's tables do not fit the runtime; nothing was changed."""

    def __init__(self, mismatches: Sequence[TableMismatch]) -> None:
        self.mismatches = list(mismatches)
        count = len(self.mismatches)
        lines = "\n".join(f"  {m}" for m in self.mismatches)
        super().__init__(
            f"the database cannot be adopted ({count} problem{'s' if count != 1 else ''}); "
            f"nothing was changed:\n{lines}"
        )


def _family(column_type: Any) -> str:
    """The kind of value a column holds, as far as the runtime cares."""
    if isinstance(column_type, sa.Enum):
        return "enum"
    if isinstance(column_type, sa.Uuid | postgresql.UUID):
        return "uuid"
    if isinstance(column_type, sa.JSON):
        return "json"
    if isinstance(column_type, sa.Boolean):
        return "boolean"
    if isinstance(column_type, sa.Integer):
        return "integer"
    if isinstance(column_type, sa.DateTime):
        return "timestamp"
    if isinstance(column_type, sa.String):
        return "text"
    return str(column_type).lower()


def _type_name(family: str, column_type: Any) -> str:
    return f"enum {column_type.name}" if family == "enum" else family


def _check_table(
    inspector: Any, table: sa.Table, enums: dict[str, list[str]]
) -> list[TableMismatch]:
    found = {column["name"]: column for column in inspector.get_columns(table.name)}
    problems: list[TableMismatch] = []
    for column in table.columns:
        if column.info.get("runtime"):
            continue  # the runtime adds it
        have = found.get(column.name)
        if have is None:
            problems.append(
                TableMismatch(
                    table.name,
                    column.name,
                    "is missing",
                    f"add it to the platform's schema as {_family(column.type)} and migrate",
                )
            )
            continue
        want, got = _family(column.type), _family(have["type"])
        if inspector.dialect.name == "sqlite" and want in ("enum", "uuid"):
            want = "text"  # SQLite keeps enums as checked text and uuids as char(32)
        if want != got:
            problems.append(
                TableMismatch(
                    table.name,
                    column.name,
                    f"is {_type_name(got, have['type'])}, the runtime needs {want}",
                    f"change its type to {want} in the platform's schema",
                )
            )
        elif want == "enum":
            type_name = have["type"].name
            values = enums.get(type_name, list(have["type"].enums))
            problems.extend(
                TableMismatch(
                    f"enum type {type_name}",
                    None,
                    f"lacks {value!r}",
                    f"add it: ALTER TYPE {type_name} ADD VALUE '{value}'",
                )
                for value in column.type.enums  # type: ignore[attr-defined]
                if value not in values
            )
    for name, have in found.items():
        if name not in table.columns and not have["nullable"] and have.get("default") is None:
            problems.append(
                TableMismatch(
                    table.name,
                    name,
                    "is NOT NULL without a default, and the runtime does not write it",
                    "give it a default or allow NULL in the platform's schema",
                )
            )
    return problems


def _adopt(connection: sa.Connection, progress: Callable[[str], None]) -> AdoptionReport:
    report = AdoptionReport()
    if connection.dialect.name == "postgresql":
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
    at = stored_revision(connection)
    if at is not None:
        report.already, report.revision = True, at
        return report
    inspector = sa.inspect(connection)
    existing = set(inspector.get_table_names())
    enums: dict[str, list[str]] = {}
    if connection.dialect.name == "postgresql":
        enums = {e["name"]: list(e["labels"]) for e in inspector.get_enums()}  # type: ignore[attr-defined]
    present = [table for table in metadata.sorted_tables if table.name in existing]
    platform = [table for table in present if table.name.startswith("parlant_")]
    if not platform:
        raise MigrationError(
            "the database has none of the platform's parlant_* tables, so there is nothing "
            "to adopt; run `parlant-runtime db upgrade` to create them"
        )
    progress(f"checking {len(present)} tables")
    problems: list[TableMismatch] = []
    for table in present:
        problems.extend(_check_table(inspector, table, enums))
        report.checked.append(table.name)
    if problems:
        raise AdoptionRefused(list(dict.fromkeys(problems)))  # an enum shared by columns: once
    progress(
        f"checked {len(platform)} platform tables and "
        f"{len(present) - len(platform)} host tables: they fit"
    )
    dialect = connection.dialect.name
    if dialect == "postgresql":
        connection.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {RUNTIME_SCHEMA}")
    missing = [table for table in metadata.sorted_tables if table.name not in existing]
    for table in missing:
        progress(f"creating {table.fullname}")
        table.create(connection, checkfirst=True)  # enum types may exist without it
        report.created.append(table.fullname)
    for table in present:
        if table.name in HOST_TABLES or table.name in RUNTIME_TABLES:
            continue
        have = {column["name"] for column in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.info.get("runtime") and column.name not in have:
                _add_column(connection, table, column)
                report.added.append(f"{table.name}.{column.name}")
        indexes = {index["name"] for index in inspector.get_indexes(table.name)}
        for index in sorted(table.indexes, key=lambda i: str(i.name)):  # a set: stable order
            if index.name in NEEDED_INDEXES and index.name not in indexes:
                progress(f"indexing {table.name} ({', '.join(c.name for c in index.columns)})")
                _refuse_duplicates(connection, table, index)
                connection.execute(CreateIndex(index))
                report.added.append(f"index {index.name}")
    if report.added:
        progress(f"added {len(report.added)} runtime columns and indexes to the platform's tables")
    script = ScriptDirectory(migrate.script_location())
    context = MigrationContext.configure(
        connection, opts={"version_table_schema": version_schema(dialect)}
    )
    context.stamp(script, "head")
    report.revision = migrate.head()
    return report


def _refuse_duplicates(connection: sa.Connection, table: sa.Table, index: sa.Index) -> None:
    """Rows the platform wrote that a unique index of the runtime's would refuse: named,
    rather than left to the index's creation error."""
    columns = list(index.columns)
    query = sa.select(*columns, sa.func.count().label("rows")).select_from(table)
    where = index.dialect_options["postgresql"]["where"]
    if where is not None:
        query = query.where(where)
    query = query.where(*(column.is_not(None) for column in columns))
    query = query.group_by(*columns).having(sa.func.count() > 1).limit(3)
    clashes = connection.execute(query).all()
    if not clashes:
        return
    names = ", ".join(column.name for column in columns)
    scope = f" where {where}" if where is not None else ""
    raise AdoptionRefused(
        [
            TableMismatch(
                table.name,
                None,
                f"has {row.rows} rows with the same ({names}) = "
                f"({', '.join(str(value) for value in row[:-1])}){scope}",
                "keep one of them; the runtime needs these to be unique",
            )
            for row in clashes
        ]
    )


def _add_column(connection: sa.Connection, table: sa.Table, column: sa.Column[Any]) -> None:
    preparer = connection.dialect.identifier_preparer
    kind = column.type.compile(dialect=connection.dialect)
    default = ""
    if column.server_default is not None:
        default = f" DEFAULT {column.server_default.arg}"  # type: ignore[attr-defined]
    null = "" if column.nullable else " NOT NULL"
    connection.exec_driver_sql(
        f"ALTER TABLE {preparer.format_table(table)} "
        f"ADD COLUMN {preparer.format_column(column)} {kind}{default}{null}"
    )


async def adopt(
    url: str | None = None, *, progress: Callable[[str], None] | None = None
) -> AdoptionReport:
    """Make the database at ``url``, whose platform tables exist, ready for the runtime.

    Args:
        url: the database (see :func:`~parlant_runtime.storage.url.database_url`).
        progress: called with one line per step (checking, creating, indexing), for
            a command to show how far a long adoption got.

    Returns:
        What was checked, created and added; ``already`` when the database had been
        adopted (or upgraded) before, in which case nothing was done.

    Raises:
        AdoptionRefused: the existing tables do not fit; every mismatch is listed and
            nothing was changed.
        MigrationError: there are no platform tables to adopt, or the database failed.
        DatabaseUnavailable: the database cannot be reached.
    """
    say = progress or (lambda _line: None)
    resolved = database_url(url)
    return await migrate.run_in_transaction(resolved, lambda c: _adopt(c, say), doing="adopting")
