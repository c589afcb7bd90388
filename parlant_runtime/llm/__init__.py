"""Language models for conditions, extraction and replies (see ``docs/language-models.md``).

The port (:class:`LanguageModel` and its request and response types), the runtime's
plug-ins built on it (:class:`ModelUnderstander`: every natural-language condition of a
turn and the variables to collect, in one call; :class:`ModelComposer`: fluid replies,
streamed when asked, and strict choices among canned responses), the call policy
(timeouts, retries, backoff) and two adapters on the providers' official SDKs, imported
when used: ``OpenAIChatModel`` (``parlant_runtime.llm.openai_chat``, extra ``openai``)
and ``AnthropicMessagesModel`` (``parlant_runtime.llm.anthropic_messages``, extra
``anthropic``). ``Runtime(store, language_model=model)`` wires them in.
"""

from __future__ import annotations

from parlant_runtime.llm.calls import Called, CallPolicy, call_model
from parlant_runtime.llm.composer import ModelComposer
from parlant_runtime.llm.factory import PROVIDERS, model_from_name
from parlant_runtime.llm.port import (
    ChatMessage,
    LanguageModel,
    LanguageModelError,
    ModelRequest,
    ModelResponse,
    Price,
)
from parlant_runtime.llm.understander import ModelUnderstander

__all__ = [
    "PROVIDERS",
    "CallPolicy",
    "Called",
    "ChatMessage",
    "LanguageModel",
    "LanguageModelError",
    "ModelComposer",
    "ModelRequest",
    "ModelResponse",
    "ModelUnderstander",
    "Price",
    "call_model",
    "model_from_name",
]
