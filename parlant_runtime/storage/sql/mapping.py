"""Where each field of a bundle entity is stored: one declarative table, read and written.

An entity of a bundle (``GuidelineSpec``, ``StateSpec``, ...) is defined once, in
:mod:`parlant_runtime.bundle.schema`; its rows are the platform's tables of
:mod:`.schema`. :data:`ENTITIES` says, per entity, what becomes of each spec field:

- :class:`Stored`: a column of the entity's table, with conversions when the column
  holds the value in another form (an unconditional guideline's condition is ``''``);
- :class:`Named`: the field names another entity of the bundle, the column holds its id;
- :class:`Side`: a column of the runtime's own tables (``row_order``, ``agent_state``),
  never of the platform's;
- :class:`Children`: a list kept as rows of another entity.

and which columns of the table the runtime leaves to the platform (:attr:`EntityMap.host_only`:
counters, timestamps, values of sessions). The writer (:func:`values`) and the reader
(:class:`Reader`) of :mod:`.agents` follow this table and nothing else, and
``tests/storage/test_mapping.py`` checks it mechanically against the spec classes and the
tables: adding a field is a field in the spec, a line here, and a migration.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from pydantic import BaseModel

from parlant_runtime.bundle.schema import (
    AgentSpec,
    CannedResponseSpec,
    CollectedVariableSpec,
    GuidelineSpec,
    JourneyGuidelineSpec,
    JourneySpec,
    KnowledgeBaseLinkSpec,
    StateSpec,
    TermSpec,
    ToolIntegrationSpec,
    ToolSpec,
    TransitionSpec,
    VariableSpec,
)
from parlant_runtime.storage.sql import schema as t

__all__ = [
    "AGENT_TOOL_HOST_ONLY",
    "ENTITIES",
    "Children",
    "EntityMap",
    "Named",
    "Reader",
    "Side",
    "Stored",
    "values",
]

Row = Any  # a result row (sa.Row), read by attribute and index


@dataclass(frozen=True, slots=True)
class Stored:
    """The field is kept in ``column`` of the entity's table.

    ``write`` turns the field's value into the column's (given the whole spec), ``read``
    the column's into the field's (given the whole row); both default to the value as it
    is. ``shared``: another field writes the column, this one is read from it too.
    """

    column: str
    write: Callable[[Any, Any], Any] | None = None
    read: Callable[[Any, Row], Any] | None = None
    shared: bool = False


@dataclass(frozen=True, slots=True)
class Named:
    """The field names an entity of the bundle (``kind``); ``column`` holds its id
    (ids as text where the platform's column is text; ``many``: a JSON list of them)."""

    column: str
    kind: str
    many: bool = False
    text: bool = False


@dataclass(frozen=True, slots=True)
class Side:
    """The field is kept in the runtime's own table (``row_order`` or ``agent_state``)."""

    column: str


@dataclass(frozen=True, slots=True)
class Children:
    """The field is a list of other entities, kept as their own rows."""

    entity: str


How = Stored | Named | Side | Children


@dataclass(frozen=True, slots=True)
class EntityMap:
    """One bundle entity: its spec, its table and where each field goes."""

    spec: type[BaseModel]
    table: sa.Table
    fields: Mapping[str, How]
    keys: frozenset[str]
    """Columns the writer fills from the context (the row's id, its parent's id)."""
    host_only: frozenset[str]
    """Columns the runtime neither writes nor reads for the bundle (counters, timestamps,
    the values of sessions): the platform's, or its defaults."""
    side: sa.Table | None = None
    """The runtime's own table of the :class:`Side` fields (keyed by the row's id)."""

    @property
    def children(self) -> tuple[str, ...]:
        return tuple(name for name, how in self.fields.items() if isinstance(how, Children))

    def stored(self) -> dict[str, Stored]:
        return {name: how for name, how in self.fields.items() if isinstance(how, Stored)}


# ------------------------------------------------------------------ conversions


def _or_empty(value: Any, spec: Any) -> Any:
    del spec
    return value or ""


def _empty_is_none(value: Any, row: Row) -> Any:
    del row
    return value or None


def _display_name(value: Any, spec: Any) -> Any:
    return value or spec.name


def _display_name_read(value: Any, row: Row) -> Any:
    return None if value in (None, row.name) else value


COLLECT_KEY = "parlantRuntimeCollect"
"""Where a state's ``collect`` list is kept in its ``metadata`` column: the platform's
table has no column for it, and a list read whole needs none."""


def _state_metadata(value: Any, spec: Any) -> Any:
    if not spec.collect:
        return dict(value)
    collect = [c.model_dump(by_alias=True, exclude_none=True) for c in spec.collect]
    return {**value, COLLECT_KEY: collect}


def _metadata_read(value: Any, row: Row) -> Any:
    del row
    if not value or COLLECT_KEY not in value:
        return value
    return {k: v for k, v in value.items() if k != COLLECT_KEY}


def _collect_read(value: Any, row: Row) -> Any:
    del row
    if not value or COLLECT_KEY not in value:
        return []
    return [CollectedVariableSpec.model_validate(c) for c in value[COLLECT_KEY]]


def _same(spec: type[BaseModel], *fields: str) -> dict[str, How]:
    """Fields kept as they are in the column of the same name."""
    missing = set(fields) - set(spec.model_fields)
    assert not missing, f"{spec.__name__} has no field {missing}"
    return {name: Stored(name) for name in fields}


_TIMES = frozenset({"created_at", "updated_at"})

# ------------------------------------------------------------------ the table

ENTITIES: dict[str, EntityMap] = {
    "agent": EntityMap(
        AgentSpec,
        t.agent,
        {
            **_same(
                AgentSpec,
                "id",
                "name",
                "description",
                "status",
                "composition_mode",
                "system_prompt",
                "model_provider",
                "model_name",
                "temperature",
                "max_tokens",
            ),
            "no_match_response": Side("no_match_response"),
        },
        keys=frozenset({"workspace_id", "created_by"}),
        host_only=_TIMES
        | {
            "total_sessions",
            "total_messages",
            "total_tokens_used",
            "total_cost",
            "last_active_at",
            "deleted_at",
        },
        side=t.agent_state,
    ),
    "tool": EntityMap(
        ToolSpec,
        t.tool,
        {
            **_same(
                ToolSpec,
                "id",
                "name",
                "tool_type",
                "parameters",
                "return_schema",
                "usage_guidelines",
                "error_handling",
                "enabled",
            ),
            # NOT NULL without a default on the platform: kept in a form read back as empty
            "display_name": Stored("display_name", _display_name, _display_name_read),
            "description": Stored("description", _or_empty, _empty_is_none),
            "integrations": Children("tool_integration"),
        },
        keys=frozenset({"workspace_id"}),
        host_only=_TIMES
        | {"sim_tool_id", "is_public", "use_count", "success_rate", "last_used_at"},
    ),
    "tool_integration": EntityMap(
        ToolIntegrationSpec,
        t.tool_integration,
        _same(
            ToolIntegrationSpec,
            "id",
            "integration_type",
            "target_id",
            "configuration",
            "enabled",
            "parameter_mapping",
            "response_mapping",
        ),
        keys=frozenset({"parlant_tool_id"}),
        host_only=_TIMES | {"last_health_check", "health_status", "error_count", "last_error"},
        side=t.row_order,
    ),
    "guideline": EntityMap(
        GuidelineSpec,
        t.guideline,
        {
            **_same(GuidelineSpec, "id", "action", "priority", "enabled"),
            "name": Side("name"),
            # NOT NULL without a default on the platform: an unconditional one has ''
            "condition": Stored("condition", _or_empty, _empty_is_none),
            "tools": Named("tool_ids", "tool", many=True, text=True),
        },
        keys=frozenset({"agent_id"}),
        host_only=_TIMES | {"match_count", "last_matched_at"},
        side=t.row_order,
    ),
    "canned_response": EntityMap(
        CannedResponseSpec,
        t.canned_response,
        {
            **_same(
                CannedResponseSpec,
                "id",
                "template",
                "category",
                "tags",
                "conditions",
                "priority",
                "enabled",
                "requires_exact_match",
            ),
            "name": Side("name"),
        },
        keys=frozenset({"agent_id"}),
        host_only=_TIMES | {"use_count", "last_used_at"},
        side=t.row_order,
    ),
    "term": EntityMap(
        TermSpec,
        t.term,
        _same(
            TermSpec, "id", "name", "description", "synonyms", "category", "examples", "importance"
        ),
        keys=frozenset({"agent_id"}),
        host_only=_TIMES,
        side=t.row_order,
    ),
    "variable": EntityMap(
        VariableSpec,
        t.variable,
        _same(
            VariableSpec, "id", "key", "scope", "value", "value_type", "is_private", "description"
        ),
        keys=frozenset({"agent_id"}),
        # a definition has none, a session's value has one (customer values: customer_variable)
        host_only=_TIMES | {"session_id"},
        side=t.row_order,
    ),
    "knowledge_base": EntityMap(
        KnowledgeBaseLinkSpec,
        t.agent_knowledge_base,
        _same(
            KnowledgeBaseLinkSpec,
            "id",
            "knowledge_base_id",
            "enabled",
            "search_threshold",
            "max_results",
            "priority",
        ),
        keys=frozenset({"agent_id"}),
        host_only=_TIMES | {"search_count", "last_searched_at"},
        side=t.row_order,
    ),
    "journey": EntityMap(
        JourneySpec,
        t.journey,
        {
            **_same(
                JourneySpec,
                "id",
                "title",
                "description",
                "conditions",
                "enabled",
                "allow_skipping",
                "allow_revisiting",
            ),
            "states": Children("state"),
            "transitions": Children("transition"),
            "guidelines": Children("journey_guideline"),
        },
        keys=frozenset({"agent_id"}),
        host_only=_TIMES | {"total_sessions", "completion_rate", "last_used_at"},
        side=t.row_order,
    ),
    "state": EntityMap(
        StateSpec,
        t.journey_state,
        {
            **_same(
                StateSpec,
                "id",
                "name",
                "state_type",
                "chat_prompt",
                "tool_config",
                "condition",
                "is_initial",
                "is_final",
                "allow_skip",
            ),
            "metadata": Stored("metadata", _state_metadata, _metadata_read),
            "collect": Stored("metadata", read=_collect_read, shared=True),
            "tool": Named("tool_id", "tool", text=True),
        },
        keys=frozenset({"journey_id"}),
        host_only=_TIMES,
        side=t.row_order,
    ),
    "transition": EntityMap(
        TransitionSpec,
        t.journey_transition,
        {
            **_same(TransitionSpec, "id", "condition", "priority"),
            "from_state": Named("from_state_id", "state"),
            "to_state": Named("to_state_id", "state"),
        },
        keys=frozenset({"journey_id"}),
        host_only=frozenset({"created_at", "use_count", "last_used_at"}),
        side=t.row_order,
    ),
    "journey_guideline": EntityMap(
        JourneyGuidelineSpec,
        t.journey_guideline,
        {
            **_same(
                JourneyGuidelineSpec,
                "id",
                "priority_override",
                "enabled",
                "journey_specific_condition",
            ),
            "guideline": Named("guideline_id", "guideline"),
        },
        keys=frozenset({"journey_id"}),
        host_only=_TIMES | {"match_count", "last_matched_at"},
        side=t.row_order,
    ),
}
"""Every bundle entity and where its fields are stored (see the module docstring)."""

AGENT_TOOL_HOST_ONLY = frozenset(
    {"configuration", "enabled", "priority", "use_count", "last_used_at"} | _TIMES
)
"""``parlant_agent_tool`` links an agent to a workspace's tool (columns ``id``,
``agent_id``, ``tool_id``, and its place in the bundle's ``tools`` in ``row_order``);
no bundle field is kept in its other columns."""


def values(
    entity: EntityMap, dump: Mapping[str, Any], spec: Any, ids: Mapping[str, Mapping[str, UUID]]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The row of ``spec`` (its ``model_dump``), and the values of its :class:`Side` fields.

    ``ids`` resolves :class:`Named` fields: kind -> name -> id.

    Raises:
        KeyError: a name that ``ids`` does not have (the caller says which).
    """
    row: dict[str, Any] = {}
    side: dict[str, Any] = {}
    for name, how in entity.fields.items():
        if isinstance(how, Stored):
            if not how.shared:
                value = dump[name]
                row[how.column] = how.write(value, spec) if how.write else value
        elif isinstance(how, Named):
            value = dump[name]
            if how.many:
                row[how.column] = [str(ids[how.kind][v]) for v in value]
            elif value is None:
                row[how.column] = None
            else:
                found = ids[how.kind][value]
                row[how.column] = str(found) if how.text else found
        elif isinstance(how, Side):
            side[how.column] = dump[name]
    return row, side


@dataclass(slots=True)
class Reader:
    """Reads spec field values from result rows of one entity, located once per result.

    ``names`` resolves :class:`Named` fields: kind -> id (as the column holds it) -> name;
    an id it does not know reads as ``None`` (in a list: left out). :class:`Side` fields
    are read from the columns labelled ``side_<column>``.
    """

    entity: EntityMap
    columns: Sequence[str]
    names: Mapping[str, Mapping[Any, str]]
    _plan: list[tuple[str, int, How]] = field(default_factory=list)

    def __post_init__(self) -> None:
        at = {name: index for index, name in enumerate(self.columns)}
        for name, how in self.entity.fields.items():
            if isinstance(how, Stored | Named):
                self._plan.append((name, at[how.column], how))
            elif isinstance(how, Side):
                self._plan.append((name, at[f"side_{how.column}"], how))

    def __call__(self, row: Row) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for name, index, how in self._plan:
            value = row[index]
            if isinstance(how, Stored):
                data[name] = how.read(value, row) if how.read else value
            elif isinstance(how, Named):
                known = self.names[how.kind]
                if how.many:
                    data[name] = [known[v] for v in value or () if v in known]
                else:
                    data[name] = known.get(value) if value is not None else None
            else:
                data[name] = value
        return data
