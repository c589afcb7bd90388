"""Private values and anything derived from them stay out of everything a turn shows.

A private variable may be read by conditions and passed to tools, so what those
produce is tainted: a condition's error message (``{}[vars.secret | upper]`` names
the key it missed), a tool's error (the data that broke ``returnSchema``, an
exception that quotes an argument), an argument built from a private value. None of
it may reach an event, the trace (the turn's and the stored one) or an error raised
to the caller, not even sliced, reversed or upper-cased: every test below searches
all of it for every piece of four characters or more of the secret and of the
secret reversed, whatever the case.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from uuid import uuid5

import pytest

from parlant_runtime.engine import TurnResult
from parlant_runtime.engine.tools import ToolFailure, stable_call_id
from parlant_runtime.engine.turn import PRIVATE_REASON
from parlant_runtime.storage.port import InvalidData
from tests.engine.test_turns import (
    Chat,
    bundle,
    chat,
    edge,
    journey,
    open_chat,
    run_chat,
    tool_state,
)

SECRET = "Qx7Vz4Jk9Wm2"
"""Distinctive: none of its pieces of four characters occurs in ordinary text."""

VARIABLES = [
    {"key": "secret", "value": SECRET, "isPrivate": True},
    {"key": "pin", "valueType": "number", "isPrivate": True},
    {"key": "name", "value": "Ada"},
]


def fragments(secret: str = SECRET) -> set[str]:
    """Every piece of four characters or more of the secret and of it reversed, lower-cased."""
    pieces = set()
    for text in (secret.casefold(), secret[::-1].casefold()):
        for start in range(len(text)):
            for stop in range(start + 4, len(text) + 1):
                pieces.add(text[start:stop])
    return pieces


def assert_untainted(*texts: str) -> None:
    seen = "\n".join(texts).casefold()
    leaked = sorted(piece for piece in fragments() if piece in seen)
    assert not leaked, f"derivatives of the secret surfaced: {leaked[:5]}"


async def everything_shown(c: Chat, *results: TurnResult) -> str:
    """Events (content and metadata, the stored trace included) and the turns' traces."""
    events = [event.model_dump(mode="json") for event in await c.events()]
    traces = [result.trace.to_dict() for result in results]
    replies = [list(result.replies) for result in results]
    return json.dumps([events, traces, replies], default=str)


# ---------------------------------------------------------------------- conditions

DERIVING_CONDITIONS = [
    pytest.param("{{ {}[vars.secret | upper] }}", id="upper"),
    pytest.param("{{ {}[vars.secret | lower] == 1 }}", id="lower-compared"),
    pytest.param("{{ {}[vars.secret[1:]] }}", id="slice"),
    pytest.param("{{ {}[vars.secret[::-1]] }}", id="reversed"),
    pytest.param("{{ {}[vars.secret ~ '!'] }}", id="concatenation"),
    pytest.param("{{ {}['<' ~ vars.secret ~ '>'] }}", id="format-like"),
    pytest.param("{{ {}[vars.secret | tojson] }}", id="tojson"),
    pytest.param("{{ {}[[vars.secret, 'x'] | join('-')] }}", id="join"),
    pytest.param("{{ {}[vars.secret.split('9')[0]] }}", id="string-method"),
    pytest.param("{{ {}[vars.secret.swapcase()] }}", id="swapcase"),
    pytest.param("{{ dict(a=1)[vars.secret[2:10]] }}", id="dict-indexing"),
    pytest.param("{{ vars[vars.secret] }}", id="vars-indexing"),
    pytest.param("{{ message[vars.secret] }}", id="message-indexing"),
    pytest.param("{{ tool[vars.secret | title] }}", id="tool-indexing"),
    pytest.param("{{ {}[vars.secret] in 'abc' }}", id="in"),
    pytest.param("{{ vars['sec' ~ 'ret'] > 1 }}", id="dynamic-key-comparison"),
    pytest.param("{{ {}[vars.get('secret')[3:]] }}", id="get"),
    pytest.param("{{ {}[(vars.items() | list)[0][1] | upper] }}", id="items"),
]


