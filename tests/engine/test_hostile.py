"""Hostile bundles and hostile tools: the turn completes, nothing leaks, the session survives.

Templates and expression conditions come from a database many people edit; tools run
code the runtime does not own. Whatever they do, a turn must complete (a bad text is
skipped, a bad condition is false, a bad tool is an error event), no private value may
reach a reply or an event, and the next turn must work.
"""

from __future__ import annotations

import asyncio
import json
import tracemalloc
from typing import Any

import pytest

from parlant_runtime.engine.batch import ConditionBatch
from parlant_runtime.engine.conditions import compile_condition
from parlant_runtime.model import Event, EventType
from tests.engine.test_turns import (
    SECRET,
    Chat,
    bundle,
    chat,
    edge,
    journey,
    kinds,
    run_chat,
    tool_state,
)

PRIVATE = [
    {"key": "secret", "value": SECRET, "isPrivate": True},
    {"key": "name", "value": "Ada"},
    {"key": "big", "value": 100_000, "valueType": "number"},
    {"key": "row", "value": [0] * 1000, "valueType": "array"},
]


def dumped(events: list[Event]) -> str:
    """Every event, content and metadata (the trace) included, as JSON text."""
    return json.dumps([event.model_dump(mode="json") for event in events])


async def assert_nothing_leaks(c: Chat, *replies: str) -> None:
    assert all(SECRET not in reply for reply in replies)
    assert SECRET not in dumped(await c.events())


# ---------------------------------------------------------------------- templates

HOSTILE_TEMPLATES = [
    pytest.param("{{ ''.__class__ }}", id="class"),
    pytest.param("{{ ''.__class__.__mro__[1].__subclasses__() }}", id="subclasses"),
    pytest.param("{{ cycler.__init__.__globals__.os.popen('id').read() }}", id="globals"),
    pytest.param("{{ vars.name | attr('__class__') }}", id="attr-filter"),
    pytest.param("{{ vars.pop('name') }}", id="mutation"),
    pytest.param("{{ config }}", id="undefined-global"),
    pytest.param(
        "{% for i in range(1000) %}{% for j in range(1000) %}x{% endfor %}{% endfor %}",
        id="huge-loop",
    ),
    pytest.param("{{ 'x' * 100000000 }}", id="huge-string"),
    pytest.param("{% for x in 'a' * 9000 %}{{ x * 3 }}{% endfor %}", id="huge-output"),
    pytest.param("{{ 'a' | replace('a', 'b' * 60000) | replace('b', 'cc') }}", id="replace-bomb"),
    pytest.param("{{ range(10**9) | list }}", id="huge-range"),
    pytest.param("{{ 2 ** 100000 }}", id="huge-power"),
    pytest.param("{{ '%s' % vars }}", id="percent-format"),
    pytest.param("{{ '%(secret)s' % vars }}", id="percent-format-private"),
    pytest.param("{{ '{0.__class__}'.format(vars) }}", id="str-format"),
    pytest.param("{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}", id="recursion"),
    pytest.param("{% include 'other' %}", id="include"),
    pytest.param("{{ [[0] * 100000] * 100000 }}", id="nested-repetition"),
    pytest.param("{{ [[0] * vars.big] * vars.big }}", id="nested-repetition-from-vars"),
    pytest.param("{{ [vars.row] * 99 }}", id="nested-printing"),
    pytest.param("{{ ([vars.row] * 99) | tojson }}", id="nested-tojson"),
    pytest.param("{{ ([vars.row] * 99) | join }}", id="nested-join"),
    pytest.param("Your secret is {{ vars.secret }}", id="private-variable"),
    pytest.param("{{ vars['secret'] }}", id="private-by-key"),
]


@pytest.mark.parametrize("template", HOSTILE_TEMPLATES)
def test_a_hostile_canned_response_is_skipped(template: str) -> None:
    data = bundle(
        mode="strict",
        variables=PRIVATE,
        cannedResponses=[
            {"name": "bad", "template": template, "priority": 900},
            {"name": "safe", "template": "Safe reply.", "priority": 100},
        ],
    )

    async def scenario(c: Chat) -> None:
        result = await c.say("hi")
        assert result.replies == ("Safe reply.",)
        assert result.trace.reply is not None
        assert "canned bad" in dict(result.trace.reply.skipped)
        await assert_nothing_leaks(c, *result.replies)
        assert (await c.say("again")).replies == ("Safe reply.",)

    run_chat(data, scenario)


