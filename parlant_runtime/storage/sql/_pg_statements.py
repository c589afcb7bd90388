"""The SQL text of a turn's commit on PostgreSQL: one data-modifying statement.

A turn's writes (:meth:`SqlStore.record_turn`) are a chain of ``WITH`` queries, each
one fed by the ``RETURNING`` of the one before, so that one statement (one round
trip, and in autocommit its own transaction) writes all of it or nothing:

1. ``v``: the compare-and-set of the session's version (``UPDATE session_state ...
   WHERE version = :expected``; for a turn computed at version 0, whose session may
   have no row yet, ``INSERT ... ON CONFLICT DO UPDATE ... WHERE version = 0``),
   joined with the session's row, which must be in the workspace, whose agent's lock
   it takes (shared; the turn's first lock, see "Locks and retries" in
   ``docs/storage.md``) and whose agent must own every journey and state the turn
   names (and a customer, when the turn sets a customer's variable). No row here: no
   row anywhere below, and nothing is written;
2. ``s``: the session's ``UPDATE ... RETURNING`` (counters from the log, position,
   mode, status, metadata);
3. ``e``, ``k``: the events (``INSERT ... SELECT FROM jsonb_to_recordset(...)``,
   offsets from ``s``) and the idempotency keys;
4. ``sv``, ``cv``: the session's and the customer's variable upserts;
5. ``u``: the usage deltas, one row keyed by the new version.

The statement returns one row: the session's columns, its new version, and what the
database made of the events (:data:`EVENT_STORED`, as arrays in offset order). A
statement whose chain stopped at ``v`` returns no row; :func:`diagnosis` then says why
(no session, another version, a journey or state that is not the agent's, no customer).
Its ``NOTIFY`` is a statement of its own, sent after it (:data:`NOTIFY`).

On Citus (``citus``) the statement holds ``v`` and ``s`` alone: Citus routes a chain of
``UPDATE``s to the session's shard, but plans one holding an ``INSERT`` as subplans
pulled through the coordinator. The events, keys, variables (reference tables) and
usage are statements of their own there, with the agent's lock and the ``NOTIFY`` on
the coordinator, all in one transaction (see :mod:`.sharding`); and the version row of
a session without one is made before it (``v`` is then always an ``UPDATE``). Every
distributed table in the statement is pinned by the session's id as a parameter,
which is what Citus routes by.

Parameters are positional (``$1``...), numbered as the text is built; :class:`Shape`
says which parts a statement has, and :func:`turn_statement` gives the text and the
names of its parameters in order (``tests/storage/test_pg_turn.py`` has PostgreSQL
prepare the statement of every shape; the conformance suite and the agreement machine
check what it does).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any
from uuid import UUID

from parlant_runtime.model import VariableScope
from parlant_runtime.storage.checks import parse_usage_key
from parlant_runtime.storage.port import TurnCommit, VariableChange
from parlant_runtime.storage.sql import schema as t
from parlant_runtime.storage.sql._statements import _AGENT_LOCK, _ENDED, _MESSAGES, _stored_content
from parlant_runtime.storage.sql.sharding import EVENTS_CHANNEL

__all__ = [
    "EVENT_COLUMNS",
    "EVENT_STORED",
    "SESSION_COLUMNS",
    "Shape",
    "diagnosis",
    "turn_arguments",
    "turn_statement",
]

SESSION_COLUMNS = tuple(column.name for column in t.session.c)
"""The session's columns, first in each row of the statement (then ``version``)."""
EVENT_COLUMNS = tuple(column.name for column in t.event.c)
"""The event's columns."""
EVENT_STORED = ("content", "metadata", "created_at")
"""The event's columns the database may store otherwise than they were sent (JSON as
``jsonb`` keeps it, the time by the column's default), returned by the statement as
arrays in offset order after the session's columns and its version."""

