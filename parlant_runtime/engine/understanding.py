"""What a turn tells a language-understanding plug-in, and what it gets back.

The older plug-in points (:class:`~parlant_runtime.engine.conditions.ConditionEvaluator`,
:class:`~parlant_runtime.engine.compose.ResponseGenerator`) receive the message and the
template context. A plug-in backed by a language model needs more: the recent
conversation, the agent's own words (system prompt), the glossary, where the session is,
knowledge-base passages and tool results. :class:`TurnContext` carries all of that, with
the session's non-private variables only: a private value never reaches a plug-in that
may put it in a prompt.

An :class:`Understander` decides every pending natural-language condition of the turn
AND reads the variables the current position collects (:class:`CollectSpec`) out of the
customer's words, in one call: :meth:`Understander.understand`. The runtime checks every
value against its declared JSON Schema before storing it.

:class:`ModelUsage` is what model calls cost; the runtime adds it to the session's and
the agent's counters and to the trace.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "CollectSpec",
    "ModelUsage",
    "TokenSink",
    "TurnContext",
    "UnderstandRequest",
    "Understander",
    "Understanding",
    "Utterance",
]


@dataclass(frozen=True, slots=True)
class ModelUsage:
    """Model calls made for one purpose or one turn, and what they cost.

    ``cost_micros`` is in millionths of a US dollar (a turn costs fractions of a cent);
    ``None`` when the model has no configured price.
    """

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_micros: int | None = None
    models: tuple[str, ...] = ()

    @property
    def tokens(self) -> int:
        """Input and output tokens together."""
        return self.input_tokens + self.output_tokens

    def __add__(self, other: ModelUsage) -> ModelUsage:
        cost: int | None
        if self.cost_micros is None and other.cost_micros is None:
            cost = None
        else:
            cost = (self.cost_micros or 0) + (other.cost_micros or 0)
        models = self.models + tuple(m for m in other.models if m not in self.models)
        return ModelUsage(
            self.calls + other.calls,
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            cost,
            models,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, for the trace."""
        return {
            "calls": self.calls,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost_micros": self.cost_micros,
            "models": list(self.models),
        }


@dataclass(frozen=True, slots=True)
class Utterance:
    """One message of the conversation so far."""

    role: str
    """``customer``, ``agent`` (the assistant, or a human agent)."""
    text: str


@dataclass(frozen=True, slots=True)
class CollectSpec:
    """A variable the current position reads out of the customer's words."""

    name: str
    schema: Mapping[str, Any]
    """A JSON Schema the value must satisfy (checked by the runtime before it is stored)."""
    description: str | None = None
    state: str | None = None
    """``journey/state`` that declares it."""


@dataclass(frozen=True, slots=True)
class TurnContext:
    """Everything a language-understanding plug-in may see of the turn (no private value)."""

    agent_name: str
    agent_description: str | None
    system_prompt: str | None
    message: str | None
    conversation: tuple[Utterance, ...]
    """The messages before this one, oldest first (at most the runtime's history size)."""
    glossary: tuple[Mapping[str, Any], ...]
    """``{"name", "description", "synonyms"}`` per glossary term."""
    variables: Mapping[str, Any]
    """The session's non-private variables."""
    journey: str | None
    state: str | None
    kb: tuple[Mapping[str, Any], ...] = ()
    tools: Mapping[str, Any] = field(default_factory=dict)
    """Tool results of this turn that templates may see."""
    temperature: int | None = None
    """The agent's ``temperature`` (0-100), if it sets one."""
    max_tokens: int | None = None
    model_provider: str | None = None
    model_name: str | None = None


@dataclass(frozen=True, slots=True)
class UnderstandRequest:
    """The turn's pending natural-language conditions and the variables to collect."""

    conditions: tuple[str, ...]
    collect: tuple[CollectSpec, ...]
    context: TurnContext


@dataclass(frozen=True, slots=True)
class Understanding:
    """What the plug-in decided: each condition's truth and the model's short reason,
    the values it read; a condition it does not name counts as false."""

    holds: Mapping[str, bool]
    rationales: Mapping[str, str] = field(default_factory=dict)
    values: Mapping[str, Any] = field(default_factory=dict)
    usage: ModelUsage | None = None
    errors: tuple[str, ...] = ()
    """What went wrong on the way (a retried call, an answer refused): error events."""


@runtime_checkable
class Understander(Protocol):
    """Decides conditions and collects variables in one call (see the module docstring)."""

    async def understand(self, request: UnderstandRequest) -> Understanding:
        """The verdicts and values for ``request``."""
        ...


TokenSink = Callable[[int, str], Awaitable[None]]
"""Receives a streamed reply: ``(part, text)`` as the text arrives (part 0 first)."""