@pytest.mark.parametrize("template", HOSTILE_TEMPLATES)
def test_a_hostile_state_prompt_is_not_sent(template: str) -> None:
    data = bundle(
        journey("J", [chat("a", template), chat("b", "B.")], [edge("a", "b", "go")]),
        variables=PRIVATE,
        guidelines=[{"name": "g", "action": "Fallback action."}],
    )

    async def scenario(c: Chat) -> None:
        result = await c.say("hi", "start")
        assert result.state == "a"
        assert result.replies == ("Fallback action.",)
        await assert_nothing_leaks(c, *result.replies)
        following = await c.say("go", "go")
        assert (following.state, following.replies) == ("b", ("B.",))

    run_chat(data, scenario)


@pytest.mark.parametrize(
    "template",
    ["{{ vars.get('secret') }}", "{{ vars }}", "{{ vars | tojson }}", "{{ vars.items() | list }}"],
)
def test_templates_that_read_the_whole_namespace_see_no_private_variable(template: str) -> None:
    data = bundle(mode="strict", variables=PRIVATE, cannedResponses=[{"template": template}])

    async def scenario(c: Chat) -> None:
        result = await c.say("hi")
        (reply,) = result.replies
        assert "Ada" in reply or reply == "None"
        await assert_nothing_leaks(c, reply)

    run_chat(data, scenario)


def test_the_customer_message_is_data_and_never_rendered() -> None:
    data = bundle(mode="strict", cannedResponses=[{"template": "You said: {{ message }}"}])

    async def scenario(c: Chat) -> None:
        result = await c.say("{{ 7 * 7 }} {% for x in range(9) %}x{% endfor %}")
        assert result.replies == ("You said: {{ 7 * 7 }} {% for x in range(9) %}x{% endfor %}",)

    run_chat(data, scenario)


@pytest.mark.parametrize("template", ["{{ range }}", "{{ namespace }}", "{{ self }}"])
def test_a_template_that_renders_an_internal_object_is_skipped(template: str) -> None:
    data = bundle(
        mode="strict",
        cannedResponses=[
            {"name": "bad", "template": template, "priority": 900},
            {"name": "safe", "template": "Safe reply.", "priority": 100},
        ],
    )

    async def scenario(c: Chat) -> None:
        result = await c.say("hi")
        assert result.replies == ("Safe reply.",)

    run_chat(data, scenario)


# ---------------------------------------------------------------------- conditions

NESTED_BOMB_CONDITIONS = [
    pytest.param("{{ [[0] * 100000] * 100000 }}", id="nested-repetition"),
    pytest.param("{{ ([[0] * vars.big] * vars.big) | length > 0 }}", id="nested-from-vars"),
    pytest.param("{{ [vars.row] * vars.big == [vars.row] * vars.big }}", id="nested-equality"),
    pytest.param("{{ 0 in [vars.row, vars.row] * 60 }}", id="nested-in"),
    pytest.param("{{ (([vars.row] * 99) | string | length) > 0 }}", id="nested-string"),
    pytest.param("{{ (([vars.row] * 99) | tojson | length) > 0 }}", id="nested-tojson"),
    pytest.param("{{ ([vars.row] * 99 ~ 'x') | length > 0 }}", id="nested-concat"),
]

HOSTILE_CONDITIONS = [
    pytest.param("{{ ''.__class__.__mro__ }}", id="mro"),
    pytest.param("{{ lipsum.__globals__ }}", id="globals"),
    pytest.param("{{ cycler.__init__ }}", id="init"),
    pytest.param("{{ range(10**9) | list | length > 0 }}", id="huge-range"),
    pytest.param("{{ ('x' * 10**9) | length > 0 }}", id="huge-string"),
    pytest.param("{{ (2 ** 64) ** 64 > 0 }}", id="huge-number"),
    pytest.param("{{ '%s' % vars }}", id="percent-format"),
    pytest.param("{{ vars.update({'name': 'Eve'}) or true }}", id="mutation"),
    pytest.param("{{ vars.secret > 1 }}", id="private-type-error"),
    pytest.param("{{ 9 ** 999999 > 0 }}", id="huge-power"),
    *NESTED_BOMB_CONDITIONS,
]


@pytest.mark.parametrize("condition", HOSTILE_CONDITIONS)
def test_a_hostile_condition_is_false_and_the_turn_completes(condition: str) -> None:
    data = bundle(
        journey("J", [chat("a", "A."), chat("b", "B.")], [edge("a", "b", condition)]),
        variables=PRIVATE,
        guidelines=[
            {"name": "bad", "condition": condition, "action": "Never.", "priority": 900},
            {"name": "fine", "action": "Fine.", "priority": 100},
        ],
    )

    async def scenario(c: Chat) -> None:
        await c.say("hi", "start")
        result = await c.say("hello")
        assert result.state == "a"
        assert result.guidelines == ("fine",)
        bad = [t for t in result.trace.conditions if t.text == condition]
        assert len(bad) == 2
        assert all(not t.result and t.reason for t in bad)
        assert result.trace.errors == []
        assert (await c.values())["name"] == "Ada"
        await assert_nothing_leaks(c, *result.replies)

    run_chat(data, scenario)


