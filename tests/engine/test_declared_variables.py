"""A declared variable without a value is undefined, on every store.

Declaring a variable (to make it private, to give it a type, or because the
``undefined_variable`` finding asks for it) must not give it a value: until
something sets it, ``vars.x is defined`` is false, a skip condition on it does not
skip, a template that reads it cannot be filled, and a tool never receives it as
``null``. The same conversation runs on the memory store, SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from parlant_runtime import bundle_from_data
from parlant_runtime.engine import Runtime, ScriptedEvaluator, ToolRegistry
from tests.engine.test_persisted import BACKENDS, opener
from tests.engine.test_turns import WS, bundle, chat, edge, journey, tool_state


def declared_flow() -> dict[str, Any]:
    """``ask_day`` is skipped once ``day`` is known; ``lookup`` passes ``day`` to a tool."""
    return bundle(
        journey(
            "Book",
            [
                chat("ask_day", "Which day?", condition="{{ vars.day is defined }}"),
                tool_state("lookup", "slots", toolConfig={"resultVariable": "slots"}),
                chat("offer", "Here are the slots."),
            ],
            [edge("ask_day", "lookup"), edge("lookup", "offer")],
        ),
        variables=[
            {"key": "day", "scope": "session", "valueType": "string", "isPrivate": True},
            {"key": "department", "scope": "customer", "valueType": "string"},
            {"key": "greeting", "scope": "global", "valueType": "string", "value": "Hello"},
            {"key": "slots", "scope": "session", "valueType": "object"},
        ],
        tools=[
            {
                "name": "slots",
                # no type on ``day``: a null argument would pass the schema and reach the tool
                "parameters": {"type": "object", "properties": {"day": {}}, "required": ["day"]},
            }
        ],
        guidelines=[
            {
                "name": "knows department",
                "condition": "{{ vars.department is defined }}",
                "action": "Mention the department.",
            },
            {"name": "greets", "condition": "{{ vars.greeting is defined }}", "action": "Greet."},
        ],
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_declared_variable_without_a_value_is_undefined(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    open_store = opener(backend, request, tmp_path)
    calls: list[dict[str, Any]] = []

    async def slots(arguments: dict[str, Any]) -> Any:
        calls.append(arguments)
        return {"free": ["09:00"]}

    async def main() -> None:
        store = await open_store()
        await store.ensure_workspace(WS)
        report = await store.publish(WS, bundle_from_data(declared_flow()))
        registry = ToolRegistry()
        registry.register("slots", slots)
        evaluator = ScriptedEvaluator(["start"])
        runtime = Runtime(store, evaluator=evaluator, tools=registry)
        session = await runtime.start_session(WS, report.agent_id, customer_id="c1")

        first = await runtime.process_message(WS, session.id, "hi")
        assert (first.journey, first.state) == ("Book", "ask_day"), first.trace.path
        assert calls == []
        # a guideline on a declared, unset variable does not match; one with a value does
        assert first.guidelines == ("greets",)
        skip = [c for c in first.trace.conditions if c.where == "Book/ask_day skip"]
        assert [c.result for c in skip] == [False]

        second = await runtime.process_message(WS, session.id, "Monday", variables={"day": "Mon"})
        assert second.state == "offer", second.trace.path
        assert calls == [{"day": "Mon"}]
        await store.close()

    asyncio.run(main())


@pytest.mark.parametrize("backend", BACKENDS)
def test_setting_a_variable_to_null_makes_it_undefined_again(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    open_store = opener(backend, request, tmp_path)
    data = bundle(
        journey("Q", [chat("a", "A?")], conditions=["start"]),
        variables=[{"key": "note", "scope": "session", "valueType": "string"}],
        guidelines=[
            {"name": "noted", "condition": "{{ vars.note is defined }}", "action": "Say it."}
        ],
    )

    async def main() -> None:
        store = await open_store()
        await store.ensure_workspace(WS)
        report = await store.publish(WS, bundle_from_data(data))
        runtime = Runtime(store, evaluator=ScriptedEvaluator(["start"]))
        session = await runtime.start_session(WS, report.agent_id, variables={"note": "x"})
        assert (await runtime.process_message(WS, session.id, "a")).guidelines == ("noted",)
        cleared = await runtime.process_message(WS, session.id, "b", variables={"note": None})
        assert cleared.guidelines == ()
        assert (await runtime.process_message(WS, session.id, "c")).guidelines == ()
        await store.close()

    asyncio.run(main())
