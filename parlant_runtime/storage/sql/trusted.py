"""Models built from rows of the runtime's own schema, without validating them again.

Every value in those rows was validated on its way in (a turn, a publish) and the
schema's types, checks and enums hold it to that shape, so validating it again on
every read only costs time: pydantic rebuilding a 500-state bundle was most of an
agent load. :class:`Trusted` builds a model the way ``model_validate`` would (the
same values, types, defaults and set fields) for data known to be valid: enum
columns become their enums, missing fields take their defaults, everything else is
kept as the driver gives it (as validation keeps it: asyncpg's UUID subclass stays).
Model validators do not run; callers use it only for rows this library wrote
(``tests/storage/test_trusted_rows.py`` checks the result equals what validation
gives, type for type).
"""

from __future__ import annotations

import types
from collections.abc import Callable, Sequence
from enum import Enum
from typing import Any, Generic, TypeVar, Union, get_args, get_origin

import sqlalchemy as sa
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

__all__ = ["Trusted"]

M = TypeVar("M", bound=BaseModel)

_new = object.__new__
# the instance slots every pydantic model has, set the way model_construct sets them
_set_dict = BaseModel.__dict__["__dict__"].__set__
_set_fields_set = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__


def _enum(kind: type[Enum]) -> Callable[[Any], Any]:
    members = kind._value2member_map_

    def convert(value: Any) -> Any:
        if value.__class__ is kind:
            return value
        member = members.get(value)
        return member if member is not None else kind(value)

    return convert


def _converter(annotation: Any) -> Callable[[Any], Any] | None:
    """How to turn a stored value into the field's type, or ``None`` when it already is."""
    if isinstance(annotation, type):
        return _enum(annotation) if issubclass(annotation, Enum) else None
    if get_origin(annotation) in (Union, types.UnionType):
        inner = [arg for arg in get_args(annotation) if arg is not type(None)]
        if len(inner) == 1:
            return _converter(inner[0])
    return None


class Trusted(Generic[M]):
    """Builds ``model`` instances from trusted data (see the module docstring)."""

    def __init__(self, model: type[M]) -> None:
        if model.__pydantic_post_init__ is not None:
            raise TypeError(f"{model.__name__} has a post-init hook; build it by validation")
        self.model = model
        self.fields = tuple(model.model_fields)
        self._names = frozenset(self.fields)
        self._convert = tuple(
            (name, convert)
            for name, field in model.model_fields.items()
            if (convert := _converter(field.annotation)) is not None
        )
        self._defaults: dict[str, tuple[Callable[[], Any] | None, Any]] = {}
        for name, field in model.model_fields.items():
            if field.default_factory is not None:
                self._defaults[name] = (field.default_factory, None)  # type: ignore[assignment]
            elif field.default is not PydanticUndefined:
                self._defaults[name] = (None, field.default)

    def __call__(self, data: dict[str, Any]) -> M:
        """The model of ``data`` (field names -> values; taken over, not copied).

        The fields given are the model's set fields, as with ``model_validate``.
        """
        fields_set = set(data)
        for name, convert in self._convert:
            value = data.get(name)
            if value is not None:
                data[name] = convert(value)
        if len(fields_set) < len(self.fields):
            for name, (factory, default) in self._defaults.items():
                if name not in data:
                    data[name] = factory() if factory is not None else default
        values = {name: data[name] for name in self.fields}  # KeyError: a required one is missing
        instance: M = _new(self.model)
        _set_dict(instance, values)
        _set_fields_set(instance, fields_set)
        _set_extra(instance, None)
        _set_private(instance, None)
        return instance

    def row(self, row: sa.Row[Any], **more: Any) -> M:
        """The model of a row: its columns that are fields of the model (others, such as
        counters and foreign keys, are not part of it), then ``more``."""
        return self.picked(row, self.picks(row._fields), **more)

    def picks(self, columns: Sequence[str]) -> tuple[tuple[int, str], ...]:
        """Where the model's fields are among a result's ``columns`` (once per result)."""
        return tuple((index, name) for index, name in enumerate(columns) if name in self._names)

    def picked(self, row: sa.Row[Any], picks: tuple[tuple[int, str], ...], **more: Any) -> M:
        """:meth:`row` with the columns already located by :meth:`picks`."""
        data = {name: row[index] for index, name in picks}
        if more:
            data.update(more)
        return self(data)
