"""Open event streams on SQLite: what waiting costs the database and the other answers.

Run: ``.venv/bin/python benchmarks/bench_streams.py`` (``--waiters N``, default 800;
``--seconds S`` per measurement, default 3). About half a minute.

A stream of the web example is a :meth:`SqlStore.wait_for_events` call that waits
(a keep-alive timeout of 15 s); on SQLite, commits of other processes send no
notification. Measured in one run, on one SQLite file in a temporary folder:

- the statements the store sends per second while N sessions wait and nothing
  happens (an SQLAlchemy event listener counts them), for N = 0 (the reference),
  1 and ``--waiters``;
- the latency of ``Runtime.process_message`` on another session (turns one after
  another; median and p95) with no waiter (the reference) and with ``--waiters``.

Waiters that polled each (every 50 ms) sent about 40 statements per waiter and
second; the one poller per store sends two per round (SQLite's BEGIN and one
SELECT), whatever the number of waiters.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from parlant_runtime import Runtime, load_bundle
from parlant_runtime.storage import migrate
from parlant_runtime.storage.port import SessionStart
from parlant_runtime.storage.sql.store import SqlStore

ROOT = Path(__file__).resolve().parent.parent
WS = "bench"


class Counter:
    def __init__(self, store: SqlStore) -> None:
        self.count = 0
        self.engines = {store.engine.sync_engine, store._writer.sync_engine}
        for engine in self.engines:
            sa.event.listen(engine, "before_cursor_execute", self.seen)

    def seen(self, *args: Any) -> None:
        self.count += 1

    def stop(self) -> None:
        for engine in self.engines:
            sa.event.remove(engine, "before_cursor_execute", self.seen)


async def idle_statements(store: SqlStore, seconds: float, waiters: int) -> float:
    # until the waiters' first reads are over (two statements each): the rate settles
    for _ in range(60):
        counter = Counter(store)
        await asyncio.sleep(0.5)
        counter.stop()
        if counter.count < 40:
            break
    counter = Counter(store)
    await asyncio.sleep(seconds)
    counter.stop()
    return counter.count / seconds


async def turn_latencies(runtime: Runtime, agent: Any, seconds: float) -> list[float]:
    session = await runtime.start_session(WS, agent)
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        await runtime.process_message(WS, session.id, "I'd like to book an appointment")
        latencies.append(time.perf_counter() - started)
    return latencies


async def measure(url: str, waiters: int, seconds: float) -> dict[str, float]:
    store = SqlStore.open(url)
    runtime = Runtime(store)
    try:
        await store.ensure_workspace(WS)
        agent = (await store.publish(WS, load_bundle(ROOT / "examples" / "minimal.yaml"))).agent_id
        opened = [
            await store.create_session(WS, SessionStart(agent_id=agent)) for _ in range(waiters)
        ]
        waits = [
            asyncio.ensure_future(store.wait_for_events(WS, s.id, after=-1, timeout=600))
            for s in opened
        ]
        per_second = await idle_statements(store, seconds, waiters)
        latencies = await turn_latencies(runtime, agent, seconds)
    finally:
        await store.close()
    await asyncio.gather(*waits, return_exceptions=True)
    ordered = sorted(latencies)
    return {
        "statements_per_second": per_second,
        "turn_median_ms": statistics.median(ordered) * 1000,
        "turn_p95_ms": ordered[int(len(ordered) * 0.95)] * 1000,
        "turns": len(ordered),
    }


async def main(waiters: int, seconds: float) -> None:
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/bench.db"
        await migrate.upgrade(url)
        print(f"{'waiting sessions':>18} {'statements/s idle':>18} {'turn median':>12} {'p95':>8}")
        for count in (0, 1, waiters):
            result = await measure(url, count, seconds)
            print(
                f"{count:>18} {result['statements_per_second']:>18.1f} "
                f"{result['turn_median_ms']:>10.1f}ms {result['turn_p95_ms']:>6.1f}ms"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--waiters", type=int, default=800)
    parser.add_argument("--seconds", type=float, default=3.0)
    options = parser.parse_args()
    asyncio.run(main(options.waiters, options.seconds))