_STATE = f"{t.RUNTIME_SCHEMA}.{t.session_state.name}"
_KEYS = f"{t.RUNTIME_SCHEMA}.{t.event_key.name}"
_CUSTOMER = f"{t.RUNTIME_SCHEMA}.{t.customer_variable.name}"
_USAGE = f"{t.RUNTIME_SCHEMA}.{t.usage_delta.name}"


def _q(name: str) -> str:
    return f'"{name}"'


@dataclass(frozen=True, slots=True)
class Shape:
    """Which parts a turn's statement has (one text, and one prepared statement per
    connection, per shape)."""

    first: bool
    """Computed at version 0: the session may have no version row yet (never on Citus)."""
    events: bool
    keys: bool
    """Some event carries an idempotency key."""
    session_variables: bool
    customer_variables: bool
    usage: bool
    citus: bool
    """Citus: ``v`` and ``s`` alone, without the lock (see the module)."""


class _Parameters:
    """Positional parameters, numbered as the statement's text asks for them."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def __call__(self, name: str, cast: str) -> str:
        if name not in self.names:
            self.names.append(name)
        return f"${self.names.index(name) + 1}::{cast}"


def _checks(p: _Parameters, session: str, *, customer: bool) -> list[str]:
    """Conditions on the session's row ``session``: the new state is one of the
    agent's, of the journey given with it; every journey and state the turn names is
    the agent's; with ``customer``, the session has a customer."""
    journey, state = t.journey.name, t.journey_state.name
    agent = f"{session}.agent_id"
    state_id = p("state", "uuid")
    journeys, states = p("journeys", "uuid[]"), p("states", "uuid[]")
    checks = [
        f"({state_id} IS NULL OR EXISTS (SELECT 1 FROM {state} AS st JOIN {journey} AS j "
        f"ON j.id = st.journey_id WHERE st.id = {state_id} AND j.id = {p('journey', 'uuid')} "
        f"AND j.agent_id = {agent}))",
        f"(SELECT count(*) FROM {journey} AS j WHERE j.id = ANY({journeys}) "
        f"AND j.agent_id = {agent}) = cardinality({journeys})",
        f"(SELECT count(*) FROM {state} AS st JOIN {journey} AS j ON j.id = st.journey_id "
        f"WHERE st.id = ANY({states}) AND j.agent_id = {agent}) = cardinality({states})",
    ]
    if customer:
        checks.append(f"{session}.customer_id IS NOT NULL")
    return checks


def _agent_lock(session: str) -> str:
    """The agent's advisory lock, shared (the key of ``_statements.agent_lock``)."""
    key = f"hashtextextended('{_AGENT_LOCK}' || CAST({session}.agent_id AS text), 0)"
    return f"pg_advisory_xact_lock_shared({key}) IS NOT NULL"


def _version(p: _Parameters, shape: Shape) -> str:
    """``v``: the compare-and-set of the version, only where the session fits."""
    conditions = [
        f"s.id = {p('sid', 'uuid')}",
        f"s.workspace_id = {p('ws', 'text')}",
    ]
    if not shape.citus:
        conditions.append(_agent_lock("s"))
    conditions += _checks(p, "s", customer=shape.customer_variables)
    where = "\n    AND ".join(conditions)
    sid = p("sid", "uuid")
    if shape.first:
        return (
            f"v AS (\n  INSERT INTO {_STATE} AS v (session_id, version)\n"
            f"  SELECT {sid}, 1 FROM {t.session.name} AS s\n  WHERE {where}\n"
            "  ON CONFLICT (session_id) DO UPDATE SET version = v.version + 1 "
            "WHERE v.version = 0\n  RETURNING v.version\n)"
        )
    return (
        f"v AS (\n  UPDATE {_STATE} AS v SET version = v.version + 1\n"
        f"  FROM {t.session.name} AS s\n"
        f"  WHERE v.session_id = {sid} AND v.version = {p('expected', 'integer')}\n"
        f"    AND {where}\n  RETURNING v.version\n)"
    )


