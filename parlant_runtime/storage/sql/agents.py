"""Agents in the database: a bundle becomes rows, rows become a bundle again.

Reading an agent takes the same twelve queries however many journeys it has
(one per table, each filtered by the agent), and writing one is a set of
deletes and upserts in dependency order inside the caller's transaction.
"""

from __future__ import annotations

import reprlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from operator import itemgetter
from typing import Any, NamedTuple, TypeVar
from uuid import UUID, SafeUUID, uuid5

import sqlalchemy as sa
from pydantic import BaseModel, ValidationError
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from parlant_runtime.bundle.schema import AgentBundle
from parlant_runtime.storage.port import InvalidData, NotFound
from parlant_runtime.storage.sql import schema as t
from parlant_runtime.storage.sql.mapping import (
    ENTITIES,
    EntityMap,
    Named,
    Reader,
    Side,
    Stored,
    values,
)
from parlant_runtime.storage.sql.trusted import (
    Trusted,
    _new,
    _set_dict,
    _set_extra,
    _set_fields_set,
    _set_private,
)

__all__ = [
    "LOAD_STATEMENTS",
    "VERSION",
    "WITH_STATE",
    "StoredRows",
    "agent_version",
    "chunks",
    "delete_stale",
    "read_stored_bundle",
    "refuse_ids_of_others",
    "stored_rows",
    "upsert_bundle",
]


T = TypeVar("T")


def _agent_tool_id(agent_id: UUID, tool_id: UUID) -> UUID:
    return uuid5(agent_id, f"agent-tool\x1f{tool_id}")


def _rows(
    ws: str, bundle: AgentBundle, version: int, created_by: str | None = None
) -> dict[sa.Table, list[dict[str, Any]]]:
    """The rows of every table for one agent, parents before children, as
    :data:`~.mapping.ENTITIES` says; with the runtime's own rows (``agent_state``, and
    ``row_order``: each list row's place, and the names it keeps).

    Empty fields whose host column is NOT NULL without a default get a stored form
    that reads back as empty (see the conversions of the mapping). ``created_by`` is set
    only when given (new agents).
    """
    agent = bundle.agent
    ids: dict[str, dict[str, UUID]] = {
        "tool": {tool.name: tool.id for tool in bundle.tools},
        "guideline": {g.name: g.id for g in bundle.guidelines if g.name is not None},
        "state": {},
    }
    rows: dict[sa.Table, list[dict[str, Any]]] = {table: [] for table in _WRITE_ORDER}
    rows[t.agent_state] = []
    rows[t.row_order] = []

    def add(kind: str, spec: Any, position: int, **keys: Any) -> None:
        entity = ENTITIES[kind]
        dump = spec.model_dump(by_alias=False, exclude=set(entity.children))
        try:
            row, side = values(entity, dump, spec, ids)
        except KeyError as exc:
            what = exc.args[0] if exc.args else None
            raise InvalidData(
                f"the bundle names {what!r} in {kind} {spec.id}, which it does not define; "
                "validate it"
            ) from None
        rows[entity.table].append({**row, **keys})
        if entity.side is t.row_order:
            rows[t.row_order].append(
                {"row_id": spec.id, "agent_id": agent.id, "name": None, "position": position} | side
            )

    agent_row, agent_side = values(ENTITIES["agent"], agent.model_dump(by_alias=False), agent, ids)
    rows[t.agent].append(
        {
            **agent_row,
            "workspace_id": ws,
            **({"created_by": created_by} if created_by is not None else {}),
        }
    )
    rows[t.agent_state].append({"agent_id": agent.id, "version": version, **agent_side})
    for position, tool in enumerate(bundle.tools):
        add("tool", tool, position, workspace_id=ws)
        link = _agent_tool_id(agent.id, tool.id)
        rows[t.agent_tool].append({"id": link, "agent_id": agent.id, "tool_id": tool.id})
        rows[t.row_order].append(
            {"row_id": link, "agent_id": agent.id, "name": None, "position": position}
        )
        for k, integration in enumerate(tool.integrations):
            add("tool_integration", integration, k, parlant_tool_id=tool.id)
    lists: tuple[tuple[str, Sequence[Any]], ...] = (
        ("guideline", bundle.guidelines),
        ("canned_response", bundle.canned_responses),
        ("term", bundle.terms),
        ("variable", bundle.variables),
        ("knowledge_base", bundle.knowledge_bases),
    )
    for kind, specs in lists:
        for position, spec in enumerate(specs):
            add(kind, spec, position, agent_id=agent.id)
    for position, journey in enumerate(bundle.journeys):
        add("journey", journey, position, agent_id=agent.id)
        ids["state"] = {state.name: state.id for state in journey.states}
        for kind, children in (
            ("state", journey.states),
            ("transition", journey.transitions),
            ("journey_guideline", journey.guidelines),
        ):
            for k, child in enumerate(children):
                add(kind, child, k, journey_id=journey.id)
    return rows


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
    t.variable: lambda a: (t.variable.c.agent_id == a) & t.variable.c.session_id.is_(None),
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
    key = [column.name for column in table.primary_key.columns]
    keep = {*key, "created_at", "created_by"}
    updates: dict[str, Any] = {
        column.name: statement.excluded[column.name]
        for column in table.columns
        if column.name in rows[0] and column.name not in keep
    }
    if "updated_at" in table.columns:
        # the inserted row's default (now()): Citus takes no function in DO UPDATE SET
        updates["updated_at"] = statement.excluded.updated_at
    return statement.on_conflict_do_update(index_elements=key, set_=updates)


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
    for table in (*_WRITE_ORDER, t.agent_state, t.row_order):
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
            await conn.execute(sa.delete(t.row_order).where(t.row_order.c.row_id.in_(chunk)))


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


