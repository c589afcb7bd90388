"""The database schema as SQLAlchemy tables: the seed's 15 tables, the host tables,
and the runtime's own.

Names, enum types, defaults and unique indexes follow the one public implementation
of the seed (the host platform's own schema, Sim's) so that the library runs
against a host database that already has them. Types are native on PostgreSQL
(uuid, jsonb, enum types) and portable on SQLite (char(32), JSON text, checked
varchars).

The runtime's own state of an agent's definitions lives beside the platform's tables,
never in them (migration 0004), in the PostgreSQL schema ``parlant_runtime``
(:data:`RUNTIME_SCHEMA`; on SQLite the engine maps it to the main file):

- ``agent_state``: per agent, the strict no-match reply and a counter bumped by every
  publish that changes the agent (compiled journeys are cached per version);
- ``row_order``: per row of a bundle list, its place in the list (transition order
  breaks priority ties, and an export must give the bundle back) and, for guidelines
  and canned responses, the bundle name. Rows the platform wrote have none.

The session side of the runtime's own state lives in tables of its own, in the
PostgreSQL schema ``parlant_runtime`` (mapped away on SQLite, where they sit in the
main file), so that the platform's tables keep exactly the platform's shape
(migration 0005, ``docs/storage.md``): ``session_state`` (the compare-and-set version),
``event_key`` (idempotency keys), ``customer_variable`` (customer-scoped values) and
``usage_delta`` (a turn's usage deltas in one row, rolled up into the counter columns).
Each session-scoped one has the session id in its primary key, so that a distributed
database can keep it beside its session. ``session_variable`` (migration 0006) holds
the session values a turn sets on a database laid out for Citus only: there
``parlant_variable``, which holds an agent's definitions (no session), cannot be kept
beside a session. Elsewhere turns set them in ``parlant_variable``, where a host
platform reads them, and ``session_variable`` stays empty.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from parlant_runtime.model.enums import (
    AgentStatus,
    CompositionMode,
    EventType,
    SessionMode,
    SessionStatus,
    StateType,
)

__all__ = [
    "HOST_TABLES",
    "RUNTIME",
    "RUNTIME_SCHEMA",
    "RUNTIME_TABLES",
    "SQLITE_SCHEMAS",
    "metadata",
    "platform_tables",
]

NAMING_CONVENTION = {
    "ix": "%(table_name)s_%(column_0_N_name)s_idx",
    "uq": "%(table_name)s_%(column_0_N_name)s_key",
    "ck": "%(table_name)s_%(constraint_name)s_check",
    "fk": "%(table_name)s_%(column_0_name)s_fkey",
    "pk": "%(table_name)s_pkey",
}

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
UUID = sa.Uuid(as_uuid=True)
NOW = sa.func.now()

HOST_TABLES = ("workspace", "user", "knowledge_base", "custom_tools")
RUNTIME_SCHEMA = "parlant_runtime"
"""The PostgreSQL schema of the runtime's own tables (and of Alembic's version table)."""
SQLITE_SCHEMAS = {RUNTIME_SCHEMA: None}
"""``schema_translate_map`` of a SQLite connection: one file holds every table."""
RUNTIME_TABLES = (
    "agent_state",
    "row_order",
    "session_state",
    "event_key",
    "customer_variable",
    "usage_delta",
    "session_variable",
)
"""Tables of the runtime's own (in :data:`RUNTIME_SCHEMA`), which no host schema has."""


def _enum(enum: Any, name: str) -> sa.Enum:
    return sa.Enum(
        *(member.value for member in enum),
        name=name,
        native_enum=True,
        create_constraint=True,
        validate_strings=True,
    )


def _timestamps() -> list[sa.Column[Any]]:
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
    ]


def _value_columns() -> list[sa.Column[Any]]:
    """A variable's value as every table of values holds it (the platform's, the
    runtime's customer and session values)."""
    return [
        sa.Column("value", JSON),
        sa.Column("value_type", sa.Text, nullable=False, server_default="string"),
        sa.Column("is_private", sa.Boolean, nullable=False, server_default=sa.false()),
    ]


