"""The connections the store's driver path keeps between its calls (``_held.py``):
kept and taken again, given back to the pool when unused or dead, and all given back
when the store closes, so that the pool's limits and a closed store's promise (no
connection left) hold."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg  # type: ignore[import-untyped]  # no stubs, no py.typed
import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from parlant_runtime.storage.port import SessionStart
from parlant_runtime.storage.sql._held import HeldConnections
from parlant_runtime.storage.sql.store import SqlStore
from tests.storage.support import WS, message, reset_postgres, setup_agent, turn

pytestmark = pytest.mark.postgres


async def _connections(url: str) -> int:
    """Connections to the database, this one's aside, once those closing are gone (the
    server sees a socket close a moment later): asked until none or for 5 s."""
    dsn = sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    admin = await asyncpg.connect(dsn)
    try:
        for _ in range(50):
            count: int = await admin.fetchval(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            if count == 0:
                break
            await asyncio.sleep(0.1)
    finally:
        await admin.close()
    return count


def _checked_out(store: SqlStore) -> int:
    pool: Any = store.engine.pool
    return int(pool.checkedout())


def test_a_connection_given_back_is_kept_and_taken_again(postgres_database: str) -> None:
    async def body() -> None:
        store = SqlStore.open(postgres_database)
        try:
            held = HeldConnections(store.engine, idle=60)
            first = await held.take()
            await held.give(first)
            assert _checked_out(store) == 1  # kept: still out of the pool
            again = await held.take()
            assert again is first
            second = await held.take()  # none kept: one more from the pool
            assert second is not first
            assert _checked_out(store) == 2
            await held.give(again)
            await held.give(second)
            await held.release()
            assert _checked_out(store) == 0
            third = await held.take()  # released: it keeps nothing from now on
            await held.give(third)
            assert _checked_out(store) == 0
        finally:
            await store.close()

    asyncio.run(body())


def test_an_unused_connection_goes_back_to_the_pool(postgres_database: str) -> None:
    async def body() -> None:
        store = SqlStore.open(postgres_database)
        try:
            held = HeldConnections(store.engine, idle=0.05)
            kept = await held.take()
            await held.give(kept)
            assert _checked_out(store) == 1
            await asyncio.sleep(0.3)
            assert _checked_out(store) == 0
            await held.release()
        finally:
            await store.close()

    asyncio.run(body())


def test_a_dead_connection_is_not_handed_out(postgres_database: str) -> None:
    async def body() -> None:
        store = SqlStore.open(postgres_database)
        try:
            held = HeldConnections(store.engine, idle=60)
            dying = await held.take()
            await held.give(dying)
            dying.driver_connection.terminate()  # as a server restart leaves it
            taken = await held.take()
            assert taken is not dying
            assert await taken.driver_connection.fetchval("SELECT 1") == 1
            await held.give(taken)
            await held.release()
            assert _checked_out(store) == 0
        finally:
            await store.close()

    asyncio.run(body())


def test_without_a_pool_size_nothing_is_kept(postgres_database: str) -> None:
    async def body() -> None:
        store = SqlStore.open(postgres_database, poolclass=NullPool)
        try:
            held = HeldConnections(store.engine, idle=60)
            raw = await held.take()
            driver = raw.driver_connection
            await held.give(raw)
            assert driver.is_closed()  # given back at once: NullPool closes it
            await held.release()
        finally:
            await store.close()

    asyncio.run(body())


def test_a_closed_store_keeps_no_connection(postgres_database: str) -> None:
    async def body() -> None:
        await reset_postgres(postgres_database)
        assert await _connections(postgres_database) == 0
        store = SqlStore.open(postgres_database)
        agent = await setup_agent(store)
        sessions = [await store.create_session(WS, SessionStart(agent_id=agent)) for _ in range(4)]
        # turns at once (each keeps a connection) and their NOTIFYs still on their way
        await asyncio.gather(
            *(store.commit_turn(WS, turn(s, events=[message("hi")])) for s in sessions)
        )
        await asyncio.gather(*(store.read_turn(WS, s.id) for s in sessions))
        assert _checked_out(store) > 0  # kept (and some still sending their NOTIFY)
        await store.close()
        assert await _connections(postgres_database) == 0

    asyncio.run(body())