VERSION = sa.func.coalesce(t.agent_state.c.version, 1).label("version")
"""The agent's version: 1 for an agent the platform wrote, which has no ``agent_state``."""
WITH_STATE = t.agent.outerjoin(t.agent_state, t.agent_state.c.agent_id == t.agent.c.id)
"""The agent's row with its ``agent_state`` (there may be none)."""


async def agent_version(conn: AsyncConnection, ws: str, agent_id: UUID) -> int | None:
    """The stored version of the agent, or ``None`` when the workspace has no such agent."""
    version: int | None = await conn.scalar(
        sa.select(VERSION)
        .select_from(WITH_STATE)
        .where(
            t.agent.c.id == agent_id,
            t.agent.c.workspace_id == ws,
            t.agent.c.deleted_at.is_(None),
        )
    )
    return version


def _columns(entity: EntityMap) -> list[Any]:
    """The columns an entity is built from, and its :class:`~.mapping.Side` ones
    (labelled ``side_<column>``)."""
    table = entity.table
    wanted = {how.column for how in entity.fields.values() if isinstance(how, Stored | Named)}
    columns: list[Any] = [column for column in table.c if column.name in wanted]
    if entity.side is not None:
        columns.extend(
            entity.side.c[how.column].label(f"side_{how.column}")
            for how in entity.fields.values()
            if isinstance(how, Side)
        )
    return columns


def _listed(entity: EntityMap, *more: Any, linked_by: sa.Table | None = None) -> Any:
    """The select of an entity's rows with their place (``row_order``, there may be none).

    ``linked_by``: the link table whose row keeps the place (a workspace's tool is in an
    agent's list through ``parlant_agent_tool``).
    """
    keyed = linked_by if linked_by is not None else entity.table
    source: Any = entity.table
    if linked_by is not None:
        source = source.join(linked_by, linked_by.c.tool_id == entity.table.c.id)
    return sa.select(
        *_columns(entity),
        *more,
        keyed.c.created_at.label("order_created_at"),
        t.row_order.c.position.label("order_position"),
    ).select_from(source.outerjoin(t.row_order, t.row_order.c.row_id == keyed.c.id))


