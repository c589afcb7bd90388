"""Guidelines, canned responses and glossary terms: how an agent behaves and speaks."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import Field

from parlant_runtime.model._base import NIL_ID, Count, Flag, Model, Name, Priority

__all__ = [
    "CannedResponse",
    "CannedResponseFields",
    "Guideline",
    "GuidelineFields",
    "Term",
    "TermFields",
]


class GuidelineFields(Model):
    """What a person writes about a guideline: when (condition), what (action)."""

    name: Name | None = None
    """Extension of the seed: lets journeys link a guideline by name."""
    condition: str | None = None
    action: str = Field(min_length=1)
    priority: Priority = 100
    enabled: Flag = True


class Guideline(GuidelineFields):
    """Table ``parlant_guideline``."""

    id: UUID = NIL_ID
    agent_id: UUID
    tool_ids: list[UUID] = Field(default_factory=list)
    match_count: Count = 0
    last_matched_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class CannedResponseFields(Model):
    """What a person writes about a canned response: an approved template and when to use it."""

    name: Name | None = None
    """Extension of the seed: a stable handle for traces, coverage and tests."""
    template: str = Field(min_length=1)
    category: str | None = None
    tags: list[str] = Field(default_factory=list)
    conditions: list[str] = Field(default_factory=list)
    priority: Priority = 100
    enabled: Flag = True
    requires_exact_match: Flag = False


class CannedResponse(CannedResponseFields):
    """Table ``parlant_canned_response``."""

    id: UUID = NIL_ID
    agent_id: UUID
    use_count: Count = 0
    last_used_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class TermFields(Model):
    """A glossary term: a word of the business, its meaning and its synonyms."""

    name: Name
    description: str = ""
    synonyms: list[str] = Field(default_factory=list)
    category: str | None = None
    examples: list[str] = Field(default_factory=list)
    importance: Priority = 100


class Term(TermFields):
    """Table ``parlant_term``."""

    id: UUID = NIL_ID
    agent_id: UUID
    created_at: datetime | None = None
    updated_at: datetime | None = None
