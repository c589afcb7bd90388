"""The statements of a turn on a SQLite file, as SQL text for ``sqlite3`` (prepared once
by its statement cache), the named tuples its rows become, and the conversions of the
columns' values (SQLAlchemy's type processors for the engine's dialect): the
vocabulary of :mod:`._sqlite_turns`.

The text follows the engine's statements (:mod:`._statements`, :mod:`._turns`): the
same tables, columns and checks, in SQLite's SQL (lists as JSON arrays through
``json_each``, so one text serves any number of ids).
"""

from __future__ import annotations

import os
from collections import namedtuple
from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from parlant_runtime.model import VariableScope
from parlant_runtime.storage.sql import schema as t
from parlant_runtime.storage.sql._statements import _VARIABLE_FIELDS

_S, _E, _V = t.session, t.event, t.variable
_STATE, _KEYS, _CUSTOMER, _USAGE = t.session_state, t.event_key, t.customer_variable, t.usage_delta


def _q(name: str) -> str:
    return f'"{name}"'


def _columns(table: sa.Table, alias: str) -> str:
    return ", ".join(f"{alias}.{_q(c.name)}" for c in table.c)


# rows as the conversions of _statements take them (fields by name, values by index)
_SessionRow = namedtuple("_SessionRow", [*(c.key for c in _S.c), "version", "agent_version"])  # type: ignore[misc]
_UpdatedRow = namedtuple("_UpdatedRow", [c.key for c in _S.c])  # type: ignore[misc]
_EventRow = namedtuple("_EventRow", [*(c.key for c in _E.c), "idempotency_key"])  # type: ignore[misc]
_VariableRow = namedtuple("_VariableRow", [f"v_{name}" for name in _VARIABLE_FIELDS])  # type: ignore[misc]


def _random_ids(count: int) -> list[UUID]:
    """``count`` random (version 4) UUIDs, as ``uuid.uuid4`` makes them, from one read of
    the system's random source instead of one each."""
    randomness = os.urandom(16 * count)
    return [UUID(bytes=randomness[i : i + 16], version=4) for i in range(0, 16 * count, 16)]


def _row(kind: Any, values: list[Any]) -> Any:
    """A row of ``kind`` (one of the named tuples above): it stands in for SQLAlchemy's."""
    return kind._make(values)


_SESSION_OF = f"""
SELECT {_columns(_S, "s")}, coalesce(st.version, 0), coalesce(ag.version, 1)
FROM {_S.name} AS s
LEFT JOIN {_STATE.name} AS st ON st.session_id = s.id
JOIN {t.agent.name} AS a ON a.id = s.agent_id
LEFT JOIN {t.agent_state.name} AS ag ON ag.agent_id = a.id
WHERE s.id = ? AND s.workspace_id = ?
"""
# the agent's definitions and the session's values, then the customer's (later wins:
# see _merged_variables); the scope of a customer value is the literal
_VARIABLES_OF = f"""
SELECT v.id, v.agent_id, v.session_id, NULL, v."key", v.scope, v.value, v.value_type,
       v.is_private, v.description, v.created_at, v.updated_at
FROM {_V.name} AS v
WHERE v.agent_id = :agent AND (v.session_id = :sid OR v.session_id IS NULL)
UNION ALL
SELECT c.id, c.agent_id, NULL, c.customer_id, c."key", '{VariableScope.CUSTOMER.value}',
       c.value, c.value_type, c.is_private, NULL, c.created_at, c.updated_at
FROM {_CUSTOMER.name} AS c
WHERE c.agent_id = :agent AND c.customer_id = :customer
"""
_MESSAGE_OF = f"""
SELECT {_columns(_E, "e")}, k.idempotency_key
FROM {_KEYS.name} AS k
JOIN {_E.name} AS e ON e.session_id = k.session_id AND e."offset" = k."offset"
WHERE k.session_id = ? AND k.idempotency_key = ?
"""
_VERSION_NOW = f"""
SELECT coalesce(st.version, 0) FROM {_S.name} AS s
LEFT JOIN {_STATE.name} AS st ON st.session_id = s.id
WHERE s.id = ? AND s.workspace_id = ?
"""
_BUMP = (
    f"UPDATE {_STATE.name} SET version = version + 1 "
    "WHERE session_id = ? AND version = ? RETURNING version"
)
_VERSION_OF_STATE = f"SELECT version FROM {_STATE.name} WHERE session_id = ?"
_FIRST = (
    f"INSERT INTO {_STATE.name} (session_id, version) VALUES (?, 1) "
    "ON CONFLICT (session_id) DO NOTHING RETURNING version"
)
_EVENT_COLUMNS = tuple(_E.c)
_INSERT_EVENT = (
    f"INSERT INTO {_E.name} ({', '.join(_q(c.name) for c in _EVENT_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in _EVENT_COLUMNS)})"
)
_INSERT_KEY = f'INSERT INTO {_KEYS.name} (session_id, idempotency_key, "offset") VALUES (?, ?, ?)'
# a key recorded before the turn (the turn's own rows, written before the statement
# that failed, are still in the transaction: offsets from ``base`` on)
_KEY_OFFSET = (
    f'SELECT "offset" FROM {_KEYS.name} WHERE session_id = ? AND idempotency_key = ? '
    'AND "offset" < ?'
)
_ON_CONFLICT_SET = (
    "DO UPDATE SET value = excluded.value, value_type = excluded.value_type, "
    "is_private = excluded.is_private, updated_at = excluded.updated_at"
)
_UPSERT_SESSION_VARIABLE = (
    f'INSERT INTO {_V.name} (id, agent_id, session_id, "key", scope, value, value_type, '
    f'is_private) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (session_id, "key") '
    f"{_ON_CONFLICT_SET}"
)
_UPSERT_CUSTOMER_VARIABLE = (
    f'INSERT INTO {_CUSTOMER.name} (id, agent_id, customer_id, "key", value, value_type, '
    f'is_private) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (agent_id, customer_id, "key") '
    f"{_ON_CONFLICT_SET}"
)
_INSERT_USAGE = (
    f"INSERT INTO {_USAGE.name} (session_id, seq, workspace_id, deltas) VALUES (?, ?, ?, ?)"
)
_AGENT_AT = [c.key for c in _S.c].index("agent_id")
_CUSTOMER_AT = [c.key for c in _S.c].index("customer_id")
_COUNT_AT = [c.key for c in _S.c].index("event_count")