# The twelve statements of a load, built once (bound parameters ``agent`` and ``ws``),
# each selecting only the columns the bundle is built from: no counters to decode. None
# depends on another's result, so they may run one after the other in any order (in one
# snapshot: see "A load reads one snapshot" in docs/storage.md).
_AGENT_ID: sa.BindParameter[Any] = sa.bindparam("agent")
_JOURNEYS_OF_AGENT = sa.select(t.journey.c.id).where(t.journey.c.agent_id == _AGENT_ID)
_LOAD: dict[str, Any] = {
    "agent": sa.select(*_columns(ENTITIES["agent"]), VERSION)
    .select_from(WITH_STATE)
    .where(
        t.agent.c.id == _AGENT_ID,
        t.agent.c.workspace_id == sa.bindparam("ws"),
        t.agent.c.deleted_at.is_(None),
    ),
    "tool": _listed(ENTITIES["tool"], linked_by=t.agent_tool).where(
        t.agent_tool.c.agent_id == _AGENT_ID
    ),
    "tool_integration": _listed(
        ENTITIES["tool_integration"], t.tool_integration.c.parlant_tool_id
    ).where(
        t.tool_integration.c.parlant_tool_id.in_(
            sa.select(t.agent_tool.c.tool_id).where(t.agent_tool.c.agent_id == _AGENT_ID)
        )
    ),
    "guideline": _listed(ENTITIES["guideline"]).where(t.guideline.c.agent_id == _AGENT_ID),
    "canned_response": _listed(ENTITIES["canned_response"]).where(
        t.canned_response.c.agent_id == _AGENT_ID
    ),
    "term": _listed(ENTITIES["term"]).where(t.term.c.agent_id == _AGENT_ID),
    "variable": _listed(ENTITIES["variable"]).where(
        t.variable.c.agent_id == _AGENT_ID,
        t.variable.c.session_id.is_(None),
    ),
    "knowledge_base": _listed(ENTITIES["knowledge_base"]).where(
        t.agent_knowledge_base.c.agent_id == _AGENT_ID
    ),
    "journey": _listed(ENTITIES["journey"]).where(t.journey.c.agent_id == _AGENT_ID),
    "state": _listed(ENTITIES["state"], t.journey_state.c.journey_id).where(
        t.journey_state.c.journey_id.in_(_JOURNEYS_OF_AGENT)
    ),
    "transition": _listed(ENTITIES["transition"], t.journey_transition.c.journey_id).where(
        t.journey_transition.c.journey_id.in_(_JOURNEYS_OF_AGENT)
    ),
    "journey_guideline": _listed(
        ENTITIES["journey_guideline"], t.journey_guideline.c.journey_id
    ).where(t.journey_guideline.c.journey_id.in_(_JOURNEYS_OF_AGENT)),
}


class _HexUuid(sa.types.TypeDecorator[UUID]):
    """A UUID column read on SQLite (32 hex digits) without ``uuid.UUID``'s parsing:
    the same ``uuid.UUID``, made from the number the digits are."""

    impl = sa.String
    cache_ok = True

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> UUID | None:
        del dialect
        if value is None:
            return None
        made = _new(UUID)
        object.__setattr__(made, "int", int(value.replace("-", ""), 16))
        object.__setattr__(made, "is_safe", SafeUUID.unknown)
        return made


def _on_sqlite(statement: Any) -> Any:
    """``statement`` as SQLite runs it in a load: each row's ``id`` read by :class:`_HexUuid`,
    the ids that rows refer by (``journey_id``, ``from_state_id``...) left as the digits
    the column holds. A load turns only the ids the bundle keeps into ``UUID``: a state's
    journey, a transition's ends are looked up, never kept (see :func:`_reference`).
    Creation times, which only order rows, stay the text SQLite keeps (one format, so
    the text orders as the time does)."""
    columns = []
    for column in statement.selected_columns:
        if isinstance(column.type, sa.Uuid):
            kind: Any = _HexUuid() if column.key == "id" else sa.String()
            columns.append(sa.type_coerce(column, kind).label(column.key))
        elif isinstance(column.type, sa.DateTime):  # only ordered by: the text orders alike
            columns.append(sa.type_coerce(column, sa.String()).label(column.key))
        else:
            columns.append(column)
    return statement.with_only_columns(*columns, maintain_column_froms=True)


_LOAD_ON_SQLITE = {name: _on_sqlite(statement) for name, statement in _LOAD.items()}
LOAD_STATEMENTS = {"postgresql": _LOAD, "sqlite": _LOAD_ON_SQLITE}
"""The load's statements for each dialect, by name, ``"agent"`` first (bound parameters
``agent`` and ``ws``; the others take ``agent`` alone); :func:`stored_rows` builds the
agent from their rows."""


