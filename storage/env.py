"""Alembic's entry point: runs the migrations on one connection, in one transaction.

:mod:`parlant_runtime.storage.migrate` hands over a connection of its migration
engine in ``config.attributes["connection"]``. Run from the ``alembic`` command
line instead (developers writing a migration, see ``alembic.ini``), this module
opens that engine itself on ``PARLANT_DATABASE_URL``.

Every revision of an upgrade runs in one transaction, on both dialects: all of it
lands or none of it does. On PostgreSQL a transaction-scoped advisory lock makes
concurrent upgrades (several backend processes starting at once) wait for each
other; on SQLite the engine takes the write lock with ``BEGIN IMMEDIATE`` and runs
with foreign keys off (batch mode recreates tables), so they are checked here
before the commit instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping
from typing import Any

import sqlalchemy as sa
from alembic import context
from alembic.migration import MigrationContext, MigrationInfo

from parlant_runtime.storage import migrate, own_schema
from parlant_runtime.storage.port import MigrationError
from parlant_runtime.storage.url import database_url

ADVISORY_LOCK_KEY = 0x7061726C616E74  # "parlant": one upgrade at a time per database

config = context.config


def _record_step(
    ctx: MigrationContext,
    step: MigrationInfo,
    heads: Collection[Any],
    run_args: Mapping[str, Any],
) -> None:
    del ctx, heads, run_args
    config.attributes.setdefault("steps", []).append(step.up_revision_id)


def run_migrations(connection: sa.Connection) -> None:
    """Configure Alembic on ``connection`` and run the requested command's revisions.

    On PostgreSQL, Alembic's version table lives in the runtime's own schema
    (``parlant_runtime``) from revision 0004 on: a database at an older revision, whose
    table is in ``public``, has it moved there before the revisions run, and moved back
    after a downgrade below 0004 (when the schema is left empty, it is dropped).
    """
    dialect = connection.dialect.name
    context.configure(
        connection=connection,
        target_metadata=own_schema.comparable_metadata(dialect),
        version_table_schema=own_schema.version_schema(dialect),
        include_schemas=dialect == "postgresql",
        include_name=own_schema.include_name,
        render_as_batch=dialect == "sqlite",
        # SQLite's DDL is transactional too once the engine emits BEGIN itself
        # (see migrate.migration_engine); Alembic assumes it is not.
        transactional_ddl=True,
        transaction_per_migration=False,
        compare_type=True,
        compare_server_default=migrate.compare_server_default,
        on_version_apply=_record_step,
    )
    with context.begin_transaction():
        if dialect == "postgresql":
            connection.execute(
                sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY}
            )
            own_schema.version_table_to_runtime_schema(connection)
        context.run_migrations()
        if dialect == "postgresql":
            own_schema.version_table_back_below_first(connection, context.script)
        if dialect == "sqlite":
            violations = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if violations:
                shown = ", ".join(f"{row[0]} row {row[1]} -> {row[2]}" for row in violations[:5])
                raise MigrationError(
                    f"rows would point at rows that do not exist ({shown}); nothing was changed"
                )


async def _run_standalone() -> None:
    url = database_url(config.get_main_option("sqlalchemy.url"))
    engine = migrate.migration_engine(url)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(run_migrations)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    raise SystemExit(
        "parlant-runtime migrations cannot be rendered as SQL (--sql): "
        "0001 looks at the database to keep host tables that already exist"
    )

_connection = config.attributes.get("connection")
if _connection is None:
    asyncio.run(_run_standalone())
else:
    run_migrations(_connection)
