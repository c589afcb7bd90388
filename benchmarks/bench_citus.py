"""Turns on a Citus cluster against the same turns on one PostgreSQL server.

Run: ``.venv/bin/python benchmarks/bench_citus.py`` (``--quick`` for a smoke run,
``--json`` for JSON). It needs the single server (``$PARLANT_BENCH_POSTGRES_URL``, else
``postgresql://postgres@127.0.0.1:5432/postgres``) and a Citus coordinator
(``$PARLANT_BENCH_CITUS_URL``, else ``postgresql://postgres@127.0.0.1:9700/postgres``)
whose workers are registered in that database. It creates a throwaway database
``parlant_bench_<random>`` on the server and on every node of the cluster (with the
extension and the workers registered), upgrades both (the cluster's is laid out:
sessions and events sharded, definitions replicated) and drops them at the end.

A turn is what the runtime stores per message: the session read
(:meth:`SqlStore.get_session`), then :meth:`SqlStore.commit_turn` with two events (the
customer's message with an idempotency key, the agent's reply), a move to a state of a
journey and a usage delta. Three kinds of turn: that alone, that and a session
variable set, that and a customer variable set (the session has a customer). Measured
on each database, for each kind:

- latency: turns one after another on one session; median and p99 per turn;
- throughput: ``--tasks`` tasks (8), each on its own session, for a few seconds;
  turns/s;
- and the session read alone (median), what one more router query per turn costs
  (the price of keeping a customer's values anywhere but beside the session or on
  every node: a turn would read them in a statement of their own).

Blocks of the two alternate, and the kinds of turn alternate turn by turn (latency)
or block by block (throughput), so that drift in the machine hits all alike. The cluster's
three nodes share the machine's cores with the single server and the benchmark: on
one machine the cluster can only cost (each turn crosses one more connection, the
coordinator's to a worker, and a turn that writes a reference table commits on every
node); what it buys is room on more machines (see "Scaling out on Citus" in
docs/operations.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import statistics
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg  # type: ignore[import-untyped]  # no stubs, no py.typed
import sqlalchemy as sa
import timing  # a sibling script module
from _setup import commit_next, message  # a sibling script module

from parlant_runtime.bundle.schema import AgentBundle
from parlant_runtime.model import EventType, VariableScope
from parlant_runtime.storage import migrate
from parlant_runtime.storage.port import NewEvent, SessionStart, VariableChange
from parlant_runtime.storage.sql.store import SqlStore

WS = "bench"
KINDS = ("no variable", "session variable", "customer variable")
"""The turns measured: what each sets besides its events, state and usage."""
SINGLE = "postgresql://postgres@127.0.0.1:5432/postgres"
CITUS = "postgresql://postgres@127.0.0.1:9700/postgres"


@dataclass(frozen=True)
class Settings:
    rounds: int
    turns: int
    seconds: float
    tasks: int


def _dsn(url: sa.URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


async def _execute(url: sa.URL, *statements: str) -> list[Any]:
    connection = await asyncpg.connect(_dsn(url))
    try:
        return [await connection.fetch(statement) for statement in statements]
    finally:
        await connection.close()


@asynccontextmanager
async def throwaway(admin: str, *, citus: bool) -> AsyncIterator[str]:
    """A new database (on every node of a cluster), upgraded; dropped afterwards."""
    url = sa.make_url(admin)
    name = f"parlant_bench_{secrets.token_hex(5)}"
    nodes = [url]
    if citus:
        (workers,) = await _execute(
            url, "SELECT nodename, nodeport FROM pg_dist_node WHERE groupid <> 0"
        )
        nodes += [url.set(host=row[0], port=row[1]) for row in workers]
    for node in nodes:
        await _execute(node, f'CREATE DATABASE "{name}"')
        if citus:
            await _execute(node.set(database=name), "CREATE EXTENSION citus")
    here = url.set(database=name)
    if citus:
        await _execute(
            here,
            f"SELECT citus_set_coordinator_host('{url.host}', {url.port})",
            *(f"SELECT citus_add_node('{n.host}', {n.port})" for n in nodes[1:]),
        )
    try:
        target = here.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
        await migrate.upgrade(target, citus=citus)
        yield target
    finally:
        for node in nodes:
            await _execute(node, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def agent() -> AgentBundle:
    states = [f"s{i}" for i in range(6)]
    return AgentBundle.model_validate(
        {
            "agent": {"name": "Bench"},
            "guidelines": [{"name": "brief", "action": "be brief"}],
            "variables": [{"key": "day", "value": "monday"}],
            "journeys": [
                {
                    "title": "Book",
                    "states": [
                        *(
                            {"name": s, "stateType": "chat", "isInitial": i == 0}
                            for i, s in enumerate(states)
                        ),
                        {"name": "end", "stateType": "final"},
                    ],
                    "transitions": [
                        {"from": a, "to": b}
                        for a, b in zip(states, [*states[1:], "end"], strict=True)
                    ],
                }
            ],
        }
    )


@dataclass
class Target:
    store: SqlStore
    agent_id: UUID
    journey_id: UUID
    state_ids: list[UUID]
    guideline_id: UUID


async def prepare(url: str) -> Target:
    store = SqlStore.open(url, pool_size=10)
    await store.ensure_workspace(WS)
    report = await store.publish(WS, agent())
    bundle = (await store.load_agent(WS, report.agent_id)).bundle
    journey = bundle.journeys[0]
    return Target(
        store,
        report.agent_id,
        journey.id,
        [state.id for state in journey.states],
        bundle.guidelines[0].id,
    )


def _variables(kind: str, number: int) -> list[VariableChange]:
    if kind == "session variable":
        return [VariableChange(key="day", value=f"day {number}")]
    if kind == "customer variable":
        return [VariableChange(key="tier", value=f"tier {number}", scope=VariableScope.CUSTOMER)]
    return []


async def one_turn(target: Target, session_id: UUID, number: int, kind: str = KINDS[0]) -> None:
    await commit_next(
        target.store,
        WS,
        session_id,
        [
            message(f"message {number}", f"m-{number}"),
            NewEvent(event_type=EventType.AGENT_MESSAGE, content={"text": "noted"}),
        ],
        current_journey_id=target.journey_id,
        current_state_id=target.state_ids[number % len(target.state_ids)],
        usage={f"guideline:{target.guideline_id}:match_count": 1},
        variables=_variables(kind, number),
    )


async def new_session(target: Target) -> UUID:
    start = SessionStart(agent_id=target.agent_id, customer_id=f"c-{secrets.token_hex(4)}")
    return (await target.store.create_session(WS, start)).id


async def latency(target: Target, turns: int) -> dict[str, list[float]]:
    """Turns of every kind in turn, each kind on a session of its own: drift in the
    machine's load hits the kinds alike."""
    sessions = {kind: await new_session(target) for kind in KINDS}
    samples: dict[str, list[float]] = {kind: [] for kind in KINDS}
    for number in range(turns):
        for kind, session in sessions.items():
            started = time.perf_counter()
            await one_turn(target, session, number, kind)
            samples[kind].append(time.perf_counter() - started)
    return samples


