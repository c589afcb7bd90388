"""The SQLite thread of the SQL store's turns (``_sqlite_thread``), on a real file.

Transactions queued while the thread is busy commit together (one ``BEGIN
IMMEDIATE``, a savepoint each, one ``COMMIT``); one that raises is rolled back alone and
its caller gets its error, but only once the others are committed; work whose caller
was cancelled before it began writes nothing; when SQLite drops the whole transaction
under a group, the others run again; a connection that cannot be opened fails each
item until it can.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from parlant_runtime.storage.sql._sqlite_thread import SqliteThread, connect


class Refused(RuntimeError):
    """The error a work function raises on purpose."""


@pytest.fixture
def database(tmp_path: Path) -> str:
    path = tmp_path / "thread.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER)")
    return str(path)


def rows(database: str) -> list[tuple[str, int]]:
    """The table as another connection sees it (committed rows only)."""
    with sqlite3.connect(database) as connection:
        return sorted(connection.execute("SELECT k, v FROM t").fetchall())


def insert(key: str, value: int = 1) -> Callable[[sqlite3.Connection], str]:
    def work(connection: sqlite3.Connection) -> str:
        connection.execute("INSERT INTO t VALUES (?, ?)", (key, value))
        return key

    return work


def insert_then_refuse(key: str) -> Callable[[sqlite3.Connection], str]:
    def work(connection: sqlite3.Connection) -> str:
        connection.execute("INSERT INTO t VALUES (?, 1)", (key,))
        raise Refused(key)

    return work


def test_queued_transactions_commit_together_and_a_failing_one_is_rolled_back_alone(
    database: str,
) -> None:
    async def body() -> None:
        thread = SqliteThread(lambda: connect(database), name="test-writer")
        sent: list[str] = []

        def trace(connection: sqlite3.Connection) -> None:
            connection.set_trace_callback(sent.append)

        try:
            await thread.call(trace)
            async with thread.paused():  # everything below queues while the thread waits
                works = [insert("a"), insert("b"), insert_then_refuse("c"), insert("d")]
                calls = [asyncio.ensure_future(thread.transact(work)) for work in works]
                await asyncio.sleep(0.05)
                assert not any(call.done() for call in calls)
            results = await asyncio.gather(*calls, return_exceptions=True)
        finally:
            await thread.close()
        assert results[:2] == ["a", "b"]
        assert isinstance(results[2], Refused)
        assert results[3] == "d"
        assert rows(database) == [("a", 1), ("b", 1), ("d", 1)]
        boundaries = [s for s in sent if not s.startswith("INSERT")]
        assert boundaries.count("BEGIN IMMEDIATE") == 1
        assert boundaries.count("COMMIT") == 1
        assert boundaries.count("SAVEPOINT turn") == 4
        assert "ROLLBACK TO turn" in boundaries

    asyncio.run(body())


def test_a_failing_transaction_is_told_only_after_the_others_committed(database: str) -> None:
    """Its caller reads again at once (a lost compare-and-set): it must find them."""

    async def body() -> None:
        thread = SqliteThread(lambda: connect(database), name="test-writer")
        try:
            async with thread.paused():
                first = asyncio.ensure_future(thread.transact(insert("a")))
                refused = asyncio.ensure_future(thread.transact(insert_then_refuse("b")))
                await asyncio.sleep(0.05)
            with pytest.raises(Refused):
                await refused
            assert rows(database) == [("a", 1)]  # committed before the error was told
            assert await first == "a"
        finally:
            await thread.close()

    asyncio.run(body())


def test_a_transaction_whose_caller_was_cancelled_before_it_began_writes_nothing(
    database: str,
) -> None:
    async def body() -> None:
        thread = SqliteThread(lambda: connect(database), name="test-writer")
        try:
            async with thread.paused():
                gone = asyncio.ensure_future(thread.transact(insert("gone")))
                kept = asyncio.ensure_future(thread.transact(insert("kept")))
                await asyncio.sleep(0.05)
                gone.cancel()
            assert await kept == "kept"
            with pytest.raises(asyncio.CancelledError):
                await gone
        finally:
            await thread.close()
        assert rows(database) == [("kept", 1)]

    asyncio.run(body())


def test_when_sqlite_drops_the_whole_transaction_the_others_of_the_group_run_again(
    database: str,
) -> None:
    """An error that ends the transaction (SQLite does so for a full disk or an I/O
    error; here the work rolls back itself) is its caller's; the rest commit."""

    def lose_the_transaction(connection: sqlite3.Connection) -> str:
        connection.execute("INSERT INTO t VALUES ('lost', 1)")
        connection.execute("ROLLBACK")
        raise Refused("the transaction is gone")

    async def body() -> None:
        thread = SqliteThread(lambda: connect(database), name="test-writer")
        try:
            async with thread.paused():
                calls = [
                    asyncio.ensure_future(thread.transact(work))
                    for work in (insert("a"), lose_the_transaction, insert("c"))
                ]
                await asyncio.sleep(0.05)
            results = await asyncio.gather(*calls, return_exceptions=True)
        finally:
            await thread.close()
        assert results[0] == "a"
        assert isinstance(results[1], Refused)
        assert results[2] == "c"
        assert rows(database) == [("a", 1), ("c", 1)]

    asyncio.run(body())


def test_a_connection_that_cannot_be_opened_fails_each_item_until_it_can(tmp_path: Path) -> None:
    folder = tmp_path / "later"
    path = folder / "thread.db"

    async def body() -> None:
        thread = SqliteThread(lambda: connect(str(path)), name="test-writer")
        try:
            with pytest.raises(sqlite3.OperationalError, match="unable to open"):
                await thread.call(lambda connection: connection.execute("SELECT 1").fetchone())
            folder.mkdir()  # the folder appears: the next item opens the file
            found = await thread.call(lambda connection: connection.execute("SELECT 1").fetchone())
            assert found == (1,)
        finally:
            await thread.close()

    asyncio.run(body())


def test_closing_a_thread_that_never_opened_its_connection_creates_no_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / "never.db"

    async def body() -> None:
        thread = SqliteThread(lambda: connect(str(path)), name="test-reader")
        await thread.close()

    asyncio.run(body())
    assert not path.exists()
