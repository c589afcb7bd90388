"""Agents in the database: a bundle becomes rows, rows become a bundle again.

Reading an agent takes the same twelve queries however many journeys it has
(one per table, each filtered by the agent), and writing one is a set of
deletes and upserts in dependency order inside the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, TypeVar
from uuid import UUID, uuid5

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from parlant_runtime.bundle.schema import (
    AgentBundle,
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
from parlant_runtime.storage.port import InvalidData, NotFound
from parlant_runtime.storage.sql import schema as t
from parlant_runtime.storage.sql.trusted import Trusted

__all__ = [
    "agent_version",
    "chunks",
    "delete_stale",
    "read_stored_bundle",
    "refuse_ids_of_others",
    "upsert_bundle",
]


T = TypeVar("T")


def _agent_tool_id(agent_id: UUID, tool_id: UUID) -> UUID:
    return uuid5(agent_id, f"agent-tool\x1f{tool_id}")


def _rows(
    ws: str, bundle: AgentBundle, version: int, created_by: str | None = None
) -> dict[sa.Table, list[dict[str, Any]]]:
    """The rows of every table for one agent, parents before children.

    Empty fields whose host column is NOT NULL without a default get a stored form
    that reads back as empty (:func:`_assemble` undoes it): an unconditional guideline
    has the condition ``''``, a tool without a description ``''``, without a display
    name its name. ``created_by`` is set only when given (new agents).
    """
    agent = bundle.agent
    tool_ids = {tool.name: tool.id for tool in bundle.tools}
    guideline_ids = {g.name: g.id for g in bundle.guidelines if g.name is not None}
    rows: dict[sa.Table, list[dict[str, Any]]] = {
        t.agent: [
            {
                **agent.model_dump(by_alias=False, exclude={"id"}),
                "id": agent.id,
                "workspace_id": ws,
                "version": version,
                **({"created_by": created_by} if created_by is not None else {}),
            }
        ],
        t.tool: [
            {
                **tool.model_dump(by_alias=False, exclude={"id", "integrations"}),
                "id": tool.id,
                "workspace_id": ws,
                "display_name": tool.display_name or tool.name,
                "description": tool.description or "",
            }
            for tool in bundle.tools
        ],
        t.tool_integration: [
            {**i.model_dump(by_alias=False, exclude={"id"}), "id": i.id, "parlant_tool_id": tool.id}
            for tool in bundle.tools
            for i in tool.integrations
        ],
        t.agent_tool: [
            {"id": _agent_tool_id(agent.id, tool.id), "agent_id": agent.id, "tool_id": tool.id}
            for tool in bundle.tools
        ],
        t.guideline: [
            {
                **g.model_dump(by_alias=False, exclude={"id", "tools"}),
                "id": g.id,
                "condition": g.condition or "",
                "agent_id": agent.id,
                "tool_ids": [str(_lookup(tool_ids, name, "tool")) for name in g.tools],
            }
            for g in bundle.guidelines
        ],
        t.canned_response: [
            {**c.model_dump(by_alias=False, exclude={"id"}), "id": c.id, "agent_id": agent.id}
            for c in bundle.canned_responses
        ],
        t.term: [
            {**term.model_dump(by_alias=False, exclude={"id"}), "id": term.id, "agent_id": agent.id}
            for term in bundle.terms
        ],
        t.variable: [
            {**v.model_dump(by_alias=False, exclude={"id"}), "id": v.id, "agent_id": agent.id}
            for v in bundle.variables
        ],
        t.agent_knowledge_base: [
            {**kb.model_dump(by_alias=False, exclude={"id"}), "id": kb.id, "agent_id": agent.id}
            for kb in bundle.knowledge_bases
        ],
        t.journey: [],
        t.journey_state: [],
        t.journey_transition: [],
        t.journey_guideline: [],
    }
    for journey in bundle.journeys:
        rows[t.journey].append(
            {
                **journey.model_dump(
                    by_alias=False, exclude={"id", "states", "transitions", "guidelines"}
                ),
                "id": journey.id,
                "agent_id": agent.id,
            }
        )
        state_ids = {state.name: state.id for state in journey.states}
        for state in journey.states:
            tool_id = _lookup(tool_ids, state.tool, "tool") if state.tool else None
            rows[t.journey_state].append(
                {
                    **state.model_dump(by_alias=False, exclude={"id", "tool", "collect"}),
                    "metadata": _state_metadata(state),
                    "id": state.id,
                    "journey_id": journey.id,
                    "tool_id": str(tool_id) if tool_id else None,
                }
            )
        for transition in journey.transitions:
            rows[t.journey_transition].append(
                {
                    "id": transition.id,
                    "journey_id": journey.id,
                    "from_state_id": _lookup(state_ids, transition.from_state, "state"),
                    "to_state_id": _lookup(state_ids, transition.to_state, "state"),
                    "condition": transition.condition,
                    "priority": transition.priority,
                }
            )
        for link in journey.guidelines:
            rows[t.journey_guideline].append(
                {
                    **link.model_dump(by_alias=False, exclude={"id", "guideline"}),
                    "id": link.id,
                    "journey_id": journey.id,
                    "guideline_id": _lookup(guideline_ids, link.guideline, "guideline"),
                }
            )
    _number(rows)
    return rows


def _number(rows: dict[sa.Table, list[dict[str, Any]]]) -> None:
    """Give each row its place in its list (per parent, which is all file order needs)."""
    for table, table_rows in rows.items():
        if "position" in table.columns:
            for position, row in enumerate(table_rows):
                row["position"] = position


def _lookup(ids: dict[str, UUID], name: str | None, what: str) -> UUID:
    if name is None or name not in ids:
        raise InvalidData(
            f"the bundle names {what} {name!r}, which it does not define; validate it"
        )
    return ids[name]


# children first for deletes; the reverse for upserts
_WRITE_ORDER = (
    t.agent,
    t.tool,
    t.tool_integration,
    t.agent_tool,
    t.guideline,
    t.canned_response,
    t.term,
    t.variable,
    t.agent_knowledge_base,
    t.journey,
    t.journey_state,
    t.journey_transition,
    t.journey_guideline,
)

# how to find an agent's existing rows in each table (tools are shared by the workspace)
_OWNED_BY_AGENT: dict[sa.Table, Any] = {
    t.agent_tool: lambda a: t.agent_tool.c.agent_id == a,
    t.guideline: lambda a: t.guideline.c.agent_id == a,
    t.canned_response: lambda a: t.canned_response.c.agent_id == a,
    t.term: lambda a: t.term.c.agent_id == a,
    t.variable: lambda a: (
        (t.variable.c.agent_id == a)
        & t.variable.c.session_id.is_(None)
        & t.variable.c.customer_id.is_(None)
    ),
    t.agent_knowledge_base: lambda a: t.agent_knowledge_base.c.agent_id == a,
    t.journey: lambda a: t.journey.c.agent_id == a,
    t.journey_state: lambda a: t.journey_state.c.journey_id.in_(
        sa.select(t.journey.c.id).where(t.journey.c.agent_id == a)
    ),
    t.journey_transition: lambda a: t.journey_transition.c.journey_id.in_(
        sa.select(t.journey.c.id).where(t.journey.c.agent_id == a)
    ),
    t.journey_guideline: lambda a: t.journey_guideline.c.journey_id.in_(
        sa.select(t.journey.c.id).where(t.journey.c.agent_id == a)
    ),
    t.tool_integration: lambda a: t.tool_integration.c.parlant_tool_id.in_(
        sa.select(t.agent_tool.c.tool_id).where(t.agent_tool.c.agent_id == a)
    ),
}


def _upsert(dialect: str, table: sa.Table, rows: list[dict[str, Any]]) -> Any:
    insert = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
    statement = insert.values(rows)
    keep = {"id", "created_at", "created_by"}
    updates: dict[str, Any] = {
        column.name: statement.excluded[column.name]
        for column in table.columns
        if column.name in rows[0] and column.name not in keep
    }
    if "updated_at" in table.columns:
        updates["updated_at"] = sa.func.now()
    return statement.on_conflict_do_update(index_elements=["id"], set_=updates)


MAX_PARAMETERS = 30_000
"""Bind parameters per statement: PostgreSQL takes at most 32,767 (SQLite builds 32,766
or more), so a bundle's rows are written and its ids looked up in chunks under this."""


