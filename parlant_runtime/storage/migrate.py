"""Creating and upgrading the database schema: Alembic, configured in code.

The migrations ship inside the package (``parlant_runtime._migrations``, the
repository's top-level ``storage/`` folder), so users need no ``alembic.ini`` and
no checkout: ``await upgrade(url)`` or ``parlant-runtime db upgrade``. One
mechanism serves both dialects; every upgrade is one transaction (see
``storage/env.py``).

Which database a URL names (and the default) is decided in one place,
:func:`parlant_runtime.storage.url.database_url`, which every function here applies.

The functions are coroutines, like every other I/O of the library: a backend
upgrades at start-up inside its own event loop, and the CLI calls ``asyncio.run``.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.pool import NullPool

from parlant_runtime.storage.own_schema import (
    comparable_metadata,
    include_name,
    stored_revision,
    version_schema,
)
from parlant_runtime.storage.port import DatabaseUnavailable, MigrationError
from parlant_runtime.storage.sql.engine import create_engine
from parlant_runtime.storage.sql.schema import platform_tables
from parlant_runtime.storage.url import database_url, redact

__all__ = [
    "compare_server_default",
    "current_revision",
    "differences",
    "distribute",
    "downgrade",
    "head",
    "migration_engine",
    "revisions",
    "run_in_transaction",
    "script_location",
    "upgrade",
]

CONNECT_TIMEOUT = 10.0
"""Seconds to wait for a PostgreSQL server before calling it unreachable."""

_MIGRATIONS_PACKAGE = "parlant_runtime._migrations"

T = TypeVar("T")

# Alembic's `op` and `context` are module-level proxies: two commands interleaved in
# one event loop would overwrite each other's, so they take turns (per loop; across
# processes the database's own lock in env.py does the same).
_COMMAND_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


def migration_engine(url: str) -> AsyncEngine:
    """The engine migrations run on (``url`` as returned by :func:`database_url`).

    On top of :func:`~parlant_runtime.storage.sql.engine.create_engine`: no pool
    (one connection, then gone), a connect timeout on PostgreSQL, and on SQLite a
    real ``BEGIN IMMEDIATE`` (the sqlite3 module would otherwise commit each DDL
    statement on its own) with foreign keys off, because batch mode drops and
    recreates tables that other tables point at; ``env.py`` checks them before
    the commit.
    """
    options: dict[str, Any] = {"poolclass": NullPool}
    if url.startswith("postgresql"):
        options["connect_args"] = {"timeout": CONNECT_TIMEOUT}
    return create_engine(url, sqlite_begin="BEGIN IMMEDIATE", sqlite_foreign_keys=False, **options)


def script_location() -> str:
    """The folder of the migration scripts (inside the installed package)."""
    return _script_location()


def _script_location() -> str:
    try:
        location = resources.files(_MIGRATIONS_PACKAGE)
    except ModuleNotFoundError as exc:  # an install that predates the package mapping
        raise MigrationError(
            f"the migrations are missing: {_MIGRATIONS_PACKAGE} is not installed "
            "(reinstall parlant-runtime)"
        ) from exc
    return str(location)


def _config(url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", _script_location())
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head() -> str:
    """The newest revision this version of the library knows."""
    revision = ScriptDirectory.from_config(_config()).get_current_head()
    assert revision is not None, "the migrations have no head"
    return revision


def revisions() -> list[str]:
    """Every revision this version of the library knows, oldest first."""
    script = ScriptDirectory.from_config(_config())
    return [rev.revision for rev in reversed(list(script.walk_revisions()))]


async def upgrade(
    url: str | None = None, revision: str = "head", *, citus: bool | None = None
) -> list[str]:
    """Apply the migrations up to ``revision``, all in one transaction.

    ``url`` is read as ``SqlStore.open`` and ``--database-url`` read it
    (:func:`~parlant_runtime.storage.url.database_url`; without one the environment
    variable, else ``./parlant.db``).

    On a Citus coordinator the distributed layout follows (:func:`distribute`, a
    transaction of its own): always when ``citus`` is true (an error without the
    extension), never when it is false, and when the extension is there when it is
    ``None``.

    Returns:
        The revisions applied, oldest first; empty when there was nothing to do.

    Raises:
        DatabaseURLError: ``url`` is not a usable database URL.
        DatabaseUnavailable: the database cannot be reached or opened.
        MigrationError: a migration failed (nothing was changed) or ``revision`` is unknown.
    """
    applied = await _run(url, lambda config: _upgrade(config, revision), "the upgrade")
    if citus is not False:
        await distribute(url, required=bool(citus))
    return applied


async def distribute(url: str | None = None, *, required: bool = False) -> list[str] | None:
    """Lay the tables out on a Citus cluster (see :mod:`.citus`), in one transaction.

    Idempotent: the steps taken, empty when the layout is complete; ``None`` when the
    database has no ``citus`` extension (or is SQLite) and ``required`` is false.

    Raises:
        LayoutRefused: ``required`` and no Citus, or tables Citus cannot shard.
    """
    from parlant_runtime.storage import citus as layout  # noqa: PLC0415 (imports this module)

    resolved = database_url(url)
    if not resolved.startswith("postgresql"):
        if required:
            raise layout.LayoutRefused(f"{redact(resolved)} is not PostgreSQL: Citus needs it")
        return None

    def work(connection: sa.Connection) -> list[str] | None:
        if not required and not layout.citus_installed(connection):
            return None
        return layout.lay_out(connection)

    return await run_in_transaction(resolved, work, doing="the Citus layout")


def _upgrade(config: Config, revision: str) -> None:
    connection: sa.Connection = config.attributes["connection"]
    needs_adoption = _needs_adoption(connection)
    connection.rollback()  # the look ended its implicit transaction: Alembic begins its own
    if needs_adoption:
        raise MigrationError(
            "the database already has the platform's parlant_* tables but no record of the "
            "runtime's schema; run `parlant-runtime db adopt` once to take them over "
            "(nothing was changed)"
        )
    command.upgrade(config, revision)


def _needs_adoption(connection: sa.Connection) -> bool:
    """Platform tables present, no revision recorded: created by the host's own schema."""
    if stored_revision(connection) is not None:
        return False
    platform = {table.name for table in platform_tables() if table.name.startswith("parlant_")}
    platform.discard("parlant_usage")  # the runtime's own
    return bool(platform & set(sa.inspect(connection).get_table_names()))


