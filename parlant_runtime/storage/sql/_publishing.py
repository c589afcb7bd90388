"""The SQL store's host rows and agent definitions: workspaces, knowledge bases,
loading and publishing agents (locks, moving sessions, the republish notice).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from parlant_runtime.bundle.schema import AgentBundle
from parlant_runtime.model import (
    EventType,
    SessionStatus,
)
from parlant_runtime.storage import publishing
from parlant_runtime.storage.checks import (
    check_bundle,
    check_text,
    check_workspace,
)
from parlant_runtime.storage.port import (
    InvalidData,
    NotFound,
    PublishRefused,
    PublishReport,
    StoredAgent,
)
from parlant_runtime.storage.sql import schema as t
from parlant_runtime.storage.sql import sharding
from parlant_runtime.storage.sql._core import _SqlCore
from parlant_runtime.storage.sql._statements import (
    _INSERT_MOVE_EVENTS,
    _STATE,
    _check_workspace,
    _storable,
    agent_lock,
)
from parlant_runtime.storage.sql.agents import (
    VERSION,
    WITH_STATE,
    agent_version,
    chunks,
    delete_stale,
    read_stored_bundle,
    refuse_ids_of_others,
    upsert_bundle,
)
from parlant_runtime.storage.sql.columns import LiveColumns, fill_defaults, live_columns


class _Publishing(_SqlCore):
    """Host rows and agent definitions of :class:`~.store.SqlStore`."""

    # ------------------------------------------------------------------ host rows

    async def ensure_workspace(
        self, workspace_id: str, name: str | None = None, *, owner_id: str | None = None
    ) -> None:
        """Create the host workspace row if it is missing (embedded use).

        On a host database whose ``workspace.owner_id`` is NOT NULL the host owns
        workspaces: one is created only with an ``owner_id`` naming a user of the host.

        Raises:
            InvalidData: no usable id, an unknown owner, or no owner where one is required.
        """
        check_workspace(workspace_id, name)
        check_text(owner_id, "the workspace owner id")

        async def work(conn: AsyncConnection) -> None:
            found = await conn.scalar(
                sa.select(t.workspace.c.id).where(t.workspace.c.id == workspace_id)
            )
            if found is not None:
                return
            live = await self._live_columns(conn)
            if owner_id is None and live.requires("workspace", "owner_id"):
                raise InvalidData(
                    f"no workspace {workspace_id!r}, and this database's workspaces belong to "
                    "the host platform: each needs an owner. Create it in the platform, or "
                    "give its owner (--created-by USER_ID, owner_id= in the API)"
                )
            if owner_id is not None:
                await self._check_user(conn, owner_id, "workspace owner")
            values: dict[str, Any] = {"id": workspace_id, "name": name or workspace_id}
            if owner_id is not None:
                values["owner_id"] = owner_id
            statement = self._insert(t.workspace).values(**values)
            await conn.execute(statement.on_conflict_do_nothing(index_elements=["id"]))

        await self._transact(work)

    async def _check_user(self, conn: AsyncConnection, user_id: str, role: str) -> None:
        if await conn.scalar(sa.select(t.user.c.id).where(t.user.c.id == user_id)) is None:
            raise InvalidData(
                f"user {user_id!r} ({role}) is not a user of the host database; give the id "
                "of an existing user (--created-by USER_ID, created_by= in the API)"
            )

    async def _live_columns(self, conn: AsyncConnection) -> LiveColumns:
        if self._live is None:
            self._live = await live_columns(conn)
        return self._live

    async def ensure_knowledge_bases(
        self, workspace_id: str, ids: Sequence[str], *, user_id: str | None = None
    ) -> None:
        """Create placeholder host knowledge-base rows (embedded use, before a publish).

        ``user_id`` owns them; required where the host's ``knowledge_base.user_id`` is
        NOT NULL (otherwise only the missing ones are an error, at publish). An id another
        workspace has stays that workspace's (a publish linking it here is refused).
        """
        check_workspace(workspace_id)
        for kb in ids:
            check_text(kb, "a knowledge base id")
        if not ids:
            return

        async def work(conn: AsyncConnection) -> None:
            live = await self._live_columns(conn)
            existing = set(
                (
                    await conn.execute(
                        sa.select(t.knowledge_base.c.id).where(t.knowledge_base.c.id.in_(ids))
                    )
                ).scalars()
            )
            missing = [kb for kb in ids if kb not in existing]
            if not missing:
                return
            if user_id is None and live.requires("knowledge_base", "user_id"):
                raise InvalidData(
                    f"knowledge base(s) {', '.join(map(repr, missing))} do not exist, and this "
                    "database's knowledge bases belong to a user of the host platform: create "
                    "them there, or give their owner (--created-by USER_ID)"
                )
            rows = [
                {"id": kb, "workspace_id": workspace_id, "name": kb, "user_id": user_id}
                for kb in missing
            ]
            statement = self._insert(t.knowledge_base).values(rows)
            await conn.execute(statement.on_conflict_do_nothing(index_elements=["id"]))

        await self._transact(work)

    # ------------------------------------------------------------------ agents

    async def find_agent(self, workspace_id: str, name: str) -> UUID | None:
        """The id of the workspace's agent with this name, if any."""
        if not _storable(workspace_id, name):
            return None
        async with self._read() as conn:
            found: UUID | None = await conn.scalar(
                sa.select(t.agent.c.id).where(
                    t.agent.c.workspace_id == workspace_id,
                    t.agent.c.name == name,
                    t.agent.c.deleted_at.is_(None),
                )
            )
        return found

    async def agent_version(self, workspace_id: str, agent_id: UUID) -> int:
        """The agent's current version, in one query."""
        _check_workspace(workspace_id)
        async with self._read() as conn:
            version = await agent_version(conn, workspace_id, agent_id)
        if version is None:
            raise NotFound(f"no agent {agent_id} in workspace {workspace_id!r}")
        return version

    async def load_agent(self, workspace_id: str, agent_id: UUID) -> StoredAgent:
        """Everything the runtime needs of an agent, in twelve queries of one snapshot: a
        publish committing meanwhile is seen whole or not at all."""
        _check_workspace(workspace_id)
        stored = await self._load_stored(workspace_id, agent_id)
        return StoredAgent(
            workspace_id, agent_id, stored.version, stored.bundle, stored.host_written
        )

    async def publish(
        self,
        workspace_id: str,
        bundle: AgentBundle,
        *,
        state_mapping: Mapping[str, Mapping[str, str]] | None = None,
        force: bool = False,
        dry_run: bool = False,
        created_by: str | None = None,
    ) -> PublishReport:
        """Write an agent in one transaction (see :meth:`Store.publish`)."""
        _check_workspace(workspace_id)
        check_bundle(bundle)
        if created_by is not None and not _storable(created_by):
            raise InvalidData(f"{created_by!r} cannot be a user id")
        given = publishing.for_workspace(bundle, workspace_id)
        agent_id = given.agent.id

        async def work(conn: AsyncConnection) -> PublishReport:
            # the lock order of a publish (see "Locks and retries" in docs/storage.md):
            # the workspace's publish lock, the agent's lock, then the agent's row.
            # Publishes of a workspace queue, even the first one of an agent (whose row
            # does not exist yet to be locked); the workspace's lock is an advisory one,
            # not its row, because every session insert key-share locks that row through
            # its foreign key (which a FOR UPDATE waits for, and is waited for by)
            if await self._on_citus(conn):  # sharded and reference tables in one transaction
                await sharding.one_connection_per_node(conn)
            await self._lock_publishing(conn, workspace_id)
            lookup = sa.select(t.workspace.c.id, t.workspace.c.owner_id).where(
                t.workspace.c.id == workspace_id
            )
            workspace = (await conn.execute(lookup)).first()
            if workspace is None:
                raise NotFound(f"no workspace {workspace_id!r}; create it first")
            live = await self._live_columns(conn)
            new = fill_defaults(given, live)
            await self._refuse_knowledge_bases(conn, workspace_id, new)
            if self.dialect == "postgresql":  # then the agent's lock, exclusive
                await conn.execute(
                    sa.select(
                        sa.func.pg_advisory_xact_lock(agent_lock(sa.literal(agent_id, t.UUID)))
                    )
                )
            version = await self._lock_agent(conn, workspace_id, agent_id)
            if version is None:
                await self._refuse_taken_name(conn, workspace_id, new)
                creator = await self._creator(conn, workspace, created_by, live)
            else:  # kept as it is (an upsert's insert row must satisfy NOT NULL all the same)
                creator = await conn.scalar(
                    sa.select(t.agent.c.created_by).where(t.agent.c.id == agent_id)
                )
            await refuse_ids_of_others(conn, workspace_id, new)
            old = (await read_stored_bundle(conn, workspace_id, agent_id))[0] if version else None
            changes = publishing.diff(old, new)
            removed = publishing.removed_states(old, new)
            stranded = await self._stranded(conn, removed)
            report = PublishReport(
                agent_id=agent_id,
                version=version or 1,
                created=version is None,
                changes=changes,
                stranded_sessions={
                    f"{title}/{name}": count
                    for state_id, (title, name) in removed.items()
                    if (count := stranded.get(state_id, 0))
                },
            )
            try:
                moves = publishing.plan_moves(
                    new, {sid: removed[sid] for sid in stranded}, state_mapping, force=force
                )
            except PublishRefused as exc:
                raise PublishRefused(str(exc), report) from None
            if version is not None and changes.empty:
                return report
            if dry_run:
                return replace(
                    report, version=(version or 0) + 1, moved_sessions=sum(stranded.values())
                )
            new_version = (version or 0) + 1
            # new rows first, so that sessions can move onto new states; then the moves;
            # then the removal of what the bundle no longer has
            await upsert_bundle(conn, workspace_id, new, version=new_version, created_by=creator)
            moved = await self._move_sessions(conn, new, removed, moves, new_version)
            await delete_stale(conn, workspace_id, new)
            await self._notify_republish(conn, agent_id, new_version)
            return PublishReport(
                agent_id=agent_id,
                version=new_version,
                created=version is None,
                changes=changes,
                stranded_sessions=report.stranded_sessions,
                moved_sessions=moved,
                written=True,
            )

        return await self._transact(work, refused="the agent cannot be stored")

    async def _creator(
        self,
        conn: AsyncConnection,
        workspace: sa.Row[Any, Any],
        given: str | None,
        live: LiveColumns,
    ) -> str | None:
        """Who creates a new agent: ``given``, else the workspace's owner; checked here so
        that a missing or unknown user is a sentence, not a foreign-key error."""
        if given is not None:
            await self._check_user(conn, given, "the agent's creator")
            return given
        if workspace.owner_id is None and live.requires("parlant_agent", "created_by"):
            raise InvalidData(
                f"workspace {workspace.id!r} has no owner to credit with the new agent; give "
                "its creator (--created-by USER_ID, created_by= in the API)"
            )
        owner: str | None = workspace.owner_id
        return owner

    async def _refuse_knowledge_bases(
        self, conn: AsyncConnection, ws: str, new: AgentBundle
    ) -> None:
        ids = [link.knowledge_base_id for link in new.knowledge_bases]
        if not ids:
            return
        rows = await conn.execute(
            sa.select(t.knowledge_base.c.id, t.knowledge_base.c.workspace_id).where(
                t.knowledge_base.c.id.in_(ids)
            )
        )
        publishing.refuse_knowledge_bases(new, ws, {row.id: row.workspace_id for row in rows})

    async def _refuse_taken_name(self, conn: AsyncConnection, ws: str, new: AgentBundle) -> None:
        holder = await conn.scalar(
            sa.select(t.agent.c.id).where(
                t.agent.c.workspace_id == ws,
                t.agent.c.name == new.agent.name,
                t.agent.c.deleted_at.is_(None),
            )
        )
        if holder is not None:
            raise InvalidData(
                f"workspace {ws!r} already has an agent named {new.agent.name!r} with id "
                f"{holder}; publish it under that id or choose another name"
            )

    async def _lock_agent(self, conn: AsyncConnection, ws: str, agent_id: UUID) -> int | None:
        """The agent's version, locking its row so that two publishes queue."""
        query = (
            sa.select(VERSION, t.agent.c.workspace_id)
            .select_from(WITH_STATE)
            .where(t.agent.c.id == agent_id)
        )
        if self.dialect == "postgresql":
            query = query.with_for_update(of=t.agent)
        row = (await conn.execute(query)).first()
        if row is None:
            return None
        if row.workspace_id != ws:  # derived ids differ per workspace: only explicit ids clash
            raise InvalidData(f"agent id {agent_id} is taken by another workspace; give a new id")
        return int(row.version)

    async def _stranded(
        self, conn: AsyncConnection, removed: Mapping[UUID, Any]
    ) -> dict[UUID, int]:
        counts: dict[UUID, int] = {}
        for chunk in chunks(sorted(removed)):  # under the bind-parameter limit
            rows = await conn.execute(
                sa.select(t.session.c.current_state_id, sa.func.count())
                .where(
                    t.session.c.current_state_id.in_(chunk),
                    t.session.c.status == SessionStatus.ACTIVE.value,
                )
                .group_by(t.session.c.current_state_id)
            )
            counts.update({row[0]: int(row[1]) for row in rows})
        return counts

    async def _move_sessions(
        self,
        conn: AsyncConnection,
        new: AgentBundle,
        removed: Mapping[UUID, tuple[str, str]],
        moves: Mapping[UUID, tuple[UUID, UUID] | None],
        version: int,
    ) -> int:
        """Move the live sessions off removed states, each with a ``journey_transition``
        event that says so (the log alone gives the position); their version is bumped,
        so a turn computed on the old position gets a conflict."""
        moved = 0
        for old_state, target in moves.items():
            content, journey_id, state_id = publishing.move_record(
                new, removed[old_state], target, version
            )
            s = t.session
            returning: list[Any] = [s.c.id, s.c.event_count]
            citus = await self._on_citus(conn)
            if self.dialect == "postgresql" and not citus:  # wake waiters at commit
                payload = sa.cast(s.c.id, sa.Text) + ":" + sa.cast(s.c.event_count - 1, sa.Text)
                returning.append(sa.func.pg_notify("parlant_events", payload))
            rows = (
                await conn.execute(
                    sa.update(s)
                    .where(
                        s.c.current_state_id == old_state,
                        s.c.status == SessionStatus.ACTIVE.value,
                    )
                    .values(
                        current_journey_id=journey_id,
                        current_state_id=state_id,
                        event_count=s.c.event_count + 1,
                        updated_at=sa.func.now(),
                    )
                    .returning(*returning)
                )
            ).all()
            if rows and citus:  # from the coordinator, where the listeners are
                await sharding.notify_events(conn, [(r.id, r.event_count - 1) for r in rows])
            if rows:
                await self._bump_versions(conn, [row.id for row in rows])
                await conn.execute(
                    _INSERT_MOVE_EVENTS,
                    [
                        {
                            "id": uuid.uuid4(),
                            "session_id": row.id,
                            "offset": row.event_count - 1,
                            "event_type": EventType.JOURNEY_TRANSITION.value,
                            "content": content,
                            "metadata": {},
                            "tool_call_id": None,
                            "journey_id": journey_id,
                            "state_id": state_id,
                        }
                        for row in rows
                    ],
                )
            moved += len(rows)
        return moved

    async def _bump_versions(self, conn: AsyncConnection, sessions: list[UUID]) -> None:
        """Move the sessions' versions on (a turn computed before a publish moved its
        session then gets a conflict); in id order, the order turns lock them in."""
        statement = self._insert(_STATE).values(session_id=sa.bindparam("sid"), version=1)
        statement = statement.on_conflict_do_update(
            index_elements=["session_id"], set_={"version": _STATE.c.version + 1}
        )
        await conn.execute(statement, [{"sid": sid} for sid in sorted(sessions)])

    async def _notify_republish(self, conn: AsyncConnection, agent_id: UUID, version: int) -> None:
        if self.dialect == "postgresql":
            await conn.execute(
                sa.select(sa.func.pg_notify("parlant_agents", f"{agent_id}:{version}"))
            )
