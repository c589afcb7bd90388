"""Creating the async engine for a database URL, with the settings each dialect needs."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from parlant_runtime.storage.url import database_url

__all__ = ["READS_ONLY", "create_engine"]

READS_ONLY = "parlant_reads_only"
"""An execution option: the connection only reads, so on SQLite no ``BEGIN`` is sent
(each statement is its own transaction, as in autocommit)."""


def create_engine(
    url: str, *, sqlite_begin: str = "BEGIN", sqlite_foreign_keys: bool = True, **options: Any
) -> AsyncEngine:
    """An async engine for ``url`` (read by :func:`~parlant_runtime.storage.url.database_url`);
    on SQLite with real transactions, foreign keys, WAL and a busy timeout.

    On SQLite the runtime's own schema (``parlant_runtime`` on PostgreSQL) is mapped to
    the main file: the same tables, without a schema.
    """
    url = database_url(url)
    if url.startswith("sqlite"):
        # every transaction is ended by the store itself (commit, or rollback on close):
        # a reset of each connection given back would be one more call to the driver's
        # thread per read
        options.setdefault("pool_reset_on_return", None)
        execution = dict(options.pop("execution_options", None) or {})
        execution.setdefault("schema_translate_map", {"parlant_runtime": None})
        options["execution_options"] = execution
    engine = create_async_engine(url, **options)
    if engine.dialect.name == "sqlite":
        foreign_keys = "ON" if sqlite_foreign_keys else "OFF"

        def connect(dbapi_connection: Any, _record: Any) -> None:
            # the sqlite3 module begins transactions only before writes, so a
            # read-then-write transaction would not be one: begin each one explicitly
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute(f"PRAGMA foreign_keys={foreign_keys}")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=5000")
            cursor.close()

        def begin(connection: sa.Connection) -> None:
            if connection.get_execution_options().get(READS_ONLY):
                return  # reads: each statement on its own, without BEGIN
            connection.exec_driver_sql(sqlite_begin)

        sa.event.listen(engine.sync_engine, "connect", connect)
        sa.event.listen(engine.sync_engine, "begin", begin)
    return engine
