"""The SQL adapter of the storage port: SQLite (aiosqlite) and PostgreSQL (asyncpg).

One class serves both dialects through SQLAlchemy Core; what differs (upserts,
LISTEN/NOTIFY versus polling) is chosen by the dialect at run time. A turn is one
transaction: a compare-and-set ``UPDATE ... RETURNING`` of the session row (which
also checks that the new journey and state belong to the session's agent), the
events in one ``executemany`` with offsets taken from the updated row, the variable
upserts and the usage deltas. Nothing is read before it. On PostgreSQL a turn's read
and commit go to the driver directly, the commit as one data-modifying statement
(:mod:`._pg_turns`). The statements of the hot path are built once and reused with
bound parameters, and rows become models without being validated again
(:mod:`.trusted`); see "Speed" in ``docs/storage.md``.
"""

from __future__ import annotations

from typing import Any

from parlant_runtime.storage.sql._pg_turns import _PgTurns
from parlant_runtime.storage.sql._publishing import _Publishing
from parlant_runtime.storage.sql._sqlite_turns import _SqliteTurns
from parlant_runtime.storage.sql._statements import agent_lock  # noqa: F401  (its old home)
from parlant_runtime.storage.sql._usage import _Usage
from parlant_runtime.storage.sql.engine import create_engine
from parlant_runtime.storage.url import database_url

__all__ = ["SqlStore"]


class SqlStore(_Publishing, _PgTurns, _SqliteTurns, _Usage):
    """The storage port on a SQL database (see the module docstring)."""

    @classmethod
    def open(
        cls, url: str | None = None, *, poll_interval: float = 0.05, **engine_options: Any
    ) -> SqlStore:
        """A store on the database at ``url`` (its schema must be upgraded already).

        ``url`` is read as the command line reads ``--database-url``
        (:func:`~parlant_runtime.storage.url.database_url`): ``sqlite:///file.db`` or
        ``postgresql://user@host/db`` with or without the async driver named, and without
        a URL ``$PARLANT_DATABASE_URL``, else ``./parlant.db``. Nothing connects yet.

        The store is an async context manager that closes it at the end of the block::

            async with SqlStore.open("sqlite:///parlant.db") as store:
                ...

        and without one, ``await store.close()`` releases its connections.

        ``engine_options`` go to SQLAlchemy's ``create_async_engine`` (pool size, ...).
        On SQLite, writes go through their own engine whose transactions begin with
        ``BEGIN IMMEDIATE``: a transaction that reads before it writes then waits for
        the write lock up front instead of failing when another writer got in between.

        Raises:
            DatabaseURLError: the URL cannot be read or is not SQLite or PostgreSQL.
        """
        resolved = database_url(url)
        engine = create_engine(resolved, **engine_options)
        writer = None
        if engine.dialect.name == "sqlite":
            writer = create_engine(resolved, sqlite_begin="BEGIN IMMEDIATE", **engine_options)
        return cls(engine, writer=writer, poll_interval=poll_interval)