_updates: dict[tuple[bool, ...], str] = {}


def _update(shape: tuple[bool, bool, bool, bool, bool, bool, bool]) -> str:
    """The session's ``UPDATE ... RETURNING`` for a turn of this shape (cached): which of
    mode, metadata, status, end, state, journeys and states it sets or checks. The next
    offset comes from the log (the host platform appends as ``MAX(offset) + 1``); its
    ``WHERE`` checks that every journey and state the turn names is the agent's."""
    found = _updates.get(shape)
    if found is not None:
        return found
    mode, metadata, status, ends, state, journeys, states = shape
    values = [
        f'event_count = (SELECT coalesce(max("offset") + 1, 0) FROM {_E.name} '
        "WHERE session_id = :sid) + :new_events",
        "message_count = message_count + :new_messages",
        "current_journey_id = :journey",
        "current_state_id = :state",
        "last_activity_at = CURRENT_TIMESTAMP",
        "updated_at = CURRENT_TIMESTAMP",
    ]
    if mode:
        values.append("mode = :new_mode")
    if metadata:
        values.append("metadata = :new_metadata")
    if status:
        values.append("status = :new_status")
    if ends:
        values.append("ended_at = CURRENT_TIMESTAMP")
    s, j, st = _S.name, t.journey.name, t.journey_state.name
    where = ["id = :sid", "workspace_id = :ws"]
    if state:
        where.append(
            f"EXISTS (SELECT 1 FROM {st} AS st JOIN {j} AS j ON j.id = st.journey_id "
            f"WHERE st.id = :state AND j.id = :journey AND j.agent_id = {s}.agent_id)"
        )
    if journeys:
        where.append(
            f"(SELECT count(*) FROM {j} AS j WHERE j.id IN (SELECT value FROM json_each(:journeys))"
            f" AND j.agent_id = {s}.agent_id) = :journey_count"
        )
    if states:
        where.append(
            f"(SELECT count(*) FROM {st} AS st JOIN {j} AS j ON j.id = st.journey_id "
            "WHERE st.id IN (SELECT value FROM json_each(:states)) "
            f"AND j.agent_id = {s}.agent_id) = :state_count"
        )
    sql = (
        f"UPDATE {s} SET {', '.join(values)} WHERE {' AND '.join(where)} "
        f"RETURNING {', '.join(_q(c.name) for c in _S.c)}"
    )
    _updates[shape] = sql
    return sql


Processor = Callable[[Any], Any] | None


class _Codecs:
    """SQLAlchemy's conversions of the columns the turn statements use, for the engine's
    dialect (its JSON serializer included): Python value -> stored form and back."""

    def __init__(self, engine: AsyncEngine) -> None:
        dialect = engine.dialect

        def bind(column: sa.ColumnElement[Any]) -> Processor:
            processor: Processor = column.type.dialect_impl(dialect).bind_processor(dialect)
            return processor

        def result(column: sa.ColumnElement[Any]) -> Processor:
            if isinstance(column.type, sa.Enum):  # its text as stored; the models make enums
                return None
            processor: Processor = column.type.dialect_impl(dialect).result_processor(dialect, None)
            return processor

        self.uuid = bind(_S.c.id)
        json, json_result = bind(_S.c.metadata), result(_S.c.metadata)
        assert json is not None  # SQLite's JSON is text, written and read by these
        assert json_result is not None
        self.json: Callable[[Any], Any] = json
        self.json_result: Callable[[Any], Any] = json_result
        self.boolean = bind(_V.c.is_private)
        self.event_binds = tuple(bind(c) for c in _EVENT_COLUMNS)
        self.variable_value = bind(_V.c.value)
        self.session = tuple(result(c) for c in _S.c)
        self.event = tuple(result(c) for c in _EVENT_COLUMNS)
        self.variable = tuple(
            result(_V.c[name]) if name in _V.c else result(_CUSTOMER.c.customer_id)
            for name in _VARIABLE_FIELDS
        )

    def u(self, value: UUID | None) -> Any:
        return self.uuid(value) if self.uuid is not None else value

    @staticmethod
    def rows(raw: Sequence[Any], processors: Sequence[Processor]) -> list[Any]:
        return [
            value if processor is None or value is None else processor(value)
            for value, processor in zip(raw, processors, strict=False)
        ]
