"""An index of the idempotency keys by their event: ``event_key (session_id, offset)``.

Listing a session's events joins each event to its key, if any, on the session id
and the event's offset. ``event_key``'s primary key is ``(session_id,
idempotency_key)``: it finds a session's keys, not the key at an offset, so each
listed event scanned every key of its session (SQLite) or the listing sorted all of
them (PostgreSQL). A page of a session with 100,000 keyed events cost some 200 times
one of a session without keys. With ``event_key_session_id_offset_idx`` the join
looks each event's key up directly.

Not unique: an event has at most one key by construction (a key is written with its
event, at the event's offset), but an index that refused a row would make this
upgrade fail on a database where the platform wrote one twice, and the join needs
only the lookup. The session id leads it, as a distributed table's indexes must
(Citus creates it on every shard; a database laid out later gets it with the table).
On PostgreSQL the build holds writes to ``event_key`` (turns that record a key wait)
until it is done: 0.8 s for a million keys of 10,000 sessions (measured on a 2-core
machine, PostgreSQL 15, a test run beside it).

The downgrade drops the index.

Revision ID: 0007_runtime_event_key_offset
Revises: 0006_runtime_session_variables
Create Date: 2026-12-05
"""

from __future__ import annotations

from alembic import op

revision = "0007_runtime_event_key_offset"
down_revision: str | None = "0006_runtime_session_variables"
branch_labels: str | None = None
depends_on: str | None = None

RUNTIME_SCHEMA = "parlant_runtime"
INDEX = "event_key_session_id_offset_idx"


def _schema() -> str | None:
    return RUNTIME_SCHEMA if op.get_bind().dialect.name == "postgresql" else None


def upgrade() -> None:
    op.create_index(op.f(INDEX), "event_key", ["session_id", "offset"], schema=_schema())


def downgrade() -> None:
    op.drop_index(op.f(INDEX), table_name="event_key", schema=_schema())
