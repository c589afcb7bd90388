"""The Anthropic Messages adapter (``pip install 'parlant-runtime[anthropic]'``).

Speaks the Messages API through the official ``anthropic`` SDK. Structured answers
use forced tool use: the request offers one tool whose ``input_schema`` is the answer's
schema and sets ``tool_choice`` to it, and the tool call's input is the answer.
The agent's temperature is sent only when the installed SDK's ``messages.create``
takes one (recent versions of the API dropped it). Credentials and the base URL come
from the SDK's usual environment variables (``ANTHROPIC_API_KEY``,
``ANTHROPIC_BASE_URL``) unless given. The SDK's own retries
are off: :mod:`parlant_runtime.llm.calls` retries, the same way for every provider.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator
from typing import Any

from parlant_runtime.llm.port import (
    ChatMessage,
    LanguageModelError,
    ModelRequest,
    ModelResponse,
    Price,
)

__all__ = ["AnthropicMessagesModel"]


def _alternating(messages: tuple[ChatMessage, ...]) -> list[dict[str, Any]]:
    """The Messages API wants user and assistant turns to alternate, starting with the
    user: consecutive messages of one role are joined."""
    joined: list[dict[str, Any]] = []
    for message in messages:
        role = "assistant" if message.role == "assistant" else "user"
        if joined and joined[-1]["role"] == role:
            joined[-1]["content"] += "\n\n" + message.content
        else:
            joined.append({"role": role, "content": message.content})
    if not joined or joined[0]["role"] != "user":
        joined.insert(0, {"role": "user", "content": "(conversation start)"})
    return joined


class AnthropicMessagesModel:
    """A Messages API model (see the module docstring).

    Args:
        model: the model id, e.g. ``claude-sonnet-4-5``.
        base_url: default ``ANTHROPIC_BASE_URL`` or Anthropic's.
        api_key: default ``ANTHROPIC_API_KEY``.
        price: what a million tokens cost, to count costs (``None``: not counted).
        client: an ``anthropic.AsyncAnthropic`` to use instead.

    Raises:
        LanguageModelError: the SDK is not installed.
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
            import anthropic  # noqa: PLC0415 (an optional extra)
        except ImportError:
            raise LanguageModelError(
                "the Anthropic adapter needs the anthropic SDK: "
                "pip install 'parlant-runtime[anthropic]'"
            ) from None
        self._anthropic = anthropic
        self.model = model
        self._price = price
        self.client = client or anthropic.AsyncAnthropic(
            base_url=base_url, api_key=api_key, max_retries=0
        )
        # newer Messages APIs dropped ``temperature``: sent only where the SDK takes it
        self._takes_temperature = (
            "temperature" in inspect.signature(self.client.messages.create).parameters
        )

    @property
    def name(self) -> str:
        return f"anthropic:{self.model}"

    @property
    def price(self) -> Price | None:
        return self._price

    def _arguments(self, request: ModelRequest) -> dict[str, Any]:
        arguments: dict[str, Any] = {
            "model": self.model,
            "system": request.system,
            "messages": _alternating(request.messages),
            "max_tokens": request.max_tokens,
        }
        if request.temperature is not None and self._takes_temperature:
            arguments["temperature"] = min(max(request.temperature, 0.0), 1.0)
        if request.schema is not None:
            arguments["tools"] = [
                {
                    "name": request.schema_name,
                    "description": "Give your answer by calling this tool.",
                    "input_schema": dict(request.schema),
                }
            ]
            arguments["tool_choice"] = {"type": "tool", "name": request.schema_name}
        return arguments

    def _error(self, exc: Exception) -> LanguageModelError:
        anthropic = self._anthropic
        if isinstance(exc, anthropic.APIStatusError):
            status = exc.status_code
            retryable = status in (408, 409, 429) or status >= 500
            try:
                after = exc.response.headers.get("retry-after")
                retry_after = float(after) if after is not None else None
            except (TypeError, ValueError):
                retry_after = None
            return LanguageModelError(
                f"HTTP {status}: {exc.message}"[:300], retryable=retryable, retry_after=retry_after
            )
        return LanguageModelError(f"{type(exc).__name__}: {exc}"[:300], retryable=True)

    async def complete(self, request: ModelRequest) -> ModelResponse:
        try:
            message = await self.client.messages.create(**self._arguments(request))
            blocks = list(message.content)
            usage = message.usage
        except LanguageModelError:
            raise
        except Exception as exc:
            raise self._error(exc) from None
        text = "".join(getattr(b, "text", "") for b in blocks if b.type == "text")
        response = ModelResponse(
            text=text,
            input_tokens=usage.input_tokens if usage else 0,
            output_tokens=usage.output_tokens if usage else 0,
            model=str(getattr(message, "model", self.model)),
        )
        if request.schema is None:
            return response
        for block in blocks:
            if block.type == "tool_use" and block.name == request.schema_name:
                return ModelResponse(
                    text, block.input, response.input_tokens, response.output_tokens, response.model
                )
        return ModelResponse(
            text,
            None,
            response.input_tokens,
            response.output_tokens,
            response.model,
            error=f"the answer did not call the tool {request.schema_name!r}",
        )

    async def stream(self, request: ModelRequest) -> AsyncIterator[str | ModelResponse]:
        pieces: list[str] = []
        input_tokens = output_tokens = 0
        try:
            events = await self.client.messages.create(**self._arguments(request), stream=True)
            async for event in events:
                if event.type == "message_start":
                    input_tokens = event.message.usage.input_tokens
                    output_tokens = event.message.usage.output_tokens
                elif event.type == "content_block_delta" and event.delta.type == "text_delta":
                    pieces.append(event.delta.text)
                    yield event.delta.text
                elif event.type == "message_delta" and event.usage is not None:
                    output_tokens = event.usage.output_tokens
        except LanguageModelError:
            raise
        except Exception as exc:
            raise self._error(exc) from None
        yield ModelResponse("".join(pieces), None, input_tokens, output_tokens, self.model)
