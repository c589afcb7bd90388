"""A database as the host platform creates it: its Drizzle DDL, one owner, one workspace.

``tests/fixtures/sim-host-schema.sql`` is the platform's own DDL, unedited. Tests of the
runtime on a host database (``tests/storage/test_host_database.py``) and the documentation
transcripts marked ``<!-- host-database -->`` (``tests/test_docs.py``) build their
throwaway PostgreSQL databases with :func:`create_host_database`, by plain SQL through
asyncpg, as the platform would: no library code in between.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]  # no stubs, no py.typed
import sqlalchemy as sa

__all__ = [
    "HOST_DDL",
    "OWNER",
    "WORKSPACE",
    "create_host_database",
    "host_dsn",
    "run_sql",
    "sql",
]

HOST_DDL = Path(__file__).resolve().parent / "fixtures" / "sim-host-schema.sql"
OWNER = "u-owner"
WORKSPACE = "acme"
_BREAK = "--> statement-breakpoint"


def host_dsn(url: str) -> str:
    """The URL as libpq and asyncpg read it (no SQLAlchemy driver name)."""
    return sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def run_sql(url: str, statement: str, *args: Any) -> list[Any]:
    """Run plain SQL: a query (rows returned) or a script of several statements."""
    connection = await asyncpg.connect(host_dsn(url))
    try:
        if args or statement.lstrip().upper().startswith("SELECT"):
            return list(await connection.fetch(statement, *args))
        await connection.execute(statement)
        return []
    finally:
        await connection.close()


def sql(url: str, statement: str, *args: Any) -> list[Any]:
    """:func:`run_sql` outside an event loop."""
    return asyncio.run(run_sql(url, statement, *args))


def create_host_database(url: str, *, without: tuple[str, ...] = ()) -> None:
    """The platform's tables (minus the tables ``without`` names), a user ``u-owner``
    owning a workspace ``acme``, and a second user ``u-editor``."""
    statements = HOST_DDL.read_text(encoding="utf-8").split(_BREAK)
    kept = [s for s in statements if not any(f'"{table}"' in s for table in without)]
    sql(url, ";\n".join(s.strip().rstrip(";") for s in kept if s.strip()) + ";")
    sql(
        url,
        f"""INSERT INTO "user" (id, name, email, email_verified, created_at, updated_at)
        VALUES ('{OWNER}', 'Owner', 'owner@example.com', true, now(), now()),
               ('u-editor', 'Editor', 'editor@example.com', true, now(), now());
        INSERT INTO workspace (id, name, owner_id) VALUES ('{WORKSPACE}', 'Acme', '{OWNER}');""",
    )
