"""Waiting for events on SQLite: woken by commits, never polling per waiter.

Every waiter used to poll its session's events every 50 ms: 200 open event streams
were 4,000 queries a second. Now a commit of the same process wakes its waiters at
once, and one poller per store asks for the event counts of all waited-on sessions
in one statement per round; the statement count does not grow with the waiters.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from parlant_runtime.model import Session
from parlant_runtime.storage.port import SessionStart
from parlant_runtime.storage.sql.store import SqlStore
from tests.storage.support import WS, message, setup_agent, turn

WAITERS = 200
FOREVER = 60.0  # a waiter's timeout: any return before it was a wake-up


@pytest.fixture
def database(sqlite_template: Path, tmp_path: Path) -> str:
    path = tmp_path / "parlant.db"
    path.write_bytes(sqlite_template.read_bytes())
    return f"sqlite:///{path}"


class Statements:
    """Counts the statements a store sends, on its reading and writing engines."""

    def __init__(self, store: SqlStore) -> None:
        self.count = 0
        self.rounds = 0
        """The poller's rounds seen: its one statement asking for event counts."""
        self._engines = {store.engine.sync_engine, store._writer.sync_engine}
        for engine in self._engines:
            sa.event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.count += 1
        if "event_count" in statement and " IN " in statement.upper():
            self.rounds += 1

    def stop(self) -> None:
        for engine in self._engines:
            sa.event.remove(engine, "before_cursor_execute", self._seen)


async def settled(store: SqlStore, limit: float = 60.0) -> None:
    """Until the waiters' first reads are over: a window in which the store sends only
    the poller's statements (on a loaded machine 200 first reads take a while)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while loop.time() < deadline:
        counted = Statements(store)
        await asyncio.sleep(0.3)
        counted.stop()
        if counted.rounds and counted.count <= 2 * counted.rounds:
            return
    raise AssertionError(f"the waiters' first reads went on for over {limit} s")


async def sessions(store: SqlStore, count: int) -> list[Session]:
    agent = await setup_agent(store)
    return [await store.create_session(WS, SessionStart(agent_id=agent)) for _ in range(count)]


def test_many_waiters_on_sqlite_add_no_statements_per_waiter(database: str) -> None:
    async def body() -> None:
        store = SqlStore.open(database, poll_interval=0.1)
        waits: list[asyncio.Future[Any]] = []
        try:
            opened = await sessions(store, WAITERS)
            waits += [
                asyncio.ensure_future(
                    store.wait_for_events(WS, s.id, after=s.event_count - 1, timeout=FOREVER)
                )
                for s in opened
            ]
            await settled(store)  # every waiter has read once and waits
            assert not any(wait.done() for wait in waits)
            counted = Statements(store)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 60.0
            while counted.rounds < 10 and loop.time() < deadline:  # a loaded machine is slow
                await asyncio.sleep(0.1)
            counted.stop()
            # at most two statements per poller round (SQLite's BEGIN and the one SELECT),
            # however many wait: polling per waiter was 400 a round. Counted per round, not
            # per second, so that a loaded machine's longer sleep changes nothing.
            assert counted.rounds >= 10, "the poller ran fewer than 10 rounds in a minute"
            assert counted.count <= 2 * counted.rounds + 2, (counted.count, counted.rounds)
            await store.commit_turn(WS, turn(opened[7], events=[message("hello")]))
            events = await asyncio.wait_for(waits[7], 5.0)
            assert [e.content["text"] for e in events] == ["hello"]
            assert sum(wait.done() for wait in waits) == 1
        finally:
            await store.close()  # wakes the others: they find the store closed
            await asyncio.gather(*waits, return_exceptions=True)

    asyncio.run(body())


def test_a_commit_in_the_same_process_wakes_its_waiter_without_the_poller(database: str) -> None:
    async def body() -> None:
        store = SqlStore.open(database, poll_interval=FOREVER)  # the poller never runs a round
        try:
            (session,) = await sessions(store, 1)
            wait = asyncio.ensure_future(
                store.wait_for_events(WS, session.id, after=-1, timeout=FOREVER)
            )
            await asyncio.sleep(0.2)
            await store.commit_turn(WS, turn(session, events=[message("now")]))
            # returned long before its timeout and before the poller's first round
            events = await asyncio.wait_for(wait, 5.0)
            assert [e.content["text"] for e in events] == ["now"]
        finally:
            await store.close()

    asyncio.run(body())


def test_a_commit_of_another_store_on_the_file_wakes_a_waiter(database: str) -> None:
    async def body() -> None:
        waiting = SqlStore.open(database, poll_interval=0.1)
        writing = SqlStore.open(database)  # its commits reach `waiting` only through the file
        try:
            (session,) = await sessions(waiting, 1)
            wait = asyncio.ensure_future(
                waiting.wait_for_events(WS, session.id, after=-1, timeout=FOREVER)
            )
            await asyncio.sleep(0.2)
            await writing.commit_turn(WS, turn(session, events=[message("across")]))
            events = await asyncio.wait_for(wait, 5.0)
            assert [e.content["text"] for e in events] == ["across"]
        finally:
            await writing.close()
            await waiting.close()

    asyncio.run(body())


COMMIT_FROM_ANOTHER_PROCESS = textwrap.dedent(
    """
    import asyncio, sys
    from uuid import UUID
    from parlant_runtime.storage.sql.store import SqlStore
    from tests.storage.support import WS, message, turn

    async def main():
        store = SqlStore.open(sys.argv[1])
        session = await store.get_session(WS, UUID(sys.argv[2]))
        await store.commit_turn(WS, turn(session, events=[message("from afar")]))
        await store.close()

    asyncio.run(main())
    """
)


@pytest.mark.subprocess
def test_a_commit_in_another_process_wakes_a_waiter(database: str) -> None:
    async def body() -> None:
        store = SqlStore.open(database, poll_interval=0.1)
        try:
            (session,) = await sessions(store, 1)
            wait = asyncio.ensure_future(
                store.wait_for_events(WS, session.id, after=-1, timeout=FOREVER)
            )
            root = Path(__file__).resolve().parents[2]
            command = [sys.executable, "-c", COMMIT_FROM_ANOTHER_PROCESS]
            command += [database, str(session.id)]
            done = await asyncio.to_thread(
                subprocess.run, command, cwd=root, capture_output=True, text=True, timeout=60
            )
            assert done.returncode == 0, done.stderr
            events = await asyncio.wait_for(wait, 5.0)
            assert [e.content["text"] for e in events] == ["from afar"]
        finally:
            await store.close()

    asyncio.run(body())
