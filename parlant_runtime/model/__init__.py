"""The runtime's plain data, with no I/O: shared field types, the host database's
enums, and what the store keeps of conversations (sessions, events, variable values).

An agent's definitions (agent, guidelines, journeys, tools, ...) are the bundle's
``*Spec`` classes in :mod:`parlant_runtime.bundle.schema`, defined once there; the
variable definition lives here because the stored variable row extends it.
"""

from __future__ import annotations

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
from parlant_runtime.model.session import Event, Session
from parlant_runtime.model.variables import Variable, VariableSpec, value_fits_type

__all__ = [
    "NIL_ID",
    "AgentStatus",
    "CompositionMode",
    "Count",
    "Event",
    "EventType",
    "Flag",
    "Integer",
    "IntegrationType",
    "JsonObject",
    "Model",
    "Name",
    "Percent",
    "Priority",
    "Session",
    "SessionMode",
    "SessionStatus",
    "StateType",
    "ToolType",
    "ValueType",
    "Variable",
    "VariableScope",
    "VariableSpec",
    "value_fits_type",
]