def _session(p: _Parameters, shape: Shape) -> str:
    """``s``: the session's row moved on, returned with the new version."""
    s = t.session
    sid, new_events = p("sid", "uuid"), p("new_events", "integer")
    mode, status = p("mode", s.c.mode.type.name), p("status", s.c.status.type.name)  # type: ignore[attr-defined]
    returning = [f"s.{_q(name)}" for name in SESSION_COLUMNS] + ["v.version AS version"]
    return (
        f"s AS (\n  UPDATE {s.name} AS s SET\n"
        f'    event_count = (SELECT coalesce(max(e."offset") + 1, 0) FROM {t.event.name} AS e '
        f"WHERE e.session_id = {sid}) + {new_events},\n"
        f"    message_count = s.message_count + {p('new_messages', 'integer')},\n"
        f"    current_journey_id = {p('journey', 'uuid')},\n"
        f"    current_state_id = {p('state', 'uuid')},\n"
        f"    mode = coalesce({mode}, s.mode),\n"
        f"    metadata = coalesce({p('metadata', 'jsonb')}, s.metadata),\n"
        f"    status = coalesce({status}, s.status),\n"
        f"    ended_at = CASE WHEN {p('ends', 'boolean')} THEN now() ELSE s.ended_at END,\n"
        "    last_activity_at = now(),\n    updated_at = now()\n"
        f"  FROM v\n  WHERE s.id = {sid}\n  RETURNING {', '.join(returning)}\n)"
    )


def _events(p: _Parameters) -> str:
    """``e``: the events, at offsets ``event_count - n ..`` of the moved session. They
    come as one JSON array (one object per event): the driver encodes a text faster
    than arrays of values, each element of which it inspects."""
    event_type = t.event.c.event_type.type.name  # type: ignore[attr-defined]
    columns = ", ".join(_q(c) for c in EVENT_COLUMNS if c != "created_at")
    base = f"s.event_count - {p('new_events', 'integer')}"
    return (
        f"e AS (\n  INSERT INTO {t.event.name} ({columns})\n"
        f"  SELECT x.id, {p('sid', 'uuid')}, {base} + CAST(x.n AS integer) - 1, "
        f"CAST(x.event_type AS {event_type}), x.content, x.metadata, x.tool_call_id, "
        "x.journey_id, x.state_id\n"
        f"  FROM s, ROWS FROM (jsonb_to_recordset({p('events', 'jsonb')}) AS (id uuid, "
        "event_type text, content jsonb, metadata jsonb, tool_call_id text, journey_id uuid, "
        "state_id uuid))\n"
        "    WITH ORDINALITY AS x(id, event_type, content, metadata, tool_call_id, "
        "journey_id, state_id, n)\n"
        "  RETURNING *\n)"
    )


def _keys(p: _Parameters) -> str:
    """``k``: the idempotency keys, at their events' offsets."""
    base = f"s.event_count - {p('new_events', 'integer')}"
    return (
        f'k AS (\n  INSERT INTO {_KEYS} (session_id, idempotency_key, "offset")\n'
        f"  SELECT {p('sid', 'uuid')}, x.key, {base} + CAST(x.n AS integer) - 1\n"
        f"  FROM s, unnest({p('keys', 'text[]')}) WITH ORDINALITY AS x(key, n)\n"
        "  WHERE x.key IS NOT NULL\n)"
    )


_UPSERT = (
    "value = excluded.value, value_type = excluded.value_type, "
    "is_private = excluded.is_private, updated_at = excluded.updated_at"
)


def _session_variables(p: _Parameters) -> str:
    """``sv``: the session's variables (in key order: one lock order for every writer)."""
    return (
        f"sv AS (\n  INSERT INTO {t.variable.name} "
        '(id, agent_id, session_id, "key", scope, value, value_type, is_private)\n'
        f"  SELECT x.id, s.agent_id, {p('sid', 'uuid')}, x.key, x.scope, x.value, "
        "x.value_type, x.is_private\n"
        f"  FROM s, unnest({p('sv_ids', 'uuid[]')}, {p('sv_keys', 'text[]')}, "
        f"{p('sv_scopes', 'text[]')}, {p('sv_values', 'jsonb[]')}, "
        f"{p('sv_types', 'text[]')}, {p('sv_private', 'boolean[]')})\n"
        "    AS x(id, key, scope, value, value_type, is_private)\n"
        f'  ON CONFLICT (session_id, "key") DO UPDATE SET {_UPSERT}\n)'
    )


