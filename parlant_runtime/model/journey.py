"""Journeys: states, the transitions between them, and journey-specific guidelines."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import Field

from parlant_runtime.model._base import (
    NIL_ID,
    Count,
    Flag,
    JsonObject,
    Model,
    Name,
    Percent,
    Priority,
)
from parlant_runtime.model.enums import StateType

__all__ = [
    "Journey",
    "JourneyFields",
    "JourneyGuideline",
    "JourneyGuidelineFields",
    "JourneyState",
    "JourneyStateFields",
    "JourneyTransition",
    "JourneyTransitionFields",
]


class JourneyFields(Model):
    """What a person writes about a journey itself (its states and transitions aside)."""

    title: Name
    description: str | None = None
    conditions: list[str] = Field(default_factory=list)
    """Activation conditions: the journey is a candidate when any one of them holds."""
    enabled: Flag = True
    allow_skipping: Flag = True
    allow_revisiting: Flag = True


class Journey(JourneyFields):
    """Table ``parlant_journey``."""

    id: UUID = NIL_ID
    agent_id: UUID
    total_sessions: Count = 0
    completion_rate: Percent = 0
    last_used_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class JourneyStateFields(Model):
    """What a person writes about a state (the tool it calls aside)."""

    name: Name
    state_type: StateType
    chat_prompt: str | None = None
    tool_config: JsonObject = Field(default_factory=dict)
    condition: str | None = None
    """The skip condition; on a decision state, the question the state decides."""
    is_initial: Flag = False
    is_final: Flag = False
    allow_skip: Flag = True
    metadata: JsonObject = Field(default_factory=dict)

    @property
    def ends_journey(self) -> bool:
        """Whether entering this state ends the journey."""
        return self.state_type is StateType.FINAL or self.is_final

    @property
    def stops_turn(self) -> bool:
        """Whether a turn that enters this state ends there (chat and final states);
        tool and decision states move on within the turn."""
        return self.state_type is StateType.CHAT or self.ends_journey


class JourneyState(JourneyStateFields):
    """Table ``parlant_journey_state``."""

    id: UUID = NIL_ID
    journey_id: UUID
    tool_id: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class JourneyTransitionFields(Model):
    """What a person writes about a transition (its two ends aside)."""

    condition: str | None = None
    priority: Priority = 100


class JourneyTransition(JourneyTransitionFields):
    """Table ``parlant_journey_transition``."""

    id: UUID = NIL_ID
    journey_id: UUID
    from_state_id: UUID
    to_state_id: UUID
    use_count: Count = 0
    last_used_at: datetime | None = None
    created_at: datetime | None = None


class JourneyGuidelineFields(Model):
    """How a journey applies one of the agent's guidelines."""

    priority_override: Priority | None = None
    enabled: Flag = True
    journey_specific_condition: str | None = None


class JourneyGuideline(JourneyGuidelineFields):
    """Table ``parlant_journey_guideline``."""

    id: UUID = NIL_ID
    journey_id: UUID
    guideline_id: UUID
    match_count: Count = 0
    last_matched_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
