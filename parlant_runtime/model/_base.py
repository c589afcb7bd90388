"""The base class and shared field types of every model.

Python attributes are snake_case; the seed's camelCase names are the aliases, so
data read from a bundle file or a host database row looks like the seed. Both
spellings are accepted on input, unknown keys are refused, and output uses the
camelCase names.
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, Strict
from pydantic.alias_generators import to_camel

__all__ = [
    "NIL_ID",
    "Count",
    "Flag",
    "Integer",
    "JsonObject",
    "Model",
    "Name",
    "Percent",
    "Priority",
]

NIL_ID = UUID(int=0)
"""Placeholder id of an entity whose id has not been given; bundles derive real ids."""


class Model(BaseModel):
    """Base of every model: plain data, camelCase aliases, unknown keys refused."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="forbid",
        str_strip_whitespace=False,
        use_enum_values=False,
    )


Flag = Annotated[bool, Strict()]
"""A boolean: ``true`` or ``false`` only (not ``"off"``, ``0`` or ``"yes"``)."""

Integer = Annotated[int, Strict()]
"""An integer: not a string of digits, not a boolean, not a float."""

Priority = Annotated[int, Strict(), Field(ge=1, le=1000)]
"""A priority: 1..1000, higher is more important (database default 100)."""

Percent = Annotated[int, Strict(), Field(ge=0, le=100)]
"""An integer percentage (temperature, rates, thresholds)."""

Count = Annotated[int, Strict(), Field(ge=0)]
"""A non-negative counter."""

Name = Annotated[str, Field(min_length=1, max_length=200)]
"""A human-chosen name or title: not empty, at most 200 characters."""

JsonObject = dict[str, Any]
"""A JSON object stored in a jsonb column."""
