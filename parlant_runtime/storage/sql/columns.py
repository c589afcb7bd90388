"""What the live database's columns demand of a publish: NOT NULL, and their defaults.

The tables may have been created by the runtime's migrations or by the host platform's
own schema tool, which is stricter: ``parlant_agent.model_provider`` is NOT NULL with a
default there, ``created_by`` NOT NULL without one. So a publish looks at the database
it writes to (once per store, by reflection) instead of at ``schema.py``:

- a bundle field left empty whose column is NOT NULL with a constant default takes that
  default, in the bundle itself before it is compared with the stored agent, so that
  what is written, what is read back and what an export gives agree, and publishing
  the same bundle again changes nothing;
- the agent's creator is required exactly when ``created_by`` is NOT NULL.

The defaults are evaluated by the database itself (``SELECT 'openai'::text``), so any
constant default the platform declares is taken as it means it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncConnection

from parlant_runtime.bundle.schema import AgentBundle
from parlant_runtime.storage.sql import schema as t
from parlant_runtime.storage.sql.mapping import ENTITIES

__all__ = ["LiveColumns", "fill_defaults", "live_columns"]

# the tables a bundle is written to, by the bundle list they come from
_TABLES = (
    t.agent,
    t.guideline,
    t.canned_response,
    t.term,
    t.tool,
    t.tool_integration,
    t.variable,
    t.agent_knowledge_base,
    t.journey,
    t.journey_state,
    t.journey_transition,
    t.journey_guideline,
    t.workspace,
)
_VOLATILE = ("now()", "gen_random_uuid", "nextval", "current_timestamp", "random")


@dataclass(frozen=True, slots=True)
class LiveColumns:
    """NOT NULL columns and constant defaults of the tables a publish writes."""

    required: dict[str, frozenset[str]]
    """Table -> its NOT NULL columns."""
    defaults: dict[str, dict[str, Any]]
    """Table -> NOT NULL column -> its default's value (constant defaults only)."""

    def requires(self, table: str, column: str) -> bool:
        """Whether ``table.column`` is NOT NULL in this database."""
        return column in self.required.get(table, frozenset())


def _reflect(connection: sa.Connection) -> dict[str, list[dict[str, Any]]]:
    inspector = sa.inspect(connection)
    existing = set(inspector.get_table_names())
    return {
        table.name: [dict(column) for column in inspector.get_columns(table.name)]
        for table in _TABLES
        if table.name in existing
    }


async def live_columns(conn: AsyncConnection) -> LiveColumns:
    """Reflect the publish tables of the database ``conn`` is on (a few queries)."""
    reflected = await conn.run_sync(_reflect)
    required: dict[str, frozenset[str]] = {}
    wanted: list[tuple[str, str, Any]] = []
    for name, found in reflected.items():
        table = t.metadata.tables[name]
        required[name] = frozenset(c["name"] for c in found if not c["nullable"])
        for column in found:
            default = column.get("default")
            if column["nullable"] or default is None or column["name"] not in table.c:
                continue
            if any(word in str(default).lower() for word in _VOLATILE):
                continue
            wanted.append((name, column["name"], default))
    defaults: dict[str, dict[str, Any]] = {}
    if wanted:
        select = sa.select(
            *(
                sa.literal_column(
                    str(default), type_=t.metadata.tables[table].c[column].type
                ).label(f"c{index}")
                for index, (table, column, default) in enumerate(wanted)
            )
        )
        row = (await conn.execute(select)).one()
        for index, (table_name, column_name, _) in enumerate(wanted):
            defaults.setdefault(table_name, {})[column_name] = row[index]
    return LiveColumns(required, defaults)


def _filled(model: BaseModel, kind: str, live: LiveColumns, **children: Any) -> Any:
    entity = ENTITIES[kind]
    defaults = live.defaults.get(entity.table.name, {})
    update = {
        name: defaults[how.column]
        for name, how in entity.stored().items()
        if not how.shared and getattr(model, name) is None and how.column in defaults
    }
    update.update(children)
    return model.model_copy(update=update) if update else model


def fill_defaults(bundle: AgentBundle, live: LiveColumns) -> AgentBundle:
    """The bundle with every empty field whose column is NOT NULL given that column's
    default (what the database would store), so that it compares equal to its read-back.
    Fields and columns are paired by :data:`~.mapping.ENTITIES`."""
    return bundle.model_copy(
        update={
            "agent": _filled(bundle.agent, "agent", live),
            "guidelines": [_filled(g, "guideline", live) for g in bundle.guidelines],
            "canned_responses": [
                _filled(c, "canned_response", live) for c in bundle.canned_responses
            ],
            "terms": [_filled(term, "term", live) for term in bundle.terms],
            "tools": [
                _filled(
                    tool,
                    "tool",
                    live,
                    integrations=[_filled(i, "tool_integration", live) for i in tool.integrations],
                )
                for tool in bundle.tools
            ],
            "variables": [_filled(v, "variable", live) for v in bundle.variables],
            "knowledge_bases": [
                _filled(kb, "knowledge_base", live) for kb in bundle.knowledge_bases
            ],
            "journeys": [
                _filled(
                    journey,
                    "journey",
                    live,
                    states=[_filled(s, "state", live) for s in journey.states],
                    transitions=[_filled(tr, "transition", live) for tr in journey.transitions],
                    guidelines=[
                        _filled(link, "journey_guideline", live) for link in journey.guidelines
                    ],
                )
                for journey in bundle.journeys
            ],
        }
    )
