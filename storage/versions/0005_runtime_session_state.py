"""The session side of the runtime's own state moves off the platform's tables.

``parlant_session.version``, ``parlant_event.idempotency_key`` (with its unique
index), ``parlant_variable.customer_id`` (with the two partial unique indexes that
named it) and the table ``parlant_usage`` become four tables of the runtime's own, in
the PostgreSQL schema ``parlant_runtime`` (on SQLite in the main file):

- ``session_state (session_id, version)``: the compare-and-set version; a session
  without a row (the platform created it) is at version 0, so only versions other
  than 0 are copied;
- ``event_key (session_id, idempotency_key, offset)``: the keys of recorded messages;
- ``customer_variable (agent_id, customer_id, key, ...)``: customer-scoped values,
  moved out of ``parlant_variable`` (their rows there are deleted);
- ``usage_delta (session_id, seq, workspace_id, deltas)``: one row per commit with all
  of its counters. Pending deltas of ``parlant_usage`` had no session: they are
  summed per workspace into one row each under the nil session id.

The session id leads every primary key of the session-scoped ones (a distributed
database keeps them beside their session). Then the columns, indexes and table are
dropped, so the platform's tables are exactly the platform's again. The downgrade
puts everything back, data included. On SQLite Alembic's batch mode rebuilds the
tables whose columns are dropped or added.

Revision ID: 0005_runtime_session_state
Revises: 0004_runtime_schema
Create Date: 2026-12-04
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0005_runtime_session_state"
down_revision: str | None = "0004_runtime_schema"
branch_labels: str | None = None
depends_on: str | None = None

RUNTIME_SCHEMA = "parlant_runtime"
NIL_SESSION = "00000000-0000-0000-0000-000000000000"
JSON = sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), "postgresql")
# (name, table, columns, condition) of the indexes on the moved columns
INDEXES: list[tuple[str, str, list[str], str | None]] = [
    (
        "parlant_event_session_id_idempotency_key_idx",
        "parlant_event",
        ["session_id", "idempotency_key"],
        None,
    ),
    (
        "parlant_variable_agent_id_customer_id_key_idx",
        "parlant_variable",
        ["agent_id", "customer_id", "key"],
        "customer_id IS NOT NULL",
    ),
    (
        "parlant_variable_agent_id_key_idx",
        "parlant_variable",
        ["agent_id", "key"],
        "session_id IS NULL AND customer_id IS NULL",
    ),
]


def _schema() -> str | None:
    return RUNTIME_SCHEMA if op.get_bind().dialect.name == "postgresql" else None


def _now() -> Any:
    return sa.func.now()


def _session_fk(schema: str | None, table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["session_id"],
        ["public.parlant_session.id" if schema else "parlant_session.id"],
        name=op.f(f"{table}_session_id_fkey"),
        ondelete="CASCADE",
    )


def _create_tables(schema: str | None) -> None:
    op.create_table(
        "session_state",
        sa.Column("session_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False, server_default="0"),
        _session_fk(schema, "session_state"),
        sa.PrimaryKeyConstraint("session_id", name=op.f("session_state_pkey")),
        schema=schema,
    )
    op.create_table(
        "event_key",
        sa.Column("session_id", sa.Uuid(), nullable=False),
        sa.Column("idempotency_key", sa.Text(), nullable=False),
        sa.Column("offset", sa.Integer(), nullable=False),
        _session_fk(schema, "event_key"),
        sa.PrimaryKeyConstraint("session_id", "idempotency_key", name=op.f("event_key_pkey")),
        schema=schema,
    )
    op.create_table(
        "customer_variable",
        sa.Column("agent_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("value", JSON, nullable=True),
        sa.Column("value_type", sa.Text(), nullable=False, server_default="string"),
        sa.Column("is_private", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["public.parlant_agent.id" if schema else "parlant_agent.id"],
            name=op.f("customer_variable_agent_id_fkey"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "agent_id", "customer_id", "key", name=op.f("customer_variable_pkey")
        ),
        schema=schema,
    )
    op.create_table(
        "usage_delta",
        sa.Column("session_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Text(), nullable=False),
        sa.Column("deltas", JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.PrimaryKeyConstraint("session_id", "seq", name=op.f("usage_delta_pkey")),
        schema=schema,
    )


def _copy_up(schema: str | None) -> None:
    prefix = f"{schema}." if schema else ""
    op.execute(
        f"INSERT INTO {prefix}session_state (session_id, version) "  # constants only
        "SELECT id, version FROM parlant_session WHERE version <> 0"
    )
    op.execute(
        f'INSERT INTO {prefix}event_key (session_id, idempotency_key, "offset") '
        'SELECT session_id, idempotency_key, "offset" FROM parlant_event '
        "WHERE idempotency_key IS NOT NULL"
    )
    op.execute(
        f"INSERT INTO {prefix}customer_variable (agent_id, customer_id, key, id, value, "
        "value_type, is_private, created_at, updated_at) "
        "SELECT agent_id, customer_id, key, id, value, value_type, is_private, created_at, "
        "updated_at FROM parlant_variable WHERE customer_id IS NOT NULL"
    )
    op.execute("DELETE FROM parlant_variable WHERE customer_id IS NOT NULL")
    # pending usage deltas: summed per workspace, one row each (they name no session)
    bind = op.get_bind()
    usage = sa.table(
        "parlant_usage",
        sa.column("workspace_id", sa.Text()),
        sa.column("entity", sa.Text()),
        sa.column("entity_id", sa.Uuid()),
        sa.column("counter", sa.Text()),
        sa.column("delta", sa.Integer()),
    )
    sums: dict[str, dict[str, int]] = {}
    for row in bind.execute(sa.select(usage)):
        key = f"{row.entity}:{row.entity_id}:{row.counter}"
        deltas = sums.setdefault(row.workspace_id, {})
        deltas[key] = deltas.get(key, 0) + int(row.delta)
    delta_table = sa.table(
        "usage_delta",
        sa.column("session_id", sa.Uuid(as_uuid=False)),
        sa.column("seq", sa.Integer()),
        sa.column("workspace_id", sa.Text()),
        sa.column("deltas", JSON),
        schema=schema,
    )
    rows = [
        {"session_id": NIL_SESSION, "seq": seq, "workspace_id": ws, "deltas": deltas}
        for seq, (ws, deltas) in enumerate(sorted(sums.items()))
    ]
    if rows:
        bind.execute(sa.insert(delta_table), rows)


def upgrade() -> None:
    schema = _schema()
    if schema:
        op.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    _create_tables(schema)
    _copy_up(schema)
    bind = op.get_bind()
    present = {
        index["name"]
        for table in ("parlant_event", "parlant_variable")
        for index in sa.inspect(bind).get_indexes(table)
    }
    for name, table, _, _ in INDEXES:
        if name in present:
            op.drop_index(name, table_name=table)
    for table, column in (
        ("parlant_session", "version"),
        ("parlant_event", "idempotency_key"),
        ("parlant_variable", "customer_id"),
    ):
        with op.batch_alter_table(table) as batch:
            batch.drop_column(column)
    op.drop_table("parlant_usage")


def _copy_down(schema: str | None) -> None:
    prefix = f"{schema}." if schema else ""
    op.execute(
        f"UPDATE parlant_session SET version = (SELECT version FROM {prefix}session_state s "
        "WHERE s.session_id = parlant_session.id) "
        f"WHERE id IN (SELECT session_id FROM {prefix}session_state)"
    )
    same = 'k.session_id = parlant_event.session_id AND k."offset" = parlant_event."offset"'
    op.execute(
        "UPDATE parlant_event SET idempotency_key = "  # constants only
        f"(SELECT idempotency_key FROM {prefix}event_key k WHERE {same}) "
        f"WHERE EXISTS (SELECT 1 FROM {prefix}event_key k WHERE {same})"
    )
    op.execute(
        "INSERT INTO parlant_variable (id, agent_id, session_id, customer_id, key, scope, value, "
        "value_type, is_private, created_at, updated_at) "
        "SELECT id, agent_id, NULL, customer_id, key, 'customer', value, value_type, is_private, "
        f"created_at, updated_at FROM {prefix}customer_variable"
    )
    bind = op.get_bind()
    deltas = sa.table(
        "usage_delta",
        sa.column("workspace_id", sa.Text()),
        sa.column("deltas", JSON),
        schema=schema,
    )
    usage = sa.table(
        "parlant_usage",
        sa.column("workspace_id", sa.Text()),
        sa.column("entity", sa.Text()),
        sa.column("entity_id", sa.Uuid(as_uuid=False)),
        sa.column("counter", sa.Text()),
        sa.column("delta", sa.Integer()),
    )
    rows = []
    for row in bind.execute(sa.select(deltas)):
        for key, delta in row.deltas.items():
            entity, entity_id, counter = key.split(":")
            rows.append(
                {
                    "workspace_id": row.workspace_id,
                    "entity": entity,
                    "entity_id": entity_id,
                    "counter": counter,
                    "delta": int(delta),
                }
            )
    if rows:
        bind.execute(sa.insert(usage), rows)


def downgrade() -> None:
    schema = _schema()
    with op.batch_alter_table("parlant_session") as batch:
        batch.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("parlant_event") as batch:
        batch.add_column(sa.Column("idempotency_key", sa.Text(), nullable=True))
    with op.batch_alter_table("parlant_variable") as batch:
        batch.add_column(sa.Column("customer_id", sa.Text(), nullable=True))
    op.create_table(
        "parlant_usage",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("workspace_id", sa.Text(), nullable=False),
        sa.Column("entity", sa.Text(), nullable=False),
        sa.Column("entity_id", sa.Uuid(), nullable=False),
        sa.Column("counter", sa.Text(), nullable=False),
        sa.Column("delta", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_now()),
        sa.PrimaryKeyConstraint("id", name=op.f("parlant_usage_pkey")),
    )
    _copy_down(schema)
    for name, table, columns, where in INDEXES:
        condition = None if where is None else sa.text(where)
        op.create_index(
            op.f(name),
            table,
            columns,
            unique=True,
            postgresql_where=condition,
            sqlite_where=condition,
        )
    for table in ("usage_delta", "customer_variable", "event_key", "session_state"):
        op.drop_table(table, schema=schema)
