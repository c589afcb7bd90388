"""The OpenAI and Anthropic adapters, through the official SDKs, over real HTTP.

Each test starts a local server that speaks the provider's wire protocol
(tests/llm/fake_provider.py) and points the SDK at it with ``base_url``: JSON answers,
server-sent-event streams, and faults injected there (429 with ``retry-after``, 500,
a body that is not JSON, an answer that is not JSON or breaks the schema, a server
that never answers). Nothing reaches the internet.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from parlant_runtime.llm import (
    CallPolicy,
    ChatMessage,
    LanguageModel,
    LanguageModelError,
    ModelRequest,
    ModelResponse,
    Price,
    call_model,
    model_from_name,
)
from parlant_runtime.llm.anthropic_messages import AnthropicMessagesModel
from parlant_runtime.llm.openai_chat import OpenAIChatModel
from tests.llm.fake_provider import Call, FakeProvider, serve

PROVIDERS = ["openai", "anthropic"]
SCHEMA = {
    "type": "object",
    "properties": {"holds": {"type": "boolean"}},
    "required": ["holds"],
    "additionalProperties": False,
}
QUICK = CallPolicy(timeout=2.0, retries=2, backoff=0.01, max_backoff=0.05)


def brain(call: Call) -> Any:
    if call.schema_name == "verdict":
        return {"holds": "yes" in call.messages[-1][1]}
    return "Hello there, how can I help?"


def model(provider: str, fake: FakeProvider, price: Price | None = None) -> LanguageModel:
    if provider == "openai":
        return OpenAIChatModel("gpt-test", base_url=f"{fake.url}/v1", api_key="k", price=price)
    return AnthropicMessagesModel("claude-test", base_url=fake.url, api_key="k", price=price)


def structured(text: str = "yes please") -> ModelRequest:
    return ModelRequest(
        system="Decide.",
        messages=(ChatMessage("user", text),),
        schema=SCHEMA,
        schema_name="verdict",
        purpose="understand",
    )


FREE = ModelRequest(system="Be nice.", messages=(ChatMessage("user", "hi"),), temperature=0.3)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_structured_answer_is_parsed_with_its_tokens(provider: str) -> None:
    with serve(brain) as fake:
        answer = asyncio.run(model(provider, fake).complete(structured()))
        assert answer.data == {"holds": True}
        assert answer.error is None
        assert answer.input_tokens > 0
        assert answer.output_tokens > 0
        body = fake.calls[0].body
    if provider == "openai":  # JSON Schema structured output
        assert body["response_format"]["type"] == "json_schema"
        assert body["response_format"]["json_schema"]["schema"] == SCHEMA
        assert body["messages"][0] == {"role": "system", "content": "Decide."}
    else:  # forced tool use
        assert body["tool_choice"] == {"type": "tool", "name": "verdict"}
        assert body["tools"][0]["input_schema"] == SCHEMA
        assert body["system"] == "Decide."


@pytest.mark.parametrize("provider", PROVIDERS)
def test_free_text_and_temperature(provider: str) -> None:
    with serve(brain) as fake:
        answer = asyncio.run(model(provider, fake).complete(FREE))
        assert answer.text == "Hello there, how can I help?"
        assert answer.data is None
        if provider == "openai":  # the Anthropic API of the SDK installed has no temperature
            assert fake.calls[0].body["temperature"] == 0.3


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_stream_gives_the_text_in_pieces_then_the_whole_answer(provider: str) -> None:
    async def main(fake: FakeProvider) -> list[str | ModelResponse]:
        return [piece async for piece in model(provider, fake).stream(FREE)]

    with serve(brain) as fake:
        pieces = asyncio.run(main(fake))
        assert fake.calls[0].stream
    texts = [p for p in pieces if isinstance(p, str)]
    assert len(texts) > 1
    assert "".join(texts) == "Hello there, how can I help?"
    final = pieces[-1]
    assert isinstance(final, ModelResponse)
    assert final.text == "Hello there, how can I help?"
    assert final.input_tokens > 0
    assert final.output_tokens > 0


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_429_is_retried_after_the_time_the_server_asks(provider: str) -> None:
    with serve(brain) as fake:
        fake.fault("status", (429, {"retry-after": "0.01"}))
        called = asyncio.run(call_model(model(provider, fake), structured(), QUICK))
        assert len(fake.calls) == 2
    assert called.response is not None
    assert called.response.data == {"holds": True}
    assert len(called.errors) == 1
    assert "HTTP 429" in called.errors[0]
    assert called.usage.calls == 1  # the refused attempt cost nothing


@pytest.mark.parametrize("provider", PROVIDERS)
def test_server_errors_are_retried_with_backoff_then_given_up(provider: str) -> None:
    with serve(brain) as fake:
        fake.fault("status", (500, {}), times=5)
        called = asyncio.run(call_model(model(provider, fake), structured(), QUICK))
        assert len(fake.calls) == 3  # one try and two retries
    assert called.response is None
    assert [("HTTP 500" in e) for e in called.errors] == [True] * 3


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_client_error_is_not_retried(provider: str) -> None:
    with serve(brain) as fake:
        fake.fault("status", (400, {}))
        called = asyncio.run(call_model(model(provider, fake), structured(), QUICK))
        assert len(fake.calls) == 1
    assert called.response is None
    assert "HTTP 400" in called.errors[0]


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("fault", ["malformed", "not_json", "wrong_shape"])
def test_unreadable_or_schema_breaking_answers_are_refused_and_retried(
    provider: str, fault: str
) -> None:
    with serve(brain) as fake:
        fake.fault(fault)
        called = asyncio.run(call_model(model(provider, fake), structured(), QUICK))
        assert len(fake.calls) == 2
    assert called.response is not None
    assert called.response.data == {"holds": True}
    assert len(called.errors) == 1
    if fault == "wrong_shape":
        assert "breaks its schema" in called.errors[0]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_server_that_never_answers_is_given_up_on(provider: str) -> None:
    policy = CallPolicy(timeout=0.3, retries=1, backoff=0.01)
    with serve(brain) as fake:
        fake.fault("hang", 30, times=2)
        called = asyncio.run(call_model(model(provider, fake), structured(), policy))
    assert called.response is None
    assert all("no answer within 0.3 s" in e for e in called.errors)
    assert len(called.errors) == 2


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_price_gives_the_cost_in_millionths_of_a_dollar(provider: str) -> None:
    with serve(brain) as fake:
        priced = model(provider, fake, Price(input=2.5, output=10.0))
        called = asyncio.run(call_model(priced, structured(), QUICK))
    usage = called.usage
    assert usage.cost_micros == round(usage.input_tokens * 2.5 + usage.output_tokens * 10.0)
    assert usage.models == (priced.name,)


def test_model_names_and_their_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
    assert model_from_name("openai:gpt-4o-mini").name == "openai:gpt-4o-mini"
    assert model_from_name("anthropic:claude-x").name == "anthropic:claude-x"
    with pytest.raises(LanguageModelError, match="PROVIDER:MODEL"):
        model_from_name("gemini:pro")
    with pytest.raises(LanguageModelError, match="PROVIDER:MODEL"):
        model_from_name("openai:")
    with pytest.raises(LanguageModelError, match="sets no modelProvider"):
        model_from_name("agent")
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(LanguageModelError, match=r"OPENAI_API_KEY|api_key"):
        model_from_name("openai:gpt-4o-mini")


def test_messages_alternate_for_anthropic() -> None:
    with serve(brain) as fake:
        request = ModelRequest(
            system="s",
            messages=(
                ChatMessage("assistant", "Hello"),
                ChatMessage("user", "a"),
                ChatMessage("user", "b"),
            ),
        )
        asyncio.run(model("anthropic", fake).complete(request))
        sent = fake.calls[0].body["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    assert sent[2]["content"] == "a\n\nb"
    assert json.dumps(sent)  # plain JSON
