"""Sessions and their event log: what the store keeps of each conversation."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import Field

from parlant_runtime.model._base import NIL_ID, Count, Integer, JsonObject, Model
from parlant_runtime.model.enums import EventType, SessionMode, SessionStatus

__all__ = ["Event", "Session"]


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
