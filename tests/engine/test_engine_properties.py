"""Properties of random conversations on random valid journeys (Hypothesis).

A conversation is a valid journey from :func:`tests.strategies.valid_journeys`,
started by the natural condition ``start``, and a few turns, each with its own random
set of natural-language conditions that hold and, now and then, a value for the
variable ``count`` set with the message. Whatever the draw:

- the session only ever rests where the customer is waited for (outside any journey
  or on a chat state) and never on a state the validator calls unreachable;
- the event log has no gap in its offsets;
- the same inputs on a fresh store give the same replies, positions and events;
- replaying the log (``journey_transition`` and ``variable_update`` events in order,
  an error event putting the session back where its turn started, as the turn
  semantics say) gives the session's final position and variables.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from parlant_runtime import bundle_from_data, validate_bundle
from parlant_runtime.engine import Runtime, ScriptedEvaluator, ToolRegistry
from parlant_runtime.model import Event, EventType
from parlant_runtime.storage import MemoryStore
from parlant_runtime.validation.findings import Code, Severity
from tests.engine.test_turns import WS, bundle, chat, edge, journey, tool_state
from tests.strategies import valid_journeys

PROPERTY_SETTINGS = settings(max_examples=40, deadline=None)

Position = tuple[str | None, str | None]


@dataclass(frozen=True)
class Turn:
    holds: frozenset[str]
    count: int | None


@dataclass(frozen=True)
class Conversation:
    data: dict[str, Any]
    turns: tuple[Turn, ...]


@st.composite
def conversations(draw: st.DrawFn) -> Conversation:
    data = draw(valid_journeys())
    data["journeys"][0]["conditions"] = ["start"]
    texts = {
        t["condition"]
        for t in data["journeys"][0]["transitions"]
        if t.get("condition") and "{{" not in t["condition"]
    }
    options = sorted(texts | {"start"})
    turn = st.builds(
        Turn,
        st.frozensets(st.sampled_from(options)),
        st.one_of(st.none(), st.integers(0, 5)),
    )
    return Conversation(data, tuple(draw(st.lists(turn, min_size=1, max_size=8))))


@dataclass(frozen=True)
class Step:
    """What one turn answered, without what differs from run to run (ids, durations)."""

    replies: tuple[str, ...]
    position: Position
    kinds: tuple[str, ...]
    moves: tuple[tuple[Any, ...], ...]
    errors: tuple[str, ...]


@dataclass(frozen=True)
class Transcript:
    steps: tuple[Step, ...]
    events: tuple[Event, ...]
    variables: dict[str, Any]
    """The session's own variables (set by its turns)."""


async def lookup(arguments: dict[str, Any]) -> Any:
    return {"found": True}


async def converse(conversation: Conversation) -> Transcript:
    store = MemoryStore()
    await store.ensure_workspace(WS)
    report = await store.publish(WS, bundle_from_data(conversation.data))
    tools = ToolRegistry()
    tools.register("lookup", lookup)
    evaluator = ScriptedEvaluator()
    runtime = Runtime(store, evaluator=evaluator, tools=tools)
    session = await runtime.start_session(WS, report.agent_id)
    steps = []
    for number, turn in enumerate(conversation.turns):
        evaluator.set(turn.holds)
        variables = {"count": turn.count} if turn.count is not None else None
        result = await runtime.process_message(
            WS, session.id, f"message {number}", variables=variables
        )
        moves = tuple(
            (e.content["journey"], e.content["from"], e.content["to"])
            for e in result.events
            if e.event_type is EventType.JOURNEY_TRANSITION
        )
        steps.append(
            Step(
                result.replies,
                (result.journey, result.state),
                tuple(e.event_type.value for e in result.events),
                moves,
                tuple(result.trace.errors),
            )
        )
    events = tuple(await store.list_events(WS, session.id))
    own = {
        v.key: v.value
        for v in await store.get_variables(WS, session.id)
        if v.session_id is not None
    }
    return Transcript(tuple(steps), events, own)


