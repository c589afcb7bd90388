"""The turn semantics of the architecture, one rule per test, through the Python API.

Every test publishes a small inline bundle to a :class:`MemoryStore`, starts a session
and talks to it with :class:`Runtime.process_message`; natural-language conditions
are decided by a :class:`ScriptedEvaluator` told which of them hold in each turn.
The helpers at the top (bundle builders, :class:`Chat`) are shared with the other
engine test modules.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import pytest

from parlant_runtime import bundle_from_data
from parlant_runtime.engine import (
    Candidate,
    ComposeRequest,
    DeterministicGenerator,
    Reply,
    ResponseGenerator,
    Runtime,
    ScriptedEvaluator,
    SessionClosed,
    ToolRegistry,
    TurnResult,
)
from parlant_runtime.engine.turn import DEFAULT_NO_MATCH, MAX_CHAIN, RUNTIME_KEY
from parlant_runtime.model import Event, EventType, Session, SessionMode, SessionStatus
from parlant_runtime.storage import MemoryStore
from parlant_runtime.storage.port import CommittedTurn, InvalidData, TurnRead

WS = "ws"
SECRET = "hunter2"

ToolFunction = Callable[[dict[str, Any]], Awaitable[Any]]


# ---------------------------------------------------------------------- bundle builders


def chat(name: str, prompt: str | None = None, **extra: Any) -> dict[str, Any]:
    """A chat state (``prompt`` defaults to ``"<name>?"``)."""
    return {"name": name, "stateType": "chat", "chatPrompt": prompt or f"{name}?", **extra}


def tool_state(name: str, tool: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "stateType": "tool", "tool": tool, **extra}


def decision(name: str, question: str = "Which way now?", **extra: Any) -> dict[str, Any]:
    return {"name": name, "stateType": "decision", "condition": question, **extra}


def final(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "stateType": "final", **extra}


def edge(
    source: str, target: str, condition: str | None = None, priority: int | None = None
) -> dict[str, Any]:
    data: dict[str, Any] = {"from": source, "to": target}
    if condition is not None:
        data["condition"] = condition
    if priority is not None:
        data["priority"] = priority
    return data


def journey(
    title: str,
    states: Sequence[dict[str, Any]],
    transitions: Sequence[dict[str, Any]] = (),
    conditions: Sequence[str] = ("start",),
    **extra: Any,
) -> dict[str, Any]:
    """A journey; its first state is the initial one."""
    listed = [dict(state) for state in states]
    if listed:
        listed[0]["isInitial"] = True
    return {
        "title": title,
        "conditions": list(conditions),
        "states": listed,
        "transitions": list(transitions),
        **extra,
    }


def bundle(*journeys: dict[str, Any], mode: str = "fluid", **sections: Any) -> dict[str, Any]:
    """Bundle data: an agent (``mode`` composition; ``agent`` merges into it) and sections."""
    agent = {"name": "Test agent", "compositionMode": mode, **sections.pop("agent", {})}
    return {"agent": agent, "journeys": list(journeys), **sections}


def flow(*states: dict[str, Any], transitions: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    """A bundle with one journey ``J`` started by the natural condition ``start``."""
    return bundle(journey("J", states, transitions))


# ---------------------------------------------------------------------- a conversation


class CountingEvaluator(ScriptedEvaluator):
    """A scripted evaluator that records each batch it is asked to decide."""

    def __init__(self, holds: Iterable[str] = ()) -> None:
        super().__init__(holds)
        self.batches: list[tuple[str, ...]] = []
        self.messages: list[str] = []

    async def evaluate(
        self, conditions: Sequence[str], *, message: str, context: Mapping[str, Any]
    ) -> Mapping[str, bool]:
        self.batches.append(tuple(conditions))
        self.messages.append(message)
        return await super().evaluate(conditions, message=message, context=context)


@dataclass
class Chat:
    """One session of a published agent, and the runtime that serves it."""

    store: MemoryStore
    runtime: Runtime
    evaluator: CountingEvaluator
    agent_id: UUID
    session: Session
    data: dict[str, Any] = field(default_factory=dict)

    async def say(
        self,
        text: str,
        *holds: str,
        variables: Mapping[str, Any] | None = None,
        key: str | None = None,
    ) -> TurnResult:
        """Send ``text``; exactly the natural-language conditions ``holds`` are true."""
        self.evaluator.set(holds)
        return await self.runtime.process_message(
            WS, self.session.id, text, variables=variables, idempotency_key=key
        )

    async def events(self) -> list[Event]:
        return list(await self.store.list_events(WS, self.session.id))

    async def values(self) -> dict[str, Any]:
        return {v.key: v.value for v in await self.store.get_variables(WS, self.session.id)}

    async def current(self) -> Session:
        return await self.store.get_session(WS, self.session.id)

    async def ids(self) -> dict[str, UUID]:
        """Stored ids by a readable key: ``guideline:<name>``, ``canned:<name>``,
        ``journey:<title>``, ``state:<title>/<name>``, ``transition:<title>/<from>-><to>``
        (the first of equal ones), ``link:<title>/<guideline>``, ``tool:<name>``."""
        stored = (await self.store.load_agent(WS, self.agent_id)).bundle
        found: dict[str, UUID] = {"agent": stored.agent.id}
        for g in stored.guidelines:
            found[f"guideline:{g.name}"] = g.id
        for c in stored.canned_responses:
            found[f"canned:{c.name}"] = c.id
        for t in stored.tools:
            found[f"tool:{t.name}"] = t.id
        for j in stored.journeys:
            found[f"journey:{j.title}"] = j.id
            for s in j.states:
                found[f"state:{j.title}/{s.name}"] = s.id
            for tr in j.transitions:
                found.setdefault(f"transition:{j.title}/{tr.from_state}->{tr.to_state}", tr.id)
            for link in j.guidelines:
                found[f"link:{j.title}/{link.guideline}"] = link.id
        return found


async def open_chat(
    data: dict[str, Any],
    *,
    tools: Mapping[str, ToolFunction] | None = None,
    generator: ResponseGenerator | None = None,
    variables: Mapping[str, Any] | None = None,
    customer_id: str | None = "c1",
    mode: SessionMode = SessionMode.AUTO,
    store: MemoryStore | None = None,
) -> Chat:
    """Publish ``data`` to a fresh memory store (or ``store``) and start one session."""
    store = store or MemoryStore()
    await store.ensure_workspace(WS)
    bundle = bundle_from_data(data)
    await store.ensure_knowledge_bases(WS, [kb.knowledge_base_id for kb in bundle.knowledge_bases])
    report = await store.publish(WS, bundle)
    registry = ToolRegistry()
    for name, function in (tools or {}).items():
        registry.register(name, function)
    evaluator = CountingEvaluator()
    runtime = Runtime(store, evaluator=evaluator, generator=generator, tools=registry)
    session = await runtime.start_session(
        WS, report.agent_id, customer_id=customer_id, variables=variables, mode=mode
    )
    return Chat(store, runtime, evaluator, report.agent_id, session, data)


def run_chat(data: dict[str, Any], scenario: Callable[[Chat], Awaitable[None]], **kw: Any) -> None:
    """Open a chat on ``data`` and run ``scenario`` on it, on a fresh event loop."""

    async def main() -> None:
        await scenario(await open_chat(data, **kw))

    asyncio.run(main())


def kinds(events: Iterable[Event]) -> list[str]:
    return [event.event_type.value for event in events]


def as_json(value: Any) -> Any:
    """``value`` as JSON reads it back (tuples become lists)."""
    return json.loads(json.dumps(value, default=str))


def condition_trace(result: TurnResult, where: str) -> tuple[bool, str | None]:
    """``(result, reason)`` of the one condition evaluated at ``where`` this turn."""
    found = [(c.result, c.reason) for c in result.trace.conditions if c.where == where]
    assert len(found) == 1, (where, result.trace.conditions)
    return found[0]


# ---------------------------------------------------------------------- conditions


def test_an_empty_or_missing_condition_always_holds() -> None:
    data = bundle(
        journey(
            "J",
            [chat("a"), chat("b"), chat("c")],
            [edge("a", "b"), edge("b", "c", "")],
            conditions=[""],
        ),
        guidelines=[{"name": "always", "action": "Be kind."}],
    )

    async def scenario(c: Chat) -> None:
        first = await c.say("hi")
        assert (first.journey, first.state) == ("J", "a")
        assert condition_trace(first, "journey J") == (True, None)
        second = await c.say("anything")
        assert second.state == "b"
        third = await c.say("anything")
        assert third.state == "c"
        for result in (first, second, third):
            assert result.guidelines == ("always",)
        assert {t.kind for t in third.trace.conditions} == {"always"}

    run_chat(data, scenario)


EXPRESSIONS = [
    ("{{ vars.count > 2 }}", True),
    ("{{ vars.count > 5 }}", False),
    ("{{ vars.day == 'Monday' }}", True),  # set by the caller with this very message
    ("{{ 'booking' in message }}", True),
    ("{{ message | length > 100 }}", False),
    ("{{ session.customer == 'c1' and session.mode == 'auto' }}", True),
    ("{{ session.status == 'completed' }}", False),
    ("{{ journey.title == 'Flow' }}", True),
    ("{{ state.name == 'a' and state.type == 'chat' }}", True),
    ("{{ state.name == 'b' }}", False),
    ("{{ mentions('appointment') }}", True),  # by its synonym "booking"
    ("{{ mentions('cancellation') }}", False),
]


@pytest.mark.parametrize(("expression", "holds"), EXPRESSIONS)
def test_expression_conditions_are_evaluated_over_the_turn_context(
    expression: str, holds: bool
) -> None:
    data = bundle(
        journey("Flow", [chat("a"), chat("b")], [edge("a", "b", expression)]),
        variables=[{"key": "count", "valueType": "number", "value": 3}, {"key": "day"}],
        terms=[
            {"name": "appointment", "synonyms": ["booking", "visit"]},
            {"name": "cancellation", "synonyms": ["call off"]},
        ],
    )

    async def scenario(c: Chat) -> None:
        await c.say("hello", "start")
        result = await c.say("I'd like a booking", variables={"day": "Monday"})
        assert result.state == ("b" if holds else "a")
        assert condition_trace(result, "Flow/a->b") == (holds, None)
        assert [t.kind for t in result.trace.conditions] == ["expression"]

    run_chat(data, scenario)


def test_natural_language_conditions_are_decided_in_one_batch_per_turn() -> None:
    data = bundle(
        journey(
            "J",
            [chat("a", condition="the customer already said it"), chat("b"), decision("d")],
            [
                edge("a", "b", "customer agrees"),
                edge("a", "b", "{{ vars.flag is defined }}"),
                edge("b", "d", "customer agrees"),  # the same text twice: asked once
            ],
            conditions=["customer wants to start"],
            guidelines=[{"guideline": "polite", "journeySpecificCondition": "customer is upset"}],
        ),
        guidelines=[
            {"name": "polite", "condition": "customer is rude", "action": "Stay calm."},
            {"name": "expr", "condition": "{{ message | length > 1 }}", "action": "Answer."},
        ],
        cannedResponses=[{"name": "hi", "template": "Hi!", "conditions": ["customer greets"]}],
    )
    natural = {
        "customer wants to start",
        "the customer already said it",
        "customer agrees",
        "customer is upset",
        "customer is rude",
        "customer greets",
    }

    async def scenario(c: Chat) -> None:
        await c.say("hello", "customer wants to start")
        await c.say("yes", "customer agrees")
        await c.say("fine")
        assert len(c.evaluator.batches) == 3  # exactly one call per turn
        for batch in c.evaluator.batches:
            assert len(batch) == len(set(batch)) == len(natural)
            assert set(batch) == natural  # every open natural condition, no expression
        assert c.evaluator.messages == ["hello", "yes", "fine"]

    run_chat(data, scenario)


BROKEN_CONDITIONS = [
    ("{{ vars.missing > 1 }}", "missing"),  # a value that is missing
    ("{{ 1 / vars.zero > 0 }}", "division"),  # an error while evaluating
    ("{{ state.label == 'a' }}", "label"),  # a state has a name and a type, nothing else
    ("{{ vars.count.digits.first }}", "digits"),
    ("{{ vars.count > }}", "expression"),  # does not even compile
]


@pytest.mark.parametrize(("condition", "why"), BROKEN_CONDITIONS)
def test_a_condition_that_cannot_be_evaluated_is_false_and_the_trace_says_why(
    condition: str, why: str
) -> None:
    data = bundle(
        guidelines=[
            {"name": "broken", "condition": condition, "action": "Never.", "priority": 900},
            {"name": "fine", "action": "Answer the question."},
        ],
        variables=[
            {"key": "count", "valueType": "number", "value": 3},
            {"key": "zero", "valueType": "number", "value": 0},
        ],
    )

    async def scenario(c: Chat) -> None:
        result = await c.say("hi")
        assert result.guidelines == ("fine",)
        assert result.replies == ("Answer the question.",)
        holds, reason = condition_trace(result, "guideline broken")
        assert not holds
        assert reason is not None
        assert why in reason
        assert result.trace.errors == []  # it never fails the turn
        assert EventType.STATUS_UPDATE.value not in kinds(result.events)

    run_chat(data, scenario)


def test_outside_a_journey_state_and_journey_are_none_so_conditions_on_them_are_plainly_false() -> (
    None
):
    data = bundle(
        journey("Flow", [chat("a"), chat("b")], [edge("a", "b")]),
        guidelines=[
            {"name": "in_a", "condition": "{{ state.name == 'a' }}", "action": "At a."},
            {"name": "outside", "condition": "{{ journey.title is none }}", "action": "Free."},
        ],
    )

    async def scenario(c: Chat) -> None:
        result = await c.say("hi")
        assert result.journey is None
        assert condition_trace(result, "guideline in_a") == (False, None)  # no "cannot"
        assert condition_trace(result, "guideline outside") == (True, None)
        assert result.guidelines == ("outside",)
        result = await c.say("let's go", "start")
        assert (result.journey, result.state) == ("Flow", "a")
        assert condition_trace(result, "guideline in_a") == (True, None)
        assert result.guidelines == ("in_a",)

    run_chat(data, scenario)


# ---------------------------------------------------------------------- activation


def test_with_no_active_journey_the_first_enabled_journey_whose_condition_holds_starts() -> None:
    data = bundle(
        journey("Off", [chat("x")], enabled=False),
        journey("Unconditioned", [chat("x")], conditions=[]),
        journey("Other", [chat("x")], conditions=["customer wants something else"]),
        journey("Second", [chat("first"), chat("later")], conditions=["nope", "start"]),
        journey("Third", [chat("x")]),
    )

    async def scenario(c: Chat) -> None:
        result = await c.say("hi", "start")
        assert (result.journey, result.state) == ("Second", "first")
        assert result.trace.path == ["Second/first"]
        moves = [e for e in result.events if e.event_type is EventType.JOURNEY_TRANSITION]
        assert [m.content for m in moves] == [{"journey": "Second", "from": None, "to": "first"}]
        ids = await c.ids()
        assert moves[0].journey_id == ids["journey:Second"]
        assert moves[0].state_id == ids["state:Second/first"]
        assert [t.where for t in result.trace.conditions][:2] == ["journey Other", "journey Second"]
        assert "journey Off" not in [t.where for t in result.trace.conditions]
        session = await c.current()
        assert session.current_journey_id == ids["journey:Second"]
        assert session.current_state_id == ids["state:Second/first"]

    run_chat(data, scenario)


def test_a_disabled_journey_never_starts() -> None:
    data = bundle(journey("Off", [chat("x")], conditions=[""], enabled=False))

    async def scenario(c: Chat) -> None:
        for _ in range(2):
            result = await c.say("hi", "start")
            assert (result.journey, result.state) == (None, None)
            assert EventType.JOURNEY_TRANSITION.value not in kinds(result.events)

    run_chat(data, scenario)


def test_a_journey_without_activation_conditions_never_starts_by_itself() -> None:
    data = bundle(journey("Manual", [chat("x")], conditions=[]))

    async def scenario(c: Chat) -> None:
        result = await c.say("hi", "start", "anything at all")
        assert result.journey is None
        assert result.trace.path == []

    run_chat(data, scenario)


def test_no_other_journey_starts_while_one_is_active() -> None:
    data = bundle(
        journey("First", [chat("a"), chat("b")], [edge("a", "b", "go on")]),
        journey("Second", [chat("x")], conditions=["something else"]),
    )

    async def scenario(c: Chat) -> None:
        await c.say("hi", "start")
        result = await c.say("hey", "start", "something else")
        assert (result.journey, result.state) == ("First", "a")
        assert not [t for t in result.trace.conditions if t.where.startswith("journey ")]

    run_chat(data, scenario)


# ---------------------------------------------------------------------- transitions


def test_transitions_are_tried_in_priority_order_and_the_first_that_holds_is_taken() -> None:
    data = flow(
        chat("a"),
        chat("low"),
        chat("high"),
        chat("middle"),
        chat("never"),
        transitions=[
            edge("a", "low", "x", priority=100),
            edge("a", "never", "not said", priority=1000),
            edge("a", "high", "y", priority=300),
            edge("a", "middle", "z", priority=200),
        ],
    )

    async def scenario(c: Chat) -> None:
        await c.say("hi", "start")
        result = await c.say("go", "x", "y", "z")
        assert result.state == "high"
        assert [(t.target, t.priority, t.outcome) for t in result.trace.transitions] == [
            ("never", 1000, "condition false"),
            ("high", 300, "taken"),
            ("middle", 200, "not tried"),
            ("low", 100, "not tried"),
        ]

    run_chat(data, scenario)


@pytest.mark.parametrize("first", ["b", "c"])
def test_transitions_of_equal_priority_are_tried_in_file_order(first: str) -> None:
    second = "c" if first == "b" else "b"
    data = flow(
        chat("a"),
        chat("b"),
        chat("c"),
        transitions=[edge("a", first, "go"), edge("a", second, "go")],
    )

    async def scenario(c: Chat) -> None:
        await c.say("hi", "start")
        result = await c.say("go", "go")
        assert result.state == first
        assert [t.outcome for t in result.trace.transitions] == ["taken", "not tried"]

    run_chat(data, scenario)


def test_when_no_transition_holds_the_session_stays() -> None:
    data = flow(
        chat("a", "Where to?"),
        chat("b"),
        chat("c"),
        transitions=[edge("a", "b", "to b"), edge("a", "c", "{{ vars.go is defined }}")],
    )

    async def scenario(c: Chat) -> None:
        await c.say("hi", "start")
        before = await c.current()
        result = await c.say("hmm")
        assert result.state == "a"
        assert [t.outcome for t in result.trace.transitions] == ["condition false"] * 2
        assert result.trace.path == []
        assert EventType.JOURNEY_TRANSITION.value not in kinds(result.events)
        assert result.replies == ("Where to?",)  # fluid: it asks again
        after = await c.current()
        assert after.current_state_id == before.current_state_id

    run_chat(data, scenario)


@pytest.mark.parametrize("allow_revisiting", [True, False])
def test_a_transition_into_a_visited_state_is_not_eligible_when_revisiting_is_forbidden(
    allow_revisiting: bool,
) -> None:
    data = bundle(
        journey(
            "J",
            [chat("a"), chat("b"), chat("c")],
            [
                edge("a", "b", "go"),
                edge("b", "a", "back", priority=200),
                edge("b", "c", "back", priority=100),
            ],
            allowRevisiting=allow_revisiting,
        )
    )

    async def scenario(c: Chat) -> None:
        await c.say("hi", "start")
        await c.say("go", "go")
        result = await c.say("back", "back")
        if allow_revisiting:
            assert result.state == "a"
            assert [t.outcome for t in result.trace.transitions] == ["taken", "not tried"]
        else:
            assert result.state == "c"
            assert [(t.target, t.outcome) for t in result.trace.transitions] == [
                ("a", "revisit forbidden"),
                ("c", "taken"),
            ]

    run_chat(data, scenario)


# ---------------------------------------------------------------------- states


def test_a_chat_state_renders_its_prompt_and_waits_for_the_customer() -> None:
    data = flow(
        chat("a", "Hello {{ vars.name }}, what can I do?"),
        chat("b", "B now."),
        transitions=[edge("a", "b")],  # unconditional, yet only taken on the next message
    )

    async def scenario(c: Chat) -> None:
        first = await c.say("hi", "start")
        assert (first.state, first.replies) == ("a", ("Hello Ada, what can I do?",))
        assert first.trace.path == ["J/a"]
        assert first.trace.reply is not None
        assert first.trace.reply.source == "state_prompt"
        second = await c.say("ok")
        assert (second.state, second.replies) == ("b", ("B now.",))

    run_chat(data, scenario, variables={"name": "Ada"})


LOOKUP = {
    "name": "lookup",
    "parameters": {
        "type": "object",
        "properties": {"day": {"type": "string"}, "dept": {"type": "string"}},
        "required": ["day", "dept"],
    },
    "returnSchema": {"type": "object", "properties": {"free": {"type": "boolean"}}},
}


def lookup_flow() -> dict[str, Any]:
    return bundle(
        journey(
            "J",
            [
                chat("a", "Which day?"),
                tool_state(
                    "t",
                    "lookup",
                    toolConfig={"arguments": {"day": "{{ vars.day }}"}, "resultVariable": "slots"},
                ),
                decision("d", "Is the day free?"),
                chat("ok", "Free at {{ vars.slots.times | join(', ') }}."),
                chat("full", "{{ vars.day }} is full."),
            ],
            [
                edge("a", "t", "{{ vars.day is defined }}"),
                edge("t", "d"),
                edge("d", "ok", "{{ tool.lookup.free }}", priority=200),
                edge("d", "full", priority=100),
            ],
        ),
        tools=[LOOKUP],
        variables=[{"key": "dept", "value": "gp"}],
    )


@pytest.mark.parametrize("free", [True, False])
def test_a_tool_state_calls_its_tool_and_a_decision_state_routes_without_waiting(
    free: bool,
) -> None:
    received: list[dict[str, Any]] = []

    async def lookup(arguments: dict[str, Any]) -> Any:
        received.append(arguments)
        return {"free": free, "times": ["9:00", "11:30"]}

    async def scenario(c: Chat) -> None:
        await c.say("hi", "start")
        result = await c.say("Monday", variables={"day": "Monday"})
        assert received == [{"day": "Monday", "dept": "gp"}]  # config, then same-name variable
        assert result.tool_calls == ("lookup",)
        assert result.state == ("ok" if free else "full")
        assert result.trace.path == ["J/t", "J/d", f"J/{result.state}"]
        assert result.replies == (("Free at 9:00, 11:30." if free else "Monday is full."),)
        assert kinds(result.events) == [
            "customer_message",
            "variable_update",
            "journey_transition",
            "tool_call",
            "tool_result",
            "variable_update",
            "journey_transition",
            "journey_transition",
            "agent_message",
        ]
        call, answer = result.events[3], result.events[4]
        assert call.content == {"tool": "lookup", "arguments": {"day": "Monday", "dept": "gp"}}
        assert answer.content["ok"] is True
        assert answer.content["result"] == {"free": free, "times": ["9:00", "11:30"]}
        assert call.tool_call_id == answer.tool_call_id is not None
        assert result.events[5].content == {
            "key": "slots",
            "source": "tool:lookup",
            "value": {"free": free, "times": ["9:00", "11:30"]},
        }
        assert (await c.values())["slots"] == {"free": free, "times": ["9:00", "11:30"]}
        assert "Is the day free?" not in c.evaluator.batches[-1]  # a question, not a condition
        assert not [t for t in result.trace.conditions if t.text == "Is the day free?"]

    run_chat(lookup_flow(), scenario, tools={"lookup": lookup})


def test_a_final_state_ends_the_journey_and_clears_the_position() -> None:
    data = flow(
        chat("a"),
        final("end", chatPrompt="Goodbye, {{ vars.name }}!"),
        transitions=[edge("a", "end", "done")],
    )

    async def scenario(c: Chat) -> None:
        await c.say("hi", "start")
        result = await c.say("bye", "done")
        assert (result.journey, result.state) == (None, None)
        assert result.trace.path == ["J/end"]
        assert result.replies == ("Goodbye, Ada!",)
        moves = [e for e in result.events if e.event_type is EventType.JOURNEY_TRANSITION]
        assert moves[-1].content == {"journey": "J", "from": "a", "to": "end"}
        session = await c.current()
        assert (session.current_journey_id, session.current_state_id) == (None, None)
        ids = await c.ids()
        usage = await c.store.usage(WS, "journey", ids["journey:J"])
        assert usage["total_sessions"] == 1  # completion counter
        again = await c.say("hello again", "start")  # a journey may start afresh
        assert (again.journey, again.state) == ("J", "a")

    run_chat(data, scenario, variables={"name": "Ada"})


# ---------------------------------------------------------------------- skipping

SKIP_CASES = [
    # allowSkipping (journey), allowSkip (state), variables, expected state, skipped
    pytest.param(True, True, {"name": "Ada"}, "next", True, id="skipped"),
    pytest.param(False, True, {"name": "Ada"}, "ask", False, id="journey-forbids"),
    pytest.param(True, False, {"name": "Ada"}, "ask", False, id="state-forbids"),
    pytest.param(True, True, {}, "ask", False, id="condition-false"),
]


@pytest.mark.parametrize(
    ("allow_skipping", "allow_skip", "variables", "expected", "skipped"), SKIP_CASES
)
def test_a_state_whose_skip_condition_holds_is_passed_through(
    allow_skipping: bool,
    allow_skip: bool,
    variables: dict[str, Any],
    expected: str,
    skipped: bool,
) -> None:
    data = bundle(
        journey(
            "J",
            [
                chat("hello"),
                chat(
                    "ask",
                    "Your name?",
                    condition="{{ vars.name is defined }}",
                    allowSkip=allow_skip,
                ),
                chat("next", "Thanks."),
            ],
            [edge("hello", "ask", "go"), edge("ask", "next", "{{ vars.name is defined }}")],
            allowSkipping=allow_skipping,
        )
    )

    async def scenario(c: Chat) -> None:
        await c.say("hi", "start")
        result = await c.say("go", "go", variables=variables)
        assert result.state == expected
        path = ["J/ask", "J/next"] if skipped else ["J/ask"]
        assert result.trace.path == path
        skip_checks = [t for t in result.trace.conditions if t.where == "J/ask skip"]
        assert bool(skip_checks) == (allow_skipping and allow_skip)

    run_chat(data, scenario)


def test_a_skippable_state_with_no_exit_that_holds_waits_after_all() -> None:
    data = flow(
        chat("hello"),
        chat("ask", "Your name?", condition="customer already gave a name"),
        chat("next"),
        transitions=[edge("hello", "ask", "go"), edge("ask", "next", "{{ vars.name is defined }}")],
    )

    async def scenario(c: Chat) -> None:
        await c.say("hi", "start")
        result = await c.say("go", "go", "customer already gave a name")
        assert result.state == "ask"
        assert result.trace.errors == []

    run_chat(data, scenario)


def test_the_initial_state_is_skipped_on_activation_when_its_skip_condition_holds() -> None:
    data = flow(
        chat("ask", "Your name?", condition="{{ vars.name is defined }}"),
        chat("next", "Hello {{ vars.name }}."),
        transitions=[edge("ask", "next", "{{ vars.name is defined }}")],
    )

    async def scenario(c: Chat) -> None:
        result = await c.say("hi", "start", variables={"name": "Ada"})
        assert (result.state, result.replies) == ("next", ("Hello Ada.",))
        assert result.trace.path == ["J/ask", "J/next"]

    run_chat(data, scenario)


def test_a_tool_state_whose_skip_condition_holds_is_passed_through_without_a_call() -> None:
    calls: list[dict[str, Any]] = []

    async def lookup(arguments: dict[str, Any]) -> Any:
        calls.append(arguments)
        return {"free": True}

    data = bundle(
        journey(
            "J",
            [
                chat("a"),
                tool_state(
                    "t",
                    "lookup",
                    condition="{{ vars.slots is defined }}",
                    toolConfig={"arguments": {"day": "Monday"}, "resultVariable": "slots"},
                ),
                chat("b"),
            ],
            [edge("a", "t", "go"), edge("t", "b")],
        ),
        tools=[LOOKUP],
        variables=[{"key": "dept", "value": "gp"}],
    )

    async def scenario(c: Chat) -> None:
        await c.say("hi", "start")
        result = await c.say("go", "go", variables={"slots": {"free": True}})
        assert result.state == "b"
        assert result.trace.path == ["J/t", "J/b"]
        assert calls == []
        assert result.tool_calls == ()

    run_chat(data, scenario, tools={"lookup": lookup})


# ---------------------------------------------------------------------- bounded chains


def test_a_loop_that_never_waits_stops_with_an_error_at_the_last_waiting_state() -> None:
    data = flow(
        chat("a", "Still here."),
        decision("d1"),
        decision("d2"),
        chat("b"),
        transitions=[
            edge("a", "d1", "go"),
            edge("d1", "d2"),
            edge("d2", "d1"),
            edge("a", "b", "to b", priority=50),
        ],
    )

    async def scenario(c: Chat) -> None:
        await c.say("hi", "start")
        before = await c.current()
        result = await c.say("go", "go")
        assert result.state == "a"
        errors = [e for e in result.events if e.event_type is EventType.STATUS_UPDATE]
        assert len(errors) == 1
        assert f"{MAX_CHAIN} states without waiting" in errors[0].content["error"]
        assert result.trace.errors == [errors[0].content["error"]]
        assert len(result.trace.path) == MAX_CHAIN  # bounded
        after = await c.current()
        assert (after.current_journey_id, after.current_state_id) == (
            before.current_journey_id,
            before.current_state_id,
        )
        following = await c.say("then b", "to b")  # the next turn works
        assert (following.state, following.trace.errors) == ("b", [])

    run_chat(data, scenario)


def test_a_loop_entered_on_activation_leaves_the_session_outside_any_journey() -> None:
    data = flow(decision("d1"), decision("d2"), transitions=[edge("d1", "d2"), edge("d2", "d1")])

    async def scenario(c: Chat) -> None:
        result = await c.say("hi", "start")
        assert (result.journey, result.state) == (None, None)
        assert len(result.trace.errors) == 1
        session = await c.current()
        assert session.current_journey_id is None

    run_chat(data, scenario)


def test_a_decision_with_no_exit_that_holds_stops_with_an_error() -> None:
    data = flow(
        chat("a"),
        decision("d"),
        chat("b"),
        transitions=[edge("a", "d", "go"), edge("d", "b", "{{ vars.ok is defined }}")],
    )

    async def scenario(c: Chat) -> None:
        await c.say("hi", "start")
        result = await c.say("go", "go")
        assert result.state == "a"
        assert "decision state 'd' has no exit that holds" in result.trace.errors[0]

    run_chat(data, scenario)


# ---------------------------------------------------------------------- guidelines


def test_agent_guidelines_match_by_condition_and_are_ordered_by_priority() -> None:
    data = bundle(
        guidelines=[
            {"name": "low", "action": "Low.", "priority": 50},
            {"name": "tie_first", "condition": "{{ true }}", "action": "T1.", "priority": 200},
            {"name": "high", "condition": "customer is angry", "action": "High.", "priority": 500},
            {"name": "tie_second", "action": "T2.", "priority": 200},
            {"name": "off", "action": "Off.", "priority": 1000, "enabled": False},
            {"name": "unmet", "condition": "customer is happy", "action": "No.", "priority": 900},
        ]
    )

    async def scenario(c: Chat) -> None:
        result = await c.say("grr", "customer is angry")
        assert result.guidelines == ("high", "tie_first", "tie_second", "low")
        assert result.trace.guidelines == list(result.guidelines)
        assert result.replies == ("High.",)  # fluid, nothing else: the top action
        ids = await c.ids()
        assert (await c.store.usage(WS, "guideline", ids["guideline:high"]))["match_count"] == 1
        assert (await c.store.usage(WS, "guideline", ids["guideline:unmet"]))["match_count"] == 0

    run_chat(data, scenario)


LINK_CASES = [
    # link fields, natural conditions that hold, expected guideline order inside the journey
    pytest.param(
        {"journeySpecificCondition": "in checkout", "priorityOverride": 900},
        ("asks price", "in checkout"),
        ("price", "other"),
        id="both-hold-override-wins",
    ),
    pytest.param(
        {"journeySpecificCondition": "in checkout", "priorityOverride": 900},
        ("asks price",),
        ("other",),
        id="journey-condition-false",
    ),
    pytest.param(
        {"journeySpecificCondition": "in checkout", "priorityOverride": 900},
        ("in checkout",),
        ("other",),
        id="guideline-condition-false",
    ),
    pytest.param({}, ("asks price",), ("other", "price"), id="no-override"),
    pytest.param(
        {"journeySpecificCondition": "in checkout", "priorityOverride": 900, "enabled": False},
        ("asks price",),
        ("other", "price"),
        id="link-disabled",
    ),
]


@pytest.mark.parametrize(("link", "holds", "expected"), LINK_CASES)
def test_a_journey_guideline_link_applies_while_its_journey_is_active(
    link: dict[str, Any], holds: tuple[str, ...], expected: tuple[str, ...]
) -> None:
    data = bundle(
        journey("Shop", [chat("a", None)], guidelines=[{"guideline": "price", **link}]),
        guidelines=[
            {"name": "price", "condition": "asks price", "action": "Quote.", "priority": 100},
            {"name": "other", "action": "Other.", "priority": 300},
        ],
    )

    async def scenario(c: Chat) -> None:
        outside = await c.say("how much?", "asks price", "in checkout")
        assert outside.journey is None
        assert outside.guidelines == ("other", "price")  # by its own condition and priority
        await c.say("shop", "start")
        inside = await c.say("how much?", *holds)
        assert inside.journey == "Shop"
        assert inside.guidelines == expected
        ids = await c.ids()
        if "enabled" not in link:
            usage = await c.store.usage(WS, "journey_guideline", ids["link:Shop/price"])
            assert usage["match_count"] == ("price" in expected)

    run_chat(data, scenario)


# ---------------------------------------------------------------------- strict composition

STRICT_CANNED = [
    {"name": "conditional", "template": "Refund.", "conditions": ["asks refund"], "priority": 900},
    {"name": "unfillable", "template": "Dear {{ vars.missing }}.", "priority": 800},
    {"name": "best", "template": "Best for {{ vars.name }}.", "priority": 500},
    {"name": "tie", "template": "Tie.", "priority": 500},
    {"name": "low", "template": "Low.", "priority": 100},
]


def test_strict_sends_the_highest_priority_canned_response_that_is_eligible_and_fillable() -> None:
    data = bundle(mode="strict", cannedResponses=STRICT_CANNED)

    async def scenario(c: Chat) -> None:
        result = await c.say("hi")
        assert result.replies == ("Best for Ada.",)
        trace = result.trace.reply
        assert trace is not None
        assert (trace.source, trace.chosen) == ("canned_response", "canned best")
        skipped = dict(trace.skipped)
        assert skipped["canned conditional"] == "a condition does not hold"
        assert "missing" in skipped["canned unfillable"]
        ids = await c.ids()
        assert (await c.store.usage(WS, "canned_response", ids["canned:best"]))["use_count"] == 1
        assert (await c.store.usage(WS, "canned_response", ids["canned:tie"]))["use_count"] == 0
        refund = await c.say("refund!", "asks refund")
        assert refund.replies == ("Refund.",)

    run_chat(data, scenario, variables={"name": "Ada"})


@pytest.mark.parametrize(
    ("no_match", "expected"),
    [
        ("Sorry {{ vars.name }}, I cannot help.", "Sorry Ada, I cannot help."),
        (None, DEFAULT_NO_MATCH),
        ("Sorry {{ vars.missing }}.", DEFAULT_NO_MATCH),  # unfillable: the default
    ],
)
def test_strict_with_no_canned_response_left_sends_the_no_match_text(
    no_match: str | None, expected: str
) -> None:
    agent = {"noMatchResponse": no_match} if no_match is not None else {}
    data = bundle(
        journey("J", [chat("a", "The prompt is never sent in strict mode.")]),
        mode="strict",
        agent=agent,
        cannedResponses=[
            {"name": "unfillable", "template": "{{ vars.missing }}"},
            {"name": "conditional", "template": "No.", "conditions": ["never holds"]},
        ],
    )

    async def scenario(c: Chat) -> None:
        result = await c.say("hi", "start")
        assert result.state == "a"
        assert result.replies == (expected,)
        assert result.trace.reply is not None
        assert result.trace.reply.source == "no_match"

    run_chat(data, scenario, variables={"name": "Ada"})


# ---------------------------------------------------------------------- fluid composition


def _candidate(name: str, *, exact: bool = False) -> Candidate:
    return Candidate(name, f"text of {name}", 100, exact)


GENERATOR_ORDER = [
    # prompt, entered, guidelines, candidates, expected (source, text)
    pytest.param(
        "P",
        True,
        ("G",),
        (_candidate("plain"), _candidate("exact", exact=True)),
        ("canned_response", "text of exact"),
        id="1-exact-canned",
    ),
    pytest.param(
        "P", True, ("G",), (_candidate("plain"),), ("state_prompt", "P"), id="2-entered-prompt"
    ),
    pytest.param(
        "P",
        False,
        ("G",),
        (_candidate("plain"), _candidate("second")),
        ("canned_response", "text of plain"),
        id="3-canned",
    ),
    pytest.param("P", False, ("G",), (), ("state_prompt", "P"), id="4-staying-prompt"),
    pytest.param(None, False, ("G1", "G2"), (), ("guideline", "G1"), id="5-guideline"),
    pytest.param(None, False, (), (), None, id="6-nothing"),
]


@pytest.mark.parametrize(
    ("prompt", "entered", "guidelines", "candidates", "expected"), GENERATOR_ORDER
)
def test_the_deterministic_generator_follows_its_documented_order(
    prompt: str | None,
    entered: bool,
    guidelines: tuple[str, ...],
    candidates: tuple[Candidate, ...],
    expected: tuple[str, str] | None,
) -> None:
    request = ComposeRequest(prompt, entered, guidelines, candidates, "message")
    reply = asyncio.run(DeterministicGenerator().compose(request))
    assert (None if reply is None else (reply.source, reply.text)) == expected


def test_fluid_entering_a_chat_state_sends_its_prompt_before_other_canned_responses() -> None:
    data = bundle(
        journey(
            "J", [chat("a", "Prompt of a."), chat("b", "Prompt of b.")], [edge("a", "b", "go")]
        ),
        cannedResponses=[{"name": "plain", "template": "Canned.", "priority": 1000}],
        guidelines=[{"name": "g", "action": "Action."}],
    )

    async def scenario(c: Chat) -> None:
        entered = await c.say("hi", "start")
        assert entered.replies == ("Prompt of a.",)
        staying = await c.say("hmm")  # stays: a canned response beats asking again
        assert staying.replies == ("Canned.",)
        assert staying.trace.reply is not None
        assert staying.trace.reply.chosen == "canned plain"

    run_chat(data, scenario)


class Rephrasing:
    """A generator as an LLM would be: rephrases everything but exact candidates."""

    def __init__(self) -> None:
        self.requests: list[ComposeRequest] = []

    async def compose(self, request: ComposeRequest) -> Reply | None:
        self.requests.append(request)
        exact = [c for c in request.candidates if c.exact]
        if exact:
            return Reply(exact[0].text, "canned_response", exact[0].name)
        return Reply("REPHRASED", "generated")


@pytest.mark.parametrize("generator", ["deterministic", "rephrasing"])
def test_a_canned_response_that_requires_an_exact_match_is_sent_verbatim(generator: str) -> None:
    template = "  Exactly THIS text,  {{ vars.name }} -- no   edits!  "
    data = bundle(
        journey("J", [chat("a", "Prompt of a.")]),
        cannedResponses=[
            {"name": "plain", "template": "Plain.", "priority": 900},
            {"name": "legal", "template": template, "requiresExactMatch": True, "priority": 10},
        ],
    )
    rephrasing = Rephrasing()
    chosen: ResponseGenerator = (
        DeterministicGenerator() if generator == "deterministic" else rephrasing
    )

    async def scenario(c: Chat) -> None:
        result = await c.say("hi", "start")  # even over the prompt of the state just entered
        assert result.replies == ("  Exactly THIS text,  Ada -- no   edits!  ",)
        if generator == "rephrasing":
            (request,) = rephrasing.requests
            assert [(x.name, x.exact) for x in request.candidates] == [
                ("canned plain", False),
                ("canned legal", True),
            ]
            assert (request.prompt, request.entered) == ("Prompt of a.", True)

    run_chat(data, scenario, variables={"name": "Ada"}, generator=chosen)


def test_fluid_with_nothing_to_say_sends_no_reply() -> None:
    data = bundle(guidelines=[{"name": "g", "condition": "never holds", "action": "A."}])

    async def scenario(c: Chat) -> None:
        result = await c.say("hi")
        assert result.replies == ()
        assert kinds(result.events) == ["customer_message"]
        assert result.trace.reply is not None
        assert result.trace.reply.source == "none"

    run_chat(data, scenario)


# ---------------------------------------------------------------------- modes


def simple_flow() -> dict[str, Any]:
    return flow(
        chat("a", "Prompt of a."), chat("b", "Prompt of b."), transitions=[edge("a", "b", "go")]
    )


def test_manual_mode_records_customer_messages_and_does_not_answer() -> None:
    async def scenario(c: Chat) -> None:
        result = await c.say("hi", "start")
        assert result.replies == ()
        assert kinds(result.events) == ["customer_message"]
        assert c.evaluator.batches == []  # nothing is decided
        assert (await c.current()).current_journey_id is None
        human = await c.runtime.post_human_message(WS, c.session.id, "A person answers.")
        assert human.replies == ("A person answers.",)
        (event,) = human.events
        assert event.event_type is EventType.AGENT_MESSAGE
        assert (event.content, event.metadata) == (
            {"text": "A person answers."},
            {"author": "human"},
        )
        assert [e.offset for e in await c.events()] == [0, 1]

    run_chat(simple_flow(), scenario, mode=SessionMode.MANUAL)


@pytest.mark.parametrize("how", ["resume", "set_mode"])
def test_a_paused_session_records_messages_and_answers_them_when_resumed(how: str) -> None:
    async def scenario(c: Chat) -> None:
        paused = await c.runtime.set_mode(WS, c.session.id, SessionMode.PAUSED)
        assert paused.session.mode is SessionMode.PAUSED
        for text in ("first", "second"):
            result = await c.say(text, "start")
            assert (result.replies, kinds(result.events)) == ((), ["customer_message"])
        assert c.evaluator.batches == []
        if how == "resume":
            resumed = await c.runtime.resume(WS, c.session.id)
        else:
            resumed = await c.runtime.set_mode(WS, c.session.id, SessionMode.AUTO)
        assert resumed.session.mode is SessionMode.AUTO
        assert (resumed.journey, resumed.state, resumed.replies) == ("J", "a", ("Prompt of a.",))
        assert c.evaluator.messages == ["first\nsecond"]  # one turn for what was pending
        assert "customer_message" not in kinds(resumed.events)  # not recorded twice
        again = await c.runtime.resume(WS, c.session.id)  # nothing pending any more
        assert (again.replies, again.events) == ((), ())
        assert len(c.evaluator.batches) == 1
        events = await c.events()
        assert [e.offset for e in events] == list(range(len(events)))
        assert kinds(events).count("customer_message") == 2

    run_chat(simple_flow(), scenario)


def test_variables_given_with_a_message_while_paused_reach_the_resumed_turn() -> None:
    data = flow(
        chat("a", "Which day?"),
        chat("b", "{{ vars.day }} it is."),
        transitions=[edge("a", "b", "{{ vars.day is defined }}")],
    )

    async def scenario(c: Chat) -> None:
        await c.say("hi", "start")
        await c.runtime.set_mode(WS, c.session.id, SessionMode.PAUSED)
        await c.say("Monday", variables={"day": "Monday"})
        resumed = await c.runtime.resume(WS, c.session.id)
        assert (resumed.state, resumed.replies) == ("b", ("Monday it is.",))

    run_chat(data, scenario)


@pytest.mark.parametrize("status", [SessionStatus.COMPLETED, SessionStatus.ABANDONED])
def test_a_closed_session_refuses_messages(status: SessionStatus) -> None:
    async def scenario(c: Chat) -> None:
        await c.say("hi", "start")
        closed = await c.runtime.end(WS, c.session.id, status=status)
        assert closed.status is status
        before = await c.current()
        with pytest.raises(SessionClosed, match=status.value):
            await c.say("hello?", "go")
        with pytest.raises(SessionClosed):
            await c.runtime.resume(WS, c.session.id)
        with pytest.raises(SessionClosed):
            await c.runtime.set_mode(WS, c.session.id, SessionMode.MANUAL)
        after = await c.current()
        assert (after.version, after.event_count) == (before.version, before.event_count)

    run_chat(simple_flow(), scenario)


def test_a_turn_that_cannot_be_committed_changes_nothing() -> None:
    data = bundle(
        journey("J", [chat("a"), chat("b")], [edge("a", "b", "go")]),
        variables=[{"key": "count", "valueType": "number", "value": 0}],
    )

    async def scenario(c: Chat) -> None:
        await c.say("hi", "start")
        before = await c.current()
        with pytest.raises(InvalidData, match="'count'"):
            await c.say("go", "go", variables={"count": "not a number"})
        after = await c.current()
        assert after == before
        assert len(await c.events()) == before.event_count
        assert (await c.values())["count"] == 0
        assert (await c.say("go", "go")).state == "b"

    run_chat(data, scenario)


# ---------------------------------------------------------------------- idempotency


def test_a_retried_message_returns_the_recorded_turn_and_writes_nothing() -> None:
    async def scenario(c: Chat) -> None:
        await c.say("hi", "start")
        first = await c.say("go", "go", key="m-1")
        assert (first.state, first.duplicate) == ("b", False)
        before = await c.current()
        retried = await c.say("go", key="m-1")  # the conditions changed: not recomputed
        assert retried.duplicate
        assert retried.replies == first.replies == ("Prompt of b.",)
        assert [e.offset for e in retried.events] == [e.offset for e in first.events]
        assert kinds(retried.events) == kinds(first.events)
        after = await c.current()
        assert (after.version, after.event_count) == (before.version, before.event_count)
        assert len(c.evaluator.batches) == 2
        other = await c.say("go", key="m-2")
        assert not other.duplicate
        assert (await c.current()).event_count > before.event_count

    run_chat(simple_flow(), scenario)


class KeyRecordedMeanwhile(MemoryStore):
    """A store on which another process records a message between our lookup and commit.

    The first read of a turn with a key answers "not recorded" although it is: what a
    concurrent process that commits the same message first looks like from here.
    """

    def __init__(self) -> None:
        super().__init__()
        self.hidden: set[str] = set()

    async def read_turn(
        self, workspace_id: str, session_id: UUID, *, idempotency_key: str | None = None
    ) -> TurnRead:
        read = await super().read_turn(workspace_id, session_id, idempotency_key=idempotency_key)
        if idempotency_key in self.hidden:
            self.hidden.discard(idempotency_key)
            return dataclasses.replace(read, message=None)
        return read


def test_a_message_recorded_meanwhile_by_another_process_is_replayed_not_refused() -> None:
    store = KeyRecordedMeanwhile()

    async def scenario(c: Chat) -> None:
        await c.say("hi", "start")
        first = await c.say("go", "go", key="m-1")
        before = await c.current()
        store.hidden.add("m-1")
        retried = await c.say("go", "go", key="m-1")  # computed, then refused as a duplicate
        assert retried.duplicate
        assert retried.replies == first.replies
        assert [e.offset for e in retried.events] == [e.offset for e in first.events]
        after = await c.current()
        assert (after.version, after.event_count) == (before.version, before.event_count)

    run_chat(simple_flow(), scenario, store=store)


# ---------------------------------------------------------------------- private variables


def test_private_variables_never_reach_replies_or_events() -> None:
    received: list[dict[str, Any]] = []

    async def verify(arguments: dict[str, Any]) -> Any:
        received.append(arguments)
        return {"ok": True}

    data = bundle(
        journey(
            "J",
            [
                chat("a", "Your code is {{ vars.secret }}."),  # unfillable: never sent
                tool_state("t", "verify", toolConfig={"arguments": {"code": "{{ vars.secret }}"}}),
                chat("b", "Verified."),
            ],
            [
                edge("a", "t", "{{ vars.secret | length == 7 and vars.pin | length == 4 }}"),
                edge("t", "b"),
            ],
        ),
        mode="strict",
        tools=[{"name": "verify", "parameters": {"type": "object", "properties": {"code": {}}}}],
        variables=[
            {"key": "secret", "value": SECRET, "isPrivate": True},
            {"key": "pin", "isPrivate": True},
        ],
        cannedResponses=[
            {"name": "leak", "template": "Secret: {{ vars.secret }}", "priority": 900},
            {"name": "leak_pin", "template": "PIN: {{ vars.pin }}", "priority": 800},
            {"name": "safe", "template": "All good.", "priority": 100},
        ],
    )

    async def scenario(c: Chat) -> None:
        await c.say("hi", "start")
        result = await c.say("my pin", variables={"pin": "4321"})
        assert result.state == "b", result.trace  # conditions may read private values
        assert received == [{"code": SECRET}]  # and tools may receive them
        assert result.replies == ("All good.",)
        assert result.trace.reply is not None
        skipped = dict(result.trace.reply.skipped)
        assert {"canned leak", "canned leak_pin"} <= set(skipped)
        events = await c.events()
        pin_update = next(e for e in events if e.content.get("key") == "pin")
        assert pin_update.content == {"key": "pin", "source": "caller", "private": True}
        call = next(e for e in events if e.event_type is EventType.TOOL_CALL)
        assert call.content["arguments"] == {"code": "[private]"}
        dumped = json.dumps([e.model_dump(mode="json") for e in events])
        assert SECRET not in dumped
        assert "4321" not in dumped
        assert (await c.values())["pin"] == "4321"  # stored, just never shown

    run_chat(data, scenario, tools={"verify": verify})


def test_a_tool_result_stored_in_a_private_variable_is_not_shown() -> None:
    async def get_pin(arguments: dict[str, Any]) -> Any:
        return {"pin": "PIN-9876"}

    data = bundle(
        journey(
            "J",
            [
                chat("a"),
                tool_state("t", "get_pin", toolConfig={"resultVariable": "card"}),
                chat("b", "Your card: {{ tool.get_pin.pin }}"),
            ],
            [edge("a", "t", "go"), edge("t", "b")],
        ),
        tools=[{"name": "get_pin"}],
        variables=[{"key": "card", "valueType": "object", "isPrivate": True}],
    )

    async def scenario(c: Chat) -> None:
        await c.say("hi", "start")
        result = await c.say("go", "go")
        assert result.state == "b"
        assert all("PIN-9876" not in reply for reply in result.replies)
        dumped = json.dumps([e.model_dump(mode="json") for e in await c.events()])
        assert "PIN-9876" not in dumped

    run_chat(data, scenario, tools={"get_pin": get_pin})


# ---------------------------------------------------------------------- the trace


def test_the_trace_lists_every_decision_and_is_stored_in_the_last_event() -> None:
    data = bundle(
        journey(
            "J",
            [chat("a"), decision("d"), chat("b", "B."), chat("c")],
            [
                edge("a", "c", "customer wants c", priority=300),
                edge("a", "d", "{{ message == 'go' }}", priority=200),
                edge("d", "b"),
            ],
        ),
        guidelines=[
            {"name": "g", "condition": "customer is polite", "action": "Thank them."},
            {"name": "h", "condition": "{{ vars.nothing }}", "action": "Never."},
        ],
    )

    async def scenario(c: Chat) -> None:
        await c.say("hi", "start")
        result = await c.say("go", "customer is polite")
        trace = result.trace
        assert [(t.where, t.kind, t.result) for t in trace.conditions] == [
            ("J/a->c", "natural", False),
            ("J/a->d", "expression", True),
            ("J/d->b", "always", True),
            ("guideline g", "natural", True),
            ("guideline h", "expression", False),
        ]
        assert trace.conditions[-1].reason is not None
        assert [(t.source, t.target, t.outcome) for t in trace.transitions] == [
            ("a", "c", "condition false"),
            ("a", "d", "taken"),
            ("d", "b", "taken"),
        ]
        assert trace.path == ["J/d", "J/b"]
        assert trace.guidelines == ["g"]
        assert trace.reply is not None
        assert (trace.reply.source, trace.reply.chosen) == ("state_prompt", None)
        assert trace.errors == []
        *others, last = result.events
        assert as_json(last.metadata["trace"]) == as_json(trace.to_dict())
        assert all("trace" not in e.metadata for e in others)
        stored = (await c.events())[-1]
        assert as_json(stored.metadata["trace"]) == as_json(trace.to_dict())

    run_chat(data, scenario)


# ---------------------------------------------------------------------- usage


def test_a_turn_records_its_usage_deltas() -> None:
    async def lookup(arguments: dict[str, Any]) -> Any:
        return {"free": True, "times": ["9:00"]}

    data = lookup_flow()
    data["journeys"][0]["states"].append(final("done"))
    data["journeys"][0]["transitions"].append(edge("ok", "done", "thanks"))
    data["guidelines"] = [{"name": "g", "condition": "customer is polite", "action": "Thank."}]
    data["journeys"][0]["guidelines"] = [{"guideline": "g"}]
    data["cannedResponses"] = [{"name": "bye", "template": "Bye!", "conditions": ["thanks"]}]

    async def scenario(c: Chat) -> None:
        await c.say("hi", "start", "customer is polite")
        await c.say("Monday", "customer is polite", variables={"day": "Monday"})
        await c.say("thanks", "thanks")
        ids = await c.ids()

        async def usage(entity: str, key: str) -> dict[str, int]:
            return await c.store.usage(WS, entity, ids[key])

        assert (await usage("agent", "agent"))["total_messages"] == 3
        assert (await usage("agent", "agent"))["total_sessions"] == 1
        assert (await usage("journey", "journey:J"))["total_sessions"] == 1
        assert (await usage("transition", "transition:J/a->t"))["use_count"] == 1
        assert (await usage("transition", "transition:J/d->ok"))["use_count"] == 1
        assert (await usage("transition", "transition:J/d->full"))["use_count"] == 0
        assert (await usage("tool", "tool:lookup"))["use_count"] == 1
        assert (await usage("guideline", "guideline:g"))["match_count"] == 2
        assert (await usage("journey_guideline", "link:J/g"))["match_count"] == 2
        assert (await usage("canned_response", "canned:bye"))["use_count"] == 1
        await c.store.roll_up_usage()  # rolled up, the totals stay
        assert (await usage("guideline", "guideline:g"))["match_count"] == 2

    run_chat(data, scenario, tools={"lookup": lookup})


# ---------------------------------------------------------------------- fixes, in more detail


def test_a_paused_message_records_its_variables_as_events_and_refuses_a_bad_one() -> None:
    data = bundle(
        journey("J", [chat("a"), chat("b")], [edge("a", "b", "go")]),
        variables=[{"key": "count", "valueType": "number", "value": 0}],
    )

    async def scenario(c: Chat) -> None:
        await c.say("hi", "start")
        await c.runtime.set_mode(WS, c.session.id, SessionMode.PAUSED)
        result = await c.say("three", variables={"count": 3})
        assert kinds(result.events) == ["customer_message", "variable_update"]
        assert result.events[1].content == {"key": "count", "source": "caller", "value": 3}
        assert (result.replies, result.state) == ((), "a")
        before = await c.current()
        with pytest.raises(InvalidData, match="'count'"):
            await c.say("four", variables={"count": "four"})
        after = await c.current()
        assert (after.version, after.event_count) == (before.version, before.event_count)
        assert (await c.values())["count"] == 3
        assert c.runtime.busy_sessions == 0  # a refused call keeps no lock either

    run_chat(data, scenario)


def test_a_private_tool_result_is_marked_in_its_event_and_conditions_still_read_it() -> None:
    async def get_pin(arguments: dict[str, Any]) -> Any:
        return {"pin": "PIN-9876", "valid": True}

    data = bundle(
        journey(
            "J",
            [
                chat("a"),
                tool_state("t", "get_pin", toolConfig={"resultVariable": "card"}),
                chat("ok", "Card checked."),
                chat("bad", "Card refused."),
            ],
            [
                edge("a", "t", "go"),
                edge("t", "ok", "{{ tool.get_pin.valid }}"),
                edge("t", "bad", "{{ not tool.get_pin.valid }}"),
            ],
        ),
        tools=[{"name": "get_pin"}],
        variables=[{"key": "card", "valueType": "object", "isPrivate": True}],
    )

    async def scenario(c: Chat) -> None:
        await c.say("hi", "start")
        result = await c.say("go", "go")
        assert (result.state, result.replies) == ("ok", ("Card checked.",))
        answer = next(e for e in result.events if e.event_type is EventType.TOOL_RESULT)
        assert answer.content["private"] is True
        assert "result" not in answer.content
        assert (await c.values())["card"] == {"pin": "PIN-9876", "valid": True}

    run_chat(data, scenario, tools={"get_pin": get_pin})


def test_a_failed_activation_chain_moves_back_outside_any_journey() -> None:
    async def failing(arguments: dict[str, Any]) -> Any:
        raise RuntimeError("down")

    data = bundle(
        journey("J", [tool_state("t", "lookup"), chat("b")], [edge("t", "b")]),
        tools=[{"name": "lookup"}],
    )

    async def scenario(c: Chat) -> None:
        result = await c.say("hi", "start")
        assert (result.journey, result.state) == (None, None)
        moves = [e for e in result.events if e.event_type is EventType.JOURNEY_TRANSITION]
        assert [(m.content["from"], m.content["to"]) for m in moves] == [(None, "t"), ("t", None)]
        assert moves[-1].content["fallback"] is True
        assert (moves[-1].journey_id, moves[-1].state_id) == (None, None)

    run_chat(data, scenario, tools={"lookup": failing})


# ---------------------------------------------------------------------- bounded bookkeeping


def test_a_looping_journey_keeps_each_visited_state_once_in_order_of_first_visit() -> None:
    """The ``visited`` list of the session's metadata used to grow by one entry a turn."""
    data = bundle(
        journey(
            "J",
            [chat("a"), chat("b"), chat("c")],
            [edge("a", "b", "go"), edge("b", "c", "go"), edge("c", "b", "go")],
            allowRevisiting=True,
        )
    )

    async def scenario(c: Chat) -> None:
        await c.say("hi", "start")
        for _ in range(60):
            await c.say("go", "go")
        book = (await c.current()).metadata[RUNTIME_KEY]
        assert book["visited"] == ["a", "b", "c"]

    run_chat(data, scenario)