def _reference(dialect: str) -> Callable[[UUID], Any]:
    """How a row's id reads where another row refers to it: the UUID itself on
    PostgreSQL, its 32 hex digits on SQLite (as :func:`_on_sqlite` leaves references)."""
    return _same_id if dialect == "postgresql" else _hex


def _same_id(value: UUID) -> Any:
    return value


def _hex(value: UUID) -> Any:
    return value.hex


class StoredRows(NamedTuple):
    """An agent read back: its bundle, its version, and whether the platform wrote any of
    its list rows (rows with no place in ``row_order``), which the runtime then validates
    as it would a bundle before running them."""

    bundle: AgentBundle
    version: int
    host_written: bool


async def read_stored_bundle(conn: AsyncConnection, ws: str, agent_id: UUID) -> StoredRows:
    """The agent as a bundle (with the stored ids) and its version; a fixed query count.

    The statements run one after the other on ``conn``: give one in a read transaction
    (or a write transaction), so that they see one snapshot."""
    dialect = conn.dialect.name
    statements = _LOAD if dialect == "postgresql" else _LOAD_ON_SQLITE
    agent_row = (await conn.execute(statements["agent"], {"agent": agent_id, "ws": ws})).first()
    if agent_row is None:
        raise NotFound(f"no agent {agent_id} in workspace {ws!r}")
    of_agent = {"agent": agent_id}
    fetched = {
        kind: (await conn.execute(statement, of_agent)).all()
        for kind, statement in statements.items()
        if kind != "agent"
    }
    return stored_rows(agent_row, fetched, dialect)


def stored_rows(
    agent_row: Any, fetched: Mapping[str, Sequence[Any]], dialect: str = "postgresql"
) -> StoredRows:
    """The agent built from the rows of the load's statements (:data:`LOAD_STATEMENTS`:
    ``agent_row`` of ``"agent"``, ``fetched`` the rows of each other one, by name), as
    ``dialect`` gives them; rows may be any named tuples with the statements' columns."""
    host_written = any(  # a row with no place in row_order: the platform wrote it
        None in map(itemgetter(rows[0]._fields.index("order_position")), rows)
        for rows in fetched.values()
        if rows
    )
    bundle = _assemble(agent_row, fetched, host_written, _reference(dialect))
    return StoredRows(bundle, int(agent_row.version), host_written)


S = TypeVar("S", bound=BaseModel)

_TRUSTED = {kind: Trusted(entity.spec, entity.table.name) for kind, entity in ENTITIES.items()}
_BUNDLE = Trusted(AgentBundle)
_CHILDREN = {"tool": ("integrations",), "journey": ("states", "transitions", "guidelines")}
"""The fields of an entity that its children fill (given to :meth:`_Builder.__call__`)."""


