"""Where the runtime's own tables and its schema revision live, on either dialect.

On PostgreSQL the runtime keeps what is its own (side tables, Alembic's version table)
in the schema ``parlant_runtime``, beside the platform's ``public``, so that the
platform's schema tool, told to manage ``public`` only, has nothing of the runtime's to
drop. On SQLite there is one file and no schemas: the same tables live in it without a
schema (the engine's ``schema_translate_map``, :data:`~.sql.schema.SQLITE_SCHEMAS`).

Databases migrated before revision 0004 have the version table in ``public``; every
reader here looks in both places, and ``storage/env.py`` moves it on the next upgrade.
"""

from __future__ import annotations

import functools
from typing import Any

import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from parlant_runtime.storage.sql.schema import RUNTIME_SCHEMA, metadata

__all__ = [
    "FIRST_REVISION",
    "comparable_metadata",
    "include_name",
    "stored_revision",
    "version_schema",
    "version_table_back_below_first",
    "version_table_to_runtime_schema",
]

FIRST_REVISION = "0004_runtime_schema"
"""The revision from which the runtime's own schema exists on PostgreSQL."""

_VERSION_TABLE = "alembic_version"


def version_schema(dialect: str) -> str | None:
    """The schema of Alembic's version table on ``dialect`` (at revision 0004 or later)."""
    return RUNTIME_SCHEMA if dialect == "postgresql" else None


@functools.cache
def comparable_metadata(dialect: str) -> sa.MetaData:
    """The tables as ``dialect`` holds them: as declared on PostgreSQL; on SQLite with the
    runtime's own tables in the main file (no schema), for Alembic's comparisons."""
    if dialect == "postgresql":
        return metadata
    flat = sa.MetaData(naming_convention=metadata.naming_convention)
    for table in metadata.sorted_tables:
        table.to_metadata(flat, schema=None)  # type: ignore[arg-type]  # None: no schema
    return flat


def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    """Alembic's filter on PostgreSQL: the ``public`` schema and the runtime's own only."""
    del parent_names
    return type_ != "schema" or name in (None, RUNTIME_SCHEMA)


def _has_table(connection: sa.Connection, schema: str | None) -> bool:
    return sa.inspect(connection).has_table(_VERSION_TABLE, schema=schema)


def stored_revision(connection: sa.Connection) -> str | None:
    """The revision recorded in the database, wherever its version table is
    (``parlant_runtime`` from 0004 on, ``public`` before); ``None`` when none is."""
    dialect = connection.dialect.name
    schemas = [version_schema(dialect), None] if dialect == "postgresql" else [None]
    for schema in schemas:
        if _has_table(connection, schema):
            context = MigrationContext.configure(connection, opts={"version_table_schema": schema})
            return context.get_current_revision()
    return None


def version_table_to_runtime_schema(connection: sa.Connection) -> None:
    """PostgreSQL, before the revisions run: create the runtime's schema and move a
    version table left in ``public`` by an older release into it."""
    connection.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {RUNTIME_SCHEMA}")
    if _has_table(connection, None) and not _has_table(connection, RUNTIME_SCHEMA):
        connection.exec_driver_sql(
            f"ALTER TABLE public.{_VERSION_TABLE} SET SCHEMA {RUNTIME_SCHEMA}"
        )


def version_table_back_below_first(connection: sa.Connection, script: ScriptDirectory) -> None:
    """PostgreSQL, after the revisions ran: below 0004 the version table belongs in
    ``public`` (where older releases read it), and an empty runtime schema goes."""
    at = MigrationContext.configure(
        connection, opts={"version_table_schema": RUNTIME_SCHEMA}
    ).get_current_heads()
    applied = {rev.revision for rev in script.iterate_revisions(at, "base")} if at else set()
    if FIRST_REVISION in applied or not _has_table(connection, RUNTIME_SCHEMA):
        return
    connection.exec_driver_sql(f"ALTER TABLE {RUNTIME_SCHEMA}.{_VERSION_TABLE} SET SCHEMA public")
    left = connection.execute(
        sa.text(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = :schema"
        ),
        {"schema": RUNTIME_SCHEMA},
    ).scalar_one()
    if not left:
        connection.exec_driver_sql(f"DROP SCHEMA {RUNTIME_SCHEMA}")
