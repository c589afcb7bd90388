"""Listing a session's events when its messages carry idempotency keys (``event_key``).

The listing finds each event's key by the session id and the offset; migration 0007
indexes ``event_key`` by exactly those, so that each event's key is one lookup rather
than a scan of every key of the session. What must not change: a session whose
messages carry keys lists the same events, in the same order and pages, as one whose
messages carry none, each keyed message with its own key. And on SQLite and
PostgreSQL the database's own plan of the store's statement looks the key up by the
index and both columns, on PostgreSQL even in a generic plan made without statistics
of the session's rows (where an outer join was planned as a scan of all its keys).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import asyncpg  # type: ignore[import-untyped]  # no stubs, no py.typed
import pytest
import sqlalchemy as sa

from parlant_runtime.model import EventType
from parlant_runtime.storage.port import NewEvent, SessionStart, Store
from parlant_runtime.storage.sql.store import SqlStore
from tests.storage.conftest import BACKENDS
from tests.storage.support import WS, Run, message, setup_agent, turn

COMMITS = 12
PER_COMMIT = 25
INDEX = "event_key_session_id_offset_idx"


def _events(commit: int, *, keyed: bool, size: int = PER_COMMIT) -> list[NewEvent]:
    """A commit's events: customer messages (keyed ones with keys that sort against
    their offsets, so that the key's order is not the log's) between agent replies."""
    events = []
    for i in range(size):
        n = commit * size + i
        if i % 3 == 2:
            events.append(NewEvent(event_type=EventType.AGENT_MESSAGE, content={"text": f"r{n}"}))
        else:
            key = f"key-{COMMITS * PER_COMMIT - n:05d}" if keyed and n % 2 == 0 else None
            events.append(message(f"m{n}", key))
    return events


async def _session(
    store: Store, agent: UUID, *, keyed: bool, commits: int = COMMITS, size: int = PER_COMMIT
) -> UUID:
    session = await store.create_session(WS, SessionStart(agent_id=agent))
    for commit in range(commits):
        events = _events(commit, keyed=keyed, size=size)
        session = await store.commit_turn(WS, turn(session, events=events))
    return session.id


def _seen(events: Any) -> list[tuple[int, str, Any]]:
    return [(e.offset, e.event_type.value, e.content["text"]) for e in events]


def test_keyed_messages_list_the_same_events_in_the_same_order_as_unkeyed(
    store: Store, run: Run
) -> None:
    async def body() -> None:
        agent = await setup_agent(store)
        keyed = await _session(store, agent, keyed=True)
        plain = await _session(store, agent, keyed=False)
        total = COMMITS * PER_COMMIT
        every_keyed = await store.list_events(WS, keyed)
        every_plain = await store.list_events(WS, plain)
        assert [e.offset for e in every_keyed] == list(range(total))
        assert _seen(every_keyed) == _seen(every_plain)
        expected = {
            e.offset: f"key-{total - e.offset:05d}"
            for e in every_keyed
            if e.event_type is EventType.CUSTOMER_MESSAGE and e.offset % 2 == 0
        }
        assert {e.offset: e.idempotency_key for e in every_keyed if e.idempotency_key} == expected
        assert all(e.idempotency_key is None for e in every_plain)
        for after, limit in ((-1, 20), (137, 20), (total - 21, 20), (total - 3, 20), (50, 0)):
            page = await store.list_events(WS, keyed, after=after, limit=limit)
            assert _seen(page) == _seen(
                await store.list_events(WS, plain, after=after, limit=limit)
            )
            assert page == every_keyed[after + 1 : after + 1 + limit]
        assert await store.find_message(WS, keyed, f"key-{total - 40:05d}") == every_keyed[40]

    run(body())


@pytest.fixture(
    params=[b for b in BACKENDS if getattr(b, "values", (b,))[0] in ("sqlite", "postgresql")]
)
def backend(request: pytest.FixtureRequest) -> str:
    """SQLite and one PostgreSQL: plans read with their own EXPLAIN."""
    name: str = request.param
    return name


class _Listing:
    """The statement the store sends to list a session's events, caught on its way."""

    def __init__(self) -> None:
        self.statement: str | None = None
        self.parameters: Any = None

    def __call__(self, conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "event_key" in statement and "ORDER BY" in statement:
            self.statement, self.parameters = statement, parameters


@pytest.fixture
def listing() -> Iterator[_Listing]:
    caught = _Listing()
    sa.event.listen(sa.Engine, "before_cursor_execute", caught)
    yield caught
    sa.event.remove(sa.Engine, "before_cursor_execute", caught)


def _literal(value: Any) -> str:
    if isinstance(value, int):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


async def _plan(url: str, statement: str, parameters: Any) -> str:
    if url.startswith("sqlite"):
        with sqlite3.connect(sa.make_url(url).database or "") as connection:
            rows = connection.execute(f"EXPLAIN QUERY PLAN {statement}", parameters).fetchall()
        return "\n".join(str(row[-1]) for row in rows)
    raw = sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    connection = await asyncpg.connect(raw, statement_cache_size=0)
    try:
        # the worst case: a plan for any session (as a prepared statement gets after five
        # runs), from statistics taken before the session's events were written
        await connection.execute("SET plan_cache_mode = force_generic_plan")
        await connection.execute(f"PREPARE listing AS {statement}")
        arguments = ", ".join(_literal(value) for value in parameters)
        rows = await connection.fetch(f"EXPLAIN EXECUTE listing({arguments})")
        return "\n".join(row[0] for row in rows)
    finally:
        await connection.close()


def test_the_listing_looks_each_events_key_up_by_the_index(
    store: Store, run: Run, listing: _Listing
) -> None:
    assert isinstance(store, SqlStore)
    url = store.url

    async def body() -> str:
        agent = await setup_agent(store)
        # enough keys that a plan scanning them all costs more than looking one up
        session = await _session(store, agent, keyed=True, commits=50, size=200)
        await store.list_events(WS, session, after=100, limit=20)
        assert listing.statement is not None
        return await _plan(url, listing.statement, listing.parameters)

    plan = run(body())
    lines = plan.splitlines()
    # SQLite: "SEARCH event_key USING INDEX i (session_id=? AND offset=?)"; PostgreSQL:
    # "Index Scan using i on event_key", its condition on the next line
    at = [
        i
        for i, line in enumerate(lines)
        if re.search(r"(SEARCH|SCAN|on) (main\.)?event_key\b", line)
    ]
    assert len(at) == 1, plan
    step = " ".join(lines[at[0] : at[0] + 2])
    assert INDEX in step, plan
    assert re.search(r'offset"? ?= ?(\?|parlant_event\."offset")', step), plan
