"""A warm agent load beside its own statements run on the raw driver, in one run.

Run: ``.venv/bin/python benchmarks/bench_agent_load.py`` (``--runs N`` rounds,
``--json`` for JSON, ``--sqlite-only`` to skip PostgreSQL). PostgreSQL comes from
``$PARLANT_BENCH_POSTGRES_URL``, else ``$PARLANT_TEST_POSTGRES_URL``, else
``postgresql://postgres@127.0.0.1:5432/postgres`` (a throwaway database
``parlant_bench_<random>``, dropped at the end); SQLite is a file in a temporary
folder.

The agent is ``bench_storage``'s: 10 journeys x 50 states (about 100 transitions
each, 2 guideline links each) and 100 guidelines, published once. Measured on each
database, in rounds that alternate the two so that drift in the machine hits both:

- ``store``: :meth:`SqlStore.load_agent` on a warm store (the same store again: its
  connections are open and its statements compiled and prepared);
- ``raw``: the statements that very load ran (captured from the store with their
  parameters, as the driver got them) on a warm raw connection, in one read
  transaction as the store runs them (one snapshot: ``REPEATABLE READ READ ONLY`` on
  PostgreSQL, ``BEGIN`` ... ``COMMIT`` on SQLite): ``asyncpg`` with the store's JSON
  codecs; the standard library's ``sqlite3``, decoding the JSON columns as the store
  must. Rows fetched, nothing built from them.

Each is timed as wall time and as this process's CPU time (which holds better when
the machine is busy); the figures are medians of the rounds and the ratios store /
raw. The aim (issue 11): a warm load within 2x of its statements run raw.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg  # type: ignore[import-untyped]  # no stubs, no py.typed
import sqlalchemy as sa
from bench_storage import (  # a sibling script module
    GUIDELINES,
    JOURNEYS,
    STATES,
    WS,
    _dsn,
    _json_codecs,
    admin_url,
    agent_data,
    captured_load,
    throwaway_postgres,
)

from parlant_runtime.bundle.schema import AgentBundle
from parlant_runtime.storage.migrate import upgrade
from parlant_runtime.storage.sql.store import SqlStore

Replay = Callable[[], Awaitable[None]]


async def _timed(action: Callable[[], Awaitable[object]]) -> tuple[float, float]:
    """Wall and CPU seconds of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    await action()
    return time.perf_counter() - wall, time.process_time() - cpu


async def measure(
    url: str, raw: Callable[[list[tuple[str, Any]]], Any], runs: int
) -> dict[str, Any]:
    """Publish the agent, then ``runs`` rounds of a warm load and its raw replay."""
    store = SqlStore.open(url)
    try:
        await store.ensure_workspace(WS)
        agent_id: UUID = (
            await store.publish(WS, AgentBundle.model_validate(agent_data()))
        ).agent_id
        loaded = await store.load_agent(WS, agent_id)
        assert len(loaded.bundle.journeys) == JOURNEYS
        assert sum(len(j.states) for j in loaded.bundle.journeys) == JOURNEYS * STATES
        assert len(loaded.bundle.guidelines) == GUIDELINES
        statements = await captured_load(store, agent_id)
        rows = 0
        async with raw(statements) as replay:
            rows = await replay()  # warm: prepared, cached
            for _ in range(3):
                await store.load_agent(WS, agent_id)
            samples: dict[str, list[float]] = {
                "store_ms": [], "raw_ms": [], "store_cpu_ms": [], "raw_cpu_ms": []
            }  # fmt: skip
            for _ in range(runs):
                wall, cpu = await _timed(lambda: store.load_agent(WS, agent_id))
                samples["store_ms"].append(wall * 1e3)
                samples["store_cpu_ms"].append(cpu * 1e3)
                wall, cpu = await _timed(replay)
                samples["raw_ms"].append(wall * 1e3)
                samples["raw_cpu_ms"].append(cpu * 1e3)
    finally:
        await store.close()
    found = {name: statistics.median(values) for name, values in samples.items()}
    return {
        "statements": len(statements),
        "rows": rows,
        **found,
        "ratio": found["store_ms"] / found["raw_ms"],
        "cpu_ratio": found["store_cpu_ms"] / found["raw_cpu_ms"],
    }