def _priority(name: str = "priority") -> sa.Column[Any]:
    return sa.Column(name, sa.Integer, nullable=False, server_default="100")


def _counter(name: str) -> sa.Column[Any]:
    return sa.Column(name, sa.Integer, nullable=False, server_default="0")


RUNTIME = {"runtime": True}
"""``Column.info`` of the runtime's extensions: what adopting a host database adds."""


def _uuid_pk() -> sa.Column[Any]:
    return sa.Column("id", UUID, primary_key=True)


def _fk(name: str, target: str, *, nullable: bool = False, on_delete: str = "CASCADE") -> Any:
    column_type = sa.Text if target.split(".", maxsplit=1)[0] in HOST_TABLES else UUID
    return sa.Column(
        name, column_type, sa.ForeignKey(target, ondelete=on_delete), nullable=nullable
    )


# ------------------------------------------------------------------ host tables

workspace = sa.Table(
    "workspace",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("owner_id", sa.Text),
    *_timestamps(),
)

user = sa.Table(
    "user",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("email", sa.Text, nullable=False),
    sa.Column("email_verified", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("image", sa.Text),
    *_timestamps(),
)

knowledge_base = sa.Table(
    "knowledge_base",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("user_id", sa.Text),
    sa.Column("workspace_id", sa.Text),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("description", sa.Text),
    sa.Column("token_count", sa.Integer, nullable=False, server_default="0"),
)

custom_tools = sa.Table(
    "custom_tools",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("user_id", sa.Text),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("schema", JSON, nullable=False),
    sa.Column("code", sa.Text, nullable=False, server_default=""),
)

# ------------------------------------------------------------------ core

agent = sa.Table(
    "parlant_agent",
    metadata,
    _uuid_pk(),
    _fk("workspace_id", "workspace.id"),
    _fk("created_by", "user.id", nullable=True, on_delete="SET NULL"),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("description", sa.Text),
    sa.Column(
        "status", _enum(AgentStatus, "agent_status"), nullable=False, server_default="active"
    ),
    sa.Column(
        "composition_mode",
        _enum(CompositionMode, "composition_mode"),
        nullable=False,
        server_default="fluid",
    ),
    sa.Column("system_prompt", sa.Text),
    sa.Column("model_provider", sa.Text),
    sa.Column("model_name", sa.Text),
    sa.Column("temperature", sa.Integer, nullable=False, server_default="70"),
    sa.Column("max_tokens", sa.Integer),
    _counter("total_sessions"),
    _counter("total_messages"),
    _counter("total_tokens_used"),
    _counter("total_cost"),
    sa.Column("last_active_at", sa.DateTime(timezone=True)),
    *_timestamps(),
    sa.Column("deleted_at", sa.DateTime(timezone=True)),
    sa.Index(None, "workspace_id"),
    sa.Index(None, "workspace_id", "name"),
)

session = sa.Table(
    "parlant_session",
    metadata,
    _uuid_pk(),
    _fk("agent_id", "parlant_agent.id"),
    _fk("workspace_id", "workspace.id"),
    _fk("user_id", "user.id", nullable=True, on_delete="SET NULL"),
    sa.Column("customer_id", sa.Text),
    sa.Column("mode", _enum(SessionMode, "session_mode"), nullable=False, server_default="auto"),
    sa.Column(
        "status", _enum(SessionStatus, "session_status"), nullable=False, server_default="active"
    ),
    sa.Column("title", sa.Text),
    sa.Column("metadata", JSON, nullable=False, server_default="{}"),
    _fk("current_journey_id", "parlant_journey.id", nullable=True, on_delete="SET NULL"),
    _fk("current_state_id", "parlant_journey_state.id", nullable=True, on_delete="SET NULL"),
    sa.Column("variables", JSON, nullable=False, server_default="{}"),
    _counter("event_count"),
    _counter("message_count"),
    _counter("tokens_used"),
    _counter("cost"),
    sa.Column("average_response_time", sa.Integer),
    sa.Column("satisfaction_score", sa.Integer),
    sa.Column("session_type", sa.Text),
    sa.Column("tags", JSON, nullable=False, server_default="[]"),
    sa.Column("user_agent", sa.Text),
    sa.Column("ip_address", sa.Text),
    sa.Column("referrer", sa.Text),
    sa.Column("locale", sa.Text),
    sa.Column("timezone", sa.Text),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
    sa.Column("last_activity_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
    sa.Column("ended_at", sa.DateTime(timezone=True)),
    *_timestamps(),
    sa.Index(None, "workspace_id", "agent_id"),
    sa.Index(None, "current_state_id"),
)

event = sa.Table(
    "parlant_event",
    metadata,
    _uuid_pk(),
    _fk("session_id", "parlant_session.id"),
    sa.Column("offset", sa.Integer, nullable=False),
    sa.Column("event_type", _enum(EventType, "event_type"), nullable=False),
    sa.Column("content", JSON, nullable=False, server_default="{}"),
    sa.Column("metadata", JSON, nullable=False, server_default="{}"),
    sa.Column("tool_call_id", sa.Text),
    # the journey and state the event was about, as they were: no foreign keys, so that
    # removing them in a publish does not rewrite the log (0003; the seed has SET NULL)
    sa.Column("journey_id", UUID),
    sa.Column("state_id", UUID),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
    sa.Index(None, "session_id", "offset", unique=True),
)

# ------------------------------------------------------------------ behaviour

guideline = sa.Table(
    "parlant_guideline",
    metadata,
    _uuid_pk(),
    _fk("agent_id", "parlant_agent.id"),
    sa.Column("condition", sa.Text),
    sa.Column("action", sa.Text, nullable=False),
    _priority(),
    sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("tool_ids", JSON, nullable=False, server_default="[]"),
    _counter("match_count"),
    sa.Column("last_matched_at", sa.DateTime(timezone=True)),
    *_timestamps(),
    sa.Index(None, "agent_id"),
)

canned_response = sa.Table(
    "parlant_canned_response",
    metadata,
    _uuid_pk(),
    _fk("agent_id", "parlant_agent.id"),
    sa.Column("template", sa.Text, nullable=False),
    sa.Column("category", sa.Text),
    sa.Column("tags", JSON, nullable=False, server_default="[]"),
    sa.Column("conditions", JSON, nullable=False, server_default="[]"),
    _priority(),
    sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("requires_exact_match", sa.Boolean, nullable=False, server_default=sa.false()),
    _counter("use_count"),
    sa.Column("last_used_at", sa.DateTime(timezone=True)),
    *_timestamps(),
    sa.Index(None, "agent_id"),
)

term = sa.Table(
    "parlant_term",
    metadata,
    _uuid_pk(),
    _fk("agent_id", "parlant_agent.id"),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("synonyms", JSON, nullable=False, server_default="[]"),
    sa.Column("category", sa.Text),
    sa.Column("examples", JSON, nullable=False, server_default="[]"),
    _priority("importance"),
    *_timestamps(),
    sa.Index(None, "agent_id", "name", unique=True),
)

# ------------------------------------------------------------------ journeys

journey = sa.Table(
    "parlant_journey",
    metadata,
    _uuid_pk(),
    _fk("agent_id", "parlant_agent.id"),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("description", sa.Text),
    sa.Column("conditions", JSON, nullable=False, server_default="[]"),
    sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("allow_skipping", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("allow_revisiting", sa.Boolean, nullable=False, server_default=sa.true()),
    _counter("total_sessions"),
    sa.Column("completion_rate", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_used_at", sa.DateTime(timezone=True)),
    *_timestamps(),
    sa.Index(None, "agent_id"),
)

journey_state = sa.Table(
    "parlant_journey_state",
    metadata,
    _uuid_pk(),
    _fk("journey_id", "parlant_journey.id"),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("state_type", _enum(StateType, "journey_state_type"), nullable=False),
    sa.Column("chat_prompt", sa.Text),
    sa.Column("tool_id", sa.Text),
    sa.Column("tool_config", JSON, nullable=False, server_default="{}"),
    sa.Column("condition", sa.Text),
    sa.Column("is_initial", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("is_final", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("allow_skip", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("metadata", JSON, nullable=False, server_default="{}"),
    *_timestamps(),
    sa.Index(None, "journey_id", "name", unique=True),
    sa.CheckConstraint("NOT (is_initial AND is_final)", name="initial_not_final"),
)

journey_transition = sa.Table(
    "parlant_journey_transition",
    metadata,
    _uuid_pk(),
    _fk("journey_id", "parlant_journey.id"),
    _fk("from_state_id", "parlant_journey_state.id"),
    _fk("to_state_id", "parlant_journey_state.id"),
    sa.Column("condition", sa.Text),
    _priority(),
    _counter("use_count"),
    sa.Column("last_used_at", sa.DateTime(timezone=True)),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
    sa.Index(None, "journey_id"),
    sa.Index(None, "from_state_id"),
)

# ------------------------------------------------------------------ tools

tool = sa.Table(
    "parlant_tool",
    metadata,
    _uuid_pk(),
    _fk("workspace_id", "workspace.id"),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("display_name", sa.Text),
    sa.Column("description", sa.Text),
    sa.Column("sim_tool_id", sa.Text),
    sa.Column("tool_type", sa.Text, nullable=False, server_default="custom"),
    sa.Column("parameters", JSON, nullable=False, server_default="{}"),
    sa.Column("return_schema", JSON),
    sa.Column("usage_guidelines", sa.Text),
    sa.Column("error_handling", JSON, nullable=False, server_default="{}"),
    sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("is_public", sa.Boolean, nullable=False, server_default=sa.false()),
    _counter("use_count"),
    sa.Column("success_rate", sa.Integer, nullable=False, server_default="100"),
    sa.Column("last_used_at", sa.DateTime(timezone=True)),
    *_timestamps(),
    sa.Index(None, "workspace_id", "name", unique=True),
)

tool_integration = sa.Table(
    "parlant_tool_integration",
    metadata,
    _uuid_pk(),
    _fk("parlant_tool_id", "parlant_tool.id"),
    sa.Column("integration_type", sa.Text, nullable=False),
    sa.Column("target_id", sa.Text, nullable=False),
    sa.Column("configuration", JSON, nullable=False, server_default="{}"),
    sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("parameter_mapping", JSON, nullable=False, server_default="{}"),
    sa.Column("response_mapping", JSON, nullable=False, server_default="{}"),
    sa.Column("last_health_check", sa.DateTime(timezone=True)),
    sa.Column("health_status", sa.Text),
    _counter("error_count"),
    sa.Column("last_error", sa.Text),
    *_timestamps(),
    sa.Index(None, "parlant_tool_id"),
)

# ------------------------------------------------------------------ variables

variable = sa.Table(
    "parlant_variable",
    metadata,
    _uuid_pk(),
    _fk("agent_id", "parlant_agent.id"),
    _fk("session_id", "parlant_session.id", nullable=True),
    sa.Column("key", sa.Text, nullable=False),
    sa.Column("scope", sa.Text, nullable=False, server_default="session"),
    *_value_columns(),
    sa.Column("description", sa.Text),
    *_timestamps(),
    sa.Index(None, "session_id", "key", unique=True),
)

# ------------------------------------------------------------------ junctions

agent_tool = sa.Table(
    "parlant_agent_tool",
    metadata,
    _uuid_pk(),
    _fk("agent_id", "parlant_agent.id"),
    _fk("tool_id", "parlant_tool.id"),
    sa.Column("configuration", JSON, nullable=False, server_default="{}"),
    sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    _priority(),
    _counter("use_count"),
    sa.Column("last_used_at", sa.DateTime(timezone=True)),
    *_timestamps(),
    sa.Index(None, "agent_id", "tool_id", unique=True),
)

journey_guideline = sa.Table(
    "parlant_journey_guideline",
    metadata,
    _uuid_pk(),
    _fk("journey_id", "parlant_journey.id"),
    _fk("guideline_id", "parlant_guideline.id"),
    sa.Column("priority_override", sa.Integer),
    sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("journey_specific_condition", sa.Text),
    _counter("match_count"),
    sa.Column("last_matched_at", sa.DateTime(timezone=True)),
    *_timestamps(),
    sa.Index(None, "journey_id", "guideline_id", unique=True),
)

agent_knowledge_base = sa.Table(
    "parlant_agent_knowledge_base",
    metadata,
    _uuid_pk(),
    _fk("agent_id", "parlant_agent.id"),
    _fk("knowledge_base_id", "knowledge_base.id"),
    sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("search_threshold", sa.Integer, nullable=False, server_default="70"),
    sa.Column("max_results", sa.Integer, nullable=False, server_default="5"),
    _priority(),
    _counter("search_count"),
    sa.Column("last_searched_at", sa.DateTime(timezone=True)),
    *_timestamps(),
    sa.Index(None, "agent_id", "knowledge_base_id", unique=True),
)

# ------------------------------------------------------------------ the runtime's own, per session


def _session_key() -> sa.Column[Any]:
    """The session a row belongs to: first in its primary key (the distribution column)."""
    return sa.Column(
        "session_id",
        UUID,
        sa.ForeignKey("parlant_session.id", ondelete="CASCADE"),
        primary_key=True,
    )


session_state = sa.Table(
    "session_state",
    metadata,
    _session_key(),
    # bumped by every commit to the session: the compare-and-set guard of a turn. A
    # session without a row (the platform created it) is at version 0
    sa.Column("version", sa.Integer, nullable=False, server_default="0"),
    schema=RUNTIME_SCHEMA,
)

# ------------------------------------------------------------------ the runtime's own schema

agent_state = sa.Table(
    "agent_state",
    metadata,
    _fk("agent_id", "parlant_agent.id"),
    sa.Column("version", sa.Integer, nullable=False, server_default="1"),
    sa.Column("no_match_response", sa.Text),
    sa.PrimaryKeyConstraint("agent_id"),
    schema=RUNTIME_SCHEMA,
)

row_order = sa.Table(
    "row_order",
    metadata,
    sa.Column("row_id", UUID, primary_key=True),
    _fk("agent_id", "parlant_agent.id"),
    sa.Column("name", sa.Text),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Index(None, "agent_id"),
    schema=RUNTIME_SCHEMA,
)

event_key = sa.Table(
    "event_key",
    metadata,
    _session_key(),
    # a customer message retried with the same key is recorded once
    sa.Column("idempotency_key", sa.Text, primary_key=True),
    sa.Column("offset", sa.Integer, nullable=False),
    # the key of an event, looked up by the events' listing (0007): without it each
    # listed event scanned every key of its session
    sa.Index(None, "session_id", "offset"),
    schema=RUNTIME_SCHEMA,
)

customer_variable = sa.Table(
    "customer_variable",
    metadata,
    # customer-scoped values: the platform's variables are an agent's or a session's
    sa.Column(
        "agent_id",
        UUID,
        sa.ForeignKey("parlant_agent.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("customer_id", sa.Text, primary_key=True),
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("id", UUID, nullable=False),
    *_value_columns(),
    *_timestamps(),
    schema=RUNTIME_SCHEMA,
)

session_variable = sa.Table(
    "session_variable",
    metadata,
    # the session values turns set (0006): beside their session, where a turn writes
    _session_key(),
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("id", UUID, nullable=False),
    *_value_columns(),
    *_timestamps(),
    schema=RUNTIME_SCHEMA,
)

usage_delta = sa.Table(
    "usage_delta",
    metadata,
    # no foreign key: a delta outlives its session until it is rolled up
    sa.Column("session_id", UUID, primary_key=True),
    # the session's version the commit wrote it at: one row per commit
    sa.Column("seq", sa.Integer, primary_key=True),
    sa.Column("workspace_id", sa.Text, nullable=False),
    # {"<entity>:<uuid>:<counter>": delta, ...}
    sa.Column("deltas", JSON, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=NOW),
    schema=RUNTIME_SCHEMA,
)


def platform_tables() -> list[sa.Table]:
    """The tables of the public schema (the host's and the platform's)."""
    return [table for table in metadata.sorted_tables if table.schema is None]
