"""Engine speed: a journey step, a full turn in process, a full persisted turn.

Run: ``.venv/bin/python benchmarks/bench_engine.py`` (``--quick`` for fewer
iterations, ``--json`` for JSON). Part (c) needs a PostgreSQL server whose user may
create databases (``$PARLANT_BENCH_POSTGRES_URL``, else ``$PARLANT_TEST_POSTGRES_URL``,
else ``postgresql://postgres@127.0.0.1:5432/postgres``): it creates a throwaway
database ``parlant_bench_<random>`` and drops it at the end. ``--no-postgres`` skips
it. The SQLite figures use a file in a temporary folder.

The agent: one journey of 50 states (49 chat states in a chain, then a final state);
every chat state has two exits, a natural-language "skip ahead" (priority 200, never
true here) and ``{{ message | length > 0 }}`` (priority 100); its activation condition
is ``{{ true }}``, so a session that reaches the final state starts over on its next
message and can run forever. Prompts read ``vars.name``.

(a) One journey step in process: the session waits on a chat state and a message
moves it one state on. Measured, in the same run:

- ``transitions``: the reference, a bare ``transitions.Machine`` of the same 50 states
  and 97 conditional transitions with one model bound: ``set_state`` then the trigger
  (the least a ``transitions``-based step does);
- ``JourneyMachine.move``: the engine's compiled machine recording the same move (the
  engine has chosen the transition; the machine fires it: ``docs/engine.md``);
- ``run_turn``: the whole turn computed (conditions, step, prompt, composition, events
  and trace), no storage;
- ``process_message``: the call a chat backend makes, on a :class:`MemoryStore` (load
  the session and variables, compute, commit, read the events back).

(b) A full turn in process with 100 guidelines whose conditions are expressions (about
half of them match) and 50 canned responses with expression conditions (strict
composition: tried in priority order until the first that holds and fills), on the
same journey: ``run_turn`` (the engine alone) and ``process_message`` on a
:class:`MemoryStore` (the engine and the store's copies). The reference is (a)'s
``run_turn`` of the bare journey, in the same run.

(c) A full persisted turn through ``Runtime.process_message`` on PostgreSQL and on
SQLite, for two agents (the bare journey of (a), and the agent of (b)): latency (turns
one after another on one session; median and p99) and throughput (8 tasks, each on
its own session, for a few seconds). The reference is the same on a
:class:`MemoryStore`.

Figures are medians (and p99) of single calls timed with ``perf_counter``. The machine
line names the CPU count and the load average: PostgreSQL shares the machine with the
benchmark, and on a busy machine every figure grows; (b) is also given as a multiple
of (a)'s ``transitions`` trigger, which grows with it (the 1 ms aim is about 100x of
the trigger's 10 us on this machine when it is quiet). The last lines say which aims
of issue 4 the run meets.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import sqlalchemy as sa
import transitions
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool
from transitions import Machine

from parlant_runtime import bundle_from_data
from parlant_runtime.engine import Runtime, ScriptedEvaluator, ToolRegistry
from parlant_runtime.engine.compose import DeterministicGenerator
from parlant_runtime.engine.turn import TurnInput, run_turn
from parlant_runtime.storage import MemoryStore
from parlant_runtime.storage.migrate import upgrade
from parlant_runtime.storage.port import Store
from parlant_runtime.storage.sql.store import SqlStore

WS = "bench"
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
STATES, GUIDELINES, CANNED = 50, 100, 50
CONCURRENT_SESSIONS = 8
WAIT_AT = 20
"""The chat state the in-process turns start from (any one in the middle will do)."""


@dataclass(frozen=True, slots=True)
class Settings:
    steps: int
    turns: int
    persisted: int
    seconds: float


FULL = Settings(steps=20_000, turns=3_000, persisted=1_000, seconds=5.0)
QUICK = Settings(steps=2_000, turns=300, persisted=200, seconds=1.5)


# ------------------------------------------------------------------ the agent


def agent_data(*, behaviour: bool) -> dict[str, Any]:
    """The journey of the module docstring; with ``behaviour``, 100 guidelines and 50
    canned responses (strict composition)."""
    names = [f"s{i}" for i in range(STATES)]
    states: list[dict[str, Any]] = [
        {
            "name": name,
            "stateType": "chat",
            "isInitial": i == 0,
            "chatPrompt": f"Step {i} for {{{{ vars.name }}}}: shall we go on?",
        }
        for i, name in enumerate(names[:-1])
    ]
    states.append({"name": names[-1], "stateType": "final"})
    transitions_: list[dict[str, Any]] = []
    for i in range(STATES - 1):
        if i + 2 < STATES:
            transitions_.append(
                {
                    "from": names[i],
                    "to": names[i + 2],
                    "condition": f"the customer wants to skip step {i + 1}",
                    "priority": 200,
                }
            )
        transitions_.append(
            {
                "from": names[i],
                "to": names[i + 1],
                "condition": "{{ message | length > 0 }}",
                "priority": 100,
            }
        )
    data: dict[str, Any] = {
        "agent": {
            "name": f"Benchmark agent ({'full' if behaviour else 'journey'})",
            "compositionMode": "strict" if behaviour else "fluid",
            "noMatchResponse": "Sorry, {{ vars.name }}.",
        },
        "variables": [
            {"key": "name", "value": "Ada"},
            {"key": "score", "valueType": "number", "value": 50},
            {"key": "tier", "value": "gold"},
        ],
        "journeys": [
            {
                "title": "Steps",
                "conditions": ["{{ true }}"],
                "states": states,
                "transitions": transitions_,
            }
        ],
    }
    if behaviour:
        data["guidelines"] = [
            {
                "name": f"g{i}",
                "condition": f"{{{{ vars.score > {i} and vars.tier == 'gold' }}}}",
                "action": f"Answer about subject {i} briefly.",
                "priority": 100 + i % 10,
            }
            for i in range(GUIDELINES)
        ]
        data["cannedResponses"] = [
            {
                "name": f"c{i}",
                "template": f"Answer {i} for {{{{ vars.name }}}}, tier {{{{ vars.tier }}}}.",
                "conditions": [f"{{{{ vars.score >= {i} }}}}"],
                "priority": 100 + i % 5,
            }
            for i in range(CANNED)
        ]
    return data


@dataclass(frozen=True, slots=True)
class Served:
    """A runtime and the agent it serves."""

    runtime: Runtime
    agent_id: UUID

    @property
    def store(self) -> Store:
        return self.runtime.store


async def publish(store: Store, *, behaviour: bool) -> Served:
    """Publish the agent to ``store`` and put a runtime on it."""
    await store.ensure_workspace(WS)
    report = await store.publish(WS, bundle_from_data(agent_data(behaviour=behaviour)))
    runtime = Runtime(store, evaluator=ScriptedEvaluator(), tools=ToolRegistry())
    return Served(runtime, report.agent_id)


# ------------------------------------------------------------------ timing


def p99(samples: Sequence[float]) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[98]


def figures(samples: Sequence[float]) -> dict[str, float]:
    return {"median_us": statistics.median(samples) * 1e6, "p99_us": p99(samples) * 1e6}


def time_sync(action: Callable[[], object], count: int) -> list[float]:
    for _ in range(min(count // 10, 500)):  # warm-up
        action()
    samples = []
    for _ in range(count):
        began = time.perf_counter()
        action()
        samples.append(time.perf_counter() - began)
    return samples


async def time_async(action: Callable[[], Awaitable[object]], count: int) -> list[float]:
    for _ in range(min(count // 10, 100)):
        await action()
    samples = []
    for _ in range(count):
        began = time.perf_counter()
        await action()
        samples.append(time.perf_counter() - began)
    return samples


# ------------------------------------------------------------------ (a) the reference


class _Model:
    state: str


def bare_machine() -> tuple[Machine, _Model]:
    """The same graph as the journey, as a plain ``transitions`` machine."""
    model = _Model()
    names = [f"s{i}" for i in range(STATES)]
    machine = Machine(
        model=model,
        states=names,
        initial=names[0],
        auto_transitions=False,
        ignore_invalid_triggers=True,
        model_attribute="state",
    )

    def never(*args: Any) -> bool:
        return False

    def always(*args: Any) -> bool:
        return True

    for i in range(STATES - 1):
        if i + 2 < STATES:
            machine.add_transition("advance", names[i], names[i + 2], conditions=[never])
        machine.add_transition("advance", names[i], names[i + 1], conditions=[always])
    return machine, model


# ------------------------------------------------------------------ (a), (b) in process


async def waiting_session(served: Served, at: int) -> UUID:
    """A session that waits on chat state ``s<at>``."""
    session = await served.runtime.start_session(WS, served.agent_id)
    for _ in range(at + 1):
        await served.runtime.process_message(WS, session.id, "next")
    result = await served.runtime.process_message(WS, session.id, "check")
    assert result.state == f"s{at + 1}", result.state
    return session.id


async def turn_samples(served: Served, count: int) -> list[float]:
    """``run_turn`` of one step from ``s<WAIT_AT>``, computed again and again (no commit)."""
    store = served.store
    session_id = await waiting_session(served, WAIT_AT - 1)
    session = await store.get_session(WS, session_id)
    agent = await served.runtime.agent(WS, served.agent_id)
    variables = list(await store.get_variables(WS, session_id))
    generator, tools = DeterministicGenerator(), ToolRegistry()
    inputs = TurnInput(session, agent, variables, "next")
    outcome = await run_turn(
        inputs, evaluator=served.runtime.evaluator, generator=generator, tools=tools
    )
    assert outcome.trace.path == [f"Steps/s{WAIT_AT + 1}"], outcome.trace.path

    async def compute() -> object:
        return await run_turn(
            inputs, evaluator=served.runtime.evaluator, generator=generator, tools=tools
        )

    return await time_async(compute, count)


async def message_samples(served: Served, count: int) -> list[float]:
    """``process_message`` turns, one after another on one session (a step each; the
    journey starts over after its final state)."""
    session = await served.runtime.start_session(WS, served.agent_id)

    async def step() -> object:
        return await served.runtime.process_message(WS, session.id, "next")

    return await time_async(step, count)


async def throughput(served: Served, seconds: float) -> float:
    """Turns per second with one task per session, ``CONCURRENT_SESSIONS`` of them."""
    sessions = [
        (await served.runtime.start_session(WS, served.agent_id)).id
        for _ in range(CONCURRENT_SESSIONS)
    ]
    done = 0

    async def worker(session_id: UUID, stop: float) -> None:
        nonlocal done
        while time.perf_counter() < stop:
            await served.runtime.process_message(WS, session_id, "next")
            done += 1

    warm = time.perf_counter() + min(0.5, seconds / 4)
    await asyncio.gather(*(worker(s, warm) for s in sessions))
    done = 0
    began = time.perf_counter()
    await asyncio.gather(*(worker(s, began + seconds) for s in sessions))
    return done / (time.perf_counter() - began)


async def bench_step(settings: Settings) -> dict[str, Any]:
    """(a)"""
    machine, model = bare_machine()
    source, target = f"s{WAIT_AT}", f"s{WAIT_AT + 1}"

    def bare() -> None:
        machine.set_state(source, model=model)
        model.trigger("advance")  # type: ignore[attr-defined]  # bound by transitions
        assert model.state == target

    served = await publish(MemoryStore(), behaviour=False)
    journey = (await served.runtime.agent(WS, served.agent_id)).journeys[0]
    assert journey.machine is not None
    compiled = journey.machine
    edge = next(t.spec.id for t in journey.outgoing[source] if t.spec.to_state == target)
    assert compiled.move(source, edge) == target

    def engine() -> None:
        compiled.move(source, edge)

    reference = time_sync(bare, settings.steps)
    step = time_sync(engine, settings.steps)
    computed = await turn_samples(served, settings.turns)
    messages = await message_samples(served, settings.turns)
    base = statistics.median(reference)
    rows = {
        "transitions": reference,
        "machine_step": step,
        "run_turn": computed,
        "process_message": messages,
    }
    return {
        name: figures(samples) | {"ratio": statistics.median(samples) / base}
        for name, samples in rows.items()
    }


async def bench_full(settings: Settings, reference_us: float, trigger_us: float) -> dict[str, Any]:
    """(b)"""
    served = await publish(MemoryStore(), behaviour=True)
    probe = await waiting_session(served, 3)
    result = await served.runtime.process_message(WS, probe, "next")
    matched, replies = len(result.guidelines), result.replies
    assert matched == GUIDELINES // 2, matched
    assert replies[0].startswith("Answer"), replies
    computed = await turn_samples(served, settings.turns)
    messages = await message_samples(served, settings.turns)
    return {
        "guidelines": GUIDELINES,
        "matched": matched,
        "canned": CANNED,
        "run_turn": figures(computed),
        "process_message": figures(messages),
        "reference_run_turn_us": reference_us,
        "reference_trigger_us": trigger_us,
    }


# ------------------------------------------------------------------ (c) persisted


def admin_url() -> str:
    return (
        os.environ.get("PARLANT_BENCH_POSTGRES_URL")
        or os.environ.get("PARLANT_TEST_POSTGRES_URL")
        or DEFAULT_ADMIN_URL
    )


async def _admin(server: sa.URL, statement: str) -> str:
    engine = create_async_engine(
        server.set(drivername="postgresql+asyncpg"),
        poolclass=NullPool,
        isolation_level="AUTOCOMMIT",  # CREATE/DROP DATABASE refuse to run in a transaction
    )
    try:
        async with engine.connect() as connection:
            result = await connection.exec_driver_sql(statement)
            return str(result.scalar()) if result.returns_rows else ""
    finally:
        await engine.dispose()


AGENTS = {"journey": False, "full": True}
"""(c)'s two agents: the bare journey of (a), and the agent of (b)."""


