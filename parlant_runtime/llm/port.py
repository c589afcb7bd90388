"""The language-model port: what the runtime asks of a model, and what it gets back.

A :class:`LanguageModel` answers a :class:`ModelRequest` (a system prompt, the
messages, and for a decision the JSON Schema its answer must follow) with a
:class:`ModelResponse` (the text, the parsed JSON, the tokens used). Two adapters ship
as optional extras on the providers' official SDKs:
:class:`~parlant_runtime.llm.openai_chat.OpenAIChatModel` (``pip install
'parlant-runtime[openai]'``) and
:class:`~parlant_runtime.llm.anthropic_messages.AnthropicMessagesModel`
(``[anthropic]``). Anything else (another SDK, a test double) only has to implement
the protocol.

An adapter reports failures as :class:`LanguageModelError` (``retryable`` and the
provider's ``retry_after`` when it gave one); an answer that is not JSON comes back
with :attr:`ModelResponse.error` set, so the tokens it cost are still counted.
Retries, timeouts and schema checks are the caller's (:mod:`parlant_runtime.llm.calls`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from parlant_runtime.engine.understanding import ModelUsage
from parlant_runtime.errors import ParlantRuntimeError

__all__ = [
    "ChatMessage",
    "LanguageModel",
    "LanguageModelError",
    "ModelRequest",
    "ModelResponse",
    "Price",
]


class LanguageModelError(ParlantRuntimeError):
    """A model call failed: ``retryable`` says whether trying again may help."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool = False,
        retry_after: float | None = None,
        usage: ModelUsage | None = None,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after
        self.usage = usage
        """What the failed attempts cost (a plug-in that raises this still counts them)."""


@dataclass(frozen=True, slots=True)
class Price:
    """US dollars per million tokens (the way providers list them)."""

    input: float
    output: float

    def __post_init__(self) -> None:
        if self.input < 0 or self.output < 0:
            raise LanguageModelError(f"a price cannot be negative: {self}")

    def cost_micros(self, input_tokens: int, output_tokens: int) -> int:
        """What the tokens cost, in millionths of a dollar (a price per million tokens is
        exactly millionths of a dollar per token)."""
        return round(input_tokens * self.input + output_tokens * self.output)


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One message of the conversation sent to the model."""

    role: str
    """``user`` (the customer) or ``assistant``."""
    content: str


@dataclass(frozen=True, slots=True)
class ModelRequest:
    """One model call."""

    system: str
    messages: tuple[ChatMessage, ...]
    schema: Mapping[str, Any] | None = None
    """The JSON Schema of a structured answer (``None``: free text)."""
    schema_name: str = "answer"
    temperature: float | None = None
    """0 to 1 (the agent's ``temperature`` percent / 100); ``None``: the provider's default."""
    max_tokens: int = 1024
    purpose: str = "reply"
    """``understand``, ``reply`` or ``choose``: for traces and test servers."""


@dataclass(frozen=True, slots=True)
class ModelResponse:
    """What a model answered."""

    text: str
    data: Any = None
    """The parsed JSON of a structured answer."""
    input_tokens: int = 0
    output_tokens: int = 0
    model: str = ""
    error: str | None = None
    """Why a structured answer could not be parsed (its tokens still count)."""


class LanguageModel(Protocol):
    """A provider's model (see the module docstring)."""

    @property
    def name(self) -> str:
        """``provider:model``, as the trace shows it."""
        ...

    @property
    def price(self) -> Price | None:
        """What its tokens cost; ``None``: costs are not counted."""
        ...

    async def complete(self, request: ModelRequest) -> ModelResponse:
        """One answer.

        Raises:
            LanguageModelError: the call failed.
        """
        ...

    def stream(self, request: ModelRequest) -> AsyncIterator[str | ModelResponse]:
        """The answer's text as it comes, then the whole :class:`ModelResponse`.

        Raises:
            LanguageModelError: the call failed.
        """
        ...
