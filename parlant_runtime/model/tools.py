"""Tools, their concrete integrations, and what an agent may use."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import Field

from parlant_runtime.model._base import (
    NIL_ID,
    Count,
    Flag,
    Integer,
    JsonObject,
    Model,
    Name,
    Percent,
    Priority,
)
from parlant_runtime.model.enums import IntegrationType, ToolType

__all__ = [
    "AgentKnowledgeBase",
    "AgentKnowledgeBaseFields",
    "AgentTool",
    "Tool",
    "ToolFields",
    "ToolIntegration",
    "ToolIntegrationFields",
]


class ToolFields(Model):
    """What a person writes about a tool: its name and its contract."""

    name: Name
    display_name: str | None = None
    description: str | None = None
    tool_type: ToolType = ToolType.CUSTOM
    parameters: JsonObject = Field(default_factory=lambda: {"type": "object"})
    """JSON Schema of the arguments."""
    return_schema: JsonObject | None = None
    """JSON Schema of the result, when the tool promises one."""
    usage_guidelines: str | None = None
    error_handling: JsonObject = Field(default_factory=dict)
    enabled: Flag = True


class Tool(ToolFields):
    """Table ``parlant_tool`` (workspace-scoped: unique by workspace and name)."""

    id: UUID = NIL_ID
    workspace_id: str
    sim_tool_id: str | None = None
    is_public: Flag = False
    use_count: Count = 0
    success_rate: Percent = 100
    last_used_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class ToolIntegrationFields(Model):
    """Where a tool's calls really go."""

    integration_type: IntegrationType
    target_id: str = Field(min_length=1)
    configuration: JsonObject = Field(default_factory=dict)
    enabled: Flag = True
    parameter_mapping: JsonObject = Field(default_factory=dict)
    response_mapping: JsonObject = Field(default_factory=dict)


class ToolIntegration(ToolIntegrationFields):
    """Table ``parlant_tool_integration``."""

    id: UUID = NIL_ID
    parlant_tool_id: UUID
    last_health_check: datetime | None = None
    health_status: str | None = None
    error_count: Count = 0
    last_error: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class AgentTool(Model):
    """Table ``parlant_agent_tool``: a tool an agent may call."""

    id: UUID = NIL_ID
    agent_id: UUID
    tool_id: UUID
    configuration: JsonObject = Field(default_factory=dict)
    enabled: Flag = True
    priority: Priority = 100
    use_count: Count = 0
    last_used_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class AgentKnowledgeBaseFields(Model):
    """How an agent searches one knowledge base."""

    knowledge_base_id: str = Field(min_length=1)
    enabled: Flag = True
    search_threshold: Percent = 70
    """Minimum relevance (0-100) of a result to be used."""
    max_results: Integer = Field(default=5, ge=1, le=100)
    priority: Priority = 100


class AgentKnowledgeBase(AgentKnowledgeBaseFields):
    """Table ``parlant_agent_knowledge_base``."""

    id: UUID = NIL_ID
    agent_id: UUID
    search_count: Count = 0
    last_searched_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
