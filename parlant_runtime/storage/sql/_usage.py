"""The SQL store's usage counters: reading them, rolling the deltas up and deriving tool health."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from parlant_runtime.storage.checks import (
    TOOL_DEGRADED,
    TOOL_HEALTHY,
    counters_of,
    parse_usage_key,
)
from parlant_runtime.storage.port import (
    NotFound,
)
from parlant_runtime.storage.sql import schema as t
from parlant_runtime.storage.sql import sharding
from parlant_runtime.storage.sql._core import _SqlCore
from parlant_runtime.storage.sql._statements import _DELTAS, _check_workspace

# the table holding each entity's usage counter columns
_USAGE_TABLES: dict[str, sa.Table] = {
    "agent": t.agent,
    "session": t.session,
    "guideline": t.guideline,
    "canned_response": t.canned_response,
    "journey": t.journey,
    "transition": t.journey_transition,
    "journey_guideline": t.journey_guideline,
    "tool": t.tool,
    "tool_integration": t.tool_integration,
    "agent_knowledge_base": t.agent_knowledge_base,
}


class _Usage(_SqlCore):
    """Usage counters of :class:`~.store.SqlStore`."""

    async def _lock_for_roll_up(self, conn: AsyncConnection, workspaces: list[str]) -> None:
        """Take, in the order publishes take them, the locks a roll-up's updates would
        otherwise take in the order of its deltas (PostgreSQL; SQLite has one writer)."""
        if self.dialect != "postgresql" or not workspaces:
            return
        for ws in workspaces:
            await self._lock_publishing(conn, ws)
        await conn.execute(
            sa.select(t.agent.c.id)
            .where(t.agent.c.workspace_id.in_(workspaces))
            .order_by(t.agent.c.id)
            .with_for_update(key_share=True)
        )

    async def usage(self, workspace_id: str, entity: str, entity_id: UUID) -> dict[str, int]:
        """Stored totals plus the deltas not yet rolled up, read in one snapshot: a roll-up
        committing meanwhile (deltas moved into the totals) is seen whole or not at all."""
        table, counters = _usage_table(entity)  # an unknown kind is InvalidData first
        _check_workspace(workspace_id)
        async with self._read(snapshot=True) as conn:
            row = (
                await conn.execute(
                    sa.select(*(table.c[c] for c in sorted(counters))).where(
                        table.c.id == entity_id, _owned_by(entity, workspace_id)
                    )
                )
            ).first()
            if row is None:  # unknown, or another workspace's: the same answer
                raise NotFound(f"no {entity} {entity_id} in workspace {workspace_id!r}")
            pending = await conn.execute(
                sa.select(_DELTAS.c.deltas).where(_DELTAS.c.workspace_id == workspace_id)
            )
            totals = {counter: int(value) for counter, value in row._mapping.items()}
            prefix = f"{entity}:{entity_id}:"
            for (deltas,) in pending:
                for key, delta in deltas.items():
                    if key.startswith(prefix):
                        counter = key[len(prefix) :]
                        totals[counter] = totals.get(counter, 0) + int(delta)
        return totals

    async def roll_up_usage(self) -> int:
        """Fold pending deltas into the counter columns, in one transaction.

        The deltas are deleted and returned by one statement, and exactly those are
        folded: a delta committed meanwhile stays for the next roll-up, never lost.
        """

        async def work(conn: AsyncConnection) -> int:
            if await self._on_citus(conn):  # sharded and reference tables in one transaction
                await sharding.one_connection_per_node(conn)
            deleted = await conn.execute(
                sa.delete(_DELTAS).returning(_DELTAS.c.workspace_id, _DELTAS.c.deltas)
            )
            sums: dict[tuple[str, str, UUID, str], int] = {}
            folded = 0
            for workspace_id, deltas in deleted.all():
                for name, delta in deltas.items():
                    entity, entity_id, counter = parse_usage_key(name)
                    key = (workspace_id, entity, entity_id, counter)
                    sums[key] = sums.get(key, 0) + int(delta)
                    folded += 1
            # the lock order of a publish: each workspace's publish lock, then its agents'
            # rows, then what belongs to them (counters of tools and journeys alike)
            await self._lock_for_roll_up(conn, sorted({key[0] for key in sums}))
            for (workspace_id, entity, entity_id, counter), delta in sums.items():
                table, counters = _usage_table(entity)
                if counter in counters:
                    column = table.c[counter]
                    # only the workspace's own entity: a delta naming another's is dropped
                    await conn.execute(
                        sa.update(table)
                        .where(table.c.id == entity_id, _owned_by(entity, workspace_id))
                        .values({column: column + delta})
                    )
            tools = {i for (_, entity, i, _) in sums if entity == "tool"}
            integrations = {i for (_, entity, i, _) in sums if entity == "tool_integration"}
            if tools or integrations:
                await _derive_tool_health(conn, tools, integrations)
            return folded

        return await self._transact(work)


async def _derive_tool_health(
    conn: AsyncConnection, tools: set[UUID], integrations: set[UUID]
) -> None:
    """``success_rate`` of the tools and ``health_status`` of their integrations, from
    the counters just rolled up, by the rule of ``parlant_runtime/engine/health.py``."""
    tool, ti = t.tool, t.tool_integration
    if integrations:
        owners = sa.select(ti.c.parlant_tool_id).where(ti.c.id.in_(integrations))
        tools = tools | set((await conn.execute(owners)).scalars())
    errors = (
        sa.select(sa.func.coalesce(sa.func.sum(ti.c.error_count), 0))
        .where(ti.c.parlant_tool_id == tool.c.id)
        .scalar_subquery()
    )
    rate = sa.case(
        (tool.c.use_count > 0, (100 * (tool.c.use_count - errors)) // tool.c.use_count),
        else_=100,
    )
    await conn.execute(sa.update(tool).where(tool.c.id.in_(tools)).values(success_rate=rate))
    uses = sa.select(tool.c.use_count).where(tool.c.id == ti.c.parlant_tool_id).scalar_subquery()
    share = (100 * (uses - ti.c.error_count)) // uses
    health = sa.case(
        (ti.c.enabled == sa.false(), "disabled"),
        (uses <= 0, "unknown"),
        (share >= TOOL_HEALTHY, "healthy"),
        (share >= TOOL_DEGRADED, "degraded"),
        else_="failing",
    )
    await conn.execute(
        sa.update(ti)
        .where(ti.c.parlant_tool_id.in_(tools))
        .values(health_status=health, last_health_check=sa.func.now())
    )


def _owned_by(entity: str, ws: str) -> Any:
    """A condition on the entity's table: the row belongs to workspace ``ws``."""
    table = _USAGE_TABLES[entity]
    agents_of_workspace = sa.select(t.agent.c.id).where(t.agent.c.workspace_id == ws)
    if entity in ("agent", "tool", "session"):
        return table.c.workspace_id == ws
    if entity == "tool_integration":
        tools = sa.select(t.tool.c.id).where(t.tool.c.workspace_id == ws)
        return table.c.parlant_tool_id.in_(tools)
    if entity in ("guideline", "canned_response", "journey", "agent_knowledge_base"):
        return table.c.agent_id.in_(agents_of_workspace)
    journeys = sa.select(t.journey.c.id).where(t.journey.c.agent_id.in_(agents_of_workspace))
    return table.c.journey_id.in_(journeys)  # transition, journey_guideline


def _usage_table(entity: str) -> tuple[sa.Table, frozenset[str]]:
    counters = counters_of(entity)  # InvalidData for a kind without counters
    return _USAGE_TABLES[entity], counters
