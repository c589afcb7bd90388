"""The domain model: one pydantic class per table, plain data with no I/O.

Each table has a ``*Fields`` class with what a person writes (shared with the
bundle format) and a row class adding ids, foreign keys, counters and timestamps.
"""

from __future__ import annotations

from parlant_runtime.model._base import NIL_ID, Model
from parlant_runtime.model.agent import (
    Agent,
    AgentFields,
    Event,
    Session,
    Variable,
    VariableFields,
    value_fits_type,
)
from parlant_runtime.model.behavior import (
    CannedResponse,
    CannedResponseFields,
    Guideline,
    GuidelineFields,
    Term,
    TermFields,
)
from parlant_runtime.model.enums import (
    AgentStatus,
    CompositionMode,
    EventType,
    IntegrationType,
    SessionMode,
    SessionStatus,
    StateType,
    ToolType,
    ValueType,
    VariableScope,
)
from parlant_runtime.model.host import CustomTool, KnowledgeBase, User, Workspace
from parlant_runtime.model.journey import (
    Journey,
    JourneyFields,
    JourneyGuideline,
    JourneyGuidelineFields,
    JourneyState,
    JourneyStateFields,
    JourneyTransition,
    JourneyTransitionFields,
)
from parlant_runtime.model.tools import (
    AgentKnowledgeBase,
    AgentKnowledgeBaseFields,
    AgentTool,
    Tool,
    ToolFields,
    ToolIntegration,
    ToolIntegrationFields,
)

__all__ = [
    "NIL_ID",
    "Agent",
    "AgentFields",
    "AgentKnowledgeBase",
    "AgentKnowledgeBaseFields",
    "AgentStatus",
    "AgentTool",
    "CannedResponse",
    "CannedResponseFields",
    "CompositionMode",
    "CustomTool",
    "Event",
    "EventType",
    "Guideline",
    "GuidelineFields",
    "IntegrationType",
    "Journey",
    "JourneyFields",
    "JourneyGuideline",
    "JourneyGuidelineFields",
    "JourneyState",
    "JourneyStateFields",
    "JourneyTransition",
    "JourneyTransitionFields",
    "KnowledgeBase",
    "Model",
    "Session",
    "SessionMode",
    "SessionStatus",
    "StateType",
    "Term",
    "TermFields",
    "Tool",
    "ToolFields",
    "ToolIntegration",
    "ToolIntegrationFields",
    "ToolType",
    "User",
    "ValueType",
    "Variable",
    "VariableFields",
    "VariableScope",
    "Workspace",
    "value_fits_type",
]
