"""Turn cost against session length: a turn of a long session beside one of a new session.

Run: ``.venv/bin/python benchmarks/bench_session_length.py`` (``--quick`` for shorter
sessions, ``--json`` for JSON). No PostgreSQL: the memory store and a SQLite file in a
temporary folder.

One store per adapter, one agent (the strict four-state ring of ``persisted_turn``).
One session grows, by commits of 100 events, to each length in turn (1,000 to 100,000
events; ``--quick``: to 10,000); at each length the same operations run on it and on
a session started just then in the same store, alternating blocks, so that the
reference (the new session) sees the same heap, the same files and the same machine:

- ``process_message``: a whole persisted turn through ``Runtime`` (client CPU per turn);
- ``read_turn``: the session, its agent's version and its variables, with a key;
- ``list_events, first page``: the first 20 events (``limit=20``);
- ``list_events, last page``: the events after the last 20;
- ``find_message``: the message recorded with the session's first idempotency key.

The ratio is long / new: flat in session length means about 1 at every length. It
found the memory store's ``list_events`` with a ``limit`` slicing the rest of the log
before applying the limit: the first page of a 100,000-event session cost 5.6 times
that of a new one (0.31 against 0.05 ms; now 1.0x).

Then idempotency keys, on the SQL stores: two sessions of the same length in one
store, every customer message of one carrying a key and none of the other's, and
both pages of ``list_events`` on each, alternating blocks. The ratio is keyed /
unkeyed, wall time per call (on PostgreSQL the join runs in the server, which the
client's CPU does not see): about 1 when a page's cost does not depend on the keys.
It found the listing's join to ``event_key`` scanning every key of the session for
each listed event (SQLite) or sorting them all (PostgreSQL): at 100,000 events a
keyed page cost 476x an unkeyed one on SQLite (1.2 s) and 75x on PostgreSQL (0.7 s);
with migration 0007's index and a subquery per event, 0.98x and 1.0x (docs/storage.md
has the table). ``--at 0006_runtime_session_variables`` measures a database without
the index.

Options: ``--keys-only`` runs only the keys comparison, ``--postgres`` adds a
PostgreSQL database to it (``$PARLANT_BENCH_POSTGRES_URL``, else
``$PARLANT_TEST_POSTGRES_URL``, else the local server; a throwaway database),
``--at REV`` migrates the SQL databases to that revision instead of the newest.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from uuid import UUID

from _setup import commit_next, message  # a sibling script module
from bench_storage import admin_url, throwaway_postgres  # a sibling script module
from persisted_turn import ring_agent  # a sibling script module

from parlant_runtime import Runtime
from parlant_runtime.bundle.schema import AgentBundle
from parlant_runtime.storage.memory import MemoryStore
from parlant_runtime.storage.migrate import downgrade, upgrade
from parlant_runtime.storage.port import Store
from parlant_runtime.storage.sql.store import SqlStore

WS = "bench-length"
GROWTH = 100  # events per commit while a session grows
FULL = (1_000, 10_000, 100_000)
QUICK = (1_000, 10_000)
BLOCK = 50  # calls per block
BLOCKS = 6


async def grow(store: Store, session_id: UUID, events: int, *, keyed: bool = True) -> None:
    """Commit events to the session until it holds at least ``events`` (customer
    messages, each with an idempotency key unless ``keyed`` is false)."""
    session = await store.get_session(WS, session_id)
    while session.event_count < events:
        first = session.event_count
        session = await commit_next(
            store,
            WS,
            session_id,
            [
                message(f"message {first + i}", f"key-{first + i}" if keyed else None)
                for i in range(GROWTH)
            ],
            current_journey_id=session.current_journey_id,
            current_state_id=session.current_state_id,
        )


Call = Callable[[], Awaitable[object]]


def operations(store: Store, runtime: Runtime, session_id: UUID, count: int) -> dict[str, Call]:
    key = "key-0" if count >= GROWTH else None
    tail = max(count - 21, -1)

    async def turn() -> object:
        return await runtime.process_message(WS, session_id, "hello")

    async def read() -> object:
        return await store.read_turn(WS, session_id, idempotency_key=key or "none")

    async def first_page() -> object:
        return await store.list_events(WS, session_id, limit=20)

    async def last_page() -> object:
        return await store.list_events(WS, session_id, after=tail, limit=20)

    async def find() -> object:
        return await store.find_message(WS, session_id, key or "none")

    return {
        "process_message": turn,
        "read_turn": read,
        "list_events, first page": first_page,
        "list_events, last page": last_page,
        "find_message": find,
    }


async def cpu_per_call(call: Call) -> float:
    began = time.process_time()
    for _ in range(BLOCK):
        await call()
    return (time.process_time() - began) / BLOCK


async def alternating(
    sides: tuple[str, str],
    call_of: Callable[[str], Awaitable[Call]],
    per_call: Callable[[Call], Awaitable[float]],
) -> dict[str, float]:
    """Milliseconds per call on each side (the median of its blocks), the two sides
    measured in alternating blocks, each going first every other block."""
    samples: dict[str, list[float]] = {side: [] for side in sides}
    for block in range(BLOCKS):
        for side in sides if block % 2 else sides[::-1]:
            samples[side].append(await per_call(await call_of(side)))
    return {side: statistics.median(found) * 1e3 for side, found in samples.items()}


async def measure(store: Store, lengths: tuple[int, ...]) -> dict[str, Any]:
    await store.ensure_workspace(WS)
    agent_id = (await store.publish(WS, AgentBundle.model_validate(ring_agent()))).agent_id
    runtime = Runtime(store)
    long = (await runtime.start_session(WS, agent_id)).id
    found: dict[str, Any] = {}
    for length in lengths:
        await grow(store, long, length)
        new = (await runtime.start_session(WS, agent_id)).id
        await grow(store, new, GROWTH)  # a key to find, a page to list
        for name in operations(store, runtime, long, length):

            async def call_of(side: str, name: str = name, new: UUID = new) -> Call:
                session_id = long if side == "long" else new
                count = (await store.get_session(WS, session_id)).event_count  # turns add
                return operations(store, runtime, session_id, count)[name]

            ms = await alternating(("long", "new"), call_of, cpu_per_call)
            found.setdefault(name, {})[str(length)] = {
                "long_ms": ms["long"],
                "new_ms": ms["new"],
                "ratio": ms["long"] / ms["new"],
            }
    return found


KEY_BLOCK = 10  # calls per block of the keys comparison (a keyed page was 100 ms)


def pages(store: Store, session_id: UUID, count: int) -> dict[str, Call]:
    async def first_page() -> object:
        return await store.list_events(WS, session_id, limit=20)

    async def last_page() -> object:
        return await store.list_events(WS, session_id, after=count - 21, limit=20)

    return {"list_events, first page": first_page, "list_events, last page": last_page}


async def wall_per_call(call: Call) -> float:
    began = time.perf_counter()
    for _ in range(KEY_BLOCK):
        await call()
    return (time.perf_counter() - began) / KEY_BLOCK


async def measure_keys(store: Store, lengths: tuple[int, ...]) -> dict[str, Any]:
    """``list_events`` on a session whose messages carry keys / on one whose do not."""
    await store.ensure_workspace(WS)
    agent_id = (await store.publish(WS, AgentBundle.model_validate(ring_agent()))).agent_id
    runtime = Runtime(store)
    sessions = {
        "keyed": (await runtime.start_session(WS, agent_id)).id,
        "unkeyed": (await runtime.start_session(WS, agent_id)).id,
    }
    found: dict[str, Any] = {}
    for length in lengths:
        for which, session_id in sessions.items():
            await grow(store, session_id, length, keyed=which == "keyed")
        counts = {w: (await store.get_session(WS, s)).event_count for w, s in sessions.items()}
        for name in pages(store, sessions["keyed"], counts["keyed"]):

            async def call_of(side: str, name: str = name, at: dict[str, int] = counts) -> Call:
                return pages(store, sessions[side], at[side])[name]

            ms = await alternating(("keyed", "unkeyed"), call_of, wall_per_call)
            found.setdefault(name, {})[str(length)] = {
                "keyed_ms": ms["keyed"],
                "unkeyed_ms": ms["unkeyed"],
                "ratio": ms["keyed"] / ms["unkeyed"],
            }
    return found


async def on_sql(url: str, at: str | None, work: Callable[[Store], Awaitable[Any]]) -> Any:
    """``work`` on a store of the database at ``url``, at the newest revision or ``at``."""
    await upgrade(url)
    if at is not None:
        await downgrade(url, at)
    store = SqlStore.open(url)
    try:
        return await work(store)
    finally:
        await store.close()


async def run(
    lengths: tuple[int, ...], *, keys_only: bool, postgres: bool, at: str | None
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    keys: dict[str, Any] = {}
    if not keys_only:
        results["memory"] = await measure(MemoryStore(), lengths)
    with tempfile.TemporaryDirectory(prefix="parlant-bench-") as folder:
        url = f"sqlite:///{Path(folder) / 'length.db'}"
        if not keys_only:
            results["sqlite"] = await on_sql(url, at, lambda store: measure(store, lengths))
        url = f"sqlite:///{Path(folder) / 'keys.db'}"
        keys["sqlite"] = await on_sql(url, at, lambda store: measure_keys(store, lengths))
    if postgres:
        async with throwaway_postgres(admin_url()) as url:
            keys["postgresql"] = await on_sql(url, at, lambda store: measure_keys(store, lengths))
    return {"long_against_new": results, "keyed_against_unkeyed": keys}


def print_table(results: dict[str, Any], lengths: tuple[int, ...]) -> None:
    tables = (
        (
            "long_against_new",
            "long_ms",
            "turn cost against session length: client CPU per call on a long session / on "
            "a new one (same store, same run); flat = about 1.0",
        ),
        (
            "keyed_against_unkeyed",
            "keyed_ms",
            "list_events with idempotency keys: wall time per call on a session whose "
            "messages carry keys / on one of the same length whose do not (same store, "
            "same run); about 1.0 = keys cost nothing",
        ),
    )
    for part, shown, title in tables:
        if not results[part]:
            continue
        print(title)
        for adapter, found in results[part].items():
            print(f"\n{adapter}")
            print(f"  {'':26}" + "".join(f"{f'{n:,} events':>22}" for n in lengths))
            for name, by_length in found.items():
                cells = "".join(
                    f"{by_length[str(n)][shown]:>9.3f} ms {by_length[str(n)]['ratio']:>6.2f}x"
                    for n in lengths
                )
                print(f"  {name:26}{cells}")
        print()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="sessions up to 10,000 events")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument(
        "--keys-only", action="store_true", help="only list_events with keys against without"
    )
    parser.add_argument(
        "--postgres", action="store_true", help="the keys comparison on PostgreSQL too"
    )
    parser.add_argument("--at", metavar="REV", help="the schema revision (default: the newest)")
    args = parser.parse_args()
    lengths = QUICK if args.quick else FULL
    results = asyncio.run(
        run(lengths, keys_only=args.keys_only, postgres=args.postgres, at=args.at)
    )
    if args.json:
        json.dump(results, sys.stdout, indent=2)
        print()
    else:
        print_table(results, lengths)


if __name__ == "__main__":
    main()
