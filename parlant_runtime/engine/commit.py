"""Committing what a call changed: one transaction through the store, guarded by the
session's version (compare-and-set), the events it wrote returned as stored.

A computed turn's outcome becomes one :class:`~parlant_runtime.storage.port.TurnCommit`
here, and only here: the typed usage keys are spelled the store's way
(:func:`.usage.wire`) at this boundary. A turn whose commit names a journey or state
that a publish removed while it was computed is stale, not wrong: it is reported as
a :class:`~parlant_runtime.storage.port.ConcurrentUpdate`, so the caller computes it
again on the new version.
"""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from parlant_runtime.engine.turn import TurnOutcome
from parlant_runtime.engine.usage import wire
from parlant_runtime.model import Event, Session, SessionMode, SessionStatus
from parlant_runtime.storage.port import (
    ConcurrentUpdate,
    InvalidData,
    NewEvent,
    Store,
    TurnCommit,
)

__all__ = ["commit_events", "commit_outcome"]


async def commit_outcome(
    store: Store, workspace_id: str, session: Session, outcome: TurnOutcome, agent_version: int
) -> tuple[Session, Sequence[Event]]:
    """Commit a turn computed from ``session`` on the agent's ``agent_version``; the
    session as committed and the turn's own events as stored.

    Raises:
        ConcurrentUpdate: another turn committed first, or the agent was republished
            in between in a way that makes the turn stale; compute it again.
    """
    try:
        committed = await store.record_turn(
            workspace_id,
            TurnCommit(
                session_id=session.id,
                expected_version=session.version,
                events=outcome.events,
                current_journey_id=outcome.journey_id,
                current_state_id=outcome.state_id,
                variables=outcome.variables,
                usage=wire(outcome.usage),
                metadata=outcome.metadata,
            ),
        )
    except InvalidData:
        # a publish between the turn's reads and its commit removed a journey or a
        # state the turn names: the turn is stale, not wrong; compute it again on the
        # new version (the callers retry a ConcurrentUpdate)
        if await store.agent_version(workspace_id, session.agent_id) != agent_version:
            raise ConcurrentUpdate(
                f"agent {session.agent_id} was republished while the turn was computed"
            ) from None
        raise
    return committed.session, committed.events  # as stored: nothing is read back


async def commit_events(
    store: Store,
    workspace_id: str,
    session_id: UUID,
    current: Session,
    events: list[NewEvent],
    *,
    mode: SessionMode | None = None,
    status: SessionStatus | None = None,
) -> tuple[Session, Sequence[Event]]:
    """Commit events that move nothing (and a new mode or status) on ``current``; the
    session as committed and the events as stored.

    Raises:
        ConcurrentUpdate: another call committed first.
    """
    committed = await store.record_turn(
        workspace_id,
        TurnCommit(
            session_id=session_id,
            expected_version=current.version,
            events=events,
            current_journey_id=current.current_journey_id,
            current_state_id=current.current_state_id,
            mode=mode,
            status=status,
        ),
    )
    return committed.session, committed.events