class _Builder:
    """Builds one entity's specs from the result rows of one statement, for the rows the
    library wrote: what :class:`~.mapping.Reader` and :class:`~.trusted.Trusted` do one
    after the other, in one step per row.

    The columns are located once; a row's values are taken in the model's field order
    at once (fields no column holds take a place, filled after), the fields that name
    another entity or are read through a function are then set, and Trusted's rules
    apply as they would: a NULL where the field cannot be empty is the field's default
    (or refused without one), a JSON value of the wrong shape is refused, enums are
    converted, unread fields take their defaults. Only the rule's fields are visited.
    """

    def __init__(self, kind: str, columns: Sequence[str], names: dict[str, dict[Any, str]]):
        entity, trusted = ENTITIES[kind], _TRUSTED[kind]
        at = {name: index for index, name in enumerate(columns)}
        self.trusted = trusted
        self.model = entity.spec
        self.fields = trusted.fields
        children = _CHILDREN.get(kind, ())
        places: list[int] = []
        self.named: list[tuple[str, int, dict[Any, str], bool]] = []
        self.reads: list[tuple[str, int, Callable[[Any, Any], Any]]] = []
        read: set[str] = set(children)
        self.unread: list[tuple[str, Callable[[], Any] | None, Any]] = []
        for name in self.fields:
            how = entity.fields.get(name)
            if isinstance(how, Stored):
                places.append(at[how.column])
                if how.read is not None:
                    self.reads.append((name, at[how.column], how.read))
            elif isinstance(how, Named):
                places.append(at[how.column])
                self.named.append((name, at[how.column], names[how.kind], how.many))
            elif isinstance(how, Side):
                places.append(at[f"side_{how.column}"])
            else:  # a child list, or a field the tables do not keep: filled below
                places.append(0)
                if name not in children:
                    factory, default = trusted.defaults[name]  # KeyError: a required field
                    self.unread.append((name, factory, default))
                continue
            read.add(name)
        if len(places) < 2:  # an itemgetter of one place gives the value, not a tuple
            places.append(0)
        self.take = itemgetter(*places)
        self.read = frozenset(read)
        self.not_none = tuple(name for name in trusted.not_none if name in read)
        self.present = itemgetter(*self.not_none) if len(self.not_none) > 1 else None
        self.shapes = trusted.shapes
        self.converters = trusted.converters

    def __call__(self, row: sa.Row[Any], children: dict[str, Any] | None = None) -> Any:
        values = dict(zip(self.fields, self.take(row), strict=False))  # any extra place: unused
        for name, index, known, many in self.named:
            value = row[index]
            if many:
                values[name] = [known[v] for v in value or () if v in known]
            else:
                values[name] = known.get(value) if value is not None else None
        for name, index, read in self.reads:
            values[name] = read(row[index], row)
        if children:
            values.update(children)
        fields_set = set(self.read)
        if self.present is None or None in self.present(values):
            self._nulls(values, fields_set)
        for name, (container, item) in self.shapes:
            value = values[name]
            if value is not None and (
                not isinstance(value, container)
                or (item is not None and not all(isinstance(v, item) for v in value))  # type: ignore[attr-defined]
            ):
                kind = "an object" if container is dict else "a list"
                what = f"{kind} of strings" if item is str else kind
                self.trusted.refuse(values, name, f"holds {value!r}, not {what}")
        for name, convert in self.converters:
            value = values[name]
            if value is not None:
                try:
                    values[name] = convert(value)
                except ValueError:  # a text column of the host's with a value we do not know
                    self.trusted.refuse(values, name, f"holds {value!r}, which is not known")
        for name, factory, default in self.unread:
            values[name] = factory() if factory is not None else default
        instance = _new(self.model)
        _set_dict(instance, values)
        _set_fields_set(instance, fields_set)
        _set_extra(instance, None)
        _set_private(instance, None)
        return instance

    def _nulls(self, values: dict[str, Any], fields_set: set[str]) -> None:
        """A NULL where the field cannot be empty: the field's default, unset."""
        for name in self.not_none:
            if values[name] is None:
                if name not in self.trusted.defaults:
                    self.trusted.refuse(values, name, "is NULL, and the runtime needs a value")
                factory, default = self.trusted.defaults[name]
                values[name] = factory() if factory is not None else default
                fields_set.discard(name)


