"""Throwaway databases on a Citus cluster (a coordinator and its workers) for tests.

Tests that need Citus take a database from :func:`citus_url` (through a fixture) and
carry the ``citus`` marker. The cluster is the one whose coordinator
``PARLANT_TEST_CITUS_URL`` names (default ``postgresql://postgres@127.0.0.1:9700/postgres``):
CI starts one on ports 9700-9702 (``.ci/run``). Citus does not propagate ``CREATE
DATABASE``, so each database is created on every node, with the extension, and the
workers are registered with its coordinator. Without a reachable cluster the tests are
skipped, saying so; CI sets ``PARLANT_REQUIRE_CITUS=1`` and then they fail instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

__all__ = ["ADMIN_URL_ENV", "DEFAULT_ADMIN_URL", "REQUIRE_ENV", "citus_url", "create_database"]

# whether the running test carries the ``citus`` marker; set by tests/conftest.py
marked: bool | None = None

ADMIN_URL_ENV = "PARLANT_TEST_CITUS_URL"
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:9700/postgres"
REQUIRE_ENV = "PARLANT_REQUIRE_CITUS"
CONNECT_TIMEOUT = 5.0


async def _execute(url: sa.URL, *statements: str) -> list[list[tuple[object, ...]]]:
    engine = create_async_engine(
        url,
        poolclass=NullPool,
        isolation_level="AUTOCOMMIT",  # CREATE/DROP DATABASE refuse to run in a transaction
        connect_args={"timeout": CONNECT_TIMEOUT},
    )
    results: list[list[tuple[object, ...]]] = []
    try:
        async with engine.connect() as connection:
            for statement in statements:
                result = await connection.exec_driver_sql(statement)
                results.append([tuple(row) for row in result] if result.returns_rows else [])
    finally:
        await engine.dispose()
    return results


def unavailable(message: str) -> NoReturn:
    """Skip the test, or fail it when CI requires Citus."""
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{message} ({REQUIRE_ENV}=1: the Citus tests must run)", pytrace=False)
    pytest.skip(message)


def admin_url() -> sa.URL:
    """The coordinator's maintenance database, with the asyncpg driver."""
    return sa.make_url(os.environ.get(ADMIN_URL_ENV, DEFAULT_ADMIN_URL)).set(
        drivername="postgresql+asyncpg"
    )


async def create_database(coordinator: sa.URL, name: str) -> list[tuple[str, int]]:
    """Database ``name`` on the coordinator and each of its workers, with the extension
    and the workers registered; the workers' addresses."""
    (workers,) = await _execute(
        coordinator,
        "SELECT nodename, nodeport FROM pg_dist_node WHERE noderole = 'primary' "
        "AND groupid <> 0 ORDER BY nodeport",
    )
    nodes = [(str(host), int(str(port))) for host, port in workers]
    for host, port in [(coordinator.host or "127.0.0.1", coordinator.port or 5432), *nodes]:
        node = coordinator.set(host=host, port=port)
        await _execute(node, f'CREATE DATABASE "{name}"')
        await _execute(node.set(database=name), "CREATE EXTENSION citus")
    here = coordinator.set(database=name)
    await _execute(
        here,
        # 4 shards a table (2 a worker) rather than 32: tests create many small databases
        f'ALTER DATABASE "{name}" SET citus.shard_count = 4',
        f"SELECT citus_set_coordinator_host('{coordinator.host}', {coordinator.port})",
        *(f"SELECT citus_add_node('{host}', {port})" for host, port in nodes),
    )
    return nodes


async def drop_database(coordinator: sa.URL, name: str, nodes: list[tuple[str, int]]) -> None:
    for host, port in [(coordinator.host or "127.0.0.1", coordinator.port or 5432), *nodes]:
        node = coordinator.set(host=host, port=port)
        with contextlib.suppress(OSError, sa.exc.DBAPIError):  # a node a test stopped
            await _execute(node, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def citus_url() -> Iterator[str]:
    """Create an empty database ``parlant_citus_<random>`` on every node of the cluster,
    yield the coordinator's URL for it, then drop it everywhere."""
    if marked is False:
        test = os.environ.get("PYTEST_CURRENT_TEST", "this test").rsplit(" ", 1)[0]
        raise AssertionError(
            f"{test} takes a Citus database but is not marked: add @pytest.mark.citus "
            "(or pytest.param(..., marks=pytest.mark.citus))"
        )
    admin = admin_url()
    where = f"{admin.host}:{admin.port}"
    name = f"parlant_citus_{secrets.token_hex(6)}"
    try:
        nodes = asyncio.run(create_database(admin, name))
    except (OSError, sa.exc.DBAPIError) as exc:
        reason = getattr(exc, "orig", None) or exc
        asyncio.run(drop_database(admin, name, []))
        unavailable(f"no Citus coordinator on {where}: {reason}")
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(drop_database(admin, name, nodes))
