"""Which database: the one place a database URL is read, for the library and the CLI.

An explicit URL, else the ``PARLANT_DATABASE_URL`` environment variable, else
``sqlite:///parlant.db`` in the current directory. A file next to the project (rather
than one in a per-user data directory) is what people expect of an embedded default,
shows up where they look for it, and keeps two projects on one machine apart; servers
set the variable. URLs may name the plain dialect (``sqlite:///path``,
``postgresql://...``, ``postgres://...``) or the async drivers the library uses
(``sqlite+aiosqlite``, ``postgresql+asyncpg``); :func:`database_url` turns any of
them into the latter. A bare file name is refused with the URL to write instead.

:meth:`SqlStore.open <parlant_runtime.SqlStore.open>`, the migrations and every
``--database-url`` option of the command line resolve URLs here.
"""

from __future__ import annotations

import os
import re

import sqlalchemy as sa

from parlant_runtime.storage.port import DatabaseURLError

__all__ = ["DATABASE_URL_ENV", "DEFAULT_DATABASE_URL", "database_url", "redact"]

DATABASE_URL_ENV = "PARLANT_DATABASE_URL"
"""The environment variable naming the database when no URL is given."""
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///parlant.db"
"""The database when neither a URL nor the environment variable names one."""

_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}
_PLAIN = (
    ("sqlite://", "sqlite+aiosqlite://"),
    ("postgresql://", "postgresql+asyncpg://"),
    ("postgres://", "postgresql+asyncpg://"),
)


def database_url(url: str | None = None) -> str:
    """The URL to use: ``url``, else ``$PARLANT_DATABASE_URL``, else ``./parlant.db``.

    The result names the async driver (``sqlite+aiosqlite``, ``postgresql+asyncpg``);
    a libpq ``sslmode`` parameter becomes asyncpg's ``ssl``.

    Raises:
        DatabaseURLError: the URL cannot be parsed or is not SQLite or PostgreSQL.
    """
    raw = url if url is not None else os.environ.get(DATABASE_URL_ENV) or DEFAULT_DATABASE_URL
    raw = raw.strip()
    if not raw:
        raise DatabaseURLError(
            "the database URL is empty; give one like sqlite:///parlant.db "
            "or postgresql://user@host/dbname"
        )
    for prefix, driver in _PLAIN:
        if raw.startswith(prefix):
            raw = driver + raw[len(prefix) :]
            break
    try:
        parsed = sa.make_url(raw)
    except sa.exc.ArgumentError as exc:
        raise DatabaseURLError(
            f"{_redact_raw(raw)!r} is not a database URL; write sqlite:///path/to/file.db "
            "or postgresql://user:password@host:5432/dbname"
        ) from exc
    if parsed.drivername not in _DRIVERS.values():
        backend = parsed.get_backend_name()
        if backend in _DRIVERS:
            hint = f"write {backend}:// and the library uses {_DRIVERS[backend]}"
        else:
            hint = "parlant-runtime stores its data in SQLite or PostgreSQL"
        raise DatabaseURLError(f"unsupported database URL scheme {parsed.drivername!r}: {hint}")
    if "sslmode" in parsed.query and "ssl" not in parsed.query:
        parsed = parsed.difference_update_query(["sslmode"]).update_query_dict(
            {"ssl": parsed.query["sslmode"]}
        )
    return parsed.render_as_string(hide_password=False)


def redact(url: str) -> str:
    """The URL with its password hidden, for messages and logs."""
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return _redact_raw(url)


def _redact_raw(url: str) -> str:
    return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", url)
