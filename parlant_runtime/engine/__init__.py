"""The runtime engine: compiled journeys, one turn at a time, persisted through the store.

Start with :class:`Runtime` (the embedding API). Plugins are small protocols:
:class:`ConditionEvaluator` (natural-language conditions, batched),
:class:`ResponseGenerator` (fluid composition) and tools registered by name in a
:class:`ToolRegistry`. Deterministic implementations ship for each.
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
from parlant_runtime.engine.runtime import Runtime, SessionClosed, TurnResult
from parlant_runtime.engine.tools import ToolError, ToolRegistry
from parlant_runtime.engine.trace import ConditionTrace, ReplyTrace, Trace, TransitionTrace

__all__ = [
    "Candidate",
    "ComposeRequest",
    "ConditionEvaluator",
    "ConditionTrace",
    "DeterministicGenerator",
    "KeywordEvaluator",
    "Reply",
    "ReplyTrace",
    "ResponseGenerator",
    "Runtime",
    "ScriptedEvaluator",
    "SessionClosed",
    "ToolError",
    "ToolRegistry",
    "Trace",
    "TransitionTrace",
    "TurnResult",
]