async def throughput(target: Target, tasks: int, seconds: float, kind: str = KINDS[0]) -> float:
    sessions = [await new_session(target) for _ in range(tasks)]

    async def turn(session: UUID, number: int) -> None:
        await one_turn(target, session, number, kind)

    return await timing.throughput(turn, sessions, seconds)


async def reads(target: Target, count: int) -> list[float]:
    session = await new_session(target)
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        await target.store.get_session(WS, session)
        samples.append(time.perf_counter() - started)
    return samples


def p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


async def run(settings: Settings, single: str, citus: str) -> dict[str, dict[str, Any]]:
    """``{database: {kind: figures}}``."""
    async with throwaway(single, citus=False) as one, throwaway(citus, citus=True) as many:
        targets = {"single server": await prepare(one), "citus (3 nodes)": await prepare(many)}
        keys = [(name, kind) for name in targets for kind in KINDS]
        try:
            for target in targets.values():  # warm both: connections, compiled statements
                await latency(target, 5)
            samples: dict[tuple[str, str], list[float]] = {key: [] for key in keys}
            rates: dict[tuple[str, str], list[float]] = {key: [] for key in keys}
            read: dict[str, list[float]] = {name: [] for name in targets}
            for _ in range(settings.rounds):
                for name, target in targets.items():
                    read[name] += await reads(target, settings.turns)
                    for kind, found in (await latency(target, settings.turns)).items():
                        samples[name, kind] += found
                for kind in KINDS:
                    for name, target in targets.items():
                        rates[name, kind].append(
                            await throughput(target, settings.tasks, settings.seconds, kind)
                        )
        finally:
            for target in targets.values():
                await target.store.close()
    return {
        name: {
            **{
                kind: {
                    "median_ms": statistics.median(samples[name, kind]) * 1000,
                    "p99_ms": p99(samples[name, kind]) * 1000,
                    "turns_per_s": statistics.median(rates[name, kind]),
                    "turns": len(samples[name, kind]),
                }
                for kind in KINDS
            },
            "session read": {"median_ms": statistics.median(read[name]) * 1000},
        }
        for name in targets
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations (a smoke run)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--tasks", type=int, default=8, help="concurrent sessions (8)")
    options = parser.parse_args()
    settings = (
        Settings(rounds=1, turns=20, seconds=2.0, tasks=options.tasks)
        if options.quick
        else Settings(rounds=5, turns=60, seconds=3.0, tasks=options.tasks)
    )
    single = os.environ.get("PARLANT_BENCH_POSTGRES_URL", SINGLE)
    citus = os.environ.get("PARLANT_BENCH_CITUS_URL", CITUS)
    results = asyncio.run(run(settings, single, citus))
    if options.json:
        print(json.dumps(results, indent=2))
        return
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, load {load:.1f}")
    print(
        f"{'':18} {'turn sets':18} {'median ms':>10} {'p99 ms':>10} {'turns/s':>10}"
        f"  ({options.tasks} sessions)"
    )
    for name, kinds in results.items():
        for kind in KINDS:
            figures = kinds[kind]
            print(
                f"{name:18} {kind:18} {figures['median_ms']:10.2f} {figures['p99_ms']:10.2f} "
                f"{figures['turns_per_s']:10.0f}"
            )
    base, other = results["single server"], results["citus (3 nodes)"]
    for kind in KINDS:
        many, one = other[kind], base[kind]
        print(
            f"citus / single, {kind}: latency x{many['median_ms'] / one['median_ms']:.2f}"
            f" (median), x{many['p99_ms'] / one['p99_ms']:.2f} (p99); throughput "
            f"x{many['turns_per_s'] / one['turns_per_s']:.2f}"
        )
    for name, kinds in results.items():
        print(
            f"{name}: the session read alone {kinds['session read']['median_ms']:.2f} ms (median)"
        )
    for name, kinds in results.items():
        plain = kinds[KINDS[0]]
        for kind in KINDS[1:]:
            print(
                f"{name}, {kind} / no variable: latency "
                f"x{kinds[kind]['median_ms'] / plain['median_ms']:.2f} (median); throughput "
                f"x{kinds[kind]['turns_per_s'] / plain['turns_per_s']:.2f}"
            )


if __name__ == "__main__":
    main()