def _customer_variables(p: _Parameters) -> str:
    """``cv``: the customer's variables (the session has a customer: ``v`` checked)."""
    return (
        f"cv AS (\n  INSERT INTO {_CUSTOMER} "
        '(agent_id, customer_id, "key", id, value, value_type, is_private)\n'
        "  SELECT s.agent_id, s.customer_id, x.key, x.id, x.value, x.value_type, "
        "x.is_private\n"
        f"  FROM s, unnest({p('cv_ids', 'uuid[]')}, {p('cv_keys', 'text[]')}, "
        f"{p('cv_values', 'jsonb[]')}, {p('cv_types', 'text[]')}, "
        f"{p('cv_private', 'boolean[]')})\n"
        "    AS x(id, key, value, value_type, is_private)\n"
        f'  ON CONFLICT (agent_id, customer_id, "key") DO UPDATE SET {_UPSERT}\n)'
    )


def _usage(p: _Parameters) -> str:
    """``u``: the turn's usage deltas, one row keyed by the session and its new version."""
    return (
        f"u AS (\n  INSERT INTO {_USAGE} (session_id, seq, workspace_id, deltas)\n"
        f"  SELECT {p('sid', 'uuid')}, s.version, {p('ws', 'text')}, {p('deltas', 'jsonb')} "
        "FROM s\n)"
    )


@cache
def turn_statement(shape: Shape) -> tuple[str, tuple[str, ...]]:
    """The statement of a turn of this shape, and its parameters' names in order."""
    p = _Parameters()
    parts = [_version(p, shape), _session(p, shape)]
    if not shape.citus:
        if shape.events:
            parts.append(_events(p))
        if shape.keys:
            parts.append(_keys(p))
        if shape.session_variables:
            parts.append(_session_variables(p))
        if shape.customer_variables:
            parts.append(_customer_variables(p))
        if shape.usage:
            parts.append(_usage(p))
    session = ", ".join(f"s.{_q(name)}" for name in SESSION_COLUMNS)
    if shape.events and not shape.citus:
        # what the database made of the events, in offset order (the rest of each event
        # is what was sent: ids, offsets, types and texts come back as they went)
        stored = ", ".join(
            f'array_agg(e.{_q(name)} ORDER BY e."offset") AS {_q("event_" + name)}'
            for name in EVENT_STORED
        )
        tail = f"SELECT {session}, s.version, x.*\nFROM s CROSS JOIN (SELECT {stored} FROM e) AS x"
    else:
        tail = f"SELECT {session}, s.version\nFROM s"
    return "WITH " + ",\n".join(parts) + "\n" + tail, tuple(p.names)


@cache
def diagnosis(*, customer: bool) -> tuple[str, tuple[str, ...]]:
    """Why a turn's statement wrote nothing: the session's version (no row: no such
    session in the workspace), whether its journeys and states fit its agent, and
    whether it has a customer (with ``customer``)."""
    p = _Parameters()
    fits = " AND ".join(_checks(p, "s", customer=False))
    has_customer = "s.customer_id IS NOT NULL" if customer else "true"
    sql = (
        f"SELECT coalesce(v.version, 0) AS version, {fits} AS fits, "
        f"{has_customer} AS has_customer\n"
        f"FROM {t.session.name} AS s LEFT JOIN {_STATE} AS v ON v.session_id = s.id\n"
        f"WHERE s.id = {p('sid', 'uuid')} AND s.workspace_id = {p('ws', 'text')}"
    )
    return sql, tuple(p.names)