async def persisted(open_store: Callable[[], Store], settings: Settings) -> dict[str, Any]:
    """Latency and throughput of both agents on stores opened by ``open_store``."""
    found: dict[str, Any] = {}
    for name, behaviour in AGENTS.items():
        store = open_store()
        try:
            served = await publish(store, behaviour=behaviour)
            latency = await message_samples(served, settings.persisted)
            rate = await throughput(served, settings.seconds)
        finally:
            await store.close()
        found[name] = figures(latency) | {"turns_per_s": rate}
    return found


async def bench_persisted(
    settings: Settings, folder: Path, with_postgres: bool
) -> tuple[dict[str, Any], str | None]:
    """(c): memory (the reference), SQLite and, unless skipped, PostgreSQL."""
    results = {"memory": await persisted(MemoryStore, settings)}
    sqlite_url = f"sqlite:///{folder / 'bench.db'}"
    await upgrade(sqlite_url)
    results["sqlite"] = await persisted(lambda: SqlStore.open(sqlite_url), settings)
    if not with_postgres:
        return results, None
    server = sa.make_url(admin_url())
    name = f"parlant_bench_{secrets.token_hex(6)}"
    version = (await _admin(server, "SHOW server_version")).split()[0]
    await _admin(server, f'CREATE DATABASE "{name}"')
    try:
        url = server.set(drivername="postgresql+asyncpg", database=name).render_as_string(
            hide_password=False
        )
        await upgrade(url)
        results["postgresql"] = await persisted(lambda: SqlStore.open(url), settings)
    finally:
        await _admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return results, version


