"""Publishes under traffic on PostgreSQL: no turn and no session creation may fail.

Several processes (``multiprocessing``, spawn) each create sessions and commit turns
through their own :class:`SqlStore` while another process publishes the agent again
and again, every publish changing every state (so that it rewrites all their rows).
A turn does what the runtime's turns do to the database: it moves its session to a
state, appends events that name the journey and the state, and writes a session and
a customer variable. Its inserts check foreign keys (key-share locks on the state
and agent rows) while a publish locks the agent and rewrites the states: taken in
opposite orders, the two deadlocked before the store had one lock order.

A process rolling usage up runs beside them (a roll-up updates the counters of the
agent, its journeys and guidelines, the rows a publish rewrites).

A second test runs an unchanged publish in a loop beside session creations: the
publish used to lock the workspace row ``FOR UPDATE``, which waits for (and is
waited for by) the foreign-key checks of a session insert.

Everything a worker saw is sent back: the tests assert that not one turn, session
creation or publish failed, and that every acknowledged turn is in the log.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import queue
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from multiprocessing.context import SpawnProcess
from typing import Any
from uuid import UUID

import pytest

from parlant_runtime.bundle.schema import AgentBundle
from parlant_runtime.model import EventType, VariableScope
from parlant_runtime.storage.port import (
    ConcurrentUpdate,
    NewEvent,
    SessionStart,
    TurnCommit,
    VariableChange,
)
from parlant_runtime.storage.sql.store import SqlStore
from tests.storage_stress import WS, agent_bundle, upgraded_citus, upgraded_postgres

WORKERS = 4
SESSIONS = 3
"""Sessions each worker creates (while publishes run)."""
TURNS = 20
"""Turns per session."""
MAX_ATTEMPTS = 20
WORKER_TIMEOUT = 120.0
STATES = tuple(f"s{i}" for i in range(8))


@pytest.fixture
def postgres() -> Iterator[str]:
    with upgraded_postgres() as url:
        yield url


def variant(number: int) -> AgentBundle:
    """The test agent with every state's prompt (and a guideline) changed: publishing
    ``variant(n + 1)`` over ``variant(n)`` rewrites every state row."""
    data = agent_bundle(STATES).model_dump(by_alias=True, exclude_none=True)
    for state in data["journeys"][0]["states"]:
        state["chatPrompt"] = f"say {state['name']} (version {number})"
    data["guidelines"][0]["action"] = f"be brief ({number})"
    return AgentBundle.model_validate(data)


@dataclass
class Tally:
    """What one worker process did."""

    turns: int = 0
    sessions: int = 0
    publishes: int = 0
    conflicts: int = 0
    """Compare-and-set refusals (a publish or another task moved on first): retried."""
    failures: list[str] = field(default_factory=list)
    acknowledged: list[tuple[str, int]] = field(default_factory=list)
    """(session id, turn number) of each turn commit_turn returned for."""


@dataclass(frozen=True, slots=True)
class Spec:
    url: str
    process: int
    agent_id: UUID
    positions: tuple[tuple[UUID, UUID], ...]
    role: str
    """"turns": create sessions and send turns; "publish": publish variants in a loop;
    "sessions": only create sessions; "same": publish the same bundle in a loop;
    "rollup": roll usage up in a loop."""
    usage: tuple[str, ...] = ()
    """The usage counters each turn bumps (the agent's, the journey's, a guideline's)."""


def _worker(spec: Spec, start: Any, stop: Any, published: Any, results: Any) -> None:
    try:
        tally = asyncio.run(_work(spec, start, stop, published))
    except BaseException:
        results.put(("error", spec.process, traceback.format_exc()))
    else:
        results.put(("done", spec.process, tally))


async def _work(spec: Spec, start: Any, stop: Any, published: Any) -> Tally:
    store = SqlStore.open(spec.url)
    tally = Tally()
    try:
        await store.agent_version(WS, spec.agent_id)  # connect before the start
        await asyncio.to_thread(start.wait, WORKER_TIMEOUT)
        if spec.role == "turns":
            await asyncio.gather(*(_session(store, spec, tally) for _ in range(SESSIONS)))
        elif spec.role == "sessions":
            for _ in range(SESSIONS * TURNS):
                await _create(store, spec, tally)
            # on a slow machine a publish can outlast the creations: go on until two
            # publishes have met them (or the worker's time is up), so they overlap
            deadline = asyncio.get_running_loop().time() + WORKER_TIMEOUT
            while published.value < 2 and asyncio.get_running_loop().time() < deadline:
                await _create(store, spec, tally)
        elif spec.role == "rollup":
            while not stop.is_set():
                try:
                    await store.roll_up_usage()
                    tally.publishes += 1  # roll-ups, counted alike
                except Exception as exc:
                    tally.failures.append(f"roll_up_usage: {type(exc).__name__}: {exc}")
        else:
            number = 1
            while not stop.is_set():
                bundle = variant(number) if spec.role == "publish" else variant(0)
                try:
                    await store.publish(WS, bundle)
                    tally.publishes += 1
                    with published.get_lock():
                        published.value += 1
                except Exception as exc:  # every failure is the finding
                    tally.failures.append(f"publish: {type(exc).__name__}: {exc}")
                number += 1
    finally:
        await store.close()
    return tally


async def _create(store: SqlStore, spec: Spec, tally: Tally) -> UUID | None:
    try:
        session = await store.create_session(
            WS, SessionStart(agent_id=spec.agent_id, customer_id=f"c{spec.process}")
        )
    except Exception as exc:
        tally.failures.append(f"create_session: {type(exc).__name__}: {exc}")
        return None
    tally.sessions += 1
    return session.id


async def _session(store: SqlStore, spec: Spec, tally: Tally) -> None:
    session_id = await _create(store, spec, tally)
    if session_id is None:
        return
    for number in range(TURNS):
        journey_id, state_id = spec.positions[number % len(spec.positions)]
        for _ in range(MAX_ATTEMPTS):
            try:
                session = await store.get_session(WS, session_id)
                await store.commit_turn(
                    WS,
                    TurnCommit(
                        session_id=session_id,
                        expected_version=session.version,
                        events=[
                            NewEvent(
                                event_type=EventType.CUSTOMER_MESSAGE,
                                content={"text": f"turn {number}"},
                                idempotency_key=f"m{number}",
                            ),
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
                        usage=dict.fromkeys(spec.usage, 1),
                        variables=[
                            VariableChange(key="turn", value=str(number)),
                            VariableChange(
                                key="seen",
                                value=str(number),
                                scope=VariableScope.CUSTOMER,
                            ),
                        ],
                    ),
                )
            except ConcurrentUpdate:
                tally.conflicts += 1
                continue
            except Exception as exc:
                tally.failures.append(f"turn: {type(exc).__name__}: {exc}")
                break
            tally.turns += 1
            tally.acknowledged.append((str(session_id), number))
            break


async def _prepare(url: str) -> tuple[UUID, tuple[tuple[UUID, UUID], ...], tuple[str, ...]]:
    store = SqlStore.open(url)
    try:
        await store.ensure_workspace(WS)
        report = await store.publish(WS, variant(0))
        bundle = (await store.load_agent(WS, report.agent_id)).bundle
        journey = bundle.journeys[0]
        positions = tuple((journey.id, s.id) for s in journey.states if not s.is_final)
        usage = (
            f"agent:{report.agent_id}:total_messages",
            f"journey:{journey.id}:total_sessions",
            f"guideline:{bundle.guidelines[0].id}:match_count",
        )
    finally:
        await store.close()
    return report.agent_id, positions, usage


def run(url: str, roles: list[str]) -> list[Tally]:
    """Start one process per role at once; publishers stop when the others are done."""
    agent_id, positions, usage = asyncio.run(_prepare(url))
    context = multiprocessing.get_context("spawn")
    start, stop = context.Event(), context.Event()
    published = context.Value("i", 0)  # publishes so far, all publishers together
    results = context.Queue()
    workers: list[SpawnProcess] = [
        context.Process(
            target=_worker,
            args=(
                Spec(url, number, agent_id, positions, role, usage),
                start,
                stop,
                published,
                results,
            ),
            daemon=True,
        )
        for number, role in enumerate(roles)
    ]
    for worker in workers:
        worker.start()
    start.set()
    tallies: dict[int, Tally] = {}
    errors: list[str] = []
    publishers = {i for i, role in enumerate(roles) if role in ("publish", "same", "rollup")}
    waited = 0.0
    try:
        while len(tallies) + len(errors) < len(roles) and waited < 3 * WORKER_TIMEOUT:
            if publishers and len(tallies) + len(errors) >= len(roles) - len(publishers):
                stop.set()  # the traffic is over: let the publishers finish
            try:
                kind, process, data = results.get(timeout=0.5)
            except queue.Empty:
                waited += 0.5
                continue
            if kind == "error":
                errors.append(f"process {process}:\n{data}")
            else:
                tallies[process] = data
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=10)
            if worker.is_alive():
                worker.kill()
                worker.join()
        results.close()
        results.join_thread()
    assert not errors, "\n".join(errors)
    assert len(tallies) == len(roles), "a worker sent no report"
    return [tallies[i] for i in sorted(tallies)]


async def _logged_turns(url: str, agent_id: UUID) -> set[tuple[str, int]]:
    store = SqlStore.open(url)
    try:
        logged = set()
        for session in await store.list_sessions(WS, agent_id):
            for event in await store.list_events(WS, session.id):
                if event.event_type is EventType.CUSTOMER_MESSAGE:
                    logged.add((str(session.id), int(str(event.idempotency_key)[1:])))
    finally:
        await store.close()
    return logged


@pytest.mark.postgres
def test_publishes_under_traffic_fail_no_turn_on_postgres(postgres: str) -> None:
    _publishes_under_traffic(postgres)


@pytest.mark.citus
def test_publishes_under_traffic_fail_no_turn_on_citus() -> None:
    # sessions sharded, the agent replicated: a publish writes every node, turns one
    with upgraded_citus() as url:
        _publishes_under_traffic(url)


def _publishes_under_traffic(postgres: str) -> None:
    tallies = run(postgres, ["turns"] * WORKERS + ["publish", "rollup"])
    failures = [f for tally in tallies for f in tally.failures]
    publishes, roll_ups = tallies[WORKERS].publishes, tallies[WORKERS + 1].publishes
    turns = sum(t.turns for t in tallies)
    assert publishes >= 3, "the publisher did not overlap the traffic"
    assert roll_ups >= 3, "the roll-ups did not overlap the traffic"
    assert not failures, f"{len(failures)} failures in {turns} turns, {publishes} publishes: " + (
        "; ".join(failures[:5])
    )
    assert turns == WORKERS * SESSIONS * TURNS
    acknowledged = {a for tally in tallies for a in tally.acknowledged}
    agent_id = asyncio.run(_prepare_agent_id(postgres))
    assert acknowledged == asyncio.run(_logged_turns(postgres, agent_id))


async def _prepare_agent_id(url: str) -> UUID:
    store = SqlStore.open(url)
    try:
        found = await store.find_agent(WS, "Stress")
    finally:
        await store.close()
    assert found is not None
    return found


@pytest.mark.postgres
def test_an_unchanged_publish_beside_session_creations_deadlocks_nothing(postgres: str) -> None:
    tallies = run(postgres, ["sessions", "sessions", "same", "same"])
    failures = [f for tally in tallies for f in tally.failures]
    assert not failures, f"{len(failures)} failures: " + "; ".join(failures[:5])
    assert sum(t.sessions for t in tallies) >= 2 * SESSIONS * TURNS
    assert sum(t.publishes for t in tallies) >= 2, "the publishes did not overlap the creations"
