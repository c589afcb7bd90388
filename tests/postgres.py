"""Throwaway PostgreSQL databases for tests: one fresh database each, dropped afterwards.

Tests that need PostgreSQL take a database from :func:`postgres_url` (through a
fixture) and carry the ``postgres`` marker. Without a reachable server they are
skipped, so the suite runs on any laptop; CI sets ``PARLANT_REQUIRE_POSTGRES=1``
and then a missing server fails them instead of hiding them.

The server is ``postgresql://postgres@127.0.0.1:5432/postgres`` unless
``PARLANT_TEST_POSTGRES_URL`` names another one; its user needs ``CREATEDB``.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

__all__ = ["ADMIN_URL_ENV", "DEFAULT_ADMIN_URL", "REQUIRE_ENV", "postgres_url"]

# whether the running test carries the ``postgres`` marker (None: no test is running,
# as while a module's fixtures are torn down); set by tests/conftest.py
marked: bool | None = None

ADMIN_URL_ENV = "PARLANT_TEST_POSTGRES_URL"
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
REQUIRE_ENV = "PARLANT_REQUIRE_POSTGRES"
CONNECT_TIMEOUT = 5.0


async def _execute(admin_url: sa.URL, statement: str) -> None:
    engine = create_async_engine(
        admin_url,
        poolclass=NullPool,
        isolation_level="AUTOCOMMIT",  # CREATE/DROP DATABASE refuse to run in a transaction
        connect_args={"timeout": CONNECT_TIMEOUT},
    )
    try:
        async with engine.connect() as connection:
            await connection.exec_driver_sql(statement)
    finally:
        await engine.dispose()


def _unavailable(message: str) -> NoReturn:
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{message} ({REQUIRE_ENV}=1: the PostgreSQL tests must run)", pytrace=False)
    pytest.skip(message)


@contextmanager
def postgres_url() -> Iterator[str]:
    """Create an empty database ``parlant_test_<random>``, yield its URL, then drop it.

    The URL names the asyncpg driver (``postgresql+asyncpg://...``). Connections
    left open by the test do not stop the drop (``WITH (FORCE)``).
    """
    if marked is False:
        test = os.environ.get("PYTEST_CURRENT_TEST", "this test").rsplit(" ", 1)[0]
        raise AssertionError(
            f"{test} takes a PostgreSQL database but is not marked: add "
            "@pytest.mark.postgres (or pytest.param(..., marks=pytest.mark.postgres))"
        )
    admin = sa.make_url(os.environ.get(ADMIN_URL_ENV, DEFAULT_ADMIN_URL)).set(
        drivername="postgresql+asyncpg"
    )
    where = f"{admin.host or 'localhost'}:{admin.port or 5432}"
    name = f"parlant_test_{secrets.token_hex(6)}"
    try:
        asyncio.run(_execute(admin, f'CREATE DATABASE "{name}"'))
    except (OSError, sa.exc.DBAPIError) as exc:
        reason = getattr(exc, "orig", None) or exc
        _unavailable(f"PostgreSQL is not reachable on {where}: {reason}")
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_execute(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