async def run_in_transaction(url: str, work: Callable[[sa.Connection], T], *, doing: str) -> T:
    """Run ``work`` on a migration connection inside one transaction (all or nothing).

    Commands of this module and this one take turns within an event loop; the failure
    of ``work`` rolls everything back and comes out as :class:`MigrationError` (or its
    own library error).
    """

    def inside(connection: sa.Connection) -> T:
        with connection.begin():
            return work(connection)

    lock = _COMMAND_LOCKS.setdefault(asyncio.get_running_loop(), asyncio.Lock())
    async with lock:
        return await _with_connection(database_url(url), inside, doing=doing)


async def downgrade(url: str, revision: str) -> list[str]:
    """Revert the migrations down to ``revision`` (``"base"``: all of them), in one transaction.

    The host tables (workspace, user, knowledge_base, custom_tools) are kept. On a
    Citus coordinator the distributed layout follows, as after an upgrade: a table the
    downgrade creates again (0005's ``parlant_usage``) is laid out as it was at its
    revision rather than left on the coordinator alone.

    Returns:
        The revisions reverted, newest first.
    """
    reverted = await _run(url, lambda config: command.downgrade(config, revision), "the downgrade")
    await distribute(url)
    return reverted


async def current_revision(url: str) -> str | None:
    """The revision the database is at; ``None`` when no migration was applied.

    A SQLite file that does not exist is not created: it has no revision.
    """
    resolved = database_url(url)
    path = _sqlite_file(resolved)
    if path is not None and not path.exists():
        return None
    return await _with_connection(resolved, _current_revision, doing="reading the revision")