class _PostgresReplay:
    def __init__(self, url: str, statements: list[tuple[str, Any]]) -> None:
        self.url, self.statements = url, statements

    async def __aenter__(self) -> Callable[[], Awaitable[int]]:
        self.connection = await asyncpg.connect(_dsn(sa.make_url(self.url)))
        await _json_codecs(self.connection)

        async def replay() -> int:
            rows = 0
            async with self.connection.transaction(isolation="repeatable_read", readonly=True):
                for statement, parameters in self.statements:
                    rows += len(await self.connection.fetch(statement, *parameters))
            return rows

        return replay

    async def __aexit__(self, *exc: object) -> None:
        await self.connection.close()


class _SqliteReplay:
    def __init__(self, path: str, statements: list[tuple[str, Any]]) -> None:
        self.path, self.statements = path, statements

    async def __aenter__(self) -> Callable[[], Awaitable[int]]:
        self.connection = sqlite3.connect(self.path, isolation_level=None)

        async def replay() -> int:
            rows = 0
            self.connection.execute("BEGIN")
            for statement, parameters in self.statements:
                fetched = self.connection.execute(statement, parameters).fetchall()
                rows += len(fetched)
                for row in fetched:  # the JSON columns, decoded as the store must
                    for value in row:
                        if isinstance(value, str) and value[:1] in "[{":
                            json.loads(value)
            self.connection.execute("COMMIT")
            return rows

        return replay

    async def __aexit__(self, *exc: object) -> None:
        self.connection.close()


async def run(runs: int, postgres: bool) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="parlant-bench-") as folder:
        path = Path(folder) / "load.db"
        url = f"sqlite+aiosqlite:///{path}"
        await upgrade(url)
        results["sqlite"] = await measure(url, lambda s: _SqliteReplay(str(path), s), runs)
    if postgres:
        async with throwaway_postgres(admin_url()) as url:
            results["postgresql"] = await measure(
                url,
                lambda s: _PostgresReplay(url, s),
                runs,
            )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--runs", type=int, default=30, help="rounds of store and raw loads")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--sqlite-only", action="store_true", help="skip PostgreSQL")
    args = parser.parse_args()
    try:
        results = asyncio.run(run(args.runs, postgres=not args.sqlite_only))
    except (OSError, asyncpg.PostgresError) as exc:
        sys.exit(f"bench_agent_load: PostgreSQL at {sa.make_url(admin_url())!r} is needed: {exc}")
    machine = (
        f"{platform.machine()}, {os.cpu_count()} cores, "
        f"{platform.python_implementation()} {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}, SQLAlchemy {sa.__version__}"
    )
    if args.json:
        print(json.dumps({"machine": machine, "runs": args.runs, **results}, indent=2))
        return
    print(
        f"warm load_agent: {JOURNEYS} journeys x {STATES} states, {GUIDELINES} guidelines "
        f"({machine}; median of {args.runs} rounds)"
    )
    header = ("", "statements", "rows", "store ms", "raw ms", "ratio", "store CPU", "raw CPU")
    print("{:<11} {:>10} {:>6} {:>9} {:>8} {:>6} {:>10} {:>8}  CPU ratio".format(*header))
    for name, row in results.items():
        print(
            f"{name:<11} {row['statements']:>10} {row['rows']:>6,} {row['store_ms']:>9.2f} "
            f"{row['raw_ms']:>8.2f} {row['ratio']:>5.1f}x {row['store_cpu_ms']:>10.2f} "
            f"{row['raw_cpu_ms']:>8.2f}  {row['cpu_ratio']:.1f}x"
        )
    print("aim: a warm load within 2x of its statements run raw")


if __name__ == "__main__":
    main()