def test_a_replayed_message_returns_the_position_its_turn_left() -> None:
    async def scenario(c: Chat) -> None:
        await c.say("hi", "start")
        first = await c.say("go", "go", key="m-1")
        retried = await c.say("go", key="m-1")
        assert retried.duplicate
        assert (retried.journey, retried.state) == (first.journey, first.state) == ("J", "b")
        quiet = await c.say("hm", key="m-2")  # moves nowhere: its replay says b too
        assert quiet.state == "b"
        later = await c.say("go on", "go", key="m-3")  # moves on; the replays still say b
        assert later.state == "c"
        for key in ("m-1", "m-2"):
            again = await c.say("go", "go", key=key)
            assert (again.duplicate, again.journey, again.state) == (True, "J", "b")
        assert (await c.say("go on", key="m-3")).state == "c"
        ended = await c.say("done", "go", key="m-4")  # the final state ends the journey
        assert (ended.journey, ended.state) == (None, None)
        assert ((await c.say("done", key="m-4")).journey, ended.state) == (None, None)

    run_chat(
        flow(
            chat("a"),
            chat("b"),
            chat("c"),
            final("end"),
            transitions=[edge("a", "b", "go"), edge("b", "c", "go"), edge("c", "end", "go")],
        ),
        scenario,
    )


class RepublishedMeanwhile(MemoryStore):
    """A store where the agent is republished, without the turn's target state, just
    before the first turn commits (as a publish in another process would)."""

    def __init__(self) -> None:
        super().__init__()
        self.republish: dict[str, Any] | None = None

    async def record_turn(self, workspace_id: str, turn: Any) -> CommittedTurn:
        if self.republish is not None:
            data, self.republish = self.republish, None
            await self.publish(workspace_id, bundle_from_data(data))
        return await super().record_turn(workspace_id, turn)


def test_a_turn_into_a_state_a_concurrent_publish_removed_is_computed_again() -> None:
    """The turn was computed on the old version; its commit is refused (the state is
    gone), and the runtime computes it again on the new version instead of failing."""
    old = flow(chat("a"), chat("b"), transitions=[edge("a", "b", "go")])
    new = flow(chat("a"), chat("c"), transitions=[edge("a", "c", "go")])
    store = RepublishedMeanwhile()

    async def scenario(c: Chat) -> None:
        await c.say("hi", "start")
        store.republish = new
        result = await c.say("go", "go")
        assert store.republish is None  # the publish happened in between
        assert (result.journey, result.state) == ("J", "c")

    run_chat(old, scenario, store=store)
