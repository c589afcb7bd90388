"""Opening the database for a command: URL, schema check, and errors as exit statuses.

Every command that touches a database runs its work through :func:`run_with_store`,
so a bad URL, an unreachable server or a database whose schema is behind all end
in one clear sentence and exit status 2, never a traceback.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from parlant_runtime.storage.port import StorageError
    from parlant_runtime.storage.sql.store import SqlStore

__all__ = ["DATABASE_URL_HELP", "database_failure", "run_with_store"]

T = TypeVar("T")

DATABASE_URL_HELP = (
    "SQLite (sqlite:///path/to/file.db) or PostgreSQL (postgresql://user@host/dbname); "
    "default: $PARLANT_DATABASE_URL, else sqlite:///parlant.db in the current directory."
)


def run_with_store(url: str | None, work: Callable[[SqlStore], Coroutine[Any, Any, T]]) -> T:
    """Open the store at ``url`` (its schema must be current), run ``work``, close it."""
    # imported here: commands that need no database do not pay for SQLAlchemy
    from parlant_runtime.storage import migrate  # noqa: PLC0415
    from parlant_runtime.storage.port import StorageError  # noqa: PLC0415
    from parlant_runtime.storage.sql.store import SqlStore  # noqa: PLC0415
    from parlant_runtime.storage.url import database_url, redact  # noqa: PLC0415

    async def main() -> T:
        resolved = database_url(url)
        at = await migrate.current_revision(resolved)
        if at != migrate.head():
            where = redact(resolved)
            raise _Refused(
                f"{where} is at schema revision {at or 'none'}, not {migrate.head()}; "
                f"run `parlant-runtime db upgrade --database-url {where}` first"
            )
        async with SqlStore.open(resolved) as store:
            return await work(store)

    try:
        return asyncio.run(main())
    except (_Refused, StorageError, OSError) as exc:
        message = str(exc) if isinstance(exc, _Refused) else database_failure(exc)
    click.echo(message, err=True)
    sys.exit(2)


def database_failure(exc: StorageError | OSError) -> str:
    """The one sentence a command ends with when the database fails it (the store turns
    the driver's errors into :class:`StorageError`, see ``SqlStore._transact``)."""
    if isinstance(exc, OSError):
        return f"the database cannot be reached: {exc}"
    return str(exc)  # a StorageError says what and where itself


class _Refused(Exception):
    pass
