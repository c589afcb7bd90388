"""Enumerations with the exact values of the host database's enum types."""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "AgentStatus",
    "CompositionMode",
    "EventType",
    "IntegrationType",
    "SessionMode",
    "SessionStatus",
    "StateType",
    "ToolType",
    "ValueType",
    "VariableScope",
]


class AgentStatus(StrEnum):
    """PostgreSQL enum ``agent_status``."""

    ACTIVE = "active"
    INACTIVE = "inactive"
    ARCHIVED = "archived"


class CompositionMode(StrEnum):
    """PostgreSQL enum ``composition_mode``; ``strict`` is Parlant's ``canned_strict``."""

    FLUID = "fluid"
    STRICT = "strict"


class SessionMode(StrEnum):
    """PostgreSQL enum ``session_mode``."""

    AUTO = "auto"
    MANUAL = "manual"
    PAUSED = "paused"


class SessionStatus(StrEnum):
    """PostgreSQL enum ``session_status``."""

    ACTIVE = "active"
    COMPLETED = "completed"
    ABANDONED = "abandoned"


class EventType(StrEnum):
    """PostgreSQL enum ``event_type``."""

    CUSTOMER_MESSAGE = "customer_message"
    AGENT_MESSAGE = "agent_message"
    TOOL_CALL = "tool_call"
    TOOL_RESULT = "tool_result"
    STATUS_UPDATE = "status_update"
    JOURNEY_TRANSITION = "journey_transition"
    VARIABLE_UPDATE = "variable_update"


class StateType(StrEnum):
    """PostgreSQL enum ``journey_state_type``."""

    CHAT = "chat"
    TOOL = "tool"
    DECISION = "decision"
    FINAL = "final"


class VariableScope(StrEnum):
    """Vocabulary of the text column ``parlant_variable.scope``."""

    SESSION = "session"
    CUSTOMER = "customer"
    GLOBAL = "global"


class ValueType(StrEnum):
    """Vocabulary of the text column ``parlant_variable.value_type``."""

    STRING = "string"
    NUMBER = "number"
    BOOLEAN = "boolean"
    OBJECT = "object"
    ARRAY = "array"


class ToolType(StrEnum):
    """Vocabulary of the text column ``parlant_tool.tool_type``."""

    SIM_NATIVE = "sim_native"
    CUSTOM = "custom"
    EXTERNAL = "external"


class IntegrationType(StrEnum):
    """Vocabulary of the text column ``parlant_tool_integration.integration_type``."""

    CUSTOM_TOOL = "custom_tool"
    WORKFLOW_BLOCK = "workflow_block"
    MCP_SERVER = "mcp_server"