def test_a_condition_may_read_a_private_variable_without_showing_it() -> None:
    data = bundle(
        variables=PRIVATE,
        guidelines=[{"name": "g", "condition": "{{ vars.get('secret') }}", "action": "Known."}],
    )

    async def scenario(c: Chat) -> None:
        result = await c.say("hi")
        assert result.guidelines == ("g",)
        await assert_nothing_leaks(c, *result.replies)

    run_chat(data, scenario)


@pytest.mark.parametrize(
    "condition",
    ["{{ vars[vars.secret] }}", "{{ message[vars.secret] }}", "{{ tool[vars.secret] }}"],
)
def test_the_reason_of_a_failed_condition_does_not_show_a_private_value(condition: str) -> None:
    data = bundle(
        variables=PRIVATE,
        guidelines=[{"name": "g", "condition": condition, "action": "Never."}],
    )

    async def scenario(c: Chat) -> None:
        result = await c.say("hi")
        assert result.guidelines == ()
        assert all(SECRET not in (t.reason or "") for t in result.trace.conditions)
        await assert_nothing_leaks(c, *result.replies)

    run_chat(data, scenario)


def test_nested_bombs_are_false_on_the_batched_path_and_the_rest_still_decides() -> None:
    fine = [
        {
            "name": f"fine{i}",
            "condition": f"{{{{ vars.name == 'Ada' and {i} >= 0 }}}}",
            "action": f"Fine {i}.",
            "priority": 100 + i,
        }
        for i in range(3)
    ]
    bad = [
        {"name": f"bad{i}", "condition": param.values[0], "action": "Never.", "priority": 900}
        for i, param in enumerate(NESTED_BOMB_CONDITIONS)
    ]
    data = bundle(variables=PRIVATE, guidelines=[*bad, *fine])
    batch = ConditionBatch([compile_condition(str(g["condition"])) for g in [*bad, *fine]])
    assert len(batch._batched) > 1  # the runtime takes the batched path

    async def scenario(c: Chat) -> None:
        result = await c.say("hello")
        assert set(result.guidelines) == {"fine0", "fine1", "fine2"}
        bombs = [t for t in result.trace.conditions if t.where.startswith("guideline bad")]
        assert len(bombs) == len(NESTED_BOMB_CONDITIONS)
        assert all(not t.result and t.reason for t in bombs)
        assert all(("items" in t.reason or "characters" in t.reason) for t in bombs if t.reason)

    run_chat(data, scenario)


def test_nested_bombs_in_one_batch_are_refused_within_bounded_memory() -> None:
    bombs = [compile_condition(str(param.values[0])) for param in NESTED_BOMB_CONDITIONS]
    fine = [compile_condition(f"{{{{ vars.name == 'Ada' and {i} >= 0 }}}}") for i in range(3)]
    batch = ConditionBatch([*bombs, *fine])
    context = {"vars": {"name": "Ada", "big": 100_000, "row": [0] * 1000}}
    tracemalloc.start()
    try:
        decided = batch.evaluate(context)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 5 * 1024 * 1024
    assert all(decided[c] == (True, None) for c in fine)
    for condition in bombs:
        result, reason = decided[condition]
        assert result is False
        assert reason is not None
        assert "items" in reason or "characters" in reason


# ---------------------------------------------------------------------- tools

CHECK = {
    "name": "check",
    "parameters": {"type": "object", "properties": {"day": {"type": "string"}}},
    "returnSchema": {
        "type": "object",
        "properties": {"free": {"type": "boolean"}},
        "required": ["free"],
    },
    "errorHandling": {"timeoutMs": 20},
}