def turn_arguments(
    workspace_id: str,
    turn: TurnCommit,
    event_ids: Sequence[UUID],
    *,
    citus: bool,
    dumps: Callable[[Any], str],
) -> tuple[Shape, dict[str, Any]]:
    """The shape of ``turn``'s statement and the values of every parameter a statement
    of it may name (by name; :func:`turn_statement` says which, in order). JSON values
    are given as text (``dumps``), as the driver's codecs take them."""
    events = turn.events
    journeys = {e.journey_id for e in events if e.journey_id is not None}
    if turn.current_journey_id is not None:
        journeys.add(turn.current_journey_id)
    session_variables = _last_of_each(turn.variables, VariableScope.SESSION)
    customer_variables = _last_of_each(turn.variables, VariableScope.CUSTOMER)
    shape = Shape(
        first=turn.expected_version == 0 and not citus,
        events=bool(events),
        keys=any(e.idempotency_key is not None for e in events),
        session_variables=bool(session_variables),
        customer_variables=bool(customer_variables),
        usage=bool(turn.usage),
        citus=citus,
    )
    at = datetime.now(UTC).isoformat() if events else ""
    values: dict[str, Any] = {
        "sid": turn.session_id,
        "ws": workspace_id,
        "expected": turn.expected_version,
        "journey": turn.current_journey_id,
        "state": turn.current_state_id,
        "journeys": sorted(journeys),
        "states": sorted({e.state_id for e in events if e.state_id is not None}),
        "new_events": len(events),
        "new_messages": sum(1 for e in events if e.event_type.value in _MESSAGES),
        "mode": turn.mode.value if turn.mode is not None else None,
        "status": turn.status.value if turn.status is not None else None,
        "ends": turn.status in _ENDED,
        "metadata": dumps(turn.metadata) if turn.metadata is not None else None,
        "events": dumps(
            [
                {
                    "id": str(event_id),
                    "event_type": e.event_type.value,
                    "content": _stored_content(e.event_type.value, e.content, at),
                    "metadata": e.metadata,
                    "tool_call_id": e.tool_call_id,
                    "journey_id": str(e.journey_id) if e.journey_id is not None else None,
                    "state_id": str(e.state_id) if e.state_id is not None else None,
                }
                for event_id, e in zip(event_ids, events, strict=True)
            ]
        ),
        "keys": [e.idempotency_key for e in events],
    }
    for prefix, changes in (("sv", session_variables), ("cv", customer_variables)):
        values[f"{prefix}_ids"] = [uuid.uuid4() for _ in changes]
        values[f"{prefix}_keys"] = [c.key for c in changes]
        values[f"{prefix}_values"] = [dumps(c.value) for c in changes]
        values[f"{prefix}_types"] = [c.value_type.value for c in changes]
        values[f"{prefix}_private"] = [c.is_private for c in changes]
    values["sv_scopes"] = [c.scope.value for c in session_variables]
    deltas = {}
    for key, delta in turn.usage.items():
        entity, entity_id, counter = parse_usage_key(key)
        deltas[f"{entity}:{entity_id}:{counter}"] = delta
    values["deltas"] = dumps(deltas)
    return shape, values


def _last_of_each(changes: Sequence[VariableChange], scope: VariableScope) -> list[VariableChange]:
    """The scope's changes, the last one of each key (as one after another would leave
    them), in key order: two turns of one customer's sessions lock its rows in one order."""
    last = {c.key: c for c in changes if c.scope is scope}
    return [last[key] for key in sorted(last)]


NOTIFY = (
    f"SELECT set_config('synchronous_commit', 'off', true), pg_notify('{EVENTS_CHANNEL}', $1::text)"
)
"""The ``NOTIFY`` of a committed turn's events (``<session>:<last offset>``), a statement
of its own after the turn's: PostgreSQL holds one lock for every transaction that
notifies, on the whole server, from before its commit until it is flushed, so a turn
notifying in its own statement would wait for every other's flush (measured: 8 sessions
committed no faster than 1). Its own transaction commits without waiting for the flush
(a notification lost in a crash costs a waiter a read, never an event)."""
