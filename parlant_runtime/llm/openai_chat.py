"""The OpenAI Chat Completions adapter (``pip install 'parlant-runtime[openai]'``).

Speaks Chat Completions through the official ``openai`` SDK, so with ``base_url`` it
also serves Azure OpenAI's compatible endpoint, vLLM, Ollama, llama.cpp's server and
LiteLLM. Structured answers use ``response_format`` ``json_schema`` (not ``strict``:
the runtime checks every answer against the schema itself, and local servers vary in
what strict mode accepts). Credentials and the base URL come from the SDK's usual
environment variables (``OPENAI_API_KEY``, ``OPENAI_BASE_URL``) unless given. The
SDK's own retries are off: :mod:`parlant_runtime.llm.calls` retries, the same way
for every provider.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from parlant_runtime.llm.port import LanguageModelError, ModelRequest, ModelResponse, Price

__all__ = ["OpenAIChatModel"]


def _retry_after(headers: Any) -> float | None:
    try:
        value = headers.get("retry-after") if headers is not None else None
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


class OpenAIChatModel:
    """A Chat Completions model (see the module docstring).

    Args:
        model: the model id, e.g. ``gpt-4o-mini`` (or what a local server calls it).
        base_url: the API's base URL (default: ``OPENAI_BASE_URL`` or OpenAI's).
        api_key: default ``OPENAI_API_KEY`` (a local server accepts any value).
        price: what a million tokens cost, to count costs (``None``: not counted).
        client: an ``openai.AsyncOpenAI`` to use instead (its settings win).

    Raises:
        LanguageModelError: the SDK is not installed, or no API key is set.
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        price: Price | None = None,
        client: Any = None,
    ) -> None:
        try:
            import openai  # noqa: PLC0415 (an optional extra)
        except ImportError:
            raise LanguageModelError(
                "the OpenAI adapter needs the openai SDK: pip install 'parlant-runtime[openai]'"
            ) from None
        self._openai = openai
        self.model = model
        self._price = price
        if client is None:
            try:
                client = openai.AsyncOpenAI(base_url=base_url, api_key=api_key, max_retries=0)
            except openai.OpenAIError as exc:
                raise LanguageModelError(
                    f"cannot use OpenAI model {model!r}: {exc} (a local server takes any key)"
                ) from None
        self.client = client

    @property
    def name(self) -> str:
        return f"openai:{self.model}"

    @property
    def price(self) -> Price | None:
        return self._price

    def _arguments(self, request: ModelRequest) -> dict[str, Any]:
        messages = [{"role": "system", "content": request.system}]
        messages += [{"role": m.role, "content": m.content} for m in request.messages]
        arguments: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "max_tokens": request.max_tokens,
        }
        if request.temperature is not None:
            arguments["temperature"] = request.temperature
        if request.schema is not None:
            arguments["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": request.schema_name, "schema": dict(request.schema)},
            }
        return arguments

    def _error(self, exc: Exception) -> LanguageModelError:
        openai = self._openai
        if isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            retryable = status in (408, 409, 429) or status >= 500
            retry_after = _retry_after(exc.response.headers)
            return LanguageModelError(
                f"HTTP {status}: {exc.message}"[:300], retryable=retryable, retry_after=retry_after
            )
        if isinstance(exc, openai.APITimeoutError | openai.APIConnectionError):
            return LanguageModelError(f"{type(exc).__name__}: {exc}", retryable=True)
        return LanguageModelError(f"{type(exc).__name__}: {exc}"[:300], retryable=True)

    async def complete(self, request: ModelRequest) -> ModelResponse:
        try:
            completion = await self.client.chat.completions.create(**self._arguments(request))
            text = completion.choices[0].message.content or ""
            usage = completion.usage
        except LanguageModelError:
            raise
        except Exception as exc:  # the SDK's errors, and a body it cannot read
            raise self._error(exc) from None
        response = ModelResponse(
            text=text,
            input_tokens=usage.prompt_tokens if usage else 0,
            output_tokens=usage.completion_tokens if usage else 0,
            model=str(getattr(completion, "model", self.model)),
        )
        if request.schema is None:
            return response
        try:
            data = json.loads(text)
        except ValueError:
            return _with(response, error=f"the answer is not JSON: {text[:80]!r}")
        return _with(response, data=data)

    async def stream(self, request: ModelRequest) -> AsyncIterator[str | ModelResponse]:
        pieces: list[str] = []
        input_tokens = output_tokens = 0
        try:
            chunks = await self.client.chat.completions.create(
                **self._arguments(request), stream=True, stream_options={"include_usage": True}
            )
            async for chunk in chunks:
                if chunk.usage is not None:
                    input_tokens = chunk.usage.prompt_tokens
                    output_tokens = chunk.usage.completion_tokens
                for choice in chunk.choices:
                    text = choice.delta.content if choice.delta else None
                    if text:
                        pieces.append(text)
                        yield text
        except LanguageModelError:
            raise
        except Exception as exc:
            raise self._error(exc) from None
        yield ModelResponse("".join(pieces), None, input_tokens, output_tokens, self.model)


def _with(response: ModelResponse, **changes: Any) -> ModelResponse:
    from dataclasses import replace  # noqa: PLC0415

    return replace(response, **changes)