def _sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL; ``None`` for PostgreSQL, memory and ``file:`` URIs."""
    location = sa.make_url(url)
    if location.get_backend_name() != "sqlite" or "uri" in location.query:
        return None
    if location.database in (None, "", ":memory:"):
        return None
    return Path(location.database)


def _current_revision(connection: sa.Connection) -> str | None:
    return stored_revision(connection)


async def differences(url: str) -> list[Any]:
    """What separates the database from the tables in ``storage/sql/schema.py``.

    Empty when the database is exactly what the library expects (after
    :func:`upgrade` to head it must be). The entries are Alembic's
    ``compare_metadata`` diffs (``("add_column", ...)``, ``("remove_index", ...)``).
    Types and server defaults are compared too.
    """

    def compare(connection: sa.Connection) -> list[Any]:
        dialect = connection.dialect.name
        context = MigrationContext.configure(
            connection,
            opts={
                "compare_type": True,
                "compare_server_default": compare_server_default,
                "include_schemas": dialect == "postgresql",
                "include_name": include_name,
                "version_table_schema": version_schema(dialect),
            },
        )
        return list(compare_metadata(context, comparable_metadata(dialect)))

    return await _with_connection(database_url(url), compare, doing="comparing the schema")


def compare_server_default(  # noqa: PLR0917 (Alembic calls it with six positional arguments)
    context: MigrationContext,
    inspected_column: sa.Column[Any],
    metadata_column: sa.Column[Any],
    inspected_default: str | None,
    metadata_default: Any,
    rendered_metadata_default: str | None,
) -> bool | None:
    """Alembic's server-default comparison, minus its false alarm on SQLite's ``DEFAULT ''``.

    Returns ``False`` (no difference) for an empty-string default that SQLite
    reflects as ``('')``, and ``None`` (Alembic decides) for everything else.
    """
    del context, inspected_column, metadata_column, metadata_default
    if inspected_default in ("''", "('')") and rendered_metadata_default in ("", "''"):
        return False
    return None


async def _run(url: str | None, action: Callable[[Config], None], doing: str) -> list[str]:
    resolved = database_url(url)
    config = _config(resolved)

    def run(connection: sa.Connection) -> None:
        config.attributes["connection"] = connection
        action(config)

    lock = _COMMAND_LOCKS.setdefault(asyncio.get_running_loop(), asyncio.Lock())
    async with lock:
        await _with_connection(resolved, run, doing=doing)
    steps: list[str] = config.attributes.get("steps", [])
    return steps


async def _with_connection(url: str, work: Callable[[sa.Connection], T], *, doing: str) -> T:
    path = _sqlite_file(url)
    if path is not None and not path.parent.is_dir():
        # checked here rather than left to sqlite3: a failed aiosqlite connect leaves
        # its worker thread posting to the event loop after asyncio.run closed it
        raise DatabaseUnavailable(
            f"cannot open the database at {redact(url)}: the folder {path.parent} does not exist"
        )
    engine = migration_engine(url)
    try:
        try:
            connection = await engine.connect()
        except (sa.exc.DBAPIError, OSError) as exc:
            raise DatabaseUnavailable(
                f"cannot open the database at {redact(url)}: {_reason(exc)}"
            ) from exc
        try:
            return await _work(connection, url, work, doing)
        finally:
            await connection.close()
    finally:
        await engine.dispose()


async def _work(
    connection: AsyncConnection, url: str, work: Callable[[sa.Connection], T], doing: str
) -> T:
    try:
        return await connection.run_sync(work)
    except CommandError as exc:
        known = ", ".join(revisions())
        raise MigrationError(f"{exc} (this parlant-runtime knows: {known})") from exc
    except OSError as exc:
        raise DatabaseUnavailable(
            f"lost the connection to {redact(url)}: {_reason(exc)}; nothing was changed"
        ) from exc
    except sa.exc.SQLAlchemyError as exc:
        raise MigrationError(
            f"{doing} failed on {redact(url)} and nothing was changed: {_reason(exc)}"
        ) from exc


def _reason(exc: BaseException) -> str:
    """The driver's own words, first line only (no SQLAlchemy background links)."""
    origin = getattr(exc, "orig", None) or exc
    text = str(origin).strip() or type(origin).__name__
    return text.splitlines()[0]