# ------------------------------------------------------------------ the report


async def run(settings: Settings, folder: Path, with_postgres: bool) -> dict[str, Any]:
    step = await bench_step(settings)
    full = await bench_full(
        settings, step["run_turn"]["median_us"], step["transitions"]["median_us"]
    )
    stored, server = await bench_persisted(settings, folder, with_postgres)
    return {
        "machine": machine(server),
        "settings": {
            "steps": settings.steps,
            "turns": settings.turns,
            "persisted_turns": settings.persisted,
            "seconds": settings.seconds,
        },
        "step": step,
        "full_turn": full,
        "persisted": stored,
    }


def machine(server: str | None) -> str:
    database = f"PostgreSQL {server}, " if server else ""
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"{platform.machine()}, {os.cpu_count()} cores (load {load} at the end), "
        f"{platform.python_implementation()} {platform.python_version()}, "
        f"{database}SQLite {sqlite3.sqlite_version}, SQLAlchemy {sa.__version__}, "
        f"transitions {transitions.__version__}"
    )


def print_table(results: dict[str, Any]) -> None:
    step, full, stored = results["step"], results["full_turn"], results["persisted"]
    settings = results["settings"]
    print(f"engine ({results['machine']})")
    print()
    print(
        f"(a) one journey step in process, {STATES}-state journey "
        f"(s{WAIT_AT} -> s{WAIT_AT + 1}; {settings['steps']:,} steps, "
        f"{settings['turns']:,} turns)"
    )
    print(f"{'':44} {'median us':>10} {'p99 us':>9} {'ratio':>7}")
    for label, key in (
        ("transitions: bare Machine trigger (ref.)", "transitions"),
        ("JourneyMachine.move (the engine's step)", "machine_step"),
        ("run_turn: the turn computed, no store", "run_turn"),
        ("process_message on MemoryStore", "process_message"),
    ):
        row = step[key]
        print(f"{label:44} {row['median_us']:>10.1f} {row['p99_us']:>9.1f} {row['ratio']:>6.1f}x")
    print()
    print(
        f"(b) a full turn in process: {full['guidelines']} guidelines with expression "
        f"conditions ({full['matched']} match), {full['canned']} canned responses (strict)"
    )
    trigger = full["reference_trigger_us"]
    print(f"{'':44} {'median us':>10} {'p99 us':>9} {'x trigger':>10}")
    for label, key in (
        ("run_turn", "run_turn"),
        ("process_message on MemoryStore", "process_message"),
    ):
        row = full[key]
        print(
            f"{label:44} {row['median_us']:>10.1f} {row['p99_us']:>9.1f} "
            f"{row['median_us'] / trigger:>9.0f}x"
        )
    print(f"{'  ref.: run_turn, bare journey (a)':44} {full['reference_run_turn_us']:>10.1f}")
    print(f"{'  ref.: transitions trigger (a)':44} {trigger:>10.1f}")
    print()
    print(
        "(c) a full persisted turn: latency over "
        f"{settings['persisted_turns']:,} turns on one session; throughput with "
        f"{CONCURRENT_SESSIONS} sessions for "
        f"{settings['seconds']:.1f} s"
    )
    print(f"{'':44} {'median ms':>10} {'p99 ms':>9} {'turns/s':>9}")
    for agent, title in (("journey", "the journey of (a)"), ("full", "the agent of (b)")):
        print(f"  {title}")
        for label, key in (
            ("MemoryStore (ref.)", "memory"),
            ("SQLite", "sqlite"),
            ("PostgreSQL", "postgresql"),
        ):
            if key not in stored:
                continue
            row = stored[key][agent]
            print(
                f"    {label:40} {row['median_us'] / 1e3:>10.2f} {row['p99_us'] / 1e3:>9.2f} "
                f"{row['turns_per_s']:>9,.0f}"
            )
    print()
    print("aims (issue 4):")
    for aim, met in aims(results):
        print(f"  {'met    ' if met else 'NOT MET' if met is False else 'not run'}  {aim}")


