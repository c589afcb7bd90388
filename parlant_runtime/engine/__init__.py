"""The runtime engine: compiled journeys, one turn at a time, persisted through the store.

Start with :class:`Runtime` (the embedding API). Plugins are small protocols:
:class:`ConditionEvaluator` (natural-language conditions, batched),
:class:`ResponseGenerator` (fluid composition), :class:`Retriever` (knowledge bases, batched)
and tools registered by name in a :class:`ToolRegistry`. Deterministic implementations
ship for each.
"""

from __future__ import annotations

from parlant_runtime.engine.compose import (
    Candidate,
    ComposeRequest,
    DeterministicGenerator,
    Reply,
    ResponseGenerator,
)
from parlant_runtime.engine.conditions import (
    ConditionEvaluator,
    KeywordEvaluator,
    ScriptedEvaluator,
)
from parlant_runtime.engine.health import IntegrationHealth, ToolHealth
from parlant_runtime.engine.knowledge import (
    KeywordRetriever,
    KnowledgeError,
    KnowledgeQuery,
    Passage,
    Retriever,
)
from parlant_runtime.engine.runtime import Runtime, SessionClosed, TurnResult
from parlant_runtime.engine.tools import (
    ToolCall,
    ToolError,
    ToolFailure,
    ToolRegistry,
    current_call,
)
from parlant_runtime.engine.trace import ConditionTrace, ReplyTrace, Trace, TransitionTrace

__all__ = [
    "Candidate",
    "ComposeRequest",
    "ConditionEvaluator",
    "ConditionTrace",
    "DeterministicGenerator",
    "IntegrationHealth",
    "KeywordEvaluator",
    "KeywordRetriever",
    "KnowledgeError",
    "KnowledgeQuery",
    "Passage",
    "Reply",
    "ReplyTrace",
    "ResponseGenerator",
    "Retriever",
    "Runtime",
    "ScriptedEvaluator",
    "SessionClosed",
    "ToolCall",
    "ToolError",
    "ToolFailure",
    "ToolHealth",
    "ToolRegistry",
    "Trace",
    "TransitionTrace",
    "TurnResult",
    "current_call",
]