def _assemble(
    agent_row: sa.Row[Any],
    fetched: Mapping[str, Sequence[sa.Row[Any]]],
    host_written: bool,
    ref: Callable[[UUID], Any] = _same_id,
) -> AgentBundle:
    """Rows to a bundle, each list in its stored order.

    The rows the library published were validated then, so they are built without
    validating them again (:class:`_Builder`); a row the platform wrote (no place in
    ``row_order``) is validated as its spec, and one that breaks it is
    :class:`InvalidData` naming its table, id and field. Each field is read as
    :data:`~.mapping.ENTITIES` says, names replacing the ids that rows refer by
    (``ref``: a row's id as the rows that refer to it hold it).
    """
    guidelines, links = fetched["guideline"], fetched["journey_guideline"]
    linked = {row.guideline_id for row in links}
    names: dict[str, dict[Any, str]] = {
        "tool": {str(row.id): row.name for row in fetched["tool"]},
        "state": {ref(row.id): row.name for row in fetched["state"]},
        # a guideline that a journey links keeps a name: its own, else its id
        "guideline": {ref(row.id): row.side_name or str(row.id) for row in guidelines},
    }

    def built(
        kind: str, children: Callable[[sa.Row[Any]], dict[str, Any] | None] | None = None
    ) -> list[tuple[sa.Row[Any], Any]]:
        rows = fetched[kind]
        if not rows:
            return []
        ordered = _ordered(rows, host_written)
        if not host_written:  # every row the library's own
            build = _Builder(kind, rows[0]._fields, names)
            if children is None:
                return [(row, build(row)) for row in ordered]
            return [(row, build(row, children(row))) for row in ordered]
        read = Reader(ENTITIES[kind], rows[0]._fields, names)
        trusted = _TRUSTED[kind]
        out = []
        for row in ordered:
            data = read(row)
            if children is not None:
                data.update(children(row) or {})
            if row.order_position is None:
                out.append((row, _validated(kind, row, data)))
            else:
                out.append((row, trusted(data)))
        return out

    def grouped(kind: str, parent: str) -> dict[UUID, list[Any]]:
        by_parent: dict[UUID, list[Any]] = {}
        rows = fetched[kind]
        if not rows:
            return by_parent
        of = itemgetter(rows[0]._fields.index(parent))
        for row, spec in built(kind):
            group = by_parent.get(of(row))
            if group is None:
                by_parent[of(row)] = [spec]
            else:
                group.append(spec)
        return by_parent

    def flat(
        kind: str, children: Callable[[sa.Row[Any]], dict[str, Any] | None] | None = None
    ) -> list[Any]:
        return [spec for _, spec in built(kind, children)]

    integrations = grouped("tool_integration", "parlant_tool_id")
    states = grouped("state", "journey_id")
    transitions = grouped("transition", "journey_id")
    journey_links = grouped("journey_guideline", "journey_id")
    agent = _TRUSTED["agent"](Reader(ENTITIES["agent"], agent_row._fields, names)(agent_row))

    def named(row: sa.Row[Any]) -> dict[str, Any] | None:
        if row.side_name is None and ref(row.id) in linked:
            return {"name": names["guideline"][ref(row.id)]}
        return None

    return _BUNDLE(
        {
            "agent": agent,
            "guidelines": flat("guideline", named),
            "canned_responses": flat("canned_response"),
            "terms": flat("term"),
            "tools": flat("tool", lambda row: {"integrations": integrations.get(ref(row.id), [])}),
            "variables": flat("variable"),
            "knowledge_bases": flat("knowledge_base"),
            "journeys": flat(
                "journey",
                lambda row: {
                    "states": states.get(ref(row.id), []),
                    "transitions": transitions.get(ref(row.id), []),
                    "guidelines": journey_links.get(ref(row.id), []),
                },
            ),
        }
    )


def _validated(kind: str, row: sa.Row[Any], data: dict[str, Any]) -> Any:
    """A platform-written row built as its spec would be from a bundle."""
    entity = ENTITIES[kind]
    try:  # a NULL the platform left means the field's default, as it does at run time
        return entity.spec.model_validate({k: v for k, v in data.items() if v is not None})
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'the row'} holds "
            f"{reprlib.repr(e['input'])}: {e['msg']}"
            for e in error.errors(include_url=False)
        )
        raise InvalidData(
            f"{entity.table.name} row {row.id} cannot be used: {problems}; fix the row in "
            "the platform (the runtime never changes rows the platform wrote)"
        ) from None


def _ordered(rows: Sequence[sa.Row[Any]], host_written: bool) -> list[sa.Row[Any]]:
    """Rows in the bundle's order: those with a place in ``row_order`` by it, then the
    rows the platform wrote (none), by creation time and id. (Without rows the platform
    wrote, the places, times and ids are compared as they are, without a key function:
    ids order as their bytes do.)"""
    if not host_written:
        fields = rows[0]._fields
        place = fields.index("order_position"), fields.index("order_created_at")
        return sorted(rows, key=itemgetter(*place, fields.index("id")))

    def key(row: sa.Row[Any]) -> tuple[bool, int, Any, bytes]:
        position = row.order_position
        return (position is None, position or 0, row.order_created_at, row.id.bytes)

    return sorted(rows, key=key)
