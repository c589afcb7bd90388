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

Rows the host platform wrote share the tables, and its schema is looser: most JSON,
integer and text columns are nullable there. So two things are checked on every row,
for the price of a dictionary look-up per field: a NULL in a field that cannot be
empty means the field's default (what the column's default would have stored), and a
JSON value of the wrong shape (a string where an object or a list belongs, a list of
conditions that are not all strings) or a NULL in a field without a default is
refused with :class:`~parlant_runtime.storage.port.InvalidData` naming the table, the
row's id and the column, rather than failing later as a raw Python error.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Sequence
from enum import Enum
from typing import Any, Generic, TypeVar, Union, get_args, get_origin

import sqlalchemy as sa
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from parlant_runtime.storage.port import InvalidData

__all__ = ["Trusted"]

M = TypeVar("M", bound=BaseModel)

_new = object.__new__
_PICKS_KEPT = 256
"""Sets of result columns whose field positions a :class:`Trusted` remembers."""
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


def _optional(annotation: Any) -> bool:
    if annotation is Any:
        return True
    return get_origin(annotation) in (Union, types.UnionType) and type(None) in get_args(annotation)


def _shape(annotation: Any) -> tuple[type, type | None] | None:
    """``(dict, None)``, ``(list, str)``, ``(list, None)`` for JSON containers, else ``None``."""
    if _optional(annotation):
        inner = [arg for arg in get_args(annotation) if arg is not type(None)]
        return _shape(inner[0]) if len(inner) == 1 else None
    origin = get_origin(annotation)
    if origin is dict:
        return dict, None
    if origin is list:
        (item,) = get_args(annotation) or (None,)
        return list, item if item is str else None
    return None


class Trusted(Generic[M]):
    """Builds ``model`` instances from trusted data (see the module docstring).

    ``table`` names the rows' table in the errors about a row the runtime cannot use.
    """

    def __init__(self, model: type[M], table: str | None = None) -> None:
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
        self.table = table or model.__name__
        # fields that cannot hold None: a NULL there is the default (or, without one, unusable)
        self._not_none = tuple(
            name for name, field in model.model_fields.items() if not _optional(field.annotation)
        )
        self._shapes = tuple(
            (name, shape)
            for name, field in model.model_fields.items()
            if (shape := _shape(field.annotation)) is not None
        )
        # where the fields are, per set of result columns seen (a statement's columns are
        # the same every time: hashing their names is cheaper than finding them again)
        self._picked_by_columns: dict[tuple[str, ...], tuple[tuple[int, str], ...]] = {}

    def __call__(self, data: dict[str, Any]) -> M:
        """The model of ``data`` (field names -> values; taken over, not copied).

        The fields given are the model's set fields, as with ``model_validate``.
        """
        fields_set = set(data)
        for name in self._not_none:
            if name in data and data[name] is None:
                if name not in self._defaults:
                    self._refuse(data, name, "is NULL, and the runtime needs a value")
                del data[name]  # NULL: the field's default, as the column's would be
                fields_set.discard(name)
        for name, (container, item) in self._shapes:
            value = data.get(name)
            if value is not None and (
                not isinstance(value, container)
                or (item is not None and not all(isinstance(v, item) for v in value))  # type: ignore[attr-defined]
            ):
                kind = "an object" if container is dict else "a list"
                what = f"{kind} of strings" if item is str else kind
                self._refuse(data, name, f"holds {value!r}, not {what}")
        for name, convert in self._convert:
            value = data.get(name)
            if value is not None:
                try:
                    data[name] = convert(value)
                except ValueError:  # a text column of the host's with a value we do not know
                    self._refuse(data, name, f"holds {value!r}, which is not a known value")
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

    @property
    def not_none(self) -> tuple[str, ...]:
        """The fields that cannot hold ``None`` (a NULL there means the default)."""
        return self._not_none

    @property
    def shapes(self) -> tuple[tuple[str, tuple[type, type | None]], ...]:
        """The JSON container fields and the shape each must have."""
        return self._shapes

    @property
    def converters(self) -> tuple[tuple[str, Callable[[Any], Any]], ...]:
        """The fields whose stored values are converted (enums), with the conversion."""
        return self._convert

    @property
    def defaults(self) -> dict[str, tuple[Callable[[], Any] | None, Any]]:
        """Each field with a default: its factory, else its value."""
        return self._defaults

    def refuse(self, data: dict[str, Any], name: str, problem: str) -> None:
        """Raise the :class:`InvalidData` of a row whose field ``name`` cannot be used."""
        self._refuse(data, name, problem)

    def _refuse(self, data: dict[str, Any], name: str, problem: str) -> None:
        row_id = data.get("id", "?")
        raise InvalidData(
            f"{self.table} row {row_id}: column {name} {problem}; the runtime cannot use "
            "this row until it is corrected"
        )

    def row(self, row: sa.Row[Any], **more: Any) -> M:
        """The model of a row: its columns that are fields of the model (others, such as
        counters and foreign keys, are not part of it), then ``more``."""
        fields = row._fields
        picks = self._picked_by_columns.get(fields)
        if picks is None:
            picks = self.picks(fields)
            if len(self._picked_by_columns) < _PICKS_KEPT:
                self._picked_by_columns[fields] = picks
        return self.picked(row, picks, **more)

    def picks(self, columns: Sequence[str]) -> tuple[tuple[int, str], ...]:
        """Where the model's fields are among a result's ``columns`` (once per result)."""
        return tuple((index, name) for index, name in enumerate(columns) if name in self._names)

    def picked(self, row: sa.Row[Any], picks: tuple[tuple[int, str], ...], **more: Any) -> M:
        """:meth:`row` with the columns already located by :meth:`picks`."""
        data = {name: row[index] for index, name in picks}
        if more:
            data.update(more)
        return self(data)
