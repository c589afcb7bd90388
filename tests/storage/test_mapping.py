"""The mapping between bundle entities and tables is complete, checked mechanically.

``parlant_runtime/storage/sql/mapping.py`` is the one place that says where each field
of a bundle entity is stored. These tests hold it to the spec classes and the tables:
a field added to a spec without a line there, or a column added to a table that nothing
reads, writes or names as the platform's, fails here (not in a round trip that happens
not to use it). That the tables equal the migrated database is checked by
``tests/test_migrations.py`` (Alembic's ``compare_metadata``, both dialects).
"""

from __future__ import annotations

import pytest

from parlant_runtime.bundle.schema import AgentBundle
from parlant_runtime.storage.sql import schema as t
from parlant_runtime.storage.sql.mapping import (
    AGENT_TOOL_HOST_ONLY,
    ENTITIES,
    Children,
    EntityMap,
    Named,
    Side,
    Stored,
)

KINDS = sorted(ENTITIES)


@pytest.mark.parametrize("kind", KINDS)
def test_every_spec_field_is_mapped(kind: str) -> None:
    entity = ENTITIES[kind]
    assert set(entity.fields) == set(entity.spec.model_fields), (
        f"{entity.spec.__name__}: fields without a mapping "
        f"{sorted(set(entity.spec.model_fields) - set(entity.fields))}, mappings without a "
        f"field {sorted(set(entity.fields) - set(entity.spec.model_fields))}"
    )


@pytest.mark.parametrize("kind", KINDS)
def test_every_column_is_mapped_or_the_platforms(kind: str) -> None:
    entity = ENTITIES[kind]
    mapped = {how.column for how in entity.fields.values() if isinstance(how, Stored | Named)}
    columns = {column.name for column in entity.table.c}
    assert mapped <= columns, f"{entity.table.name} lacks {sorted(mapped - columns)}"
    assert entity.keys <= columns, f"{entity.table.name} lacks {sorted(entity.keys - columns)}"
    assert entity.host_only <= columns, sorted(entity.host_only - columns)
    assert not (mapped | entity.keys) & entity.host_only, "a column both mapped and host-only"
    unaccounted = columns - mapped - entity.keys - entity.host_only
    assert not unaccounted, (
        f"{entity.table.name} columns neither mapped nor listed as host-only: {sorted(unaccounted)}"
    )


@pytest.mark.parametrize("kind", KINDS)
def test_side_fields_are_in_the_runtimes_own_tables(kind: str) -> None:
    entity = ENTITIES[kind]
    sides = [how for how in entity.fields.values() if isinstance(how, Side)]
    if entity.side is None:
        assert not sides
        return
    assert entity.side.schema == t.RUNTIME_SCHEMA
    for how in sides:
        assert how.column in entity.side.c, f"{entity.side.name} has no {how.column}"
    for field in entity.fields.values():  # the platform's tables get no column of ours
        if isinstance(field, Stored | Named):
            assert not entity.table.c[field.column].info.get("runtime")


def test_children_name_entities_and_every_written_table_is_covered() -> None:
    for entity in ENTITIES.values():
        for how in entity.fields.values():
            if isinstance(how, Children):
                assert how.entity in ENTITIES
    covered = {entity.table for entity in ENTITIES.values()} | {t.agent_tool}
    written = {
        table
        for table in t.metadata.sorted_tables
        if table.schema is None and table.name.startswith("parlant_")
    } - {t.session, t.event}
    assert written == covered
    agent_tool = {column.name for column in t.agent_tool.c}
    assert agent_tool == {"id", "agent_id", "tool_id"} | AGENT_TOOL_HOST_ONLY


def test_the_bundle_lists_are_the_mapped_entities() -> None:
    """Each list of a bundle is an entity of the mapping (so none is silently not stored)."""
    lists = {
        "guidelines": "guideline",
        "canned_responses": "canned_response",
        "terms": "term",
        "tools": "tool",
        "variables": "variable",
        "knowledge_bases": "knowledge_base",
        "journeys": "journey",
    }
    assert set(AgentBundle.model_fields) == {"agent", *lists}
    for field, kind in lists.items():
        annotation = AgentBundle.model_fields[field].annotation
        assert ENTITIES[kind].spec in getattr(annotation, "__args__", ()), field


def test_a_field_missing_from_the_mapping_is_caught() -> None:
    """The check above can fail: drop one field's line and it names it."""
    entity = ENTITIES["term"]
    fields = dict(entity.fields)
    del fields["synonyms"]
    broken = EntityMap(entity.spec, entity.table, fields, entity.keys, entity.host_only)
    assert set(broken.fields) != set(broken.spec.model_fields)
    mapped = {how.column for how in broken.fields.values() if isinstance(how, Stored | Named)}
    unaccounted = {c.name for c in broken.table.c} - mapped - broken.keys - broken.host_only
    assert unaccounted == {"synonyms"}