def talk(conversation: Conversation) -> Transcript:
    return asyncio.run(converse(conversation))


def replay(events: Sequence[Event], finals: set[str]) -> tuple[Position, dict[str, Any]]:
    """The position and variables the log describes (see the module docstring)."""
    position: Position = (None, None)
    started = position
    values: dict[str, Any] = {}
    for event in events:
        content = event.content
        if event.event_type is EventType.CUSTOMER_MESSAGE:
            started = position
        elif event.event_type is EventType.JOURNEY_TRANSITION:
            target = content["to"]
            left = target is None or target in finals
            position = (None, None) if left else (content["journey"], target)
        elif event.event_type is EventType.VARIABLE_UPDATE:
            values[content["key"]] = content["value"]
        elif event.event_type is EventType.STATUS_UPDATE and "error" in content:
            position = started  # the session stays at its last waiting state
    return position, values


def finals_of(data: dict[str, Any]) -> set[str]:
    return {
        s["name"]
        for s in data["journeys"][0]["states"]
        if s["stateType"] == "final" or s.get("isFinal")
    }


@PROPERTY_SETTINGS
@given(conversations())
def test_the_session_only_rests_on_reachable_waiting_states(conversation: Conversation) -> None:
    report = validate_bundle(bundle_from_data(conversation.data))
    assert report.count(Severity.ERROR) == 0
    unreachable = {
        name for f in report.findings if f.code is Code.UNREACHABLE_STATE for name in f.states
    }
    types = {s["name"]: s["stateType"] for s in conversation.data["journeys"][0]["states"]}
    for step in talk(conversation).steps:
        journey_title, state = step.position
        if state is None:
            assert journey_title is None
            continue
        assert journey_title == "J"
        assert state not in unreachable
        assert types[state] == "chat"


@PROPERTY_SETTINGS
@given(conversations())
def test_event_offsets_have_no_gap(conversation: Conversation) -> None:
    transcript = talk(conversation)
    assert [e.offset for e in transcript.events] == list(range(len(transcript.events)))
    assert sum(len(step.kinds) for step in transcript.steps) == len(transcript.events)


@PROPERTY_SETTINGS
@given(conversations())
def test_the_same_inputs_give_the_same_results(conversation: Conversation) -> None:
    first, second = talk(conversation), talk(conversation)
    assert first.steps == second.steps
    assert first.variables == second.variables


@PROPERTY_SETTINGS
@given(conversations())
def test_replaying_the_event_log_reproduces_the_position_and_variables(
    conversation: Conversation,
) -> None:
    transcript = talk(conversation)
    position, values = replay(transcript.events, finals_of(conversation.data))
    assert position == transcript.steps[-1].position
    assert values == transcript.variables


def test_the_journey_transitions_of_the_log_alone_give_the_position_after_a_failed_chain() -> None:
    async def failing(arguments: dict[str, Any]) -> Any:
        raise RuntimeError("down")

    data = bundle(
        journey(
            "J",
            [chat("a"), tool_state("t", "lookup"), chat("b")],
            [edge("a", "t", "go"), edge("t", "b")],
        ),
        tools=[{"name": "lookup"}],
    )

    async def scenario() -> None:
        store = MemoryStore()
        await store.ensure_workspace(WS)
        report = await store.publish(WS, bundle_from_data(data))
        tools = ToolRegistry()
        tools.register("lookup", failing)
        evaluator = ScriptedEvaluator(["start", "go"])
        runtime = Runtime(store, evaluator=evaluator, tools=tools)
        session = await runtime.start_session(WS, report.agent_id)
        await runtime.process_message(WS, session.id, "hi")
        result = await runtime.process_message(WS, session.id, "go")
        assert result.state == "a"
        moves = [
            e.content["to"]
            for e in await store.list_events(WS, session.id)
            if e.event_type is EventType.JOURNEY_TRANSITION
        ]
        assert moves[-1] == "a"

    asyncio.run(scenario())
