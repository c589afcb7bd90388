"""``parlant-runtime db``: create, upgrade and inspect the database schema.

Exit status: 0 done, 1 a migration failed (and was rolled back, nothing changed),
2 the database URL is bad or the database cannot be reached. The database is
``--database-url``, else ``$PARLANT_DATABASE_URL``, else ``./parlant.db``.

SQLAlchemy and Alembic are imported when a ``db`` command runs, not when the CLI
starts (hence the imports inside the functions): the other commands neither need
them nor should wait for them.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import click

from parlant_runtime.cli._database import DATABASE_URL_HELP

__all__ = ["db"]

T = TypeVar("T")


def _run(work: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run one database task, turning the library's errors into a message and exit status."""
    from parlant_runtime.storage.port import (  # noqa: PLC0415 (see the module docstring)
        DatabaseUnavailable,
        DatabaseURLError,
        MigrationError,
    )

    try:
        return asyncio.run(work())
    except (DatabaseURLError, DatabaseUnavailable) as exc:
        status, message = 2, str(exc)
    except MigrationError as exc:
        status, message = 1, str(exc)
    click.echo(message, err=True)
    sys.exit(status)


@click.group()
def db() -> None:
    """Create, upgrade and inspect the database schema (SQLite or PostgreSQL)."""


@db.command()
@click.option("--database-url", "url", metavar="URL", help=DATABASE_URL_HELP)
@click.option(
    "--revision",
    default="head",
    show_default=True,
    help="Stop at this revision instead of the newest.",
)
@click.option(
    "--citus/--no-citus",
    default=None,
    help="Lay the tables out on a Citus cluster after the migrations (default: when the "
    "database has the citus extension).",
)
def upgrade(url: str | None, revision: str, citus: bool | None) -> None:
    """Apply the migrations the database does not have yet, all in one transaction.

    On a Citus coordinator the tables are then sharded and replicated (a second
    transaction; running it again changes nothing).
    """
    from parlant_runtime.storage import migrate  # noqa: PLC0415 (see the module docstring)
    from parlant_runtime.storage.url import database_url, redact  # noqa: PLC0415

    async def work() -> tuple[str, list[str], list[str] | None, str | None]:
        resolved = database_url(url)
        applied = await migrate.upgrade(resolved, revision, citus=False)
        laid = None if citus is False else await migrate.distribute(resolved, required=bool(citus))
        return resolved, applied, laid, await migrate.current_revision(resolved)

    resolved, applied, laid, at = _run(work)
    for step in applied:
        click.echo(f"applied {step}")
    for step in laid or ():
        click.echo(f"citus: {step}")
    if laid == []:
        click.echo("citus: the distributed layout is complete")
    done = "" if applied else "; nothing to apply"
    click.echo(f"{redact(resolved)} is at {at}{done}")


@db.command()
@click.option("--database-url", "url", metavar="URL", help=DATABASE_URL_HELP)
def current(url: str | None) -> None:
    """Show the revision the database is at, and whether it is the newest."""
    from parlant_runtime.storage import migrate  # noqa: PLC0415 (see the module docstring)
    from parlant_runtime.storage.url import database_url  # noqa: PLC0415

    async def work() -> str | None:
        return await migrate.current_revision(database_url(url))

    at = _run(work)
    newest = migrate.head()
    if at == newest:
        click.echo(f"{at} (head)")
    elif at is None:
        click.echo("none: no migration applied yet (run `parlant-runtime db upgrade`)")
    elif at in migrate.revisions():
        click.echo(f"{at} (head is {newest}: run `parlant-runtime db upgrade`)")
    else:
        click.echo(f"{at} (unknown to this parlant-runtime, whose head is {newest})")


@db.command()
@click.option("--database-url", "url", metavar="URL", help=DATABASE_URL_HELP)
def adopt(url: str | None) -> None:
    """Take over a database whose parlant_* tables the host platform created.

    Checks every existing table against what the runtime needs and lists each
    mismatch (table, column, what to do) without changing anything; otherwise, in one
    transaction, creates the missing tables, adds the runtime's own columns and
    indexes, and records the schema revision so that later `db upgrade` runs work.
    Nothing of the platform's is dropped or changed. Progress goes to standard error.
    """
    from parlant_runtime.storage import adopt as adoption  # noqa: PLC0415 (see the module docstring)
    from parlant_runtime.storage.url import database_url, redact  # noqa: PLC0415

    def progress(line: str) -> None:
        click.echo(f"  {line}", err=True)

    async def work() -> tuple[str, adoption.AdoptionReport]:
        resolved = database_url(url)
        return resolved, await adoption.adopt(resolved, progress=progress)

    resolved, report = _run(work)
    where = redact(resolved)
    if report.already:
        click.echo(
            f"{where} is already adopted (at {report.revision}); "
            "run `parlant-runtime db upgrade` for newer revisions"
        )
        return
    for table in report.created:
        click.echo(f"created {table}")
    click.echo(
        f"adopted {where}: checked {len(report.checked)} tables, created {len(report.created)}, "
        f"added {len(report.added)} columns and indexes; at {report.revision}"
    )