class FlakyTool:
    """Misbehaves (in the way named by ``kind``) on its first call, then answers well."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.calls = 0

    async def __call__(self, arguments: dict[str, Any]) -> Any:
        self.calls += 1
        if self.calls > 1:
            return {"free": True}
        if self.kind == "hang":
            await asyncio.sleep(10)
        if self.kind == "raise":
            raise RuntimeError("the backend is down")
        if self.kind == "raise-huge":
            raise ValueError("x" * 1_000_000)
        if self.kind == "schema":
            return {"free": "yes"}
        if self.kind == "not-json":
            return {"free": True, "when": object()}
        if self.kind == "huge":
            return {"free": True, "blob": "x" * 100_000}
        return {"free": True}


TOOL_FAILURES = [
    pytest.param("hang", "timed out after 20 ms", id="hangs"),
    pytest.param("raise", "raised RuntimeError: the backend is down", id="raises"),
    pytest.param("raise-huge", "raised ValueError: xxx", id="raises-huge"),
    pytest.param("schema", "breaks its return schema at $.free", id="breaks-schema"),
    pytest.param("not-json", "not JSON", id="not-json"),
    pytest.param("huge", "more than a variable holds", id="too-big"),
]


def tool_flow(**journey_extra: Any) -> dict[str, Any]:
    return bundle(
        journey(
            "J",
            [
                chat("a", "A."),
                tool_state(
                    "t",
                    "check",
                    toolConfig={"arguments": {"day": "{{ vars.day }}"}, "resultVariable": "slots"},
                ),
                chat("b", "B."),
            ],
            [edge("a", "t", "go"), edge("t", "b")],
            **journey_extra,
        ),
        tools=[CHECK],
        variables=[{"key": "day", "value": "Monday"}],
    )


async def fail_then_recover(c: Chat, tool: FlakyTool, expected: str) -> None:
    await c.say("hi", "start")
    before = await c.current()
    failed = await c.say("go", "go")
    assert failed.state == "a"  # the last good state
    errors = [e for e in failed.events if e.event_type is EventType.STATUS_UPDATE]
    assert len(errors) == 1
    message = errors[0].content["error"]
    assert expected in message
    assert len(message) < 1_000  # a clear error, not the tool's whole output
    result_event = next(e for e in failed.events if e.event_type is EventType.TOOL_RESULT)
    assert result_event.content["ok"] is False
    assert "result" not in result_event.content
    assert failed.replies == ("A.",)
    after = await c.current()
    assert (after.current_journey_id, after.current_state_id) == (
        before.current_journey_id,
        before.current_state_id,
    )
    assert "slots" not in await c.values()
    recovered = await c.say("go again", "go")
    assert (recovered.state, recovered.replies, recovered.trace.errors) == ("b", ("B.",), [])
    assert (await c.values())["slots"] == {"free": True}
    assert tool.calls == 2


@pytest.mark.parametrize(("kind", "expected"), TOOL_FAILURES)
def test_a_failing_tool_is_an_error_event_and_the_next_turn_works(kind: str, expected: str) -> None:
    tool = FlakyTool(kind)

    async def scenario(c: Chat) -> None:
        await fail_then_recover(c, tool, expected)

    run_chat(tool_flow(), scenario, tools={"check": tool})


def test_tool_arguments_that_cannot_be_built_are_an_error_event() -> None:
    data = tool_flow()
    data["variables"] = []  # vars.day is missing
    tool = FlakyTool("fine")

    async def scenario(c: Chat) -> None:
        await c.say("hi", "start")
        failed = await c.say("go", "go")
        assert failed.state == "a"
        assert "argument 'day' of tool 'check'" in failed.trace.errors[0]
        assert "tool_call" not in kinds(failed.events)
        recovered = await c.say("go", "go", variables={"day": "Tuesday"})
        assert recovered.state == "b"
        assert tool.calls == 1

    run_chat(data, scenario, tools={"check": tool})


def test_a_tool_without_a_function_is_an_error_event_until_one_is_registered() -> None:
    tool = FlakyTool("fine")

    async def scenario(c: Chat) -> None:
        await c.say("hi", "start")
        failed = await c.say("go", "go")
        assert failed.state == "a"
        assert "no function is registered for tool 'check'" in failed.trace.errors[0]
        c.runtime.tools.register("check", tool)
        assert (await c.say("go", "go")).state == "b"

    run_chat(tool_flow(), scenario)


def test_a_failed_tool_can_be_retried_when_revisiting_is_forbidden() -> None:
    tool = FlakyTool("raise")

    async def scenario(c: Chat) -> None:
        await fail_then_recover(c, tool, "the backend is down")

    run_chat(tool_flow(allowRevisiting=False), scenario, tools={"check": tool})


def test_a_tool_result_that_does_not_fit_its_variable_is_an_error_event() -> None:
    data = tool_flow()
    data["variables"].append({"key": "slots", "valueType": "string"})
    tool = FlakyTool("fine")

    async def scenario(c: Chat) -> None:
        await c.say("hi", "start")
        failed = await c.say("go", "go")  # {"free": true} is not a string
        assert failed.state == "a"
        assert failed.trace.errors
        assert kinds(failed.events)[0] == "customer_message"

    run_chat(data, scenario, tools={"check": tool})


# ---------------------------------------------------------------------- size


def test_a_large_agent_still_answers() -> None:
    subject = "the customer asks about subject {} of the catalogue, " + "in detail " * 20
    data = bundle(
        guidelines=[
            {"name": f"g{i}", "condition": subject.format(i), "action": f"Answer {i}."}
            for i in range(1_000)
        ]
    )

    async def scenario(c: Chat) -> None:
        result = await c.say("hi", subject.format(7))
        assert result.guidelines == ("g7",)

    run_chat(data, scenario)
