"""Fixtures of the storage tests: a ``store`` per adapter and an event loop per test.

``store`` is parametrised over ``memory``, ``sqlite`` (a fresh copy of a migrated
SQLite file per test), ``postgresql`` (one throwaway database per test module,
migrated once and emptied before each test) and ``citus`` (the same on a Citus
cluster, with the tables sharded and replicated: see tests/citus.py). There is no
pytest-asyncio: a test gets ``run``, which runs a coroutine on the test's own event
loop; the store is closed on that loop when the test ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from parlant_runtime.storage import migrate
from parlant_runtime.storage.memory import MemoryStore
from parlant_runtime.storage.port import Store
from parlant_runtime.storage.sql.store import SqlStore
from tests.citus import citus_url
from tests.postgres import postgres_url
from tests.storage.support import Run, open_sqlite, reset_postgres

BACKENDS = [
    "memory",
    "sqlite",
    pytest.param("postgresql", marks=pytest.mark.postgres),
    pytest.param("citus", marks=pytest.mark.citus),
]


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once per run; each test gets its own copy."""
    path = tmp_path_factory.mktemp("sqlite-template") / "parlant.db"
    asyncio.run(migrate.upgrade(f"sqlite:///{path}"))
    return path


@pytest.fixture(scope="module")
def postgres_database() -> Iterator[str]:
    """A throwaway PostgreSQL database for the module, migrated once."""
    with postgres_url() as url:
        asyncio.run(migrate.upgrade(url))
        yield url


@pytest.fixture(scope="module")
def citus_database() -> Iterator[str]:
    """A throwaway database on the Citus cluster for the module, migrated and laid out
    (sharded and replicated) once."""
    with citus_url() as url:
        asyncio.run(migrate.upgrade(url, citus=True))
        yield url


@pytest.fixture
def runner() -> Iterator[asyncio.Runner]:
    """The test's event loop."""
    with asyncio.Runner() as loop:
        yield loop


@pytest.fixture
def run(runner: asyncio.Runner) -> Run:
    """Run a coroutine on the test's event loop (call it as often as needed)."""
    return runner.run


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The adapter under test: ``memory``, ``sqlite``, ``postgresql`` or ``citus``."""
    name: str = request.param
    return name


def open_store(
    backend: str, request: pytest.FixtureRequest, folder: Path, runner: asyncio.Runner
) -> Store:
    """An empty store of the given adapter (see the module docstring)."""
    if backend == "memory":
        return MemoryStore()
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        return open_sqlite(template, folder)
    url: str = request.getfixturevalue(
        "citus_database" if backend == "citus" else "postgres_database"
    )
    runner.run(reset_postgres(url))
    return SqlStore.open(url)


@pytest.fixture
def store(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, runner: asyncio.Runner
) -> Iterator[Store]:
    """An empty store of each adapter, closed on the test's loop afterwards."""
    opened = open_store(backend, request, tmp_path, runner)
    yield opened
    runner.run(opened.close())
