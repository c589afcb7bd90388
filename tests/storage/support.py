"""What the storage tests share: fresh databases, and the conformance suite's helpers.

The fixtures in ``conftest.py`` and the agreement state machine both open stores
through :func:`open_sqlite` and :func:`reset_postgres`, so every test starts from an
empty, migrated database whatever the adapter. Workspaces, bundles, turns and
snapshots are the public conformance suite's own
(:mod:`parlant_runtime.testing.conformance`), so the tests here build scenes the way
the suite does.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from parlant_runtime.storage.sql.schema import metadata
from parlant_runtime.storage.sql.store import SqlStore
from parlant_runtime.testing.conformance._support import (
    OTHER_WS,
    REPLY,
    WS,
    Run,
    Snapshot,
    make_bundle,
    message,
    publish,
    setup_agent,
    snapshot,
    state_ids,
    turn,
    usage_key,
)

__all__ = [
    "EXAMPLES",
    "OTHER_WS",
    "REPLY",
    "SQL_BACKENDS",
    "WS",
    "Run",
    "Snapshot",
    "make_bundle",
    "message",
    "open_sqlite",
    "publish",
    "reset_postgres",
    "setup_agent",
    "snapshot",
    "state_ids",
    "turn",
    "usage_key",
    "xfail_on",
]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SQL_BACKENDS = ("sqlite", "postgresql")


def xfail_on(
    request: pytest.FixtureRequest, backend: str, backends: Sequence[str], reason: str
) -> None:
    """Mark the running test as an expected (strict) failure on some adapters."""
    if backend in backends:
        request.applymarker(pytest.mark.xfail(strict=True, reason=reason))


# ------------------------------------------------------------------ databases


def open_sqlite(template: Path, folder: Path) -> SqlStore:
    """A store on a fresh copy of the migrated SQLite ``template`` inside ``folder``."""
    path = folder / "parlant.db"
    shutil.copyfile(template, path)
    return SqlStore.open(f"sqlite:///{path}")


async def reset_postgres(url: str) -> None:
    """Empty every parlant_* table and the host tables of a migrated database.

    ``DELETE`` rather than ``TRUNCATE ... CASCADE``: on tables holding a handful of rows
    it is five times faster (TRUNCATE makes new files for all 19 tables on each call),
    which is most of a test's time on PostgreSQL. Children go first, so no cascade is
    needed; the migration bookkeeping (``alembic_version``) is kept.
    """
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            citus = await conn.scalar(sa.text("SELECT 1 FROM pg_extension WHERE extname = 'citus'"))
            if citus:  # reference tables after sharded ones: one connection per node
                await conn.execute(
                    sa.text("SET LOCAL citus.multi_shard_modify_mode = 'sequential'")
                )
            for table in reversed(metadata.sorted_tables):
                await conn.execute(table.delete())
    finally:
        await engine.dispose()
