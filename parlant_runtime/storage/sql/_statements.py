"""The SQL store's constants, row-to-model conversions and the statements of the
hot path, built once.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import sqlalchemy as sa

from parlant_runtime.model import (
    Event,
    EventType,
    Session,
    SessionStatus,
    Variable,
    VariableScope,
)
from parlant_runtime.storage.checks import (
    storable,
)
from parlant_runtime.storage.port import (
    NotFound,
)
from parlant_runtime.storage.sql import schema as t
from parlant_runtime.storage.sql.trusted import Trusted

T = TypeVar("T")

_CLOSE_GRACE = 5.0
"""Seconds close() waits for operations under way to give their connections back."""
_AGENT_LOCK = "parlant-runtime agent "
"""The text whose hash (with the agent's id) names an agent's advisory lock."""
_PUBLISH = "parlant-runtime publish "
"""The text whose hash names a workspace's advisory publish lock."""
_RESOLVE_WINDOW = 10.0
"""Seconds a write whose ``COMMIT`` lost its connection keeps asking whether it landed."""
_MESSAGES = (EventType.CUSTOMER_MESSAGE.value, EventType.AGENT_MESSAGE.value)
_ENDED = (SessionStatus.COMPLETED, SessionStatus.ABANDONED)


def _storable(*texts: str) -> bool:
    """Whether the database can hold these texts (see :func:`checks.storable`): a text it
    cannot hold names nothing that exists, so the operation answers as for any unknown
    workspace, name or key, instead of letting the driver's error through."""
    return storable(*texts)


def _check_workspace(workspace_id: str) -> None:
    if not _storable(workspace_id):
        raise NotFound(f"nothing of that id in workspace {workspace_id!r}")


_SESSION = Trusted(Session, "parlant_session")
_EVENT = Trusted(Event, "parlant_event")
_VARIABLE = Trusted(Variable, "parlant_variable")


def _session(row: sa.Row[Any], **more: Any) -> Session:
    return _SESSION.row(row, **more)


_SENDERS = {EventType.CUSTOMER_MESSAGE.value: "customer", EventType.AGENT_MESSAGE.value: "agent"}
_PLATFORM_FIELDS = ("message", "sender", "timestamp")


def _stored_content(event_type: str, content: dict[str, Any], at: str) -> dict[str, Any]:
    """A message's content as both writers read it: the runtime's ``text`` and the host
    platform's ``message``, ``sender`` and ``timestamp`` (see docs/host-database.md)."""
    sender = _SENDERS.get(event_type)
    if sender is None or not isinstance(content.get("text"), str):
        return content
    return {"message": content["text"], "sender": sender, "timestamp": at, **content}


def _event(row: sa.Row[Any], **more: Any) -> Event:
    return _as_read(_EVENT.row(row, **more))


def _as_read(event: Event) -> Event:
    """An event built from its row, its content as both writers' rows read (see
    :func:`_stored_content`)."""
    content = event.content
    if event.event_type.value in _SENDERS:
        if "text" not in content and isinstance(content.get("message"), str):
            # written by the platform: its message is the runtime's text
            event.content = {**content, "text": content["message"]}
        elif "message" in content and content.get("message") == content.get("text"):
            # written by the runtime: the platform's copies are not part of the event
            event.content = {k: v for k, v in content.items() if k not in _PLATFORM_FIELDS}
    return event


def _merged_variables(
    rows: Sequence[Sequence[Any]], columns: Sequence[str] | None = None
) -> list[Variable]:
    """The variables of :func:`_variables_of_session`'s rows, by key: the session's value
    wins over the customer's, which wins over the definition. A session value in
    ``session_variable`` (turns on Citus) and one in ``parlant_variable`` (turns
    elsewhere, the platform) for the same key: the newer wins, ``session_variable``'s
    on a tie. ``columns``: the rows' column names, when they are not SQLAlchemy rows
    (which know them)."""
    if not rows:
        return []
    names = columns if columns is not None else rows[0]._fields  # type: ignore[attr-defined]
    picks, flag = _variable_columns(tuple(names))
    merged: dict[str, tuple[tuple[int, datetime, int], Variable]] = {}
    for row in rows:
        data = {name: row[index] for index, name in picks}
        if data["key"] is None:  # the row that stands for the session alone
            continue
        rank = 2 if data["session_id"] is not None else 1 if data["customer_id"] is not None else 0
        runtime_row = 0 if flag is None else int(row[flag])
        order = (rank, _utc(data["updated_at"]) if rank == 2 else _EPOCH, runtime_row)
        variable = _VARIABLE(data)
        if variable.key not in merged or merged[variable.key][0] <= order:
            merged[variable.key] = (order, variable)
    return [merged[key][1] for key in sorted(merged)]


@functools.lru_cache(maxsize=64)
def _variable_columns(names: tuple[str, ...]) -> tuple[tuple[tuple[int, str], ...], int | None]:
    """Where a variable row's fields are among ``names`` (``v_<field>``), and where its
    ``runtime_row`` flag is: rows without it (the SQLite and PostgreSQL turn reads) are
    ``parlant_variable``'s alone. Once per shape of row (a read per turn asks)."""
    picks = tuple((i, name[2:]) for i, name in enumerate(names) if name.startswith("v_"))
    return picks, names.index("runtime_row") if "runtime_row" in names else None


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _utc(moment: datetime) -> datetime:
    """A timestamp comparable with any other: one without a zone (the platform's
    ``timestamp`` columns, SQLite) is UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


# Statements of the hot path, built once: SQLAlchemy then finds their compiled form in
# its cache by a memoised key instead of building and hashing a new statement per call.
_STATE, _KEYS, _CUSTOMER = t.session_state, t.event_key, t.customer_variable
_SESSION_VALUES = t.session_variable
_DELTAS = t.usage_delta
# a session's version is in the runtime's own table; no row there (the platform created
# the session, or no turn was committed yet) is version 0
_VERSION = sa.func.coalesce(_STATE.c.version, 0).label("version")
_WITH_STATE = t.session.outerjoin(_STATE, _STATE.c.session_id == t.session.c.id)


def _sessions() -> Any:
    return sa.select(t.session, _VERSION).select_from(_WITH_STATE)


_SESSION_BY_ID = _sessions().where(
    t.session.c.id == sa.bindparam("sid"), t.session.c.workspace_id == sa.bindparam("ws")
)
# a variable's fields as every read of the variables gives them (the engine's statements
# and SQLite's text alike): parlant_variable's columns and, after the session's, the customer's
_VARIABLE_FIELDS = (
    "id",
    "agent_id",
    "session_id",
    "customer_id",
    "key",
    "scope",
    "value",
    "value_type",
    "is_private",
    "description",
    "created_at",
    "updated_at",
)


def _variables_of_session(*session_columns: Any) -> Any:
    """The variables a session sees, found through its own row in one statement: the
    agent's definitions and the session's values (``parlant_variable``: the platform's,
    and those turns set on an unsharded database), the values turns set on Citus
    (``session_variable``, beside the session; empty elsewhere), then its customer's
    (``customer_variable``); ``session_columns`` come with every row, and a last row of
    them without a variable makes sure the session is there even without variables (no
    row at all: no such session)."""
    s, v, c, o = t.session, t.variable, _CUSTOMER, _SESSION_VALUES
    where = (s.c.id == sa.bindparam("sid"), s.c.workspace_id == sa.bindparam("ws"))
    null_text, null_uuid = sa.cast(sa.null(), sa.Text), sa.cast(sa.null(), t.UUID)
    labels = [f"v_{name}" for name in _VARIABLE_FIELDS]
    defined = [
        v.c.id,
        v.c.agent_id,
        v.c.session_id,
        null_text,
        v.c.key,
        v.c.scope,
        v.c.value,
        v.c.value_type,
        v.c.is_private,
        v.c.description,
        v.c.created_at,
        v.c.updated_at,
    ]
    own = [
        o.c.id,
        s.c.agent_id,
        o.c.session_id,
        null_text,
        o.c.key,
        sa.literal(VariableScope.SESSION.value, sa.Text),
        o.c.value,
        o.c.value_type,
        o.c.is_private,
        null_text,
        o.c.created_at,
        o.c.updated_at,
    ]
    customer = [
        c.c.id,
        c.c.agent_id,
        null_uuid,
        c.c.customer_id,
        c.c.key,
        sa.literal(VariableScope.CUSTOMER.value, sa.Text),
        c.c.value,
        c.c.value_type,
        c.c.is_private,
        null_text,
        c.c.created_at,
        c.c.updated_at,
    ]
    nothing = [
        null_uuid,
        null_uuid,
        null_uuid,
        null_text,
        null_text,
        null_text,
        sa.cast(sa.null(), t.JSON),
        null_text,
        sa.cast(sa.null(), sa.Boolean),
        null_text,
        sa.cast(sa.null(), sa.DateTime(timezone=True)),
        sa.cast(sa.null(), sa.DateTime(timezone=True)),
    ]

    def branch(columns: list[Any], runtime_row: int = 0) -> Any:
        return sa.select(
            *session_columns,
            *(column.label(label) for column, label in zip(columns, labels, strict=True)),
            sa.literal(runtime_row, sa.Integer).label("runtime_row"),
        )

    return sa.union_all(
        branch(defined)
        .select_from(_session_scope().join(v, v.c.agent_id == s.c.agent_id))
        .where(*where, sa.or_(v.c.session_id == s.c.id, v.c.session_id.is_(None))),
        # pinned by the parameter, not the session's column: Citus routes each table so
        branch(own, runtime_row=1)
        .select_from(_session_scope().join(o, o.c.session_id == s.c.id))
        .where(*where, o.c.session_id == sa.bindparam("sid")),
        branch(customer)
        .select_from(
            _session_scope().join(
                c, sa.and_(c.c.agent_id == s.c.agent_id, c.c.customer_id == s.c.customer_id)
            )
        )
        .where(*where),
        branch(nothing).select_from(_session_scope()).where(*where),
    )


def _session_scope() -> Any:
    """The session's row with its state, its agent and the agent's state (one index
    look-up each)."""
    return _WITH_STATE.join(t.agent, t.agent.c.id == t.session.c.agent_id).outerjoin(
        t.agent_state, t.agent_state.c.agent_id == t.agent.c.id
    )


# the variables alone (get_variables); the session's id marks the row without one
_VARIABLES_OF_SESSION = _variables_of_session(t.session.c.id.label("sid"))
# what a turn reads: the session, its version, its agent's version and its variables
_TURN_READ = _variables_of_session(
    *t.session.c,
    _VERSION,
    sa.func.coalesce(t.agent_state.c.version, 1).label("agent_version"),
)
_INSERT_EVENTS = t.event.insert().returning(*t.event.c, sort_by_parameter_order=True)
_INSERT_MOVE_EVENTS = t.event.insert()
_INSERT_KEYS = _KEYS.insert()
_INSERT_USAGE = t.usage_delta.insert()
_AGENT_OF_SESSION = sa.select(t.session.c.agent_id).where(
    t.session.c.id == sa.bindparam("sid"), t.session.c.workspace_id == sa.bindparam("ws")
)
_EVENT_COLUMNS = ("content", "metadata", "tool_call_id", "journey_id", "state_id")


@dataclass(frozen=True, slots=True)
class _TurnShape:
    """What the session UPDATE of a turn sets and checks (one statement per shape)."""

    mode: bool
    metadata: bool
    status: bool
    ends: bool
    state: bool
    journeys: bool
    states: bool
    notify: bool
    locks: bool
    """Take the agent's lock (PostgreSQL)."""


def agent_lock(agent_id: Any) -> Any:
    """The key of an agent's advisory lock: shared by its turns and session creations,
    exclusive for a publish of it."""
    return sa.func.hashtextextended(sa.literal(_AGENT_LOCK) + sa.cast(agent_id, sa.Text), 0)


# a turn's agent lock as a statement of its own (Citus: see .sharding)
_LOCK_AGENT_SHARED = sa.select(
    sa.func.pg_advisory_xact_lock_shared(agent_lock(sa.bindparam("agent", type_=t.UUID)))
)


def _session_update(shape: _TurnShape) -> Any:
    """The compare-and-set ``UPDATE ... RETURNING`` of a turn of this shape, with bound
    parameters (see :meth:`SqlStore._advance_session` for their names).

    Every journey and state the turn names (its position and its events') must belong to
    the session's agent: checked inside the compare-and-set, so they cost no round trip
    of their own.
    """
    s, j, st, e = t.session, t.journey, t.journey_state, t.event
    # the next offset comes from the log, not the counter: the host platform appends
    # events as MAX(offset) + 1 and leaves event_count alone (one index look-up)
    next_offset = (
        sa.select(sa.func.coalesce(sa.func.max(e.c.offset) + 1, 0))
        # the session's id as a parameter, not the outer row's column: Citus routes the
        # UPDATE to the session's shard only when each table is pinned by a value
        .where(e.c.session_id == sa.bindparam("sid"))
        .scalar_subquery()
    )
    values: dict[str, Any] = {
        "event_count": next_offset + sa.bindparam("new_events", type_=sa.Integer),
        "message_count": s.c.message_count + sa.bindparam("new_messages", type_=sa.Integer),
        "current_journey_id": sa.bindparam("journey", type_=s.c.current_journey_id.type),
        "current_state_id": sa.bindparam("state", type_=s.c.current_state_id.type),
        "last_activity_at": sa.func.now(),
        "updated_at": sa.func.now(),
    }
    if shape.mode:
        values["mode"] = sa.bindparam("new_mode", type_=s.c.mode.type)
    if shape.metadata:
        values["metadata"] = sa.bindparam("new_metadata", type_=s.c.metadata.type)
    if shape.status:
        values["status"] = sa.bindparam("new_status", type_=s.c.status.type)
    if shape.ends:
        values["ended_at"] = sa.func.now()
    conditions: list[Any] = [
        s.c.id == sa.bindparam("sid"),
        s.c.workspace_id == sa.bindparam("ws"),
    ]
    if shape.locks:
        # the turn's first lock (PostgreSQL): its agent's lock, shared. A publish takes
        # it exclusively, so a turn runs wholly before a publish of its agent or waits
        # for it here, holding nothing; the lock queues fairly, so a stream of turns
        # cannot starve a publish (see "Locks and retries" in docs/storage.md)
        conditions.append(
            sa.func.pg_advisory_xact_lock_shared(agent_lock(s.c.agent_id)).is_not(None)
        )
    if shape.state:  # the state is one of the agent's, of the journey given with it
        conditions.append(
            sa.exists(
                sa.select(st.c.id)
                .join(j, j.c.id == st.c.journey_id)
                .where(
                    st.c.id == sa.bindparam("state"),
                    j.c.id == sa.bindparam("journey"),
                    j.c.agent_id == s.c.agent_id,
                )
            )
        )
    if shape.journeys:
        owned = (
            sa.select(sa.func.count())
            .select_from(j)
            .where(
                j.c.id.in_(sa.bindparam("journeys", expanding=True)), j.c.agent_id == s.c.agent_id
            )
            .scalar_subquery()
        )
        conditions.append(owned == sa.bindparam("journey_count"))
    if shape.states:
        owned = (
            sa.select(sa.func.count())
            .select_from(st.join(j, j.c.id == st.c.journey_id))
            .where(
                st.c.id.in_(sa.bindparam("states", expanding=True)), j.c.agent_id == s.c.agent_id
            )
            .scalar_subquery()
        )
        conditions.append(owned == sa.bindparam("state_count"))
    returning: list[Any] = list(s.c)
    if shape.notify:  # tell listeners in the same round trip (delivered at commit)
        payload = (
            sa.cast(s.c.id, sa.Text)
            + ":"
            + sa.cast(s.c.event_count - 1, sa.Text)  # RETURNING sees the new count
        )
        returning.append(sa.func.pg_notify("parlant_events", payload).label("notified"))
    return sa.update(s).where(*conditions).values(values).returning(*returning)