@pytest.mark.parametrize("condition", DERIVING_CONDITIONS)
@pytest.mark.parametrize("path", ["single", "batched"])
def test_a_condition_that_derives_from_a_private_value_shows_no_trace_of_it(
    condition: str, path: str
) -> None:
    guidelines = [{"name": "bad", "condition": condition, "action": "Never.", "priority": 900}]
    if path == "batched":  # enough expression conditions for the turn to decide them in a batch
        guidelines += [
            {
                "name": f"ok{i}",
                "condition": f"{{{{ vars.name == 'Ada' and {i} >= 0 }}}}",
                "action": f"Fine {i}.",
            }
            for i in range(3)
        ]
    data = bundle(
        journey("J", [chat("a", "A."), chat("b", "B.")], [edge("a", "b", condition)]),
        variables=VARIABLES,
        guidelines=guidelines,
    )

    async def scenario(c: Chat) -> None:
        first = await c.say("hi", "start")
        second = await c.say("hello")
        assert second.state == "a"
        assert "bad" not in second.guidelines
        bad = [t for t in second.trace.conditions if t.text == condition]
        assert len(bad) == 2
        assert all(not t.result and t.reason == PRIVATE_REASON for t in bad)
        assert_untainted(await everything_shown(c, first, second))

    run_chat(data, scenario)


def test_a_condition_that_reads_no_private_value_keeps_its_reason() -> None:
    condition = "{{ {}[vars.name | upper] }}"
    data = bundle(
        variables=VARIABLES,
        guidelines=[{"name": "g", "condition": condition, "action": "Never."}],
    )

    async def scenario(c: Chat) -> None:
        result = await c.say("hi")
        (row,) = [t for t in result.trace.conditions if t.text == condition]
        assert row.reason is not None
        assert "ADA" in row.reason  # only private values are hidden

    run_chat(data, scenario)


# ---------------------------------------------------------------------- tools

PRIVATE_CHECK = {
    "name": "verify",
    "parameters": {"type": "object", "properties": {"code": {"type": "string"}}},
    "returnSchema": {
        "type": "object",
        "properties": {"ok": {"type": "boolean"}},
        "required": ["ok"],
    },
}


def tool_flow(arguments: dict[str, Any], result_variable: str | None = "verdict") -> dict[str, Any]:
    config: dict[str, Any] = {"arguments": arguments}
    if result_variable is not None:
        config["resultVariable"] = result_variable
    return bundle(
        journey(
            "J",
            [chat("a", "A."), tool_state("t", "verify", toolConfig=config), chat("b", "B.")],
            [edge("a", "t", "go"), edge("t", "b")],
        ),
        tools=[PRIVATE_CHECK],
        variables=[
            *VARIABLES,
            {"key": "verdict", "valueType": "object", "isPrivate": True},
        ],
    )


@pytest.mark.parametrize(
    "returned",
    [
        pytest.param({"ok": SECRET}, id="wrong-type"),
        pytest.param({"ok": True, "echo": SECRET[::-1], "extra": float("nan")}, id="not-json"),
        pytest.param({"nope": SECRET.upper()}, id="missing-field"),
    ],
)
def test_a_private_result_that_breaks_its_schema_shows_no_trace_of_it(
    returned: dict[str, Any],
) -> None:
    data = tool_flow({"code": "1234"})

    async def verify(arguments: dict[str, Any]) -> Any:
        return returned

    async def scenario(c: Chat) -> None:
        first = await c.say("hi", "start")
        failed = await c.say("go", "go")
        assert failed.state == "a"
        assert failed.trace.errors
        assert_untainted(await everything_shown(c, first, failed))

    run_chat(data, scenario, tools={"verify": verify})


@pytest.mark.parametrize(
    "argument",
    [
        pytest.param("{{ vars.secret }}", id="as-is"),
        pytest.param("{{ vars.secret[::-1] }}", id="reversed"),
        pytest.param("code {{ vars.secret | lower }}", id="in-text"),
        pytest.param("{{ vars['secret'][2:] }}", id="by-key"),
    ],
)
def test_a_tool_argument_built_from_a_private_value_shows_no_trace_of_it(argument: str) -> None:
    data = tool_flow({"code": argument}, result_variable=None)
    seen: list[str] = []

    async def verify(arguments: dict[str, Any]) -> Any:
        seen.append(arguments["code"])
        raise ValueError(f"wrong code {arguments['code']!r}")  # a tool that echoes its input

    async def scenario(c: Chat) -> None:
        first = await c.say("hi", "start")
        failed = await c.say("go", "go")
        assert seen  # the tool got the value
        assert failed.trace.errors
        assert_untainted(await everything_shown(c, first, failed))

    run_chat(data, scenario, tools={"verify": verify})


def test_a_tool_failure_keeps_its_message_when_the_call_carries_a_private_value() -> None:
    data = tool_flow({"code": "{{ vars.secret }}"}, result_variable=None)

    async def verify(arguments: dict[str, Any]) -> Any:
        raise ToolFailure("the card is blocked; call the bank")

    async def scenario(c: Chat) -> None:
        await c.say("hi", "start")
        failed = await c.say("go", "go")
        assert failed.trace.errors == [
            "raised ToolFailure: the card is blocked; call the bank (1 attempt)"
        ]

    run_chat(data, scenario, tools={"verify": verify})


