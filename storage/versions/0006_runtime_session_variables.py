"""The session values turns set move off ``parlant_variable`` into a table of the runtime's own.

``parlant_variable`` holds an agent's definitions (rows without a session) and session
values (rows with one). A table that holds rows without a session cannot be kept
beside the sessions on a distributed database (Citus refuses NULL in a distribution
column), so it is replicated to every node there, and a turn that set a session
variable wrote every node. The session values move to
``parlant_runtime.session_variable (session_id, key, id, value, value_type,
is_private, created_at, updated_at)``, keyed by the session id first (a distributed
database keeps it beside its session); the agent is the session's. Their rows in
``parlant_variable`` are deleted, so that each value has one home;
``parlant_variable`` keeps the definitions and whatever the platform writes there
later. On SQLite the table sits in the main file.

The downgrade puts the values back: a value the platform wrote to ``parlant_variable``
after the upgrade stays when it is newer than the runtime's for the same key.

Revision ID: 0006_runtime_session_variables
Revises: 0005_runtime_session_state
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_runtime_session_variables"
down_revision: str | None = "0005_runtime_session_state"
branch_labels: str | None = None
depends_on: str | None = None

RUNTIME_SCHEMA = "parlant_runtime"
JSON = sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), "postgresql")
COLUMNS = "session_id, key, id, value, value_type, is_private, created_at, updated_at"


def _schema() -> str | None:
    return RUNTIME_SCHEMA if op.get_bind().dialect.name == "postgresql" else None


def upgrade() -> None:
    schema = _schema()
    op.create_table(
        "session_variable",
        sa.Column("session_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("value", JSON, nullable=True),
        sa.Column("value_type", sa.Text(), nullable=False, server_default="string"),
        sa.Column("is_private", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["public.parlant_session.id" if schema else "parlant_session.id"],
            name=op.f("session_variable_session_id_fkey"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("session_id", "key", name=op.f("session_variable_pkey")),
        schema=schema,
    )
    prefix = f"{schema}." if schema else ""
    op.execute(
        f"INSERT INTO {prefix}session_variable ({COLUMNS}) "  # constants only
        f"SELECT {COLUMNS} FROM parlant_variable WHERE session_id IS NOT NULL"
    )
    op.execute("DELETE FROM parlant_variable WHERE session_id IS NOT NULL")


def downgrade() -> None:
    prefix = f"{_schema()}." if _schema() else ""
    same = "s.session_id = parlant_variable.session_id AND s.key = parlant_variable.key"
    # the platform's own later value of a key stays only when it is the newer one
    op.execute(
        "DELETE FROM parlant_variable WHERE session_id IS NOT NULL AND EXISTS "  # constants only
        f"(SELECT 1 FROM {prefix}session_variable s WHERE {same} "
        "AND s.updated_at >= parlant_variable.updated_at)"
    )
    op.execute(
        "INSERT INTO parlant_variable (id, agent_id, session_id, key, scope, value, value_type, "
        "is_private, created_at, updated_at) "
        "SELECT s.id, p.agent_id, s.session_id, s.key, 'session', s.value, s.value_type, "
        f"s.is_private, s.created_at, s.updated_at FROM {prefix}session_variable s "
        "JOIN parlant_session p ON p.id = s.session_id "
        "WHERE NOT EXISTS (SELECT 1 FROM parlant_variable v "
        "WHERE v.session_id = s.session_id AND v.key = s.key)"
    )
    op.drop_table("session_variable", schema=_schema())
