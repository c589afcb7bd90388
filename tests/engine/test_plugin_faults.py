"""A plug-in evaluator or generator that fails never fails the turn.

Before: an evaluator that raised escaped from ``process_message`` as a raw exception
and the customer's message was lost; one that hung held the session lock forever.
Now the turn records the message, writes an error event, counts natural-language
conditions as false (or falls back to the built-in reply), and answers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from parlant_runtime import MemoryStore, Runtime, bundle_from_data
from parlant_runtime.engine import ComposeRequest, Reply
from parlant_runtime.model import EventType
from tests.engine.test_turns import WS, bundle, chat, journey

DATA = bundle(
    journey("J", [chat("ask", "Which day?")], conditions=["customer wants to book"]),
    cannedResponses=[{"name": "hi", "template": "Hello!", "conditions": ["customer greets"]}],
)


class Raising:
    async def evaluate(
        self, conditions: Sequence[str], *, message: str, context: Mapping[str, Any]
    ) -> Mapping[str, bool]:
        raise RuntimeError("the model provider is down")

    async def compose(self, request: ComposeRequest) -> Reply | None:
        raise RuntimeError("the model provider is down")


class Hanging:
    async def evaluate(
        self, conditions: Sequence[str], *, message: str, context: Mapping[str, Any]
    ) -> Mapping[str, bool]:
        await asyncio.sleep(3600)
        return {}

    async def compose(self, request: ComposeRequest) -> Reply | None:
        await asyncio.sleep(3600)
        return None


class Wrong:
    """Answers with data of the wrong shape: not a mapping, not a reply."""

    async def evaluate(
        self, conditions: Sequence[str], *, message: str, context: Mapping[str, Any]
    ) -> Any:
        return ["customer wants to book"]

    async def compose(self, request: ComposeRequest) -> Any:
        return 42


async def _turn(runtime_kw: dict[str, Any], text: str = "hello, I want to book") -> Any:
    store = MemoryStore()
    await store.ensure_workspace(WS)
    agent = (await store.publish(WS, bundle_from_data(DATA))).agent_id
    runtime = Runtime(store, **runtime_kw)
    session = await runtime.start_session(WS, agent)
    result = await runtime.process_message(WS, session.id, text)
    events = await store.list_events(WS, session.id)
    return result, events, runtime


def _errors(events: Any) -> list[str]:
    return [
        str(e.content["error"])
        for e in events
        if e.event_type is EventType.STATUS_UPDATE and "error" in e.content
    ]


def test_an_evaluator_that_raises_leaves_the_turn_answering() -> None:
    result, events, _ = asyncio.run(_turn({"evaluator": Raising()}))
    assert events[0].event_type is EventType.CUSTOMER_MESSAGE
    assert any("condition evaluator failed" in e for e in _errors(events))
    assert any("RuntimeError" in e for e in _errors(events))
    assert result.journey is None  # conditions counted as false
    assert "the condition evaluator failed: RuntimeError: the model provider is down" in (
        result.trace.errors
    )


def test_an_evaluator_that_hangs_is_given_up_on_and_releases_the_session() -> None:
    async def main() -> None:
        _, events, runtime = await asyncio.wait_for(
            _turn({"evaluator": Hanging(), "plugin_timeout": 0.2}), 10
        )
        assert any("took longer than 0.2 s" in e for e in _errors(events))
        assert events[0].event_type is EventType.CUSTOMER_MESSAGE
        assert runtime.busy_sessions == 0

    asyncio.run(main())


def test_a_generator_that_raises_falls_back_to_the_built_in_reply() -> None:
    from parlant_runtime import ScriptedEvaluator

    evaluator = ScriptedEvaluator(["customer wants to book"])
    result, events, _ = asyncio.run(_turn({"evaluator": evaluator, "generator": Raising()}))
    assert result.replies == ("Which day?",)
    assert any("response generator failed" in e for e in _errors(events))
    assert [e.event_type for e in events].count(EventType.AGENT_MESSAGE) == 1


def test_a_generator_that_hangs_falls_back_within_the_timeout() -> None:
    from parlant_runtime import ScriptedEvaluator

    evaluator = ScriptedEvaluator(["customer wants to book"])
    result, events, _ = asyncio.run(
        asyncio.wait_for(
            _turn({"evaluator": evaluator, "generator": Hanging(), "plugin_timeout": 0.2}), 10
        )
    )
    assert result.replies == ("Which day?",)
    assert any("response generator took longer than 0.2 s" in e for e in _errors(events))


def test_plugins_that_answer_nonsense_are_refused_not_trusted() -> None:
    result, events, _ = asyncio.run(_turn({"evaluator": Wrong(), "generator": Wrong()}))
    errors = _errors(events)
    assert any("condition evaluator answered" in e for e in errors)
    assert any("response generator answered" in e for e in errors)
    assert result.journey is None


def test_the_turn_budget_bounds_all_plugin_calls_together() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        plugins = {"evaluator": Hanging(), "generator": Hanging()}
        _, events, _ = await _turn({**plugins, "plugin_timeout": 5, "turn_budget": 0.3})
        assert loop.time() - started < 3
        assert any("turn's budget" in e for e in _errors(events))
        assert events[0].event_type is EventType.CUSTOMER_MESSAGE

    asyncio.run(main())
