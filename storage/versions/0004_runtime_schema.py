"""The runtime's own state of an agent leaves the platform's tables for its own schema.

Up to 0003 the runtime kept columns of its own on the platform's tables
(``parlant_agent.version``, ``.no_match_response``, ``name`` of guidelines and canned
responses, ``position`` of every list row), which the platform's schema tool proposes
to drop because its schema does not declare them. This revision moves them into two
tables of the runtime's own, in the PostgreSQL schema ``parlant_runtime`` (on SQLite,
in the main file):

- ``agent_state`` (one row per agent): ``version``, ``no_match_response``;
- ``row_order`` (one row per list row of a bundle): ``name``, ``position``.

The values are copied, then the columns are dropped, so the platform's tables get
back exactly the platform's shape, on a native database and on an adopted one alike.
(Alembic's version table moves into ``parlant_runtime`` too: ``storage/env.py`` does
that, since Alembic itself writes to it around every revision.) The downgrade adds
the columns back, copies the values back (a row without a side row gets position 0,
an agent without one version 1) and drops the two tables.

Revision ID: 0004_runtime_schema
Revises: 0003_event_log_keeps_positions
Create Date: 2026-12-04
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0004_runtime_schema"
down_revision: str | None = "0003_event_log_keeps_positions"
branch_labels: str | None = None
depends_on: str | None = None

SCHEMA = "parlant_runtime"

# list table -> (how its rows reach their agent, a condition on the rows kept)
_VIA_JOURNEY = "JOIN parlant_journey j ON j.id = r.journey_id"
LISTS: dict[str, tuple[str, str, str]] = {
    # table: (agent id expression, join, where)
    "parlant_guideline": ("r.agent_id", "", ""),
    "parlant_canned_response": ("r.agent_id", "", ""),
    "parlant_term": ("r.agent_id", "", ""),
    "parlant_journey": ("r.agent_id", "", ""),
    "parlant_journey_state": ("j.agent_id", _VIA_JOURNEY, ""),
    "parlant_journey_transition": ("j.agent_id", _VIA_JOURNEY, ""),
    "parlant_journey_guideline": ("j.agent_id", _VIA_JOURNEY, ""),
    # a tool (and its integrations) may be shared by agents of a workspace: any one
    "parlant_tool_integration": (
        "l.agent_id",
        "JOIN parlant_agent_tool l ON l.tool_id = r.parlant_tool_id",
        "",
    ),
    # the agent's definitions only: a session's values have no place in a list
    "parlant_variable": ("r.agent_id", "", "r.session_id IS NULL AND r.customer_id IS NULL"),
    "parlant_agent_tool": ("r.agent_id", "", ""),
    "parlant_agent_knowledge_base": ("r.agent_id", "", ""),
}
NAMED = ("parlant_guideline", "parlant_canned_response")


def _schema() -> str | None:
    return SCHEMA if op.get_bind().dialect.name == "postgresql" else None


def _qualified(name: str) -> str:
    schema = _schema()
    return f"{schema}.{name}" if schema else name


def upgrade() -> None:
    schema = _schema()
    op.create_table(
        "agent_state",
        sa.Column("agent_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("no_match_response", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["parlant_agent.id"],
            name=op.f("agent_state_agent_id_fkey"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("agent_id", name=op.f("agent_state_pkey")),
        schema=schema,
    )
    op.create_table(
        "row_order",
        sa.Column("row_id", sa.Uuid(), nullable=False),
        sa.Column("agent_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["parlant_agent.id"],
            name=op.f("row_order_agent_id_fkey"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("row_id", name=op.f("row_order_pkey")),
        schema=schema,
    )
    op.create_index(op.f("row_order_agent_id_idx"), "row_order", ["agent_id"], schema=schema)

    op.execute(
        f"INSERT INTO {_qualified('agent_state')} (agent_id, version, no_match_response) "
        "SELECT id, version, no_match_response FROM parlant_agent"
    )
    for table, (agent, join, where) in LISTS.items():
        name = "r.name" if table in NAMED else "NULL"
        op.execute(  # constants only
            f"INSERT INTO {_qualified('row_order')} (row_id, agent_id, name, position) "
            f"SELECT r.id, {agent}, {name}, r.position FROM {table} r {join} "
            f"WHERE {where or 'true'} ON CONFLICT (row_id) DO NOTHING"
        )

    with op.batch_alter_table("parlant_agent") as batch:
        batch.drop_column("version")
        batch.drop_column("no_match_response")
    for table in LISTS:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("position")
            if table in NAMED:
                batch.drop_column("name")


def _int(name: str, default: int) -> sa.Column[Any]:
    return sa.Column(name, sa.Integer(), nullable=False, server_default=str(default))


def downgrade() -> None:
    schema = _schema()
    with op.batch_alter_table("parlant_agent") as batch:
        batch.add_column(sa.Column("no_match_response", sa.Text(), nullable=True))
        batch.add_column(_int("version", 1))
    for table in LISTS:
        with op.batch_alter_table(table) as batch:
            batch.add_column(_int("position", 0))
            if table in NAMED:
                batch.add_column(sa.Column("name", sa.Text(), nullable=True))

    state = _qualified("agent_state")
    op.execute(
        f"UPDATE parlant_agent SET "
        f"version = COALESCE((SELECT s.version FROM {state} s "
        f"WHERE s.agent_id = parlant_agent.id), 1), "
        f"no_match_response = (SELECT s.no_match_response FROM {state} s "
        f"WHERE s.agent_id = parlant_agent.id)"
    )
    order = _qualified("row_order")
    for table in LISTS:
        found = f"FROM {order} o WHERE o.row_id = {table}.id"
        name = f", name = (SELECT o.name {found})" if table in NAMED else ""
        op.execute(  # constants only
            f"UPDATE {table} SET position = COALESCE((SELECT o.position {found}), 0){name}"
        )

    op.drop_index(op.f("row_order_agent_id_idx"), table_name="row_order", schema=schema)
    op.drop_table("row_order", schema=schema)
    op.drop_table("agent_state", schema=schema)
