"""Creating the async engine for a database URL, with the settings each dialect needs."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

__all__ = ["create_engine", "normalise_url"]


def normalise_url(url: str) -> str:
    """Point a database URL at the async driver: aiosqlite for SQLite, asyncpg for PostgreSQL."""
    for prefix, driver in (
        ("sqlite://", "sqlite+aiosqlite://"),
        ("postgresql://", "postgresql+asyncpg://"),
        ("postgres://", "postgresql+asyncpg://"),
    ):
        if url.startswith(prefix):
            return driver + url[len(prefix) :]
    return url


def create_engine(url: str, **options: Any) -> AsyncEngine:
    """An async engine; on SQLite with foreign keys on, WAL and a busy timeout."""
    engine = create_async_engine(normalise_url(url), **options)
    if engine.dialect.name == "sqlite":

        @sa.event.listens_for(engine.sync_engine, "connect")
        def _pragmas(connection: Any, _record: Any) -> None:
            cursor = connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=5000")
            cursor.close()

    return engine
