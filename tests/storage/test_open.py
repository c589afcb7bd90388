"""Opening a SQL store: URLs read as the command line reads them, ``async with``, and
driver errors translated into the library's in one place (``SqlStore._transact``)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from parlant_runtime import (
    DatabaseURLError,
    InvalidData,
    MemoryStore,
    SqlStore,
    StorageError,
    database_url,
    upgrade,
)
from tests.storage.support import WS, Run, make_bundle, setup_agent


@pytest.fixture
def sqlite_file(tmp_path: Path, run: Run) -> Path:
    path = tmp_path / "parlant.db"
    run(upgrade(f"sqlite:///{path}"))
    return path


def test_async_with_closes_the_store_at_the_end_of_the_block(sqlite_file: Path, run: Run) -> None:
    async def body() -> SqlStore:
        async with SqlStore.open(f"sqlite:///{sqlite_file}") as store:
            await store.ensure_workspace(WS)
            assert await store.find_agent(WS, "Clinic") is None
        return store

    store = run(body())
    with pytest.raises(StorageError, match="closed"):
        run(store.find_agent(WS, "Clinic"))


def test_async_with_closes_the_store_when_the_block_raises(sqlite_file: Path, run: Run) -> None:
    opened: list[SqlStore] = []

    async def body() -> None:
        async with SqlStore.open(f"sqlite:///{sqlite_file}") as store:
            opened.append(store)
            raise RuntimeError("the host's own failure")

    with pytest.raises(RuntimeError, match="host's own"):
        run(body())
    with pytest.raises(StorageError, match="closed"):
        run(opened[0].ensure_workspace(WS))


def test_open_then_close_keeps_working(sqlite_file: Path, run: Run) -> None:
    store = SqlStore.open(f"sqlite:///{sqlite_file}")
    run(store.ensure_workspace(WS))
    run(store.close())
    with pytest.raises(StorageError, match="closed"):
        run(store.ensure_workspace(WS))

    async def enter_closed() -> None:
        async with store:
            pass

    with pytest.raises(StorageError, match="closed"):
        run(enter_closed())


def test_a_memory_store_is_an_async_context_manager_too(run: Run) -> None:
    async def body() -> MemoryStore:
        async with MemoryStore() as store:
            await store.ensure_workspace(WS)
        return store

    store = run(body())
    with pytest.raises(StorageError, match="closed"):
        run(store.ensure_workspace(WS))
    assert repr(store) == "<parlant_runtime.MemoryStore closed>"


def test_open_reads_the_url_as_the_command_line_does(
    sqlite_file: Path, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the same URL spelt three ways, then none (the environment variable names it)
    spellings = [f"sqlite:///{sqlite_file}", f"sqlite+aiosqlite:///{sqlite_file}"]
    monkeypatch.setenv("PARLANT_DATABASE_URL", f"  sqlite:///{sqlite_file}\n")
    for url in [*spellings, None]:
        store = SqlStore.open(url)
        try:
            assert store.url == database_url(url) == f"sqlite+aiosqlite:///{sqlite_file}"
            run(store.ensure_workspace(WS))  # the file was migrated: the tables are there
        finally:
            run(store.close())


def test_the_default_database_is_parlant_db_in_the_current_folder(
    tmp_path: Path, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PARLANT_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    run(upgrade(database_url()))
    store = SqlStore.open()
    try:
        assert repr(store) == "<parlant_runtime.SqlStore sqlite+aiosqlite:///parlant.db>"
        run(store.ensure_workspace(WS))
    finally:
        run(store.close())
    assert (tmp_path / "parlant.db").is_file()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("parlant.db", "not a database URL"),
        ("mysql://u:secret@db/app", "SQLite or PostgreSQL"),
        ("postgresql+psycopg2://u:secret@db/app", "write postgresql://"),
        ("", "empty"),
    ],
)
def test_open_refuses_a_url_it_cannot_use_before_connecting(url: str, message: str) -> None:
    with pytest.raises(DatabaseURLError, match=message) as refused:
        SqlStore.open(url)
    assert "secret" not in str(refused.value)


def test_the_url_and_repr_hide_the_password() -> None:
    store = SqlStore.open("postgresql://app:hunter2@db-host:5432/app")  # never connects
    assert store.url == "postgresql+asyncpg://app:***@db-host:5432/app"
    assert "hunter2" not in repr(store)
    assert repr(store).startswith("<parlant_runtime.SqlStore postgresql+asyncpg://")


def test_a_constraint_a_write_breaks_is_invalid_data_with_the_driver_error_chained(
    sqlite_file: Path, run: Run
) -> None:
    """Every write runs in ``_transact``: a constraint violation there is ``InvalidData``
    (nothing written), never SQLAlchemy's ``IntegrityError``."""

    async def body() -> None:
        async with SqlStore.open(f"sqlite:///{sqlite_file}") as store:
            await setup_agent(store)

            async def breaks_a_constraint(conn: AsyncConnection) -> None:
                await conn.execute(sa.text("INSERT INTO workspace (id, name) VALUES ('ws-x', 'x')"))
                await conn.execute(sa.text("INSERT INTO workspace (id, name) VALUES ('ws-x', 'x')"))

            with pytest.raises(
                InvalidData, match=r"^the write breaks a database constraint: "
            ) as e:
                await store._transact(breaks_a_constraint)
            assert isinstance(e.value.__cause__, sa.exc.IntegrityError)
            # rolled back: the first insert is not there either
            async with store.engine.connect() as conn:
                found = await conn.scalar(sa.text("SELECT count(*) FROM workspace WHERE id='ws-x'"))
            assert found == 0
            # and the store goes on working
            assert (await store.publish(WS, make_bundle(day="friday"))).version == 2

    run(body())


def test_close_inside_the_block_then_leaving_it_is_harmless(sqlite_file: Path) -> None:
    async def body() -> None:
        async with SqlStore.open(f"sqlite:///{sqlite_file}") as store:
            await store.close()

    asyncio.run(body())
