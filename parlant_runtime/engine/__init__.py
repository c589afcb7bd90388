"""The runtime engine: compiled journeys, one turn at a time, persisted through the store.

Start with :class:`Runtime` (the embedding API). Plugins are small protocols:
:class:`ConditionEvaluator` (natural-language conditions, batched),
:class:`ResponseGenerator` (fluid composition), :class:`Retriever` (knowledge bases, batched)
and tools registered by name in a :class:`ToolRegistry`. Deterministic implementations
ship for each. Language-model plug-ins (:class:`Understander`: conditions and variables
in one call; :class:`CannedChooser`: strict replies) see a :class:`TurnContext`; the
ones built on a model are in :mod:`parlant_runtime.llm`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from parlant_runtime._lazy import lazy_exports

if TYPE_CHECKING:
    from parlant_runtime.engine.compose import (
        Candidate,
        CannedChooser,
        ComposeRequest,
        DeterministicGenerator,
        Part,
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
    from parlant_runtime.engine.runtime import ReplyChunk, Runtime, SessionClosed, TurnResult
    from parlant_runtime.engine.tools import (
        ToolCall,
        ToolError,
        ToolFailure,
        ToolRegistry,
        current_call,
    )
    from parlant_runtime.engine.trace import ConditionTrace, ReplyTrace, Trace, TransitionTrace
    from parlant_runtime.engine.understanding import (
        CollectSpec,
        ModelUsage,
        TurnContext,
        Understander,
        Understanding,
        UnderstandRequest,
        Utterance,
    )

__all__ = [
    "Candidate",
    "CannedChooser",
    "CollectSpec",
    "ComposeRequest",
    "ConditionEvaluator",
    "ConditionTrace",
    "DeterministicGenerator",
    "IntegrationHealth",
    "KeywordEvaluator",
    "KeywordRetriever",
    "KnowledgeError",
    "KnowledgeQuery",
    "ModelUsage",
    "Part",
    "Passage",
    "Reply",
    "ReplyChunk",
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
    "TurnContext",
    "TurnResult",
    "UnderstandRequest",
    "Understander",
    "Understanding",
    "Utterance",
    "current_call",
]

if not TYPE_CHECKING:
    __getattr__, __dir__ = lazy_exports(__name__)
