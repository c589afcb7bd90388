"""A model from a short name: ``openai:MODEL``, ``anthropic:MODEL``, or the agent's own.

What ``parlant-runtime chat --model`` takes. ``agent`` uses the agent's
``modelProvider`` and ``modelName`` (bundle ``agent`` section).
"""

from __future__ import annotations

from parlant_runtime.bundle.schema import AgentSpec
from parlant_runtime.llm.port import LanguageModel, LanguageModelError, Price

__all__ = ["PROVIDERS", "model_from_name"]

PROVIDERS = ("openai", "anthropic")
"""The providers an adapter ships for."""


def model_from_name(
    name: str,
    *,
    agent: AgentSpec | None = None,
    price: Price | None = None,
    api_key: str | None = None,
) -> LanguageModel:
    """The model ``name`` names (see the module docstring).

    Raises:
        LanguageModelError: an unknown provider, a missing model name, an agent without
            ``modelProvider``/``modelName`` for ``agent``, or the provider's SDK missing.
    """
    if name == "agent":
        if agent is None or not agent.model_provider or not agent.model_name:
            who = f"agent {agent.name!r}" if agent is not None else "the agent"
            raise LanguageModelError(
                f"{who} sets no modelProvider and modelName; give --model PROVIDER:MODEL"
            )
        provider, model = agent.model_provider.casefold(), agent.model_name
    else:
        provider, _, model = name.partition(":")
        provider = provider.casefold()
    if provider not in PROVIDERS or not model:
        raise LanguageModelError(
            f"model {name!r}: say PROVIDER:MODEL with a provider of {', '.join(PROVIDERS)} "
            "(e.g. openai:gpt-4o-mini), or 'agent' for the agent's own model"
        )
    if provider == "openai":
        from parlant_runtime.llm.openai_chat import OpenAIChatModel  # noqa: PLC0415

        return OpenAIChatModel(model, price=price, api_key=api_key)
    from parlant_runtime.llm.anthropic_messages import AnthropicMessagesModel  # noqa: PLC0415

    return AnthropicMessagesModel(model, price=price, api_key=api_key)
