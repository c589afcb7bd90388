"""A runtime table for session values, which hold them on a database laid out for Citus.

``parlant_variable`` holds an agent's definitions (rows without a session) and session
values (rows with one). A table that holds rows without a session cannot be kept
beside the sessions on a distributed database (Citus refuses NULL in a distribution
column), so it is replicated to every node there, and a turn that set a session
variable wrote every node. This creates ``parlant_runtime.session_variable
(session_id, key, id, value, value_type, is_private, created_at, updated_at)``, keyed
by the session id first (Citus keeps it beside its session); the agent is the
session's. On SQLite the table sits in the main file.

Only where the sessions are already sharded (a Citus cluster laid out at 0005) do the
session values move into it (copied, their ``parlant_variable`` rows deleted), and
turns write there from then on. Everywhere else (SQLite, one PostgreSQL: the main
case) the table stays empty and the platform's ``parlant_variable`` keeps its session
values, where the host reads them; converting such a database to Citus
(``parlant_runtime.storage.citus.lay_out``) moves them then.

The downgrade puts moved values back: a value the platform wrote to
``parlant_variable`` after the upgrade stays when it is newer than the runtime's for
the same key. Where nothing was moved it only drops the table.

Revision ID: 0006_runtime_session_variables
Revises: 0005_runtime_session_state
Create Date: 2026-12-04
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

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


def _sharded() -> bool:
    """Whether the database is laid out for Citus (the sessions are a distributed table)."""
    bind = op.get_bind()
    if bind.dialect.name != "postgresql" or not bind.scalar(
        sa.text("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus')")
    ):
        return False
    return bool(
        bind.scalar(
            sa.text(
                "SELECT EXISTS (SELECT 1 FROM pg_dist_partition "
                "WHERE logicalrelid = 'parlant_session'::regclass AND partmethod = 'h')"
            )
        )
    )


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
    if not _sharded():
        return  # the platform's table keeps the session values (where the host reads them)
    prefix = f"{schema}." if schema else ""
    op.execute(
        f"INSERT INTO {prefix}session_variable ({COLUMNS}) "  # constants only
        f"SELECT {COLUMNS} FROM parlant_variable WHERE session_id IS NOT NULL"
    )
    op.execute("DELETE FROM parlant_variable WHERE session_id IS NOT NULL")


def _utc(moment: datetime) -> datetime:
    """A timestamp comparable with any other (the platform's columns and SQLite's have
    no zone: UTC)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def downgrade() -> None:
    # in Python rather than one statement: Citus refuses a write to a reference table
    # (parlant_variable) that reads a distributed one (session_variable)
    schema = _schema()
    if not _sharded():  # the upgrade moved nothing: nothing comes back
        op.drop_table("session_variable", schema=schema)
        return
    bind = op.get_bind()
    when = sa.DateTime(timezone=True)
    own = sa.table(
        "session_variable",
        *(sa.column(name, sa.Uuid()) for name in ("session_id", "id")),
        sa.column("key", sa.Text()),
        sa.column("value", JSON),
        sa.column("value_type", sa.Text()),
        sa.column("is_private", sa.Boolean()),
        sa.column("created_at", when),
        sa.column("updated_at", when),
        schema=schema,
    )
    platform = sa.table(
        "parlant_variable",
        *(sa.column(name, sa.Uuid()) for name in ("id", "agent_id", "session_id")),
        sa.column("key", sa.Text()),
        sa.column("scope", sa.Text()),
        sa.column("value", JSON),
        sa.column("value_type", sa.Text()),
        sa.column("is_private", sa.Boolean()),
        sa.column("created_at", when),
        sa.column("updated_at", when),
    )
    sessions = sa.table(
        "parlant_session", sa.column("id", sa.Uuid()), sa.column("agent_id", sa.Uuid())
    )
    theirs = {
        (row.session_id, row.key): (row.id, row.updated_at)
        for row in bind.execute(
            sa.select(
                platform.c.id, platform.c.session_id, platform.c.key, platform.c.updated_at
            ).where(platform.c.session_id.is_not(None))
        )
    }
    stale: list[Any] = []
    back: list[dict[str, Any]] = []
    for row in bind.execute(
        sa.select(own, sessions.c.agent_id).join(sessions, sessions.c.id == own.c.session_id)
    ):
        found = theirs.get((row.session_id, row.key))
        if found is not None:
            if _utc(found[1]) > _utc(row.updated_at):
                continue  # the platform's own later value of the key stays
            stale.append(found[0])
        back.append(
            {
                "id": row.id,
                "agent_id": row.agent_id,
                "session_id": row.session_id,
                "key": row.key,
                "scope": "session",
                "value": row.value,
                "value_type": row.value_type,
                "is_private": row.is_private,
                "created_at": row.created_at,
                "updated_at": row.updated_at,
            }
        )
    for start in range(0, len(stale), 1000):
        bind.execute(sa.delete(platform).where(platform.c.id.in_(stale[start : start + 1000])))
    if back:
        bind.execute(sa.insert(platform), back)
    op.drop_table("session_variable", schema=schema)
