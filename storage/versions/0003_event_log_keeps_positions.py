"""The event log keeps the journeys and states its events name, after a publish too.

``parlant_event.journey_id`` and ``state_id`` were foreign keys ``ON DELETE SET NULL``:
a publish that removed a state rewrote every old event on it to name no state, so the
log no longer told where a session had been. An event is a record of what happened,
so its ids stay as they were written (the state they name may no longer exist) and
the two constraints are dropped. A turn still names only the agent's current
journeys and states (checked by the store when it commits). On SQLite the table is
rebuilt by Alembic's batch mode. The downgrade clears the ids of removed journeys and
states, as the constraints would have, and adds the constraints back.

Revision ID: 0003_event_log_keeps_positions
Revises: 0002_runtime_extensions
Create Date: 2026-12-04
"""

from __future__ import annotations

from alembic import op

revision = "0003_event_log_keeps_positions"
down_revision: str | None = "0002_runtime_extensions"
branch_labels: str | None = None
depends_on: str | None = None

# (column, the table it referred to)
REFERENCES = (("journey_id", "parlant_journey"), ("state_id", "parlant_journey_state"))


def upgrade() -> None:
    with op.batch_alter_table("parlant_event") as batch:
        for column, _ in REFERENCES:
            batch.drop_constraint(op.f(f"parlant_event_{column}_fkey"), type_="foreignkey")


def downgrade() -> None:
    for column, target in REFERENCES:
        op.execute(
            f"UPDATE parlant_event SET {column} = NULL WHERE {column} IS NOT NULL "  # constants
            f"AND {column} NOT IN (SELECT id FROM {target})"
        )
    with op.batch_alter_table("parlant_event") as batch:
        for column, target in REFERENCES:
            batch.create_foreign_key(
                op.f(f"parlant_event_{column}_fkey"),
                target,
                [column],
                ["id"],
                ondelete="SET NULL",
            )
