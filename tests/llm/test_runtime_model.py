"""The runtime with a language model, over real HTTP to a local fake provider.

One call decides every condition and reads the variables, one writes the reply; values
are checked against their schema; a turn answers in several parts; private variables
never reach a prompt; a failing model never breaks a turn; tokens and cost are counted;
replies stream. The provider is tests/llm/fake_provider.py (scripted rules, not a model).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest

from parlant_runtime import MemoryStore, ReplyChunk, Runtime, TurnResult, bundle_from_data
from parlant_runtime.llm import CallPolicy, LanguageModel, ModelComposer, ModelUnderstander, Price
from parlant_runtime.llm.anthropic_messages import AnthropicMessagesModel
from parlant_runtime.llm.openai_chat import OpenAIChatModel
from parlant_runtime.model import EventType
from tests.engine.test_turns import WS, bundle, chat, edge, journey
from tests.llm.fake_provider import Call, FakeProvider, echo_brain, serve

QUICK = CallPolicy(timeout=2.0, retries=1, backoff=0.01)
SECRET = "zebra-42"

DATA = bundle(
    journey(
        "Book",
        [
            chat(
                "ask_day",
                "Which day?",
                collect=[
                    {
                        "name": "day",
                        "schema": {"type": "string", "enum": ["Monday", "Tuesday"]},
                        "description": "the weekday the customer wants",
                    }
                ],
            ),
            chat("confirm", "Booked for {{ vars.day }}."),
        ],
        [edge("ask_day", "confirm", "{{ vars.day is defined }}")],
        conditions=["book"],
    ),
    guidelines=[{"name": "hours", "condition": "hours", "action": "Say we open at 8."}],
    variables=[
        {"key": "secret_code", "value": SECRET, "isPrivate": True},
        {"key": "customer_name", "value": "Ada"},
    ],
)


@pytest.fixture(params=["openai", "anthropic"])
def provider(request: pytest.FixtureRequest) -> Iterator[tuple[str, FakeProvider]]:
    with serve(echo_brain) as fake:
        yield str(request.param), fake


def model_for(provider: str, fake: FakeProvider, price: Price | None = None) -> LanguageModel:
    if provider == "openai":
        return OpenAIChatModel("gpt-test", base_url=f"{fake.url}/v1", api_key="k", price=price)
    return AnthropicMessagesModel("claude-test", base_url=fake.url, api_key="k", price=price)


async def start(
    model: LanguageModel, data: dict[str, Any] = DATA, **kw: Any
) -> tuple[Runtime, MemoryStore, UUID]:
    store = MemoryStore()
    await store.ensure_workspace(WS)
    agent = (await store.publish(WS, bundle_from_data(data))).agent_id
    runtime = Runtime(
        store,
        language_model=model,
        evaluator=ModelUnderstander(model, policy=QUICK),
        generator=ModelComposer(model, policy=QUICK),
        **kw,
    )
    variables = {"secret_code": SECRET, "customer_name": "Ada"}
    session = await runtime.start_session(WS, agent, variables=variables)
    return runtime, store, session.id


def purposes(fake: FakeProvider) -> list[str | None]:
    return [call.schema_name for call in fake.calls]


def test_one_call_decides_the_conditions_and_one_writes_the_reply(
    provider: tuple[str, FakeProvider],
) -> None:
    name, fake = provider

    async def main() -> TurnResult:
        runtime, _, session = await start(model_for(name, fake))
        return await runtime.process_message(WS, session, "I want to book")

    result = asyncio.run(main())
    assert purposes(fake) == ["understanding", None]
    assert result.journey == "Book"
    assert result.replies == ("Which day?",)
    verdicts = {c.text: (c.result, c.rationale) for c in result.trace.conditions}
    assert verdicts["book"] == (True, "the message says it")
    document = fake.calls[0].document()
    assert {c["text"] for c in document["conditions"]} == {"book", "hours"}
    assert [c["name"] for c in document["collect"]] == ["day"]


def test_values_read_from_the_message_are_checked_against_their_schema(
    provider: tuple[str, FakeProvider],
) -> None:
    name, fake = provider

    async def main() -> tuple[TurnResult, TurnResult, list[Any]]:
        runtime, store, session = await start(model_for(name, fake))
        await runtime.process_message(WS, session, "I want to book")
        refused = await runtime.process_message(WS, session, "day=Someday")
        stored = await runtime.process_message(WS, session, "day=Monday")
        return refused, stored, list(await store.list_events(WS, session))

    refused, stored, events = asyncio.run(main())
    assert refused.state == "ask_day"
    assert refused.replies == ("Which day?",)  # the state asks again
    assert any("'day'" in e and "not stored" in e for e in refused.trace.errors)
    assert refused.trace.collected[0]["stored"] is False
    assert stored.state == "confirm"
    assert stored.replies == ("Booked for Monday.",)
    updates = [e.content for e in events if e.event_type is EventType.VARIABLE_UPDATE]
    assert {"key": "day", "source": "model", "value": "Monday"} in updates
    assert not any(u.get("value") == "Someday" for u in updates)


def test_a_turn_answers_in_parts_the_step_and_each_matched_guideline(
    provider: tuple[str, FakeProvider],
) -> None:
    name, fake = provider

    async def main() -> tuple[TurnResult, list[Any]]:
        runtime, store, session = await start(model_for(name, fake))
        result = await runtime.process_message(WS, session, "book, and what are your hours")
        return result, list(await store.list_events(WS, session))

    result, events = asyncio.run(main())
    assert result.replies == ("Which day?", "Say we open at 8.")
    said = [e.content["text"] for e in events if e.event_type is EventType.AGENT_MESSAGE]
    assert said == ["Which day?", "Say we open at 8."]
    assert result.trace.reply is not None
    assert [source for source, _ in result.trace.reply.parts] == ["model", "model"]


def test_private_variables_never_reach_a_prompt(provider: tuple[str, FakeProvider]) -> None:
    name, fake = provider
    data = dict(DATA)
    data["agent"] = {**DATA["agent"], "systemPrompt": "Be kind."}

    async def main() -> None:
        runtime, _, session = await start(model_for(name, fake), data)
        await runtime.process_message(WS, session, "I want to book")
        await runtime.process_message(WS, session, "day=Monday, and hours?")

    asyncio.run(main())
    sent = json.dumps([call.body for call in fake.calls])
    assert len(fake.calls) == 4
    assert SECRET not in sent
    assert "Ada" in sent  # non-private variables do go: the check above can fail
    assert "Be kind." in sent


def test_a_failing_model_never_breaks_a_turn(provider: tuple[str, FakeProvider]) -> None:
    name, fake = provider
    fake.fault("status", (500, {}), times=100)

    async def main() -> tuple[TurnResult, list[Any]]:
        runtime, store, session = await start(model_for(name, fake))
        result = await runtime.process_message(WS, session, "I want to book")
        return result, list(await store.list_events(WS, session))

    result, events = asyncio.run(main())
    assert events[0].event_type is EventType.CUSTOMER_MESSAGE
    assert result.journey is None  # conditions count as false
    assert result.replies == ("I'm sorry, I can't help with that here.",)  # the no-match
    errors = [e.content["error"] for e in events if "error" in e.content]
    assert any("condition evaluator" in e for e in errors)
    assert any("response generator" in e for e in errors)
    assert sum("HTTP 500" in e for e in errors) >= 2


def test_tokens_and_cost_go_to_the_session_and_agent_counters(
    provider: tuple[str, FakeProvider],
) -> None:
    name, fake = provider
    price = Price(input=100_000.0, output=100_000.0)  # ten cents a token: cents move

    async def main() -> tuple[TurnResult, dict[str, int], dict[str, int], Any]:
        runtime, store, session = await start(model_for(name, fake, price))
        result = await runtime.process_message(WS, session, "I want to book")
        agent = (await store.get_session(WS, session)).agent_id
        await store.roll_up_usage()
        return (
            result,
            await store.usage(WS, "session", session),
            await store.usage(WS, "agent", agent),
            await store.get_session(WS, session),
        )

    result, session_usage, agent_usage, row = asyncio.run(main())
    model = result.trace.model
    assert model is not None
    assert model["calls"] == 2
    tokens = model["input_tokens"] + model["output_tokens"]
    assert tokens > 0
    assert session_usage["tokens_used"] == tokens == row.tokens_used
    assert agent_usage["total_tokens_used"] == tokens
    assert model["cost_micros"] == tokens * 100_000
    assert session_usage["cost"] == tokens * 10 == agent_usage["total_cost"]
    assert row.metadata["parlantRuntime"]["cost_micros"] == tokens * 100_000


def test_replies_stream_and_are_stored_once(provider: tuple[str, FakeProvider]) -> None:
    name, fake = provider

    async def main() -> tuple[list[ReplyChunk], TurnResult, list[Any]]:
        runtime, store, session = await start(model_for(name, fake))
        chunks: list[ReplyChunk] = []
        result: TurnResult | None = None
        async for item in runtime.stream_message(WS, session, "book, and what are your hours"):
            if isinstance(item, ReplyChunk):
                chunks.append(item)
            else:
                result = item
        assert result is not None
        return chunks, result, list(await store.list_events(WS, session))

    chunks, result, events = asyncio.run(main())
    assert fake.calls[-1].stream
    assert len(chunks) > 2  # word by word, not one message at a time
    by_part: dict[int, str] = {}
    for chunk in chunks:
        by_part[chunk.part] = by_part.get(chunk.part, "") + chunk.text
    assert tuple(text.strip() for _, text in sorted(by_part.items())) == result.replies
    assert result.replies == ("Which day?", "Say we open at 8.")
    said = [e for e in events if e.event_type is EventType.AGENT_MESSAGE]
    assert [e.content["text"] for e in said] == list(result.replies)


def _choose_each(call: Call) -> Any:
    if call.schema_name == "choice":
        doc = call.document()
        ids = [r["id"] for r in doc["approved_responses"]]
        return {
            "choices": [
                {"part": part["id"], "response": ids[n] if n < len(ids) else "none"}
                for n, part in enumerate(doc["parts"])
            ]
        }
    return echo_brain(call)


STRICT = bundle(
    journey("Book", [chat("ask_day", "Which day?")], conditions=["book"]),
    mode="strict",
    guidelines=[{"name": "hours", "condition": "hours", "action": "Tell the opening hours."}],
    cannedResponses=[
        {"name": "ask_day", "template": "Which day would suit you?", "priority": 500},
        {"name": "hours", "template": "We open at 8.", "conditions": ["hours"]},
        {"name": "bye", "template": "Goodbye!", "conditions": ["bye"]},
    ],
    agent={"noMatchResponse": "Sorry, I cannot help with that."},
)


def test_a_strict_agent_only_sends_canned_responses_the_model_chose_per_part() -> None:
    with serve(_choose_each) as fake:

        async def main() -> TurnResult:
            runtime, _, session = await start(model_for("openai", fake), STRICT)
            return await runtime.process_message(WS, session, "book; your hours?")

        result = asyncio.run(main())
        assert purposes(fake) == ["understanding", "choice"]
        choice = fake.calls[1].document()
    assert [p["what"] for p in choice["parts"]] == ["Which day?", "Tell the opening hours."]
    assert {r["text"] for r in choice["approved_responses"]} == {
        "Which day would suit you?",
        "We open at 8.",
    }
    assert result.replies == ("Which day would suit you?", "We open at 8.")


def test_a_strict_choice_that_is_not_eligible_is_not_sent() -> None:
    def wrong(call: Call) -> Any:
        if call.schema_name == "choice":
            return {"choices": [{"part": "p1", "response": "none"}]}
        return echo_brain(call)

    with serve(wrong) as fake:

        async def main() -> TurnResult:
            runtime, _, session = await start(model_for("openai", fake), STRICT)
            return await runtime.process_message(WS, session, "something else")

        result = asyncio.run(main())
    assert result.replies == ("Sorry, I cannot help with that.",)


def test_the_conversation_so_far_reaches_the_model(provider: tuple[str, FakeProvider]) -> None:
    name, fake = provider

    async def main() -> None:
        runtime, _, session = await start(model_for(name, fake))
        await runtime.process_message(WS, session, "I want to book")
        await runtime.process_message(WS, session, "hours?")

    asyncio.run(main())
    conversation = fake.calls[2].document()["conversation"]
    assert conversation == [
        {"role": "customer", "text": "I want to book"},
        {"role": "agent", "text": "Which day?"},
    ]
    assert fake.calls[2].document()["position"] == {"journey": "Book", "state": "ask_day"}


def test_in_a_journey_only_its_own_and_agent_wide_conditions_are_asked() -> None:
    data = bundle(
        journey("Book", [chat("ask_day", "Which day?")], conditions=["book"]),
        journey(
            "Cancel",
            [chat("ask_code", "Code?"), chat("other", "Other?")],
            [edge("ask_code", "other", "customer gives up")],
            conditions=["cancel"],
        ),
        guidelines=[{"name": "hours", "condition": "hours", "action": "Say 8."}],
    )
    with serve(echo_brain) as fake:

        async def main() -> None:
            runtime, _, session = await start(model_for("openai", fake), data)
            await runtime.process_message(WS, session, "I want to book")
            await runtime.process_message(WS, session, "Monday")

        asyncio.run(main())
        asked = [{c["text"] for c in call.document()["conditions"]} for call in fake.calls[::2]]
    assert asked[0] == {"book", "cancel", "customer gives up", "hours"}  # no journey yet
    assert asked[1] == {"hours"}  # in Book: not Cancel's activation or transitions


FIELDS = bundle(
    mode="strict",
    cannedResponses=[
        {
            "name": "noted",
            "template": "Noted: a table for {{ fields.party }} at {{ fields.time }}.",
            "conditions": ["book"],
        },
        {"name": "plain", "template": "We take bookings.", "conditions": ["book"]},
    ],
    agent={"noMatchResponse": "Sorry, I cannot help with that."},
)


def _fill(fields: dict[str, str] | None) -> Any:
    def brain(call: Call) -> Any:
        if call.schema_name == "choice":
            doc = call.document()
            noted = next(r for r in doc["approved_responses"] if r.get("fields"))
            choice: dict[str, Any] = {"part": "p1", "response": noted["id"]}
            if fields is not None:
                choice["fields"] = fields
            return {"choices": [choice]}
        return echo_brain(call)

    return brain


def test_a_strict_model_fills_the_fields_of_the_canned_response_it_chooses() -> None:
    with serve(_fill({"party": "four", "time": "19:30"})) as fake:

        async def main() -> TurnResult:
            runtime, _, session = await start(model_for("openai", fake), FIELDS)
            return await runtime.process_message(WS, session, "book for four at 19:30")

        result = asyncio.run(main())
        offered = fake.calls[1].document()["approved_responses"]
    assert {k: v for k, v in offered[0].items() if k != "id"} == {
        "text": "Noted: a table for {party} at {time}.",
        "fields": ["party", "time"],
    }
    assert result.replies == ("Noted: a table for four at 19:30.",)


def test_a_choice_with_fields_missing_is_not_sent() -> None:
    with serve(_fill({"party": "four"})) as fake:

        async def main() -> TurnResult:
            runtime, _, session = await start(model_for("openai", fake), FIELDS)
            return await runtime.process_message(WS, session, "book for four")

        result = asyncio.run(main())
    assert result.replies == ("Sorry, I cannot help with that.",)
    assert any("field 'time'" in error for error in result.trace.errors)


def test_without_a_model_a_canned_response_with_fields_is_passed_over() -> None:
    async def main() -> TurnResult:
        store = MemoryStore()
        await store.ensure_workspace(WS)
        agent = (await store.publish(WS, bundle_from_data(FIELDS))).agent_id
        from parlant_runtime import ScriptedEvaluator

        runtime = Runtime(store, evaluator=ScriptedEvaluator(["book"]))
        session = await runtime.start_session(WS, agent)
        return await runtime.process_message(WS, session.id, "book")

    result = asyncio.run(main())
    assert result.replies == ("We take bookings.",)
    assert result.trace.reply is not None
    assert ("canned noted", "has fields only a language model fills: party, time") in (
        result.trace.reply.skipped
    )


def test_the_tokens_of_a_failed_choice_are_still_counted() -> None:
    with serve(_choose_each) as fake:

        async def main() -> TurnResult:
            runtime, _, session = await start(model_for("openai", fake), STRICT)
            fake.fault("", None)  # the understanding call answers normally
            fake.fault("wrong_shape", None, times=2)  # both attempts of the choice do not
            return await runtime.process_message(WS, session, "book; your hours?")

        result = asyncio.run(main())
    assert result.replies == ("Which day would suit you?",)  # the first that fits
    assert result.trace.model is not None
    assert result.trace.model["calls"] == 3  # understanding, and the two refused choices
    assert any("breaks its schema" in error for error in result.trace.errors)
