"""The host platform's tables the Parlant tables point at (text primary keys)."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from parlant_runtime.model._base import Flag, Integer, JsonObject, Model

__all__ = ["CustomTool", "KnowledgeBase", "User", "Workspace"]


class Workspace(Model):
    """Table ``workspace``: the tenant every Parlant row belongs to."""

    id: str = Field(min_length=1)
    name: str
    owner_id: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class User(Model):
    """Table ``user``: a person of the host platform."""

    id: str = Field(min_length=1)
    name: str
    email: str
    email_verified: Flag = False
    image: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class KnowledgeBase(Model):
    """Table ``knowledge_base``: a searchable document collection of a workspace."""

    id: str = Field(min_length=1)
    user_id: str | None = None
    workspace_id: str | None = None
    name: str
    description: str | None = None
    token_count: Integer = Field(default=0, ge=0)


class CustomTool(Model):
    """Table ``custom_tools``: code a user registered as a tool on the host platform."""

    id: str = Field(min_length=1)
    user_id: str | None = None
    title: str
    schema_: JsonObject = Field(default_factory=dict, alias="schema")
    code: str = ""
