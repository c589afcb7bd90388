"""The runtime's extensions of the seed schema: columns, indexes and ``parlant_usage``.

What each column is for is told in ``parlant_runtime/storage/sql/schema.py``. Every
new column is nullable or has a server default, so the upgrade works on tables
that already hold rows. The downgrade drops them again; on SQLite that goes
through Alembic's batch mode, which rebuilds each table.

Revision ID: 0002_runtime_extensions
Revises: 0001_seed_schema
Create Date: 2025-11-26
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0002_runtime_extensions"
down_revision: str | None = "0001_seed_schema"
branch_labels: str | None = None
depends_on: str | None = None


def _int(name: str, default: int) -> sa.Column[Any]:
    return sa.Column(name, sa.Integer(), nullable=False, server_default=str(default))


def _text(name: str) -> sa.Column[Any]:
    return sa.Column(name, sa.Text(), nullable=True)


def _columns() -> dict[str, list[sa.Column[Any]]]:
    """Table -> the columns 0002 adds to it (fresh objects: a column joins one table)."""
    return {
        "parlant_agent": [_text("no_match_response"), _int("version", 1)],
        "parlant_session": [_int("version", 0)],
        "parlant_event": [_text("idempotency_key")],
        # every table whose rows form a list in a bundle keeps their order
        "parlant_guideline": [_int("position", 0), _text("name")],
        "parlant_canned_response": [_int("position", 0), _text("name")],
        "parlant_term": [_int("position", 0)],
        "parlant_journey": [_int("position", 0)],
        "parlant_journey_state": [_int("position", 0)],
        "parlant_journey_transition": [_int("position", 0)],
        "parlant_tool_integration": [_int("position", 0)],
        "parlant_variable": [_int("position", 0), _text("customer_id")],
        "parlant_agent_tool": [_int("position", 0)],
        "parlant_journey_guideline": [_int("position", 0)],
        "parlant_agent_knowledge_base": [_int("position", 0)],
    }


# (name, table, columns, unique, partial-index condition)
INDEXES: list[tuple[str, str, list[str], bool, str | None]] = [
    (
        "parlant_event_session_id_idempotency_key_idx",
        "parlant_event",
        ["session_id", "idempotency_key"],
        True,
        None,
    ),
    # one value per customer and key
    (
        "parlant_variable_agent_id_customer_id_key_idx",
        "parlant_variable",
        ["agent_id", "customer_id", "key"],
        True,
        "customer_id IS NOT NULL",
    ),
    # one agent-level definition per key
    (
        "parlant_variable_agent_id_key_idx",
        "parlant_variable",
        ["agent_id", "key"],
        True,
        "session_id IS NULL AND customer_id IS NULL",
    ),
]


def upgrade() -> None:
    for table, columns in _columns().items():
        with op.batch_alter_table(table) as batch:
            for column in columns:
                batch.add_column(column)
    for name, table, indexed, unique, where in INDEXES:
        condition = None if where is None else sa.text(where)
        op.create_index(
            op.f(name),
            table,
            indexed,
            unique=unique,
            postgresql_where=condition,
            sqlite_where=condition,
        )

    op.create_table(
        "parlant_usage",
        # INTEGER on SQLite: only an INTEGER PRIMARY KEY is the autoincrementing rowid
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("workspace_id", sa.Text(), nullable=False),
        sa.Column("entity", sa.Text(), nullable=False),
        sa.Column("entity_id", sa.Uuid(), nullable=False),
        sa.Column("counter", sa.Text(), nullable=False),
        sa.Column("delta", sa.Integer(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("parlant_usage_pkey")),
    )


def downgrade() -> None:
    op.drop_table("parlant_usage")
    for name, table, *_ in reversed(INDEXES):
        op.drop_index(op.f(name), table_name=table)
    for table, columns in _columns().items():
        with op.batch_alter_table(table) as batch:
            for column in reversed(columns):
                batch.drop_column(column.name)
