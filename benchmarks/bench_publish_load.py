"""Turns that fail while an agent is published under traffic, with a reference run.

Run: ``.venv/bin/python benchmarks/bench_publish_load.py`` (``--quick`` for a shorter
load, ``--json`` for JSON, ``--before REV`` for the reference's git revision,
``main`` by default). It needs a PostgreSQL server whose user may create databases
(``$PARLANT_BENCH_POSTGRES_URL``, else ``$PARLANT_TEST_POSTGRES_URL``, else
``postgresql://postgres@127.0.0.1:5432/postgres``): each run gets a throwaway
database ``parlant_bench_<random>``, dropped at the end.

The load: 4 processes, each creating 3 sessions and sending turns on them
concurrently (a turn moves its session to a state, appends three events naming the
journey and the state, and writes a session and a customer variable: what the
runtime's turns do to the database), while a fifth process publishes the agent
in a loop, every publish changing every state; then 2 processes creating sessions
beside 2 publishing an unchanged bundle in a loop. Counted: turns and session
creations that failed (by error), publishes done and failed.

Three runs of the same load, in this order:

- ``before``: the library as of ``--before`` (extracted with ``git archive`` into a
  temporary folder and put first on the workers' ``PYTHONPATH``);
- ``lock order only``: this tree with the retry of transient failures turned off
  (one attempt per transaction): what the lock order alone leaves;
- ``after``: this tree as it ships (lock order and bounded retry).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import itertools
import json
import os
import platform
import secrets
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from _setup import commit_next, message  # a sibling script module
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

# a worker process imports the library from its PYTHONPATH: the reference's tree or this one
from parlant_runtime.bundle.schema import AgentBundle
from parlant_runtime.model import EventType, VariableScope
from parlant_runtime.storage.migrate import upgrade
from parlant_runtime.storage.port import (
    ConcurrentUpdate,
    NewEvent,
    SessionStart,
    VariableChange,
)
from parlant_runtime.storage.sql.store import SqlStore

ROOT = Path(__file__).resolve().parent.parent
WS = "ws-bench"
STATES = tuple(f"s{i}" for i in range(8))


def _admin_url() -> str:
    return (
        os.environ.get("PARLANT_BENCH_POSTGRES_URL")
        or os.environ.get("PARLANT_TEST_POSTGRES_URL")
        or "postgresql://postgres@127.0.0.1:5432/postgres"
    )


async def _admin(statement: str) -> None:
    url = sa.make_url(_admin_url()).set(drivername="postgresql+asyncpg")
    engine = create_async_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.exec_driver_sql(statement)
    finally:
        await engine.dispose()


def _database_url(name: str) -> str:
    url = sa.make_url(_admin_url()).set(drivername="postgresql+asyncpg", database=name)
    return url.render_as_string(hide_password=False)


# ------------------------------------------------------------------ the workers


def _variant(number: int) -> AgentBundle:
    names = [*STATES, "end"]
    return AgentBundle.model_validate(
        {
            "agent": {"name": "Bench"},
            "guidelines": [{"name": "g0", "action": f"be brief ({number})"}],
            "variables": [{"key": "day", "value": "monday"}],
            "journeys": [
                {
                    "title": "Bench",
                    "states": [
                        *(
                            {
                                "name": s,
                                "stateType": "chat",
                                "isInitial": i == 0,
                                "chatPrompt": f"say {s} (version {number})",
                            }
                            for i, s in enumerate(STATES)
                        ),
                        {"name": "end", "stateType": "final"},
                    ],
                    "transitions": [{"from": a, "to": b} for a, b in itertools.pairwise(names)],
                }
            ],
        }
    )


async def _worker(role: str, url: str, sessions: int, turns: int, seconds: float) -> dict[str, Any]:
    """One process of the load; returns its tally."""
    store = SqlStore.open(url)
    tally: dict[str, Any] = {"turns": 0, "sessions": 0, "publishes": 0, "failures": Counter()}
    agent_id = await store.find_agent(WS, "Bench")
    assert agent_id is not None
    journey = (await store.load_agent(WS, agent_id)).bundle.journeys[0]
    positions = [(journey.id, s.id) for s in journey.states if not s.is_final]

    def failed(what: str, exc: Exception) -> None:
        reason = "deadlock" if "deadlock" in str(exc) else f"{type(exc).__name__}: {exc}"[:120]
        tally["failures"][f"{what}: {reason}"] += 1

    async def create() -> UUID | None:
        try:
            session = await store.create_session(
                WS, SessionStart(agent_id=agent_id, customer_id=f"c-{os.getpid()}")
            )
        except Exception as exc:  # every failure is what is measured
            failed("create_session", exc)
            return None
        tally["sessions"] += 1
        return session.id

    async def talk() -> None:
        session_id = await create()
        if session_id is None:
            return
        for number in range(turns):
            journey_id, state_id = positions[number % len(positions)]
            for _ in range(20):
                try:
                    await commit_next(
                        store,
                        WS,
                        session_id,
                        [
                            message(f"turn {number}"),
                            NewEvent(
                                event_type=EventType.JOURNEY_TRANSITION,
                                content={"to": str(state_id)},
                                journey_id=journey_id,
                                state_id=state_id,
                            ),
                            NewEvent(
                                event_type=EventType.AGENT_MESSAGE,
                                content={"text": f"answer {number}"},
                                journey_id=journey_id,
                                state_id=state_id,
                            ),
                        ],
                        current_journey_id=journey_id,
                        current_state_id=state_id,
                        variables=[
                            VariableChange(key="turn", value=str(number)),
                            VariableChange(
                                key="seen", value=str(number), scope=VariableScope.CUSTOMER
                            ),
                        ],
                    )
                except ConcurrentUpdate:
                    continue
                except Exception as exc:  # every failure is what is measured
                    failed("turn", exc)
                    break
                tally["turns"] += 1
                break

    try:
        if role == "turns":
            await asyncio.gather(*(talk() for _ in range(sessions)))
        elif role == "sessions":
            for _ in range(sessions * turns):
                await create()
        else:
            deadline = time.monotonic() + seconds
            number = 1
            while time.monotonic() < deadline:
                try:
                    await store.publish(WS, _variant(number if role == "publish" else 0))
                    tally["publishes"] += 1
                except Exception as exc:  # every failure is what is measured
                    failed("publish", exc)
                number += 1
    finally:
        await store.close()
    return tally


# ------------------------------------------------------------------ a run


def _spawn(
    role: str, url: str, *, sessions: int, turns: int, seconds: float, env: dict[str, str]
) -> subprocess.Popen[str]:
    command = [
        sys.executable,
        __file__,
        "--worker",
        role,
        url,
        str(sessions),
        str(turns),
        str(seconds),
    ]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)


def _load(
    url: str, roles: list[str], sessions: int, turns: int, env: dict[str, str]
) -> dict[str, Any]:
    """Run one load: the traffic first, publishers for as long as the traffic lasts."""
    started = time.perf_counter()

    def spawn(role: str, seconds: float) -> subprocess.Popen[str]:
        return _spawn(role, url, sessions=sessions, turns=turns, seconds=seconds, env=env)

    traffic = [spawn(r, 0) for r in roles if r in ("turns", "sessions")]
    # publishers run for a fixed time, about as long as the traffic takes
    publishers = [spawn(r, 3.0 + turns * 0.4) for r in roles if r in ("publish", "same")]
    total: dict[str, Any] = {"turns": 0, "sessions": 0, "publishes": 0, "failures": Counter()}
    for process in [*traffic, *publishers]:
        out, _ = process.communicate(timeout=600)
        if process.returncode != 0:
            raise RuntimeError(f"a worker failed (exit {process.returncode})")
        tally = json.loads(out.strip().splitlines()[-1])
        for key in ("turns", "sessions", "publishes"):
            total[key] += tally[key]
        total["failures"].update(tally["failures"])
    total["seconds"] = round(time.perf_counter() - started, 1)
    total["failures"] = dict(total["failures"])
    return total


async def _prepare(url: str) -> None:
    await upgrade(url)
    store = SqlStore.open(url)
    try:
        await store.ensure_workspace(WS)
        await store.publish(WS, _variant(0))
    finally:
        await store.close()


def _run(name: str, env: dict[str, str], sessions: int, turns: int) -> dict[str, Any]:
    database = f"parlant_bench_{secrets.token_hex(6)}"
    asyncio.run(_admin(f'CREATE DATABASE "{database}"'))
    try:
        url = _database_url(database)
        asyncio.run(_prepare(url))
        traffic = _load(url, ["turns"] * 4 + ["publish"], sessions, turns, env)
        creations = _load(url, ["sessions", "sessions", "same", "same"], sessions, turns, env)
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
    return {"name": name, "turns under publishes": traffic, "creations beside publishes": creations}


def _line(result: dict[str, Any]) -> str:
    traffic, creations = result["turns under publishes"], result["creations beside publishes"]
    turn_failures = sum(v for k, v in traffic["failures"].items() if k.startswith("turn"))
    creation_failures = sum(
        v for k, v in creations["failures"].items() if k.startswith("create_session")
    )
    publish_failures = sum(
        v
        for part in (traffic, creations)
        for k, v in part["failures"].items()
        if k.startswith("publish")
    )
    turns = traffic["turns"] + turn_failures
    creations_tried = creations["sessions"] + creation_failures
    return (
        f"{result['name']:<17} failed turns {turn_failures:>3} of {turns:<4} "
        f"({traffic['publishes']} publishes)   failed creations {creation_failures:>3} of "
        f"{creations_tried:<4} ({creations['publishes']} publishes)   failed publishes "
        f"{publish_failures}   {traffic['seconds'] + creations['seconds']:.0f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer turns per session")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--before", default="main", help="git revision of the reference")
    parser.add_argument("--worker", nargs=5, help=argparse.SUPPRESS)
    args, _ = parser.parse_known_args()  # `./run bench` passes every script the same
    if args.worker:
        role, url, sessions, turns, seconds = args.worker
        if os.environ.get("BENCH_NO_RETRY") == "1":  # a module the reference may not have
            faults: Any = importlib.import_module("parlant_runtime.storage.sql.faults")
            faults.ATTEMPTS = 1
        tally = asyncio.run(_worker(role, url, int(sessions), int(turns), float(seconds)))
        tally["failures"] = dict(tally["failures"])
        print(json.dumps(tally))
        return
    sessions, turns = 3, (8 if args.quick else 20)
    base = dict(os.environ)
    results = []
    with tempfile.TemporaryDirectory() as folder:
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", args.before, "parlant_runtime"],
            check=True,
            capture_output=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", folder], input=archive, check=True)
        before = base | {"PYTHONPATH": folder}
        results.append(_run(f"before ({args.before})", before, sessions, turns))
    here = base | {"PYTHONPATH": str(ROOT)}
    results.append(_run("lock order only", here | {"BENCH_NO_RETRY": "1"}, sessions, turns))
    results.append(_run("after", here, sessions, turns))
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs; load: 4 processes x "
        f"{sessions} sessions x {turns} turns beside a publishing process; then 2 "
        f"processes x {sessions * turns} session creations beside 2 unchanged publishers"
    )
    for result in results:
        print(_line(result))
        for part in ("turns under publishes", "creations beside publishes"):
            if result[part]["failures"]:
                print(f"    {part}: {result[part]['failures']}")


if __name__ == "__main__":
    main()
