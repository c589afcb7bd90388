"""Variables: one definition for the bundle entry and for the stored value."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any, Self
from uuid import UUID

from pydantic import Field, model_validator

from parlant_runtime.model._base import NIL_ID, Flag, Model
from parlant_runtime.model.enums import ValueType, VariableScope

__all__ = ["Variable", "VariableSpec", "value_fits_type"]


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


class VariableSpec(Model):
    """One entry of ``variables``."""

    # What a person writes about a variable; the bundle's entry (exported by
    # parlant_runtime.bundle) and, extended by Variable, the stored row.
    key: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    scope: VariableScope = VariableScope.SESSION
    value: Any = None
    value_type: ValueType = ValueType.STRING
    is_private: Flag = False
    description: str | None = None
    id: UUID = NIL_ID

    @model_validator(mode="after")
    def _value_fits_declared_type(self) -> Self:
        if not value_fits_type(self.value, self.value_type):
            shown = "the value" if self.is_private else f"value {self.value!r}"  # never echoed
            raise ValueError(
                f"{shown} is not a {self.value_type.value}; "
                f"change the value or set valueType to what it holds"
            )
        return self


class Variable(VariableSpec):
    """Table ``parlant_variable``."""

    agent_id: UUID
    session_id: UUID | None = None
    customer_id: str | None = None
    """Extension of the seed: the customer a customer-scoped value belongs to."""
    created_at: datetime | None = None
    updated_at: datetime | None = None
