"""The runtime on the SQL stores: the same conversation as in memory, and racing turns.

The clinic example (``examples/clinic.yaml``) is booked end to end on a migrated
SQLite file and on a throwaway PostgreSQL database (``postgres`` marker); every turn
must answer exactly as on the :class:`MemoryStore`. Then turns race on one session:
every call succeeds (the runtime recomputes a turn that lost the compare-and-set, up
to ``MAX_ATTEMPTS`` times, so that many racers in lock step still all get through)
and the log stays contiguous, each turn's events together.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from parlant_runtime import bundle_from_data, load_bundle
from parlant_runtime.engine import Runtime, ScriptedEvaluator, ToolRegistry, TurnResult
from parlant_runtime.engine.runtime import MAX_ATTEMPTS
from parlant_runtime.engine.tools import current_call
from parlant_runtime.model import EventType
from parlant_runtime.storage import MemoryStore
from parlant_runtime.storage.migrate import upgrade
from parlant_runtime.storage.port import CommittedTurn, InvalidData, NewEvent, Store, TurnCommit
from parlant_runtime.storage.sql.store import SqlStore
from tests.engine.test_turns import WS, chat, edge, flow, kinds, tool_state

CLINIC = Path(__file__).resolve().parents[2] / "examples" / "clinic.yaml"
BACKENDS = ["memory", "sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]

Opener = Callable[[], Awaitable[Store]]


def database_url(backend: str, request: pytest.FixtureRequest, folder: Path) -> str | None:
    """The database of ``backend`` for one test (none for memory)."""
    if backend == "memory":
        return None
    if backend == "sqlite":
        return f"sqlite:///{folder / 'parlant.db'}"
    url: str = request.getfixturevalue("postgres_database")
    return url


def opener(backend: str, request: pytest.FixtureRequest, folder: Path) -> Opener:
    """How to open an empty store of ``backend`` (migrating its database first)."""
    url = database_url(backend, request, folder)
    if url is None:

        async def memory() -> Store:
            return MemoryStore()

        return memory

    async def sql() -> Store:
        await upgrade(url)
        return SqlStore.open(url)

    return sql


@dataclass(frozen=True)
class Answer:
    """What one turn answered, without ids, times and durations."""

    replies: tuple[str, ...]
    journey: str | None
    state: str | None
    tool_calls: tuple[str, ...]
    guidelines: tuple[str, ...]
    kinds: tuple[str, ...]
    path: tuple[str, ...]

    @classmethod
    def of(cls, result: TurnResult) -> Answer:
        return cls(
            result.replies,
            result.journey,
            result.state,
            result.tool_calls,
            result.guidelines,
            tuple(kinds(result.events)),
            tuple(result.trace.path),
        )


@dataclass(frozen=True)
class Booked:
    answers: tuple[Answer, ...]
    log: tuple[tuple[int, str], ...]
    variables: dict[str, Any]


async def book_a_visit(store: Store) -> Booked:
    """The conversation of the end-to-end script: book, finish, ask the opening hours."""
    try:
        await store.ensure_workspace(WS)
        report = await store.publish(WS, load_bundle(CLINIC))
        evaluator = ScriptedEvaluator()
        tools = ToolRegistry()

        @tools.tool("check_slots")
        async def check_slots(arguments: dict[str, Any]) -> Any:
            return {"free": True, "times": ["09:00", "11:30"]}

        @tools.tool("book_appointment")
        async def book(arguments: dict[str, Any]) -> Any:
            assert arguments["patient_name"] == "Ada"
            return {"status": "confirmed", "confirmation_code": "CL-1234"}

        runtime = Runtime(store, evaluator=evaluator, tools=tools)
        session = await runtime.start_session(
            WS, report.agent_id, customer_id="c1", variables={"patient_name": "Ada"}
        )
        script: list[tuple[str, list[str], dict[str, Any] | None]] = [
            ("I'd like to book an appointment", ["customer wants to book an appointment"], None),
            ("dermatology", [], {"department": "dermatology"}),
            ("Monday", [], {"day": "Monday"}),
            ("9 please", [], {"time": "09:00"}),
            ("no thanks", [], None),
            ("what are your opening times?", [], None),
        ]
        answers = []
        for text, holds, variables in script:
            evaluator.set(holds)
            result = await runtime.process_message(WS, session.id, text, variables=variables)
            answers.append(Answer.of(result))
        events = await store.list_events(WS, session.id)
        values = {v.key: v.value for v in await store.get_variables(WS, session.id)}
        return Booked(
            tuple(answers),
            tuple((e.offset, e.event_type.value) for e in events),
            values,
        )
    finally:
        await store.close()


def test_the_clinic_conversation_books_a_visit_in_memory() -> None:
    booked = asyncio.run(book_a_visit(MemoryStore()))
    positions = [(a.journey, a.state) for a in booked.answers]
    assert positions == [
        ("Book a visit", "ask_department"),
        ("Book a visit", "ask_day"),
        ("Book a visit", "offer_times"),
        ("Book a visit", "confirm"),
        (None, None),
        (None, None),
    ]
    assert booked.answers[3].replies == (
        "You're booked on Monday at 09:00. Your code is CL-1234. Anything else?",
    )
    assert booked.answers[2].tool_calls == ("check_slots",)
    assert booked.answers[3].tool_calls == ("book_appointment",)
    assert booked.answers[5].guidelines == ("opening_hours",)
    assert booked.variables["booking"] == {"status": "confirmed", "confirmation_code": "CL-1234"}
    assert [offset for offset, _ in booked.log] == list(range(len(booked.log)))


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_the_clinic_conversation_answers_the_same_on_a_sql_store(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    expected = asyncio.run(book_a_visit(MemoryStore()))
    open_store = opener(backend, request, tmp_path)

    async def on_sql() -> Booked:
        return await book_a_visit(await open_store())

    booked = asyncio.run(on_sql())
    for number, (got, want) in enumerate(zip(booked.answers, expected.answers, strict=True)):
        assert got == want, f"turn {number}"
    assert booked.log == expected.log
    assert booked.variables == expected.variables


TURN = [
    "customer_message",
    "journey_transition",
    "tool_call",
    "tool_result",
    "variable_update",
    "journey_transition",
    "agent_message",
]
"""The events of one racing turn, in order."""


def racing_flow() -> dict[str, Any]:
    """Every ``go`` passes through a slow tool state and back to the chat state."""
    return flow(
        chat("a", "Again?"),
        tool_state("t", "slow", toolConfig={"resultVariable": "calls"}),
        transitions=[edge("a", "t", "go"), edge("t", "a")],
    ) | {"tools": [{"name": "slow"}]}


@pytest.mark.parametrize("racers", [2, MAX_ATTEMPTS])
@pytest.mark.parametrize("backend", BACKENDS)
def test_concurrent_turns_from_several_processes_all_succeed_with_contiguous_offsets(
    backend: str, racers: int, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """One runtime per racer (as separate processes would be): turns really race, the
    losers are computed again, and a tool call made again keeps its call id."""
    open_store = opener(backend, request, tmp_path)
    calls = 0
    call_ids: list[str] = []
    everyone = asyncio.Event()

    async def slow(arguments: dict[str, Any]) -> Any:
        nonlocal calls
        calls += 1
        current = current_call()
        assert current is not None
        call_ids.append(current.call_id)
        if calls >= racers:
            everyone.set()
        # the first round waits until every racer has read the session: a real race
        await asyncio.wait_for(everyone.wait(), timeout=10)
        return calls

    async def scenario() -> None:
        store = await open_store()
        try:
            await store.ensure_workspace(WS)
            report = await store.publish(WS, bundle_from_data(racing_flow()))
            tools = ToolRegistry()
            tools.register("slow", slow)
            runtimes = [
                Runtime(store, evaluator=ScriptedEvaluator(["start", "go"]), tools=tools)
                for _ in range(racers)
            ]
            session = await runtimes[0].start_session(WS, report.agent_id)
            await runtimes[0].process_message(WS, session.id, "hi")
            texts = [f"go {n}" for n in range(racers)]
            results = await asyncio.gather(
                *(
                    runtime.process_message(WS, session.id, text)
                    for runtime, text in zip(runtimes, texts, strict=True)
                )
            )
            assert [r.state for r in results] == ["a"] * racers
            assert calls > racers  # some turn lost the race and was computed again
            # ... and called its tool again with the same call id: one id per message
            assert len(set(call_ids)) == racers
            events = await store.list_events(WS, session.id)
            assert [e.offset for e in events] == list(range(len(events)))
            final = await store.get_session(WS, session.id)
            assert final.event_count == len(events)
            messages = [
                e.content["text"] for e in events if e.event_type is EventType.CUSTOMER_MESSAGE
            ]
            assert messages[0] == "hi"
            assert sorted(messages[1:]) == texts  # each exactly once, in some order
            recorded = {e.tool_call_id for e in events if e.event_type is EventType.TOOL_CALL}
            assert recorded == set(call_ids)
            for result in results:  # a turn's events sit together, in its own order
                own = result.events[: len(TURN)]  # see test_a_turn_result_holds_only_its_events
                offsets = [e.offset for e in own]
                assert offsets == list(range(offsets[0], offsets[0] + len(TURN)))
                assert kinds(own) == TURN
        finally:
            await store.close()

    asyncio.run(scenario())


@pytest.mark.parametrize("backend", BACKENDS)
def test_many_concurrent_turns_on_one_session_are_serialised_in_a_runtime(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Far more racers than MAX_ATTEMPTS on one runtime: each turn runs once, in turn."""
    racers = 4 * MAX_ATTEMPTS
    open_store = opener(backend, request, tmp_path)
    running = 0
    overlapped = False
    calls = 0

    async def slow(arguments: dict[str, Any]) -> Any:
        nonlocal running, overlapped, calls
        calls += 1
        running += 1
        overlapped = overlapped or running > 1
        await asyncio.sleep(0.001)
        running -= 1
        return calls

    async def scenario() -> None:
        store = await open_store()
        try:
            await store.ensure_workspace(WS)
            report = await store.publish(WS, bundle_from_data(racing_flow()))
            tools = ToolRegistry()
            tools.register("slow", slow)
            runtime = Runtime(store, evaluator=ScriptedEvaluator(["start", "go"]), tools=tools)
            session = await runtime.start_session(WS, report.agent_id)
            other = await runtime.start_session(WS, report.agent_id)
            await runtime.process_message(WS, session.id, "hi")
            texts = [f"go {n}" for n in range(racers)]
            results = await asyncio.gather(
                *(runtime.process_message(WS, session.id, text) for text in texts),
                runtime.process_message(WS, other.id, "hi"),  # another session is not held up
            )
            assert [r.state for r in results] == ["a"] * (racers + 1)
            assert calls == racers  # no turn was computed twice: no tool ran twice
            assert not overlapped
            assert runtime.busy_sessions == 0  # no lock is kept for an idle session
            events = await store.list_events(WS, session.id)
            assert [e.offset for e in events] == list(range(len(events)))
            for result in results[:racers]:
                assert kinds(result.events) == TURN
            values = {v.key: v.value for v in await store.get_variables(WS, session.id)}
            assert values["calls"] == racers  # the last turn saw every earlier one
            await runtime.end(WS, session.id)
            assert runtime.busy_sessions == 0
        finally:
            await store.close()

    asyncio.run(scenario())


