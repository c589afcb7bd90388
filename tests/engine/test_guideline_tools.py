"""Tools named on guidelines: called when the guideline matches, like tool states' tools.

Each matched guideline's tools are called once per turn, in the guidelines' priority
order, with arguments from the variables of the tools' required parameters, under the
tools' ``errorHandling``; the results are ``tool.<name>`` in templates, the calls are
in the events, the turn result and the trace. A failed call writes an error event and
the turn goes on where it is.
"""

from __future__ import annotations

from typing import Any

from parlant_runtime.engine import current_call
from parlant_runtime.model import EventType
from tests.engine.test_turns import Chat, bundle, chat, edge, journey, kinds, run_chat

HOURS = {"name": "opening_hours", "parameters": {"type": "object"}}
SLOTS = {
    "name": "check_slots",
    "parameters": {
        "type": "object",
        "properties": {"day": {"type": "string"}},
        "required": ["day"],
    },
}


def hours_agent(**extra: Any) -> dict[str, Any]:
    """A strict agent whose ``hours`` guideline calls ``opening_hours``."""
    return bundle(
        mode="strict",
        guidelines=[
            {
                "name": "hours",
                "condition": "customer asks about opening hours",
                "action": "Give the opening hours.",
                "tools": ["opening_hours"],
            }
        ],
        tools=[HOURS],
        cannedResponses=[
            {
                "name": "hours",
                "template": "We open at {{ tool.opening_hours.open }}.",
                "priority": 200,
            },
            {"name": "other", "template": "Anything else?"},
        ],
        **extra,
    )


def test_a_matched_guidelines_tool_is_called_and_its_result_fills_the_reply() -> None:
    seen: list[str] = []

    async def opening_hours(arguments: dict[str, Any]) -> Any:
        current = current_call()
        assert current is not None
        seen.append(current.call_id)
        return {"open": "09:00"}

    async def scenario(c: Chat) -> None:
        result = await c.say("when do you open?", "customer asks about opening hours")
        assert result.replies == ("We open at 09:00.",)
        assert result.tool_calls == ("opening_hours",)
        assert kinds(result.events) == [
            "customer_message",
            "tool_call",
            "tool_result",
            "agent_message",
        ]
        call, answer = result.events[1], result.events[2]
        assert call.tool_call_id == answer.tool_call_id == seen[0]
        assert answer.content["result"] == {"open": "09:00"}
        (traced,) = result.trace.tools
        assert traced["by"] == "guideline hours"
        assert (traced["tool"], traced["ok"], traced["call_id"]) == ("opening_hours", True, seen[0])
        ids = await c.ids()
        assert (await c.store.usage("ws", "tool", ids["tool:opening_hours"]))["use_count"] == 1

    run_chat(hours_agent(), scenario, tools={"opening_hours": opening_hours})


def test_a_guideline_that_does_not_match_calls_nothing() -> None:
    calls: list[dict[str, Any]] = []

    async def opening_hours(arguments: dict[str, Any]) -> Any:
        calls.append(arguments)
        return {"open": "09:00"}

    async def scenario(c: Chat) -> None:
        result = await c.say("hello")
        assert result.replies == ("Anything else?",)  # tool.opening_hours is not there
        assert (result.tool_calls, calls, result.trace.tools) == ((), [], [])
        assert "tool_call" not in kinds(result.events)

    run_chat(hours_agent(), scenario, tools={"opening_hours": opening_hours})


def test_a_tool_named_by_two_matched_guidelines_is_called_once_in_priority_order() -> None:
    order: list[str] = []

    def recorder(name: str) -> Any:
        async def function(arguments: dict[str, Any]) -> Any:
            order.append(name)
            return {"name": name}

        return function

    data = bundle(
        guidelines=[
            {"name": "low", "condition": "x", "action": "A.", "priority": 100, "tools": ["a", "b"]},
            {"name": "high", "condition": "x", "action": "B.", "priority": 300, "tools": ["b"]},
        ],
        tools=[{"name": "a"}, {"name": "b"}],
    )

    async def scenario(c: Chat) -> None:
        result = await c.say("hi", "x")
        assert order == ["b", "a"]
        assert result.tool_calls == ("b", "a")
        assert [t["by"] for t in result.trace.tools] == ["guideline high", "guideline low"]

    run_chat(data, scenario, tools={"a": recorder("a"), "b": recorder("b")})


def test_required_arguments_come_from_variables_and_a_missing_one_is_an_error() -> None:
    received: list[dict[str, Any]] = []

    async def check_slots(arguments: dict[str, Any]) -> Any:
        received.append(arguments)
        return {"free": True}

    data = bundle(
        mode="strict",
        guidelines=[
            {"name": "slots", "condition": "asks", "action": "Check.", "tools": ["check_slots"]}
        ],
        tools=[SLOTS],
        cannedResponses=[
            {"name": "free", "template": "Free: {{ tool.check_slots.free }}", "priority": 200},
            {"name": "other", "template": "Let me see."},
        ],
    )

    async def scenario(c: Chat) -> None:
        missing = await c.say("any slots?", "asks")
        assert received == []
        assert missing.replies == ("Let me see.",)
        errors = [e for e in missing.events if e.event_type is EventType.STATUS_UPDATE]
        assert "'day' is required" in errors[0].content["error"]
        assert missing.trace.tools[0]["called"] is False
        found = await c.say("monday?", "asks", variables={"day": "Monday"})
        assert received == [{"day": "Monday"}]
        assert found.replies == ("Free: True",)

    run_chat(data, scenario, tools={"check_slots": check_slots})


def test_a_failing_guideline_tool_is_retried_then_reported_and_the_turn_goes_on() -> None:
    attempts: list[int] = []

    async def opening_hours(arguments: dict[str, Any]) -> Any:
        current = current_call()
        assert current is not None
        attempts.append(current.attempt)
        raise RuntimeError("hours service down")

    data = bundle(
        journey("J", [chat("a", "Prompt of a."), chat("b")], [edge("a", "b", "go")]),
        guidelines=[
            {
                "name": "hours",
                "condition": "customer asks about opening hours",
                "action": "Give the opening hours.",
                "tools": ["opening_hours"],
            }
        ],
        tools=[HOURS | {"errorHandling": {"retries": 1, "backoffMs": 0}}],
    )

    async def scenario(c: Chat) -> None:
        await c.say("hi", "start")
        result = await c.say("and your hours?", "customer asks about opening hours")
        assert attempts == [1, 2]
        assert (result.journey, result.state) == ("J", "a")  # nothing moves back or on
        assert result.replies  # the turn still answers
        assert kinds(result.events) == [
            "customer_message",
            "tool_call",
            "tool_result",
            "status_update",
            "agent_message",
        ]
        assert "hours service down (2 attempts)" in result.trace.errors[0]
        assert result.trace.tools[0]["ok"] is False

    run_chat(data, scenario, tools={"opening_hours": opening_hours})