@pytest.mark.parametrize(
    "argument",
    ["{{ {}[vars.secret | upper] }}", "{{ vars.secret > 1 }}", "{{ {}[vars.get('secret')] }}"],
)
def test_a_tool_argument_that_fails_on_a_private_value_shows_no_trace_of_it(argument: str) -> None:
    data = tool_flow({"code": argument}, result_variable=None)

    async def verify(arguments: dict[str, Any]) -> Any:
        return {"ok": True}

    async def scenario(c: Chat) -> None:
        first = await c.say("hi", "start")
        failed = await c.say("go", "go")
        assert failed.state == "a"
        assert failed.trace.errors
        assert_untainted(await everything_shown(c, first, failed))

    run_chat(data, scenario, tools={"verify": verify})


def test_a_condition_on_a_private_tool_result_shows_no_trace_of_it() -> None:
    condition = "{{ {}[tool.verify.ok | upper] }}"
    data = tool_flow({"code": "1"})
    data["tools"] = [{**PRIVATE_CHECK, "returnSchema": {"type": "object"}}]
    data["guidelines"] = [{"name": "g", "condition": condition, "action": "Never."}]

    async def verify(arguments: dict[str, Any]) -> Any:
        return {"ok": SECRET}

    async def scenario(c: Chat) -> None:
        first = await c.say("hi", "start")
        passed = await c.say("go", "go")
        assert passed.state == "b"
        (row,) = [t for t in passed.trace.conditions if t.text == condition]
        assert row.reason == PRIVATE_REASON
        assert_untainted(await everything_shown(c, first, passed))

    run_chat(data, scenario, tools={"verify": verify})


def test_a_private_argument_that_breaks_the_schema_names_the_rule_not_the_value() -> None:
    data = tool_flow({"code": "{{ vars.secret | list }}"}, result_variable=None)

    async def verify(arguments: dict[str, Any]) -> Any:
        return {"ok": True}

    async def scenario(c: Chat) -> None:
        first = await c.say("hi", "start")
        failed = await c.say("go", "go")
        (error,) = failed.trace.errors
        assert "argument 'code' does not satisfy 'type'" in error
        assert_untainted(await everything_shown(c, first, failed))

    run_chat(data, scenario, tools={"verify": verify})


def test_the_id_of_a_call_with_a_private_argument_does_not_reveal_it() -> None:
    """The id is stable (the session, the idempotency key, the arguments) and shown in
    events; were a private argument part of it, a short one could be found by hashing
    every candidate with the key the caller knows."""
    data = tool_flow({"code": "{{ vars.pin | string }}"}, result_variable=None)

    async def verify(arguments: dict[str, Any]) -> Any:
        return {"ok": True}

    async def scenario(c: Chat) -> None:
        await c.say("hi", "start", variables={"pin": 4321})
        await c.say("go", "go", key="k1")
        (call,) = [e for e in await c.events() if e.event_type.value == "tool_call"]
        assert call.content["arguments"] == {"code": "[private]"}
        call_key = str(uuid5(c.session.id, "k1"))
        guesses = {
            stable_call_id(call_key, "verify", 0, {"code": str(pin)}) for pin in range(10_000)
        }
        assert call.tool_call_id not in guesses
        assert call.tool_call_id == stable_call_id(call_key, "verify", 0, {"code": "[private]"})

    run_chat(data, scenario, tools={"verify": verify})


# ---------------------------------------------------------------------- callers


def test_a_private_value_of_the_wrong_type_is_refused_without_echoing_it() -> None:
    data = bundle(variables=VARIABLES, guidelines=[{"name": "g", "action": "Hi."}])

    async def scenario(c: Chat) -> None:
        with pytest.raises(InvalidData) as raised:
            await c.say("hi", variables={"pin": SECRET})
        assert "pin" in str(raised.value)
        assert_untainted(str(raised.value))

    run_chat(data, scenario)


def test_a_session_started_with_a_private_value_of_the_wrong_type_does_not_echo_it() -> None:
    data = bundle(variables=VARIABLES, guidelines=[{"name": "g", "action": "Hi."}])

    async def main() -> None:
        with pytest.raises(InvalidData) as raised:
            await open_chat(data, variables={"pin": SECRET})
        assert "pin" in str(raised.value)
        assert_untainted(str(raised.value))

    asyncio.run(main())
