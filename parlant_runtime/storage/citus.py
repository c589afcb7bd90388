"""The distributed layout on a Citus cluster: which table is sharded, which replicated.

A step of ``parlant-runtime db upgrade`` (after the migrations, which stay the same on
every PostgreSQL), run when the database has the ``citus`` extension or when asked to
(``--citus``). It is idempotent: tables already laid out are left alone, so it runs
again after each upgrade and lays out whatever table a new migration created.

The layout (see "Scaling out on Citus" in ``docs/operations.md`` for the reasons):

- sessions and their events are distributed by the session id and co-located
  (``parlant_session.id``, ``parlant_event.session_id``), with the runtime's
  session-side tables (version, idempotency keys, usage deltas, the session values
  turns set): a turn's statements touch one shard, on one worker;
- usage deltas are distributed by their workspace (they carry no session);
- agent definitions, variables and the host's workspace, user, tool and
  knowledge-base tables are reference tables, a copy on every node: a publish stays
  one transaction and an agent load reads one node.

Citus requires the distribution column in every primary key and unique index of a
distributed table, so ``parlant_event``'s primary key becomes ``(session_id, id)``.
Foreign keys between the tables are dropped for the conversion and added again, except
those Citus cannot keep (from a reference table to a distributed one), which are
listed in the steps returned. When the sessions are distributed by this step (a
database converted), the session values of ``parlant_variable`` move into
``parlant_runtime.session_variable`` first, where turns set them on Citus.

Everything runs in the caller's transaction: a failure leaves the database as it was.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from parlant_runtime.storage.port import MigrationError

__all__ = [
    "DISTRIBUTED",
    "LOCAL",
    "REFERENCE",
    "LayoutRefused",
    "citus_installed",
    "laid_out",
    "lay_out",
]


class LayoutRefused(MigrationError):
    """The database cannot take the distributed layout as it is; nothing was changed."""


@dataclass(frozen=True, slots=True)
class Distributed:
    """A sharded table: its distribution column and the table it is co-located with."""

    column: str
    colocate_with: str | None = None


# sharded tables, in creation order (a co-located table after the one it follows)
DISTRIBUTED: dict[str, Distributed] = {
    "parlant_session": Distributed("id"),
    "parlant_event": Distributed("session_id", colocate_with="parlant_session"),
    # the runtime's own session-side tables (schema parlant_runtime, migration 0005)
    "parlant_runtime.session_state": Distributed("session_id", colocate_with="parlant_session"),
    "parlant_runtime.event_key": Distributed("session_id", colocate_with="parlant_session"),
    "parlant_runtime.usage_delta": Distributed("session_id", colocate_with="parlant_session"),
    # the session values turns set (0006): a turn that sets one stays on one shard
    "parlant_runtime.session_variable": Distributed("session_id", colocate_with="parlant_session"),
    # before 0005: usage deltas carry no session, only their workspace
    "parlant_usage": Distributed("workspace_id"),
}

# replicated to every node: small, read by every turn, written by publishes
REFERENCE: tuple[str, ...] = (
    "workspace",
    "user",
    "knowledge_base",
    "custom_tools",
    "parlant_agent",
    "parlant_journey",
    "parlant_journey_state",
    "parlant_journey_transition",
    "parlant_guideline",
    "parlant_canned_response",
    "parlant_term",
    "parlant_tool",
    "parlant_tool_integration",
    "parlant_agent_tool",
    "parlant_journey_guideline",
    "parlant_agent_knowledge_base",
    # an agent's variable definitions have no session (session_id NULL), and Citus
    # refuses NULL in a distribution column: the table cannot be sharded by session.
    # On Citus turns set session values in parlant_runtime.session_variable (0006),
    # sharded (the layout moves a converted database's there); only what the platform
    # itself writes lands here
    "parlant_variable",
    # the runtime's own definitions side (schema parlant_runtime, migration 0004)
    "parlant_runtime.agent_state",
    "parlant_runtime.row_order",
    # a customer's values (0005): shared by the customer's sessions, which live on every
    # shard, and read with the session in one statement: Citus joins a session's shard
    # only with co-located or reference tables
    "parlant_runtime.customer_variable",
)

# tables that stay on the coordinator alone (never joined with the others)
LOCAL: tuple[str, ...] = ("alembic_version", "parlant_runtime.alembic_version")

# primary keys that must include the distribution column: table -> the new key
_NEW_PRIMARY_KEYS: dict[str, tuple[str, ...]] = {
    "parlant_event": ("session_id", "id"),
    "parlant_usage": ("workspace_id", "id"),
}


def citus_installed(connection: sa.Connection) -> bool:
    """Whether the database has the ``citus`` extension."""
    found = connection.scalar(sa.text("SELECT 1 FROM pg_extension WHERE extname = 'citus'"))
    return found is not None


def laid_out(connection: sa.Connection) -> dict[str, str]:
    """The tables Citus knows, with their kind: ``distributed`` or ``reference``."""
    if not citus_installed(connection):
        return {}
    rows = connection.execute(
        sa.text("SELECT logicalrelid::regclass::text, partmethod FROM pg_dist_partition")
    )
    kinds = {"h": "distributed", "n": "reference"}
    return {_name(text): kinds.get(method, method) for text, method in rows}


def lay_out(connection: sa.Connection) -> list[str]:
    """Distribute the tables that are not yet; the steps taken (empty: nothing to do).

    Raises:
        LayoutRefused: no Citus here, not the coordinator, or a key Citus cannot shard
            (a host's own unique index without the distribution column).
    """
    if not citus_installed(connection):
        raise LayoutRefused(
            "the database has no citus extension; run CREATE EXTENSION citus on every node "
            "(and add the workers) first, or upgrade without --citus"
        )
    if not connection.scalar(sa.text("SELECT citus_is_coordinator()")):
        raise LayoutRefused(
            "this node is not a Citus coordinator; run db upgrade against the coordinator"
        )
    steps: list[str] = []
    if (
        connection.scalar(sa.text("SELECT current_setting('citus.override_table_visibility')"))
        == "on"
    ):
        # Citus hides the coordinator's shards by filtering every scan of pg_class row by
        # row; asyncpg's type introspection (run on each new connection that meets an
        # enum) then takes seconds instead of milliseconds. The filter only hides shard
        # names from listings, so it is turned off for the database
        name = connection.scalar(sa.text("SELECT current_database()"))
        connection.execute(
            sa.text(f"ALTER DATABASE {_quote(name)} SET citus.override_table_visibility = off")
        )
        connection.execute(sa.text("SET LOCAL citus.override_table_visibility = off"))
        steps.append("citus.override_table_visibility = off for the database (fast connections)")
    present = {name for name in [*REFERENCE, *DISTRIBUTED] if _exists(connection, name)}
    done = laid_out(connection)
    to_reference = [name for name in REFERENCE if name in present and name not in done]
    to_distribute = [name for name in DISTRIBUTED if name in present and name not in done]
    if not to_reference and not to_distribute:
        return steps
    pending = set(to_reference) | set(to_distribute)
    _refuse_unshardable_keys(connection, to_distribute)
    # one connection per node and shard, in order: DDL on tables that other tables of
    # the same transaction reference must not run in parallel (Citus's own rule)
    connection.execute(sa.text("SET LOCAL citus.multi_shard_modify_mode TO 'sequential'"))
    foreign_keys = _foreign_keys(connection, pending)
    for fk in foreign_keys:
        connection.execute(
            sa.text(f"ALTER TABLE {_quote(fk.table)} DROP CONSTRAINT {_quote(fk.name)}")
        )
    for name in to_distribute:
        new_key = _NEW_PRIMARY_KEYS.get(name)
        if new_key is not None and _primary_key(connection, name) != new_key:
            _replace_primary_key(connection, name, new_key)
            steps.append(f"primary key of {name} is now ({', '.join(new_key)})")
    if _SESSION_VALUES in pending and "parlant_session" in pending:
        moved = _move_session_values(connection)
        steps.append(f"{moved} session values moved from parlant_variable to {_SESSION_VALUES}")
    for name in to_reference:
        connection.execute(
            sa.text("SELECT create_reference_table(CAST(:t AS regclass))"), {"t": _quote(name)}
        )
        steps.append(f"{name}: reference table")
    for name in to_distribute:
        spec = DISTRIBUTED[name]
        connection.execute(
            sa.text(
                "SELECT create_distributed_table(CAST(:t AS regclass), :c, colocate_with => :with)"
            ),
            {"t": _quote(name), "c": spec.column, "with": spec.colocate_with or "default"},
        )
        how = f" (co-located with {spec.colocate_with})" if spec.colocate_with else ""
        steps.append(f"{name}: distributed by {spec.column}{how}")
    kinds = {**done, **dict.fromkeys(to_reference, "reference")}
    kinds.update(dict.fromkeys(to_distribute, "distributed"))
    for fk in foreign_keys:
        if kinds.get(fk.table) == "reference" and kinds.get(fk.target) == "distributed":
            steps.append(
                f"foreign key {fk.name} ({fk.table} -> {fk.target}) dropped: Citus keeps no "
                "foreign key from a reference table to a distributed one"
            )
            continue
        connection.execute(
            sa.text(
                f"ALTER TABLE {_quote(fk.table)} ADD CONSTRAINT {_quote(fk.name)} {fk.definition}"
            )
        )
    return steps


_SESSION_VALUES = "parlant_runtime.session_variable"


def _move_session_values(connection: sa.Connection) -> int:
    """Before the tables are distributed (plain local tables still): the session values
    of the platform's ``parlant_variable`` move beside their sessions, into
    ``session_variable`` (where turns write them on Citus); how many moved."""
    columns = "session_id, key, id, value, value_type, is_private, created_at, updated_at"
    moved = connection.execute(
        sa.text(
            f"INSERT INTO {_SESSION_VALUES} ({columns}) "  # constants only
            f"SELECT {columns} FROM parlant_variable WHERE session_id IS NOT NULL "
            "ON CONFLICT (session_id, key) DO UPDATE SET value = excluded.value, "
            "value_type = excluded.value_type, is_private = excluded.is_private, "
            "updated_at = excluded.updated_at "
            f"WHERE excluded.updated_at > {_SESSION_VALUES}.updated_at"
        )
    ).rowcount
    connection.execute(sa.text("DELETE FROM parlant_variable WHERE session_id IS NOT NULL"))
    return int(moved)


@dataclass(frozen=True, slots=True)
class _ForeignKey:
    name: str
    table: str
    target: str
    definition: str


def _name(regclass: str) -> str:
    """A table's name as this module writes it, from its ``regclass`` text (which
    quotes names like ``"user"`` and qualifies those outside ``public``)."""
    return ".".join(part.strip('"') for part in regclass.split("."))


def _quote(name: str) -> str:
    return ".".join('"' + part.replace('"', '""') + '"' for part in name.split("."))


def _split(name: str) -> tuple[str | None, str]:
    schema, _, table = name.rpartition(".")
    return schema or None, table


def _exists(connection: sa.Connection, name: str) -> bool:
    found = connection.scalar(sa.text("SELECT to_regclass(:name)"), {"name": _quote(name)})
    return found is not None


def _foreign_keys(connection: sa.Connection, tables: set[str]) -> list[_ForeignKey]:
    """Foreign keys from or to a table about to be laid out (in the public schema)."""
    rows = connection.execute(
        sa.text(
            "SELECT c.conname, c.conrelid::regclass::text, c.confrelid::regclass::text, "
            "pg_get_constraintdef(c.oid) FROM pg_constraint c WHERE c.contype = 'f' "
            "ORDER BY c.conname"
        )
    )
    keys = [
        _ForeignKey(name, _name(table), _name(target), definition)
        for name, table, target, definition in rows
    ]
    return [key for key in keys if key.table in tables or key.target in tables]


def _primary_key(connection: sa.Connection, table: str) -> tuple[str, ...]:
    schema, bare = _split(table)
    key = sa.inspect(connection).get_pk_constraint(bare, schema=schema)
    return tuple(key.get("constrained_columns") or ())


def _replace_primary_key(connection: sa.Connection, table: str, columns: tuple[str, ...]) -> None:
    schema, bare = _split(table)
    key = sa.inspect(connection).get_pk_constraint(bare, schema=schema)
    name = key.get("name") or f"{bare}_pkey"
    listed = ", ".join(_quote(column) for column in columns)
    connection.execute(
        sa.text(
            f"ALTER TABLE {_quote(table)} DROP CONSTRAINT {_quote(name)}, "
            f"ADD CONSTRAINT {_quote(name)} PRIMARY KEY ({listed})"
        )
    )


def _refuse_unshardable_keys(connection: sa.Connection, tables: list[str]) -> None:
    """Every unique index of a table to shard must include its distribution column
    (primary keys of :data:`_NEW_PRIMARY_KEYS` are replaced, not refused)."""
    inspector = sa.inspect(connection)
    problems: list[str] = []
    for table in tables:
        column = DISTRIBUTED[table].column
        schema, bare = _split(table)
        if table not in _NEW_PRIMARY_KEYS:
            key = inspector.get_pk_constraint(bare, schema=schema)
            if column not in (key.get("constrained_columns") or []):
                problems.append(f"the primary key of {table}")
        for index in inspector.get_indexes(bare, schema=schema):
            if index.get("unique") and column not in index["column_names"]:
                problems.append(f"unique index {index['name']} of {table}")
        for constraint in inspector.get_unique_constraints(bare, schema=schema):
            if column not in constraint["column_names"]:
                problems.append(f"unique constraint {constraint['name']} of {table}")
    if problems:
        raise LayoutRefused(
            "Citus shards a table only when every primary key and unique constraint "
            "includes its distribution column; these do not: "
            + "; ".join(problems)
            + " (add the column to them, or drop them, first; nothing was changed)"
        )
