"""Agents, sessions, their event log and variables."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import Field, model_validator

from parlant_runtime.model._base import (
    NIL_ID,
    Count,
    Flag,
    Integer,
    JsonObject,
    Model,
    Name,
    Percent,
)
from parlant_runtime.model.enums import (
    AgentStatus,
    CompositionMode,
    EventType,
    SessionMode,
    SessionStatus,
    ValueType,
    VariableScope,
)

__all__ = [
    "Agent",
    "AgentFields",
    "Event",
    "Session",
    "Variable",
    "VariableFields",
    "value_fits_type",
]


class AgentFields(Model):
    """What a person writes about an agent (shared by the row and the bundle)."""

    name: Name
    description: str | None = None
    status: AgentStatus = AgentStatus.ACTIVE
    composition_mode: CompositionMode = CompositionMode.FLUID
    system_prompt: str | None = None
    model_provider: str | None = None
    model_name: str | None = None
    temperature: Percent = 70
    max_tokens: Integer | None = Field(default=None, ge=1)
    no_match_response: str | None = None
    """Extension of the seed: the reply of a strict agent when no canned response fits."""


class Agent(AgentFields):
    """Table ``parlant_agent``."""

    id: UUID = NIL_ID
    workspace_id: str
    created_by: str | None = None
    total_sessions: Count = 0
    total_messages: Count = 0
    total_tokens_used: Count = 0
    total_cost: Count = 0
    """Integer cents."""
    last_active_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    deleted_at: datetime | None = None


class Session(Model):
    """Table ``parlant_session``: one conversation and where it stands."""

    id: UUID = NIL_ID
    agent_id: UUID
    workspace_id: str
    user_id: str | None = None
    customer_id: str | None = None
    mode: SessionMode = SessionMode.AUTO
    status: SessionStatus = SessionStatus.ACTIVE
    title: str | None = None
    metadata: JsonObject = Field(default_factory=dict)
    current_journey_id: UUID | None = None
    current_state_id: UUID | None = None
    variables: JsonObject = Field(default_factory=dict)
    event_count: Count = 0
    message_count: Count = 0
    tokens_used: Count = 0
    cost: Count = 0
    """Integer cents."""
    average_response_time: Count | None = None
    """Milliseconds."""
    satisfaction_score: Integer | None = None
    session_type: str | None = None
    tags: list[str] = Field(default_factory=list)
    user_agent: str | None = None
    ip_address: str | None = None
    referrer: str | None = None
    locale: str | None = None
    timezone: str | None = None
    started_at: datetime | None = None
    last_activity_at: datetime | None = None
    ended_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    version: Count = 0
    """Extension of the seed: bumped by every committed turn (the compare-and-set guard)."""


class Event(Model):
    """Table ``parlant_event``: one entry of a session's append-only log."""

    id: UUID = NIL_ID
    session_id: UUID
    offset: Count
    event_type: EventType
    content: JsonObject = Field(default_factory=dict)
    metadata: JsonObject = Field(default_factory=dict)
    tool_call_id: str | None = None
    journey_id: UUID | None = None
    state_id: UUID | None = None
    created_at: datetime | None = None
    idempotency_key: str | None = None
    """Extension of the seed: a customer message retried with the same key is recorded once."""


def value_fits_type(value: Any, value_type: ValueType) -> bool:
    """Whether a JSON value fits a variable's declared type (``None`` always fits)."""
    if value is None:
        return True
    if value_type is ValueType.STRING:
        return isinstance(value, str)
    if value_type is ValueType.NUMBER:
        return (
            isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        )
    if value_type is ValueType.BOOLEAN:
        return isinstance(value, bool)
    if value_type is ValueType.OBJECT:
        return isinstance(value, dict)
    return isinstance(value, list)


class VariableFields(Model):
    """What a person writes about a variable (shared by the row and the bundle)."""

    key: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    scope: VariableScope = VariableScope.SESSION
    value: Any = None
    value_type: ValueType = ValueType.STRING
    is_private: Flag = False
    description: str | None = None

    @model_validator(mode="after")
    def _value_fits_declared_type(self) -> VariableFields:
        if not value_fits_type(self.value, self.value_type):
            shown = "the value" if self.is_private else f"value {self.value!r}"  # never echoed
            raise ValueError(
                f"{shown} is not a {self.value_type.value}; "
                f"change the value or set valueType to what it holds"
            )
        return self


class Variable(VariableFields):
    """Table ``parlant_variable``."""

    id: UUID = NIL_ID
    agent_id: UUID
    session_id: UUID | None = None
    customer_id: str | None = None
    """Extension of the seed: the customer a customer-scoped value belongs to."""
    created_at: datetime | None = None
    updated_at: datetime | None = None