def chunks(items: Sequence[T], per_item: int = 1) -> Iterator[list[T]]:
    """``items`` in slices of at most :data:`MAX_PARAMETERS` bind parameters each
    (``per_item`` parameters per item)."""
    size = max(1, MAX_PARAMETERS // max(1, per_item))
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


async def upsert_bundle(
    conn: AsyncConnection,
    ws: str,
    bundle: AgentBundle,
    *,
    version: int,
    created_by: str | None = None,
) -> None:
    """Insert or update every row of ``bundle`` (ids already the workspace's), parents first.

    ``created_by`` is written when the agent is created; an update keeps the creator.
    """
    dialect = conn.dialect.name
    rows = _rows(ws, bundle, version, created_by)
    for table in _WRITE_ORDER:
        if rows[table]:
            for chunk in chunks(rows[table], per_item=len(rows[table][0])):
                await conn.execute(_upsert(dialect, table, list(chunk)))


async def delete_stale(conn: AsyncConnection, ws: str, bundle: AgentBundle) -> None:
    """Delete the agent's rows that ``bundle`` no longer has, children first.

    Runs after :func:`upsert_bundle` and after live sessions were moved off removed
    states (deleting a state clears the position of any session still on it). The
    stale ids are found by reading the agent's ids (one query per table) and deleted
    by id in chunks, so no statement carries the whole bundle's ids.
    """
    rows = _rows(ws, bundle, version=0)
    for table in reversed(_WRITE_ORDER):
        owned = _OWNED_BY_AGENT.get(table)
        if owned is None:
            continue
        keep = {row["id"] for row in rows[table]}
        existing = (await conn.execute(sa.select(table.c.id).where(owned(bundle.agent.id)))).all()
        stale = sorted(row.id for row in existing if row.id not in keep)
        for chunk in chunks(stale):
            await conn.execute(sa.delete(table).where(table.c.id.in_(chunk)))


async def refuse_ids_of_others(conn: AsyncConnection, ws: str, bundle: AgentBundle) -> None:
    """Refuse a bundle whose explicit ids belong to another agent's rows (or another
    workspace's tools): an upsert would otherwise take those rows from their owner.

    Raises:
        InvalidData: naming the first id found taken.
    """
    rows = _rows(ws, bundle, version=0)
    agent_id = bundle.agent.id
    for table in _WRITE_ORDER:
        if table in (t.agent, t.agent_tool):
            continue  # the agent row is locked and checked by the caller; links are derived
        for ids in chunks([row["id"] for row in rows[table]]):
            await _refuse_taken(conn, ws, agent_id, table, list(ids))


async def _refuse_taken(
    conn: AsyncConnection, ws: str, agent_id: UUID, table: sa.Table, ids: list[UUID]
) -> None:
    """The check of :func:`refuse_ids_of_others` for one chunk of one table's ids."""
    if table is t.tool:
        foreign: Any = t.tool.c.workspace_id != ws
        query = sa.select(t.tool.c.id).where(t.tool.c.id.in_(ids), foreign)
    elif table is t.tool_integration:
        query = (
            sa.select(t.tool_integration.c.id)
            .join(t.tool, t.tool.c.id == t.tool_integration.c.parlant_tool_id)
            .where(t.tool_integration.c.id.in_(ids), t.tool.c.workspace_id != ws)
        )
    else:
        query = sa.select(table.c.id).where(
            table.c.id.in_(ids), sa.not_(_OWNED_BY_AGENT[table](agent_id))
        )
    taken = await conn.scalar(query.limit(1))
    if taken is not None:
        kind = table.name.removeprefix("parlant_")
        raise InvalidData(
            f"{kind} id {taken} already belongs to another agent; give a new id or leave "
            "it out to have one derived"
        )


async def agent_version(conn: AsyncConnection, ws: str, agent_id: UUID) -> int | None:
    """The stored version of the agent, or ``None`` when the workspace has no such agent."""
    version: int | None = await conn.scalar(
        sa.select(t.agent.c.version).where(
            t.agent.c.id == agent_id,
            t.agent.c.workspace_id == ws,
            t.agent.c.deleted_at.is_(None),
        )
    )
    return version


def _columns(table: sa.Table, spec: type[BaseModel], *more: str) -> list[sa.Column[Any]]:
    """The columns a spec is built from: its fields, and ``more`` (order, references)."""
    wanted = set(spec.model_fields) | set(more)
    return [column for column in table.c if column.name in wanted]


# The twelve statements of a load, built once (bound parameters ``agent``, ``ws`` and
# the expanding ``tools``), each selecting only the columns the bundle is built from:
# no timestamps or counters to decode.
_AGENT_ID: sa.BindParameter[Any] = sa.bindparam("agent")
_JOURNEYS_OF_AGENT = sa.select(t.journey.c.id).where(t.journey.c.agent_id == _AGENT_ID)
_LOAD: dict[str, Any] = {
    "agent": sa.select(*_columns(t.agent, AgentSpec, "version")).where(
        t.agent.c.id == _AGENT_ID,
        t.agent.c.workspace_id == sa.bindparam("ws"),
        t.agent.c.deleted_at.is_(None),
    ),
    "tools": sa.select(*_columns(t.tool, ToolSpec), t.agent_tool.c.position)
    .join(t.agent_tool, t.agent_tool.c.tool_id == t.tool.c.id)
    .where(t.agent_tool.c.agent_id == _AGENT_ID),
    "integrations": sa.select(
        *_columns(t.tool_integration, ToolIntegrationSpec, "parlant_tool_id", "position")
    ).where(t.tool_integration.c.parlant_tool_id.in_(sa.bindparam("tools", expanding=True))),
    "guidelines": sa.select(*_columns(t.guideline, GuidelineSpec, "tool_ids", "position")).where(
        t.guideline.c.agent_id == _AGENT_ID
    ),
    "canned": sa.select(*_columns(t.canned_response, CannedResponseSpec, "position")).where(
        t.canned_response.c.agent_id == _AGENT_ID
    ),
    "terms": sa.select(*_columns(t.term, TermSpec, "position")).where(
        t.term.c.agent_id == _AGENT_ID
    ),
    "variables": sa.select(*_columns(t.variable, VariableSpec, "position")).where(
        t.variable.c.agent_id == _AGENT_ID,
        t.variable.c.session_id.is_(None),
        t.variable.c.customer_id.is_(None),
    ),
    "knowledge_bases": sa.select(
        *_columns(t.agent_knowledge_base, KnowledgeBaseLinkSpec, "position")
    ).where(t.agent_knowledge_base.c.agent_id == _AGENT_ID),
    "journeys": sa.select(*_columns(t.journey, JourneySpec, "position")).where(
        t.journey.c.agent_id == _AGENT_ID
    ),
    "states": sa.select(
        *_columns(t.journey_state, StateSpec, "journey_id", "tool_id", "position")
    ).where(t.journey_state.c.journey_id.in_(_JOURNEYS_OF_AGENT)),
    "transitions": sa.select(
        *_columns(
            t.journey_transition,
            TransitionSpec,
            "journey_id",
            "from_state_id",
            "to_state_id",
            "position",
        )
    ).where(t.journey_transition.c.journey_id.in_(_JOURNEYS_OF_AGENT)),
    "links": sa.select(
        *_columns(
            t.journey_guideline, JourneyGuidelineSpec, "journey_id", "guideline_id", "position"
        )
    ).where(t.journey_guideline.c.journey_id.in_(_JOURNEYS_OF_AGENT)),
}


async def read_stored_bundle(
    conn: AsyncConnection, ws: str, agent_id: UUID
) -> tuple[AgentBundle, int]:
    """The agent as a bundle (with the stored ids) and its version; a fixed query count."""
    agent_row = (await conn.execute(_LOAD["agent"], {"agent": agent_id, "ws": ws})).first()
    if agent_row is None:
        raise NotFound(f"no agent {agent_id} in workspace {ws!r}")
    of_agent = {"agent": agent_id}

    async def select(name: str, parameters: dict[str, Any] = of_agent) -> Sequence[sa.Row[Any]]:
        return (await conn.execute(_LOAD[name], parameters)).all()

    tool_rows = await select("tools")
    fetched = {
        t.tool: tool_rows,
        t.tool_integration: await select("integrations", {"tools": [row.id for row in tool_rows]}),
        t.guideline: await select("guidelines"),
        t.canned_response: await select("canned"),
        t.term: await select("terms"),
        t.variable: await select("variables"),
        t.agent_knowledge_base: await select("knowledge_bases"),
        t.journey: await select("journeys"),
        t.journey_state: await select("states"),
        t.journey_transition: await select("transitions"),
        t.journey_guideline: await select("links"),
    }
    return _assemble(agent_row, fetched), int(agent_row.version)


S = TypeVar("S", bound=BaseModel)

_COLLECT_KEY = "parlantRuntimeCollect"
"""Where a state's ``collect`` list is kept in its ``metadata`` column: the table has no
column of its own for it, and a schema change is not needed for a list read whole."""


def _state_metadata(state: StateSpec) -> dict[str, Any]:
    if not state.collect:
        return dict(state.metadata)
    collect = [c.model_dump(by_alias=True, exclude_none=True) for c in state.collect]
    return {**state.metadata, _COLLECT_KEY: collect}


def _collected(metadata: dict[str, Any] | None) -> dict[str, Any]:
    """The ``collect`` and ``metadata`` fields of a state row (nothing when it collects none)."""
    if not metadata or _COLLECT_KEY not in metadata:
        return {}
    kept = {k: v for k, v in metadata.items() if k != _COLLECT_KEY}
    collect = [CollectedVariableSpec.model_validate(c) for c in metadata[_COLLECT_KEY]]
    return {"metadata": kept, "collect": collect}


_AGENT = Trusted(AgentSpec, "parlant_agent")
_GUIDELINE = Trusted(GuidelineSpec, "parlant_guideline")
_CANNED = Trusted(CannedResponseSpec, "parlant_canned_response")
_TERM = Trusted(TermSpec, "parlant_term")
_TOOL = Trusted(ToolSpec, "parlant_tool")
_INTEGRATION = Trusted(ToolIntegrationSpec, "parlant_tool_integration")
_VARIABLE = Trusted(VariableSpec, "parlant_variable")
_KNOWLEDGE_BASE = Trusted(KnowledgeBaseLinkSpec, "parlant_agent_knowledge_base")
_JOURNEY = Trusted(JourneySpec, "parlant_journey")
_STATE = Trusted(StateSpec, "parlant_journey_state")
_TRANSITION = Trusted(TransitionSpec, "parlant_journey_transition")
_LINK = Trusted(JourneyGuidelineSpec, "parlant_journey_guideline")
_BUNDLE = Trusted(AgentBundle)


def _assemble(
    agent_row: sa.Row[Any], fetched: dict[sa.Table, Sequence[sa.Row[Any]]]
) -> AgentBundle:
    """Rows to a bundle, each list in its stored order.

    The rows are this library's own, validated when they were published, so the bundle
    is built without validating them again (:mod:`.trusted`): each spec takes the
    columns that are its fields; names replace the ids that rows refer by.
    """
    tool_rows, integrations = fetched[t.tool], fetched[t.tool_integration]
    guidelines, links = fetched[t.guideline], fetched[t.journey_guideline]
    states = fetched[t.journey_state]
    tool_names = {str(row.id): row.name for row in tool_rows}
    guideline_names = {row.id: row.name or str(row.id) for row in guidelines}
    state_names = {row.id: row.name for row in states}
    linked = {row.guideline_id for row in links}

    def build(spec: Trusted[S], rows: Sequence[sa.Row[Any]]) -> list[S]:
        picks = spec.picks(rows[0]._fields) if rows else ()
        return [spec.picked(row, picks) for row in _ordered(rows)]

    integrations_of: dict[UUID, list[ToolIntegrationSpec]] = {}
    picks = _INTEGRATION.picks(integrations[0]._fields) if integrations else ()
    for row in _ordered(integrations):
        integrations_of.setdefault(row.parlant_tool_id, []).append(_INTEGRATION.picked(row, picks))
    states_of: dict[UUID, list[StateSpec]] = {}
    picks = _STATE.picks(states[0]._fields) if states else ()
    for row in _ordered(states):
        tool = tool_names.get(row.tool_id) if row.tool_id else None
        states_of.setdefault(row.journey_id, []).append(
            _STATE.picked(row, picks, tool=tool, **_collected(row.metadata))
        )
    transitions_of: dict[UUID, list[TransitionSpec]] = {}
    for row in _ordered(fetched[t.journey_transition]):
        transitions_of.setdefault(row.journey_id, []).append(
            _TRANSITION(
                {
                    "id": row.id,
                    "from_state": state_names[row.from_state_id],
                    "to_state": state_names[row.to_state_id],
                    "condition": row.condition,
                    "priority": row.priority,
                }
            )
        )
    links_of: dict[UUID, list[JourneyGuidelineSpec]] = {}
    picks = _LINK.picks(links[0]._fields) if links else ()
    for row in _ordered(links):
        links_of.setdefault(row.journey_id, []).append(
            _LINK.picked(row, picks, guideline=guideline_names[row.guideline_id])
        )
    picks = _GUIDELINE.picks(guidelines[0]._fields) if guidelines else ()
    return _BUNDLE(
        {
            "agent": _AGENT.row(agent_row),
            "guidelines": [
                _GUIDELINE.picked(
                    row,
                    picks,
                    name=guideline_names[row.id] if row.name or row.id in linked else None,
                    tools=[tool_names[tid] for tid in row.tool_ids or () if tid in tool_names],
                    condition=row.condition or None,  # '' is how an unconditional one is kept
                )
                for row in _ordered(guidelines)
            ],
            "canned_responses": build(_CANNED, fetched[t.canned_response]),
            "terms": build(_TERM, fetched[t.term]),
            "tools": [
                _TOOL.row(
                    row,
                    integrations=integrations_of.get(row.id, []),
                    display_name=None if row.display_name in (None, row.name) else row.display_name,
                    description=row.description or None,
                )
                for row in _ordered(tool_rows)
            ],
            "variables": build(_VARIABLE, fetched[t.variable]),
            "knowledge_bases": build(_KNOWLEDGE_BASE, fetched[t.agent_knowledge_base]),
            "journeys": [
                _JOURNEY.row(
                    journey,
                    states=states_of.get(journey.id, []),
                    transitions=transitions_of.get(journey.id, []),
                    guidelines=links_of.get(journey.id, []),
                )
                for journey in _ordered(fetched[t.journey])
            ],
        }
    )


def _ordered(rows: Sequence[sa.Row[Any]]) -> list[sa.Row[Any]]:
    """Rows in the bundle's order; ids break ties among rows written by someone else."""
    return sorted(rows, key=lambda row: (getattr(row, "position", 0), row.id.bytes))