class Interloper(MemoryStore):
    """Once armed, lets another process commit a turn right after the next commit."""

    armed = False

    async def record_turn(self, workspace_id: str, turn: TurnCommit) -> CommittedTurn:
        committed = await super().record_turn(workspace_id, turn)
        session = committed.session
        if self.armed:
            self.armed = False
            await super().commit_turn(
                workspace_id,
                TurnCommit(
                    session_id=session.id,
                    expected_version=session.version,
                    events=[NewEvent(event_type=EventType.AGENT_MESSAGE, content={"text": "x"})],
                    current_journey_id=session.current_journey_id,
                    current_state_id=session.current_state_id,
                ),
            )
        return committed


def test_a_turn_result_holds_only_its_events() -> None:
    async def scenario() -> None:
        store = Interloper()
        await store.ensure_workspace(WS)
        report = await store.publish(WS, bundle_from_data(racing_flow()))
        runtime = Runtime(store, evaluator=ScriptedEvaluator(["start"]))
        session = await runtime.start_session(WS, report.agent_id)
        store.armed = True
        result = await runtime.process_message(WS, session.id, "hi")
        assert kinds(result.events) == ["customer_message", "journey_transition", "agent_message"]

    asyncio.run(scenario())


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_session_starts_with_the_hosts_metadata_and_title_and_bad_starts_create_nothing(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    open_store = opener(backend, request, tmp_path)
    data = flow(chat("a"), chat("b"), transitions=[edge("a", "b", "{{ session.metadata.vip }}")])

    async def scenario() -> None:
        store = await open_store()
        try:
            await store.ensure_workspace(WS)
            agent = (await store.publish(WS, bundle_from_data(data))).agent_id
            runtime = Runtime(store, evaluator=ScriptedEvaluator(["start"]))

            refused: list[str] = []
            bad_starts: tuple[dict[str, Any], ...] = (
                {"metadata": {"parlantRuntime": {"visited": []}}},  # the runtime's own key
                {"metadata": {"note": "a\x00b"}},  # a NUL no database stores alike
                {"variables": {"count": "x" * 70_000}},  # a value past the size limit
                {"variables": {"not an identifier": 1}},
            )
            for bad in bad_starts:
                with pytest.raises(InvalidData) as caught:
                    await runtime.start_session(WS, agent, customer_id="c1", **bad)
                refused.append(str(caught.value))
            assert "'parlantRuntime' is the runtime's own" in refused[0]
            assert await store.list_sessions(WS, agent) == []  # nothing was created

            session = await runtime.start_session(
                WS, agent, title="Order #7", metadata={"vip": True, "channel": "web"}
            )
            assert (session.title, session.metadata) == (
                "Order #7",
                {"vip": True, "channel": "web"},
            )
            assert (await runtime.process_message(WS, session.id, "hello")).state == "a"
            runtime.evaluator = ScriptedEvaluator([])
            assert (await runtime.process_message(WS, session.id, "next")).state == "b"
            stored = await store.get_session(WS, session.id)
            assert stored.metadata["vip"] is True  # beside the runtime's own bookkeeping
            assert stored.metadata["channel"] == "web"
        finally:
            await store.close()

    asyncio.run(scenario())
