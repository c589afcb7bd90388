"""The seed schema: the host tables (when missing) and the 15 parlant tables.

Names, enum types, defaults and unique indexes are those of the one public
implementation of the seed, so that a host database created by it is usable; the
runtime's own columns come in 0002. A host database (Sim) already has
``workspace``, ``user``, ``knowledge_base`` and ``custom_tools``, usually with more
columns: they are created only when missing, and never dropped by the downgrade.

On PostgreSQL the six enum types are created once, before the tables; on SQLite
those columns are varchars with a named CHECK constraint. Every constraint and
index is named here, literally, following ``parlant_<table>_<columns>_idx``,
``<table>_pkey``, ``<table>_<column>_fkey`` and ``<table>_<name>_check``.

Revision ID: 0001_seed_schema
Revises:
Create Date: 2025-11-26
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001_seed_schema"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

ENUMS: dict[str, tuple[str, ...]] = {
    "agent_status": ("active", "inactive", "archived"),
    "composition_mode": ("fluid", "strict"),
    "session_mode": ("auto", "manual", "paused"),
    "session_status": ("active", "completed", "abandoned"),
    "event_type": (
        "customer_message",
        "agent_message",
        "tool_call",
        "tool_result",
        "status_update",
        "journey_transition",
        "variable_update",
    ),
    "journey_state_type": ("chat", "tool", "decision", "final"),
}

HOST_TABLES = ("workspace", "user", "knowledge_base", "custom_tools")

# dependants first: the order in which the downgrade drops them
PARLANT_TABLES = (
    "parlant_agent_knowledge_base",
    "parlant_journey_guideline",
    "parlant_agent_tool",
    "parlant_variable",
    "parlant_tool_integration",
    "parlant_tool",
    "parlant_event",
    "parlant_session",
    "parlant_journey_transition",
    "parlant_journey_state",
    "parlant_journey",
    "parlant_term",
    "parlant_canned_response",
    "parlant_guideline",
    "parlant_agent",
)

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def _enum(table: str, column: str, enum: str, **options: Any) -> list[Any]:
    """The column of an enum type; on SQLite a varchar and its CHECK constraint."""
    values = ENUMS[enum]
    if _postgresql():
        return [
            sa.Column(column, postgresql.ENUM(*values, name=enum, create_type=False), **options)
        ]
    listed = ", ".join(f"'{value}'" for value in values)
    return [
        sa.Column(column, sa.String(max(len(value) for value in values)), **options),
        sa.CheckConstraint(f"{column} IN ({listed})", name=op.f(f"{table}_{enum}_check")),
    ]


def _pk(table: str, column_type: Any = None) -> list[Any]:
    return [
        sa.Column("id", column_type if column_type is not None else sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f(f"{table}_pkey")),
    ]


def _fk(
    table: str, column: str, target: str, *, nullable: bool = False, on_delete: str = "CASCADE"
) -> list[Any]:
    host = target in HOST_TABLES
    return [
        sa.Column(column, sa.Text() if host else sa.Uuid(), nullable=nullable),
        sa.ForeignKeyConstraint(
            [column], [f"{target}.id"], name=op.f(f"{table}_{column}_fkey"), ondelete=on_delete
        ),
    ]


def _index(table: str, *columns: str, unique: bool = False) -> None:
    op.create_index(op.f(f"{table}_{'_'.join(columns)}_idx"), table, list(columns), unique=unique)


def _text(name: str, *, default: str | None = None) -> sa.Column[Any]:
    if default is None:
        return sa.Column(name, sa.Text(), nullable=True)
    return sa.Column(name, sa.Text(), nullable=False, server_default=default)


def _int(name: str, default: int) -> sa.Column[Any]:
    return sa.Column(name, sa.Integer(), nullable=False, server_default=str(default))


def _flag(name: str, default: bool) -> sa.Column[Any]:
    return sa.Column(
        name, sa.Boolean(), nullable=False, server_default=sa.true() if default else sa.false()
    )


def _json(name: str, default: str | None) -> sa.Column[Any]:
    if default is None:
        return sa.Column(name, JSON, nullable=True)
    return sa.Column(name, JSON, nullable=False, server_default=default)


def _time(name: str, *, now: bool = False) -> sa.Column[Any]:
    if now:
        return sa.Column(
            name, sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        )
    return sa.Column(name, sa.DateTime(timezone=True), nullable=True)


def _timestamps() -> list[sa.Column[Any]]:
    return [_time("created_at", now=True), _time("updated_at", now=True)]


def _create_host_tables() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "workspace" not in existing:
        op.create_table(
            "workspace",
            *_pk("workspace", sa.Text()),
            sa.Column("name", sa.Text(), nullable=False),
            _text("owner_id"),
            *_timestamps(),
        )
    if "user" not in existing:
        op.create_table(
            "user",
            *_pk("user", sa.Text()),
            sa.Column("name", sa.Text(), nullable=False),
            sa.Column("email", sa.Text(), nullable=False),
            _flag("email_verified", False),
            _text("image"),
            *_timestamps(),
        )
    if "knowledge_base" not in existing:
        op.create_table(
            "knowledge_base",
            *_pk("knowledge_base", sa.Text()),
            _text("user_id"),
            _text("workspace_id"),
            sa.Column("name", sa.Text(), nullable=False),
            _text("description"),
            _int("token_count", 0),
        )
    if "custom_tools" not in existing:
        op.create_table(
            "custom_tools",
            *_pk("custom_tools", sa.Text()),
            _text("user_id"),
            sa.Column("title", sa.Text(), nullable=False),
            sa.Column("schema", JSON, nullable=False),
            _text("code", default=""),
        )


def upgrade() -> None:
    _create_host_tables()
    if _postgresql():
        for name, values in ENUMS.items():
            postgresql.ENUM(*values, name=name).create(op.get_bind(), checkfirst=True)
    _create_agents_and_journeys()
    _create_sessions()
    _create_behaviour()
    _create_tools()
    _create_variables_and_links()


def _create_agents_and_journeys() -> None:
    t = "parlant_agent"
    op.create_table(
        t,
        *_pk(t),
        *_fk(t, "workspace_id", "workspace"),
        *_fk(t, "created_by", "user", nullable=True, on_delete="SET NULL"),
        sa.Column("name", sa.Text(), nullable=False),
        _text("description"),
        *_enum(t, "status", "agent_status", nullable=False, server_default="active"),
        *_enum(t, "composition_mode", "composition_mode", nullable=False, server_default="fluid"),
        _text("system_prompt"),
        _text("model_provider"),
        _text("model_name"),
        _int("temperature", 70),
        sa.Column("max_tokens", sa.Integer(), nullable=True),
        _int("total_sessions", 0),
        _int("total_messages", 0),
        _int("total_tokens_used", 0),
        _int("total_cost", 0),
        _time("last_active_at"),
        *_timestamps(),
        _time("deleted_at"),
    )
    _index(t, "workspace_id")
    _index(t, "workspace_id", "name")

    t = "parlant_journey"
    op.create_table(
        t,
        *_pk(t),
        *_fk(t, "agent_id", "parlant_agent"),
        sa.Column("title", sa.Text(), nullable=False),
        _text("description"),
        _json("conditions", "[]"),
        _flag("enabled", True),
        _flag("allow_skipping", True),
        _flag("allow_revisiting", True),
        _int("total_sessions", 0),
        _int("completion_rate", 0),
        _time("last_used_at"),
        *_timestamps(),
    )
    _index(t, "agent_id")

    t = "parlant_journey_state"
    op.create_table(
        t,
        *_pk(t),
        *_fk(t, "journey_id", "parlant_journey"),
        sa.Column("name", sa.Text(), nullable=False),
        *_enum(t, "state_type", "journey_state_type", nullable=False),
        _text("chat_prompt"),
        _text("tool_id"),
        _json("tool_config", "{}"),
        _text("condition"),
        _flag("is_initial", False),
        _flag("is_final", False),
        _flag("allow_skip", True),
        _json("metadata", "{}"),
        *_timestamps(),
        sa.CheckConstraint(
            "NOT (is_initial AND is_final)", name=op.f(f"{t}_initial_not_final_check")
        ),
    )
    _index(t, "journey_id", "name", unique=True)

    t = "parlant_journey_transition"
    op.create_table(
        t,
        *_pk(t),
        *_fk(t, "journey_id", "parlant_journey"),
        *_fk(t, "from_state_id", "parlant_journey_state"),
        *_fk(t, "to_state_id", "parlant_journey_state"),
        _text("condition"),
        _int("priority", 100),
        _int("use_count", 0),
        _time("last_used_at"),
        _time("created_at", now=True),
    )
    _index(t, "journey_id")
    _index(t, "from_state_id")


def _create_sessions() -> None:
    t = "parlant_session"
    op.create_table(
        t,
        *_pk(t),
        *_fk(t, "agent_id", "parlant_agent"),
        *_fk(t, "workspace_id", "workspace"),
        *_fk(t, "user_id", "user", nullable=True, on_delete="SET NULL"),
        _text("customer_id"),
        *_enum(t, "mode", "session_mode", nullable=False, server_default="auto"),
        *_enum(t, "status", "session_status", nullable=False, server_default="active"),
        _text("title"),
        _json("metadata", "{}"),
        *_fk(t, "current_journey_id", "parlant_journey", nullable=True, on_delete="SET NULL"),
        *_fk(t, "current_state_id", "parlant_journey_state", nullable=True, on_delete="SET NULL"),
        _json("variables", "{}"),
        _int("event_count", 0),
        _int("message_count", 0),
        _int("tokens_used", 0),
        _int("cost", 0),
        sa.Column("average_response_time", sa.Integer(), nullable=True),
        sa.Column("satisfaction_score", sa.Integer(), nullable=True),
        _text("session_type"),
        _json("tags", "[]"),
        _text("user_agent"),
        _text("ip_address"),
        _text("referrer"),
        _text("locale"),
        _text("timezone"),
        _time("started_at", now=True),
        _time("last_activity_at", now=True),
        _time("ended_at"),
        *_timestamps(),
    )
    _index(t, "workspace_id", "agent_id")
    _index(t, "current_state_id")

    t = "parlant_event"
    op.create_table(
        t,
        *_pk(t),
        *_fk(t, "session_id", "parlant_session"),
        sa.Column("offset", sa.Integer(), nullable=False),
        *_enum(t, "event_type", "event_type", nullable=False),
        _json("content", "{}"),
        _json("metadata", "{}"),
        _text("tool_call_id"),
        *_fk(t, "journey_id", "parlant_journey", nullable=True, on_delete="SET NULL"),
        *_fk(t, "state_id", "parlant_journey_state", nullable=True, on_delete="SET NULL"),
        _time("created_at", now=True),
    )
    _index(t, "session_id", "offset", unique=True)


def _create_behaviour() -> None:
    t = "parlant_guideline"
    op.create_table(
        t,
        *_pk(t),
        *_fk(t, "agent_id", "parlant_agent"),
        _text("condition"),
        sa.Column("action", sa.Text(), nullable=False),
        _int("priority", 100),
        _flag("enabled", True),
        _json("tool_ids", "[]"),
        _int("match_count", 0),
        _time("last_matched_at"),
        *_timestamps(),
    )
    _index(t, "agent_id")

    t = "parlant_canned_response"
    op.create_table(
        t,
        *_pk(t),
        *_fk(t, "agent_id", "parlant_agent"),
        sa.Column("template", sa.Text(), nullable=False),
        _text("category"),
        _json("tags", "[]"),
        _json("conditions", "[]"),
        _int("priority", 100),
        _flag("enabled", True),
        _flag("requires_exact_match", False),
        _int("use_count", 0),
        _time("last_used_at"),
        *_timestamps(),
    )
    _index(t, "agent_id")

    t = "parlant_term"
    op.create_table(
        t,
        *_pk(t),
        *_fk(t, "agent_id", "parlant_agent"),
        sa.Column("name", sa.Text(), nullable=False),
        _text("description", default=""),
        _json("synonyms", "[]"),
        _text("category"),
        _json("examples", "[]"),
        _int("importance", 100),
        *_timestamps(),
    )
    _index(t, "agent_id", "name", unique=True)


def _create_tools() -> None:
    t = "parlant_tool"
    op.create_table(
        t,
        *_pk(t),
        *_fk(t, "workspace_id", "workspace"),
        sa.Column("name", sa.Text(), nullable=False),
        _text("display_name"),
        _text("description"),
        _text("sim_tool_id"),
        _text("tool_type", default="custom"),
        _json("parameters", "{}"),
        _json("return_schema", None),
        _text("usage_guidelines"),
        _json("error_handling", "{}"),
        _flag("enabled", True),
        _flag("is_public", False),
        _int("use_count", 0),
        _int("success_rate", 100),
        _time("last_used_at"),
        *_timestamps(),
    )
    _index(t, "workspace_id", "name", unique=True)

    t = "parlant_tool_integration"
    op.create_table(
        t,
        *_pk(t),
        *_fk(t, "parlant_tool_id", "parlant_tool"),
        sa.Column("integration_type", sa.Text(), nullable=False),
        sa.Column("target_id", sa.Text(), nullable=False),
        _json("configuration", "{}"),
        _flag("enabled", True),
        _json("parameter_mapping", "{}"),
        _json("response_mapping", "{}"),
        _time("last_health_check"),
        _text("health_status"),
        _int("error_count", 0),
        _text("last_error"),
        *_timestamps(),
    )
    _index(t, "parlant_tool_id")


def _create_variables_and_links() -> None:
    t = "parlant_variable"
    op.create_table(
        t,
        *_pk(t),
        *_fk(t, "agent_id", "parlant_agent"),
        *_fk(t, "session_id", "parlant_session", nullable=True),
        sa.Column("key", sa.Text(), nullable=False),
        _text("scope", default="session"),
        _json("value", None),
        _text("value_type", default="string"),
        _flag("is_private", False),
        _text("description"),
        *_timestamps(),
    )
    _index(t, "session_id", "key", unique=True)

    t = "parlant_agent_tool"
    op.create_table(
        t,
        *_pk(t),
        *_fk(t, "agent_id", "parlant_agent"),
        *_fk(t, "tool_id", "parlant_tool"),
        _json("configuration", "{}"),
        _flag("enabled", True),
        _int("priority", 100),
        _int("use_count", 0),
        _time("last_used_at"),
        *_timestamps(),
    )
    _index(t, "agent_id", "tool_id", unique=True)

    t = "parlant_journey_guideline"
    op.create_table(
        t,
        *_pk(t),
        *_fk(t, "journey_id", "parlant_journey"),
        *_fk(t, "guideline_id", "parlant_guideline"),
        sa.Column("priority_override", sa.Integer(), nullable=True),
        _flag("enabled", True),
        _text("journey_specific_condition"),
        _int("match_count", 0),
        _time("last_matched_at"),
        *_timestamps(),
    )
    _index(t, "journey_id", "guideline_id", unique=True)

    t = "parlant_agent_knowledge_base"
    op.create_table(
        t,
        *_pk(t),
        *_fk(t, "agent_id", "parlant_agent"),
        *_fk(t, "knowledge_base_id", "knowledge_base"),
        _flag("enabled", True),
        _int("search_threshold", 70),
        _int("max_results", 5),
        _int("priority", 100),
        _int("search_count", 0),
        _time("last_searched_at"),
        *_timestamps(),
    )
    _index(t, "agent_id", "knowledge_base_id", unique=True)


def downgrade() -> None:
    # Indexes and constraints go with their tables. The host tables stay: they may
    # hold the host application's data, and 0001 cannot tell whether it made them.
    for table in PARLANT_TABLES:
        op.drop_table(table)
    if _postgresql():
        for name in reversed(ENUMS):
            postgresql.ENUM(name=name).drop(op.get_bind(), checkfirst=True)