def aims(results: dict[str, Any]) -> list[tuple[str, bool | None]]:
    """Each aim of issue 4 and whether this run meets it (``None``: not measured)."""
    step, full, stored = results["step"], results["full_turn"], results["persisted"]
    postgres = stored.get("postgresql")
    found: list[tuple[str, bool | None]] = [
        (
            "(a) a journey step within 3x of a bare transitions trigger",
            step["machine_step"]["ratio"] <= 3,
        ),
        (
            "(b) a full turn with 100 guidelines (run_turn) under 1 ms median",
            full["run_turn"]["median_us"] < 1_000,
        ),
    ]
    for agent, title in (("journey", "the journey of (a)"), ("full", "the agent of (b)")):
        found.append(
            (
                f"(c) >= 500 turns/s on PostgreSQL with {CONCURRENT_SESSIONS} sessions, {title}",
                None if postgres is None else postgres[agent]["turns_per_s"] >= 500,
            )
        )
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations (a smoke run)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--no-postgres", action="store_true", help="skip the PostgreSQL part")
    args = parser.parse_args()
    settings = QUICK if args.quick else FULL
    try:
        with tempfile.TemporaryDirectory(prefix="parlant-bench-") as folder:
            results = asyncio.run(run(settings, Path(folder), not args.no_postgres))
    except (OSError, sa.exc.DBAPIError) as exc:
        sys.exit(
            f"bench_engine: PostgreSQL at {sa.make_url(admin_url())!r} is needed "
            f"(or pass --no-postgres): {exc}"
        )
    if args.json:
        results["aims"] = [{"aim": aim, "met": met} for aim, met in aims(results)]
        print(json.dumps(results, indent=2))
    else:
        print_table(results)


if __name__ == "__main__":
    main()
