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

from persisted_turn import ring_agent  # a sibling script module

from parlant_runtime import Runtime
from parlant_runtime.bundle.schema import AgentBundle
from parlant_runtime.model import EventType
from parlant_runtime.storage.memory import MemoryStore
from parlant_runtime.storage.migrate import upgrade
from parlant_runtime.storage.port import NewEvent, Store, TurnCommit
from parlant_runtime.storage.sql.store import SqlStore

WS = "bench-length"
GROWTH = 100  # events per commit while a session grows
FULL = (1_000, 10_000, 100_000)
QUICK = (1_000, 10_000)
BLOCK = 50  # calls per block
BLOCKS = 6


async def grow(store: Store, session_id: UUID, events: int) -> None:
    """Commit events to the session until it holds at least ``events``."""
    session = await store.get_session(WS, session_id)
    while session.event_count < events:
        first = session.event_count
        session = await store.commit_turn(
            WS,
            TurnCommit(
                session_id=session_id,
                expected_version=session.version,
                events=[
                    NewEvent(
                        event_type=EventType.CUSTOMER_MESSAGE,
                        content={"text": f"message {first + i}"},
                        idempotency_key=f"key-{first + i}",
                    )
                    for i in range(GROWTH)
                ],
                current_journey_id=session.current_journey_id,
                current_state_id=session.current_state_id,
            ),
        )


def operations(
    store: Store, runtime: Runtime, session_id: UUID, count: int
) -> dict[str, Callable[[], Awaitable[object]]]:
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


async def cpu_per_call(call: Callable[[], Awaitable[object]]) -> float:
    began = time.process_time()
    for _ in range(BLOCK):
        await call()
    return (time.process_time() - began) / BLOCK


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
            samples: dict[str, list[float]] = {"long": [], "new": []}
            for block in range(BLOCKS):
                for which in ("long", "new") if block % 2 else ("new", "long"):
                    session_id = long if which == "long" else new
                    count = (await store.get_session(WS, session_id)).event_count
                    call = operations(store, runtime, session_id, count)[name]
                    samples[which].append(await cpu_per_call(call))
            long_ms = statistics.median(samples["long"]) * 1e3
            new_ms = statistics.median(samples["new"]) * 1e3
            found.setdefault(name, {})[str(length)] = {
                "long_ms": long_ms,
                "new_ms": new_ms,
                "ratio": long_ms / new_ms,
            }
    return found


async def run(lengths: tuple[int, ...]) -> dict[str, Any]:
    results = {"memory": await measure(MemoryStore(), lengths)}
    with tempfile.TemporaryDirectory(prefix="parlant-bench-") as folder:
        url = f"sqlite:///{Path(folder) / 'length.db'}"
        await upgrade(url)
        store = SqlStore.open(url)
        try:
            results["sqlite"] = await measure(store, lengths)
        finally:
            await store.close()
    return results


def print_table(results: dict[str, Any], lengths: tuple[int, ...]) -> None:
    print(
        "turn cost against session length: client CPU per call on a long session / on a "
        "new one (same store, same run); flat = about 1.0"
    )
    for adapter, found in results.items():
        print(f"\n{adapter}")
        print(f"  {'':26}" + "".join(f"{f'{n:,} events':>22}" for n in lengths))
        for name, by_length in found.items():
            cells = "".join(
                f"{by_length[str(n)]['long_ms']:>9.3f} ms {by_length[str(n)]['ratio']:>6.2f}x"
                for n in lengths
            )
            print(f"  {name:26}{cells}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="sessions up to 10,000 events")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    lengths = QUICK if args.quick else FULL
    results = asyncio.run(run(lengths))
    if args.json:
        json.dump(results, sys.stdout, indent=2)
        print()
    else:
        print_table(results, lengths)


if __name__ == "__main__":
    main()
