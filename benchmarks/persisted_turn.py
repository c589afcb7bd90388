"""A persisted turn through ``Runtime.process_message`` beside the raw-driver reference.

Part (t) of ``benchmarks/bench_storage.py``. The agent is strict (canned responses
only) with one journey of four chat states in a ring, so every turn writes the
customer's message, a transition and the reply (three events) and moves the session:
the same work as the reference of :mod:`raw_turn`. The runtime and the reference run
in the same process, alternating in blocks, on sessions of their own:

- latency: turns one after another on one session; median and p99;
- client CPU: this process's CPU time per turn (median of the blocks);
- throughput: 1 and 8 tasks, each on its own session, for a few seconds; turns/s.
"""

from __future__ import annotations

import asyncio
import statistics
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from raw_turn import (  # a sibling script module
    PostgresRawTurn,
    SqliteRawTurn,
    create_postgres,
    create_sqlite,
)
from timing import latency, p99, throughput  # a sibling script module

from parlant_runtime import Runtime
from parlant_runtime.bundle.schema import AgentBundle
from parlant_runtime.storage.migrate import upgrade
from parlant_runtime.storage.sql.store import SqlStore

__all__ = ["TurnSettings", "bench_persisted_turn", "ring_agent"]

WS = "bench-turn"
SESSIONS = (1, 8)

