"""A persisted turn beside LangGraph's checkpointers and the raw drivers, side by side.

Run: ``.venv/bin/python benchmarks/bench_checkpointers.py`` (``--quick`` for shorter
blocks, ``--json`` for JSON, ``--no-postgres`` / ``--no-sqlite`` to leave a database
out). LangGraph is no dependency of this project: on first use the script makes its
own environment, ``benchmarks/.venv-checkpointers`` (git ignores it), installs this
package and the versions pinned in ``benchmarks/checkpointers-requirements.txt`` into
it from PyPI, and runs itself again there. It is not part of the test run.

PostgreSQL: a server whose user may create databases (``$PARLANT_BENCH_POSTGRES_URL``,
else ``$PARLANT_TEST_POSTGRES_URL``, else ``postgresql://postgres@127.0.0.1:5432/postgres``);
the script creates ``parlant_bench_<random>`` and drops it at the end. SQLite: a file
per system in a temporary folder.

The journey, the same for every system: four states, ``s0 -> s1 -> s2 -> s3``
(final), each step taken on any non-empty message, starting over after the final
state. A turn is one customer message and persists exactly three events (the
customer message, the journey transition, the agent's reply) and the session's new
state, durably, before it returns. The systems:

- ``runtime``: ``Runtime.process_message`` on a ``SqlStore``, the journey published
  as an agent in strict composition (the reply is a canned response), no language
  model (``ScriptedEvaluator``). One transaction per turn with a compare-and-set on
  the session version.
- ``langgraph``: a ``StateGraph`` with a node per state, entered through a router on
  the thread's current state; each node returns the new state and the turn's three
  events. ``ainvoke(..., durability="exit")`` writes one checkpoint per turn, at the
  end of the run. PostgreSQL: ``AsyncPostgresSaver`` on a psycopg pool whose
  connections are not in autocommit, so that a checkpoint's blobs and row commit in
  one transaction as the runtime's turn does (LangGraph's documented autocommit set-up
  commits them one statement at a time). SQLite: ``AsyncSqliteSaver`` on one
  ``aiosqlite`` connection. The events live in a channel the turn overwrites: every
  checkpoint keeps its own, so the whole history stays stored and a turn's cost does
  not grow with the thread (an appending reducer would rewrite the whole list each
  turn, which would make LangGraph look worse than it need be).
- ``raw``: the least a turn needs, on tables of its own with the same row contents
  (a session row; events with id, session, offset, type, JSON content, time): in one
  transaction ``SELECT`` the session, three event ``INSERT``s and the compare-and-set
  ``UPDATE``. PostgreSQL: ``asyncpg``; SQLite: the standard library's ``sqlite3``
  (``BEGIN IMMEDIATE``; it blocks the event loop, which costs it nothing here).

Every SQLite connection gets the runtime's ``journal_mode`` and ``synchronous``
settings, read from the runtime's own engine in the run, and a busy timeout, so that
the three commit equally durably. The pools have the size of SQLAlchemy's default (5
connections, up to 15).

Measured, interleaved: for each round, for each load, the systems one after another
in a rotating order, each for a block of a few seconds after a short warm-up, so
that drift in the machine (PostgreSQL shares its cores with the benchmark) hits them
alike. Loads: 1, 8 and 32 sessions in one process (a task per session, turns one
after another), and 2 processes of 8 sessions each (the script started again as a
worker, both starting at the same instant). Per system and load: median turn latency,
client CPU per turn (the process's CPU time, all threads, over its turns) and
turns/s, each over all rounds. The ratios: runtime / raw (latency, CPU) and raw /
runtime (throughput), and runtime / LangGraph throughput.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import venv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
VENV = HERE / ".venv-checkpointers"
REQUIREMENTS = HERE / "checkpointers-requirements.txt"


def _ensure_environment() -> None:
    """Run again in ``VENV`` (made and filled on first use) unless LangGraph is here."""
    wanted = ("langgraph", "langgraph.checkpoint.postgres", "langgraph.checkpoint.sqlite")
    try:
        if all(importlib.util.find_spec(name) is not None for name in wanted):
            return
    except ModuleNotFoundError:  # a parent package is missing
        pass
    python = VENV / "bin" / "python"
    if Path(sys.prefix).resolve() == VENV:
        raise SystemExit(f"LangGraph is missing from {VENV}: remove the folder and run again")
    stamp = VENV / "requirements.stamp"
    pinned = REQUIREMENTS.read_text()
    if not (stamp.exists() and stamp.read_text() == pinned):
        print(f"making {VENV} (this package and {REQUIREMENTS.name})", file=sys.stderr)
        venv.create(VENV, with_pip=True, clear=True)
        pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        subprocess.run([*pip, "-e", f"{HERE.parent}[postgres]"], check=True)
        subprocess.run([*pip, "-r", str(REQUIREMENTS)], check=True)
        stamp.write_text(pinned)
    os.execv(python, [str(python), __file__, *sys.argv[1:]])


if __name__ == "__main__":
    _ensure_environment()

# needs LangGraph (only in VENV): imported after the check above
from checkpointer_systems import (  # noqa: E402
    SYSTEMS,
    Places,
    System,
    open_system,
    postgres_places,
    sqlite_places,
)

LOADS = (1, 8, 32)
PROCESSES, PROCESS_SESSIONS = 2, 8


@dataclass(frozen=True, slots=True)
class Settings:
    rounds: int
    seconds: float
    warmup: float


FULL = Settings(rounds=3, seconds=3.0, warmup=0.5)
QUICK = Settings(rounds=1, seconds=1.0, warmup=0.2)

# ------------------------------------------------------------------ measuring


@dataclass(slots=True)
class Block:
    """One system's turns under one load: latencies of the turns that committed, CPU
    seconds, wall seconds, and the turns that failed (by error, the first message)."""

    latencies: list[float] = field(default_factory=list)
    cpu: float = 0.0
    wall: float = 0.0
    failed: dict[str, int] = field(default_factory=dict)

    def add(self, other: Block) -> None:
        self.latencies += other.latencies
        self.cpu += other.cpu
        self.wall += other.wall
        for error, count in other.failed.items():
            self.failed[error] = self.failed.get(error, 0) + count

    @property
    def turns(self) -> int:
        return len(self.latencies)


async def drive(system: System, sessions: list[Any], seconds: float, warmup: float) -> Block:
    """Every session turns, one message after another, for ``seconds`` after ``warmup``."""
    block = Block()
    measuring = False

    async def worker(session: Any, stop: float) -> None:
        number = 0
        while time.perf_counter() < stop:
            began = time.perf_counter()
            try:
                await system.turn(session, f"message {number}")
            except Exception as error:  # counted and shown: a refused turn is a result too
                if measuring:
                    key = f"{type(error).__name__}: {str(error).splitlines()[0][:80]}"
                    block.failed[key] = block.failed.get(key, 0) + 1
            else:
                if measuring:
                    block.latencies.append(time.perf_counter() - began)
            number += 1

    await asyncio.gather(*(worker(s, time.perf_counter() + warmup) for s in sessions))
    measuring = True
    cpu, began = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker(s, began + seconds) for s in sessions))
    block.wall = time.perf_counter() - began
    block.cpu = time.process_time() - cpu
    return block


async def in_process(name: str, places: Places, load: int, settings: Settings) -> Block:
    system = await open_system(name, places)
    try:
        sessions = [await system.session() for _ in range(load)]
        return await drive(system, sessions, settings.seconds, settings.warmup)
    finally:
        await system.close()


async def worker_main(arguments: dict[str, Any]) -> None:
    """A worker process: wait for the start instant, drive, print the block as JSON."""
    places = Places(**arguments["places"])
    system = await open_system(arguments["system"], places)
    try:
        sessions = [await system.session() for _ in range(arguments["sessions"])]
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)  # "go", once every worker is ready
        block = await drive(system, sessions, arguments["seconds"], arguments["warmup"])
    finally:
        await system.close()
    found = {"latencies": block.latencies, "cpu": block.cpu, "wall": block.wall}
    print(json.dumps(found | {"failed": block.failed}))


def in_processes(name: str, places: Places, settings: Settings) -> Block:
    """``PROCESSES`` workers at once, each with ``PROCESS_SESSIONS`` sessions."""
    arguments = {
        "system": name,
        "places": {
            "database": places.database,
            "runtime": places.runtime,
            "langgraph": places.langgraph,
            "raw": places.raw,
            "pragmas": places.pragmas,
        },
        "sessions": PROCESS_SESSIONS,
        "seconds": settings.seconds,
        "warmup": settings.warmup,
    }
    workers = [
        subprocess.Popen(
            [sys.executable, __file__, "--worker", json.dumps(arguments)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(PROCESSES)
    ]
    for process in workers:  # each has imported, opened and made its sessions
        assert process.stdout is not None
        if process.stdout.readline().strip() != "ready":
            raise RuntimeError(f"a {name} worker failed to start")
    for process in workers:
        assert process.stdin is not None
        process.stdin.write("go\n")
        process.stdin.flush()
    total = Block()
    walls = []
    for process in workers:
        out, _ = process.communicate(timeout=120)
        if process.returncode != 0:
            raise RuntimeError(f"a {name} worker failed (exit {process.returncode})")
        found = json.loads(out.strip().splitlines()[-1])
        total.latencies += found["latencies"]
        total.cpu += found["cpu"]
        total.add(Block(failed=found["failed"]))
        walls.append(found["wall"])
    total.wall = max(walls)  # both ran at once: throughput is all turns over the span
    return total


def summary(block: Block) -> dict[str, Any]:
    turns = max(block.turns, 1)
    return {
        "turns": block.turns,
        "median_ms": statistics.median(block.latencies or [float("nan")]) * 1e3,
        "cpu_ms_per_turn": block.cpu / turns * 1e3,
        "turns_per_s": block.turns / block.wall,
        "failed": block.failed,
    }


LOAD_NAMES = [f"{n} session{'s' if n > 1 else ''}" for n in LOADS] + [
    f"{PROCESSES} processes x {PROCESS_SESSIONS}"
]


async def measure(places: Places, settings: Settings) -> dict[str, dict[str, dict[str, float]]]:
    blocks = {load: {name: Block() for name in SYSTEMS} for load in LOAD_NAMES}
    order = list(SYSTEMS)
    for round_ in range(settings.rounds):
        for load, load_name in zip(LOADS, LOAD_NAMES, strict=False):
            for name in order:
                blocks[load_name][name].add(await in_process(name, places, load, settings))
            order = order[1:] + order[:1]
        for name in order:
            blocks[LOAD_NAMES[-1]][name].add(
                await asyncio.to_thread(in_processes, name, places, settings)
            )
        order = order[1:] + order[:1]
        print(f"  {places.database}: round {round_ + 1} of {settings.rounds} done", file=sys.stderr)
    return {
        load: {name: summary(block) for name, block in systems.items()}
        for load, systems in blocks.items()
    }


# ------------------------------------------------------------------ the report


def _over(a: float, b: float) -> float:
    return a / b if b else float("nan")


def ratios(found: dict[str, dict[str, Any]]) -> dict[str, float]:
    runtime, graph, raw = found["runtime"], found["langgraph"], found["raw"]
    return {
        "latency_runtime_over_raw": _over(runtime["median_ms"], raw["median_ms"]),
        "cpu_runtime_over_raw": _over(runtime["cpu_ms_per_turn"], raw["cpu_ms_per_turn"]),
        "throughput_raw_over_runtime": _over(raw["turns_per_s"], runtime["turns_per_s"]),
        "throughput_runtime_over_langgraph": _over(runtime["turns_per_s"], graph["turns_per_s"]),
    }


def print_table(results: dict[str, Any]) -> None:
    print(f"persisted turns, 4-state journey, 3 events a turn ({results['machine']})")
    if results["settings"]["sqlite"]:
        print(f"SQLite settings (the runtime's, for all three): {results['settings']['sqlite']}")
    for database, loads in results["databases"].items():
        print(f"\n{database}")
        print(
            f"  {'load':<20} {'system':<10} {'median ms':>9} {'cpu ms/turn':>11} "
            f"{'turns/s':>8}   ratios"
        )
        for load, found in loads.items():
            r = ratios(found)
            notes = {
                "runtime": f"latency {r['latency_runtime_over_raw']:.1f}x raw, "
                f"cpu {r['cpu_runtime_over_raw']:.1f}x raw",
                "langgraph": "runtime throughput "
                f"{r['throughput_runtime_over_langgraph']:.2f}x langgraph",
                "raw": f"throughput {r['throughput_raw_over_runtime']:.1f}x runtime",
            }
            for name in SYSTEMS:
                row = found[name]
                print(
                    f"  {load:<20} {name:<10} {row['median_ms']:>9.2f} "
                    f"{row['cpu_ms_per_turn']:>11.2f} {row['turns_per_s']:>8.0f}   {notes[name]}"
                )
                for error, count in row["failed"].items():
                    print(f"  {'':<20} {'':<10} {count} turns failed: {error}")


def machine(version: str | None) -> str:
    cpus = os.cpu_count()
    load = os.getloadavg()[0]
    server = f", PostgreSQL {version} on the same machine" if version else ""
    return (
        f"{platform.machine()}, {cpus} cores, load {load:.1f}{server}, "
        f"CPython {platform.python_version()}"
    )


async def run(settings: Settings, postgres: bool, sqlite: bool) -> dict[str, Any]:
    databases: dict[str, Any] = {}
    version = None
    if sqlite:
        with tempfile.TemporaryDirectory() as folder:
            places = await sqlite_places(Path(folder))
            databases["sqlite"] = await measure(places, settings)
            databases["sqlite_settings"] = places.pragmas
    if postgres:
        async with postgres_places() as (places, version):
            databases["postgresql"] = await measure(places, settings)
    pragmas = databases.pop("sqlite_settings", None)
    return {
        "machine": machine(version),
        "settings": {
            "rounds": settings.rounds,
            "seconds": settings.seconds,
            "warmup": settings.warmup,
            "sqlite": pragmas,
        },
        "databases": databases,
        "ratios": {
            database: {load: ratios(found) for load, found in loads.items()}
            for database, loads in databases.items()
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one short round")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--no-postgres", action="store_true", help="leave PostgreSQL out")
    parser.add_argument("--no-sqlite", action="store_true", help="leave SQLite out")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        asyncio.run(worker_main(json.loads(args.worker)))
        return
    settings = QUICK if args.quick else FULL
    results = asyncio.run(run(settings, not args.no_postgres, not args.no_sqlite))
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print_table(results)


if __name__ == "__main__":
    main()