Turn = Callable[[Any, int], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class TurnSettings:
    turns: int
    block: int
    seconds: float


def ring_agent() -> dict[str, Any]:
    """A strict agent: one journey of four chat states in a ring, a canned response each."""
    names = ["greet", "ask", "check", "close"]
    return {
        "agent": {"name": "Ring agent", "compositionMode": "strict"},
        "cannedResponses": [
            {
                "name": f"say_{name}",
                "template": f"At {name}: how can I help?",
                "conditions": [f"{{{{ state.name == '{name}' }}}}"],
            }
            for name in names
        ],
        "journeys": [
            {
                "title": "Ring",
                "conditions": ["{{ true }}"],
                "states": [
                    {"name": name, "stateType": "chat", "isInitial": i == 0}
                    for i, name in enumerate(names)
                ],
                "transitions": [
                    {"from": name, "to": names[(i + 1) % len(names)]}
                    for i, name in enumerate(names)
                ],
            }
        ],
    }


async def _compare(
    runtime_turn: Turn,
    runtime_target: Callable[[], Awaitable[Any]],
    raw_turn: Turn,
    raw_target: Callable[[], Awaitable[Any]],
    settings: TurnSettings,
) -> dict[str, Any]:
    ours, theirs = await runtime_target(), await raw_target()
    cpu_ours: list[float] = []
    cpu_theirs: list[float] = []
    await latency(runtime_turn, ours, 30, 0, cpu_ours)  # warm-up: caches, connections
    await latency(raw_turn, theirs, 30, 0, cpu_theirs)
    cpu_ours.clear()
    cpu_theirs.clear()
    lat_ours: list[float] = []
    lat_theirs: list[float] = []
    for start in range(30, 30 + settings.turns, settings.block):
        lat_ours += await latency(runtime_turn, ours, settings.block, start, cpu_ours)
        lat_theirs += await latency(raw_turn, theirs, settings.block, start, cpu_theirs)
    result: dict[str, Any] = {
        "turns": len(lat_ours),
        "runtime_median_ms": statistics.median(lat_ours) * 1e3,
        "raw_median_ms": statistics.median(lat_theirs) * 1e3,
        "runtime_p99_ms": p99(lat_ours) * 1e3,
        "raw_p99_ms": p99(lat_theirs) * 1e3,
        "runtime_cpu_ms": statistics.median(cpu_ours) * 1e3,
        "raw_cpu_ms": statistics.median(cpu_theirs) * 1e3,
    }
    result["latency_ratio"] = result["runtime_median_ms"] / result["raw_median_ms"]
    result["cpu_ratio"] = result["runtime_cpu_ms"] / result["raw_cpu_ms"]
    for sessions in SESSIONS:
        ours_many = [await runtime_target() for _ in range(sessions)]
        theirs_many = [await raw_target() for _ in range(sessions)]
        await throughput(runtime_turn, ours_many, 0.3)
        await throughput(raw_turn, theirs_many, 0.3)
        rates_ours, rates_theirs = [], []
        for _ in range(2):
            rates_ours.append(await throughput(runtime_turn, ours_many, settings.seconds / 2))
            rates_theirs.append(await throughput(raw_turn, theirs_many, settings.seconds / 2))
        result[f"runtime_turns_per_s_{sessions}"] = statistics.mean(rates_ours)
        result[f"raw_turns_per_s_{sessions}"] = statistics.mean(rates_theirs)
        result[f"throughput_ratio_{sessions}"] = statistics.mean(rates_theirs) / statistics.mean(
            rates_ours
        )
    return result


async def _runtime_side(url: str) -> tuple[SqlStore, Runtime, Callable[[], Awaitable[Any]]]:
    store = SqlStore.open(url)
    await store.ensure_workspace(WS)
    report = await store.publish(WS, AgentBundle.model_validate(ring_agent()))
    runtime = Runtime(store)

    async def new_session() -> Any:
        return (await runtime.start_session(WS, report.agent_id)).id

    return store, runtime, new_session


async def bench_persisted_turn(
    postgres_url: str, postgres_dsn: str, sqlite_path: str, settings: TurnSettings
) -> dict[str, Any]:
    """(t): the runtime's persisted turn and the raw reference, on PostgreSQL and SQLite."""
    results: dict[str, Any] = {"sessions": SESSIONS, "seconds": settings.seconds}

    store, runtime, new_session = await _runtime_side(postgres_url)
    await create_postgres(postgres_dsn)
    raw = await PostgresRawTurn.open(postgres_dsn, max(SESSIONS))
    try:

        async def turn(session_id: Any, number: int) -> None:
            await runtime.process_message(WS, session_id, f"message {number}")

        async def raw_turn(session_id: Any, number: int) -> None:
            await raw.turn(session_id, number)

        results["postgresql"] = await _compare(
            turn, new_session, raw_turn, raw.new_session, settings
        )
    finally:
        await raw.close()
        await store.close()

    sqlite_url = f"sqlite+aiosqlite:///{sqlite_path}"
    await upgrade(sqlite_url)
    store, runtime, new_session = await _runtime_side(sqlite_url)
    create_sqlite(sqlite_path)
    lite = SqliteRawTurn(sqlite_path)
    try:

        async def sqlite_turn(session_id: Any, number: int) -> None:
            await runtime.process_message(WS, session_id, f"message {number}")

        async def sqlite_raw_turn(session_id: Any, number: int) -> None:
            lite.turn(session_id, number)
            await asyncio.sleep(0)  # let the other tasks in, as an async caller would

        async def sqlite_raw_session() -> Any:
            return lite.new_session()

        results["sqlite"] = await _compare(
            sqlite_turn, new_session, sqlite_raw_turn, sqlite_raw_session, settings
        )
    finally:
        lite.close()
        await store.close()
    return results


def print_persisted_turn(results: dict[str, Any]) -> None:
    print(
        "(t) a persisted turn: Runtime.process_message on a strict 4-state ring journey "
        "(3 events, a move), beside the raw driver doing SELECT session + 3 event INSERTs + "
        "CAS UPDATE in one transaction"
    )
    for database, reference in (("postgresql", "asyncpg"), ("sqlite", "sqlite3")):
        figures = results[database]
        print(f"  {database} ({figures['turns']:,} turns on one session for latency)")
        print(f"  {'':42} {'runtime':>9} {reference:>9} {'ratio':>7}")
        rows = [
            ("latency median, ms", "runtime_median_ms", "raw_median_ms", "latency_ratio"),
            ("latency p99, ms", "runtime_p99_ms", "raw_p99_ms", None),
            ("client CPU per turn, ms", "runtime_cpu_ms", "raw_cpu_ms", "cpu_ratio"),
        ]
        for sessions in results["sessions"]:
            rows.append(
                (
                    f"turns/s, {sessions} session(s)",
                    f"runtime_turns_per_s_{sessions}",
                    f"raw_turns_per_s_{sessions}",
                    f"throughput_ratio_{sessions}",
                )
            )
        for label, ours, theirs, ratio in rows:
            shown = f"{figures[ratio]:>6.2f}x" if ratio else ""
            print(f"  {label:42} {figures[ours]:>9,.2f} {figures[theirs]:>9,.2f} {shown}")
    print(
        "  aims: PostgreSQL latency <= 1.5x asyncpg, SQLite <= 3x sqlite3 "
        "(throughput ratios are raw / runtime)"
    )
