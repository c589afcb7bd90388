"""Reading a session's event log: the conversation plug-ins see, where a session is,
and the turn an idempotency key recorded.

The log is the record: a turn's ``journey_transition`` events alone give the
position, so a turn replayed for a retried message (same idempotency key) reports
the replies it sent and where it left the session, without computing anything.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from parlant_runtime.engine.compiled import CompiledAgent
from parlant_runtime.engine.understanding import Utterance
from parlant_runtime.model import Event, EventType, Session
from parlant_runtime.storage.port import Store

__all__ = ["Position", "RecordedTurn", "conversation", "position_now", "recorded_turn"]

Position = tuple[str | None, str | None]
"""(journey title, state name); ``(None, None)`` outside any journey."""


async def conversation(
    store: Store, workspace_id: str, session: Session, count: int
) -> tuple[Utterance, ...]:
    """The last ``count`` messages of the session, oldest first."""
    if count <= 0 or session.event_count == 0:
        return ()
    window = count * 4  # tool, transition and status events sit between messages
    events = await store.list_events(
        workspace_id, session.id, after=max(-1, session.event_count - 1 - window)
    )
    said = [
        Utterance(
            "customer" if event.event_type is EventType.CUSTOMER_MESSAGE else "agent",
            str(event.content.get("text", "")),
        )
        for event in events
        if event.event_type in (EventType.CUSTOMER_MESSAGE, EventType.AGENT_MESSAGE)
    ]
    return tuple(said[-count:])


def position_now(session: Session, agent: CompiledAgent) -> Position:
    """Where the session's stored position is, by name."""
    compiled = agent.journey_by_id(session.current_journey_id)
    if compiled is None:
        return None, None
    state = compiled.by_id.get(session.current_state_id) if session.current_state_id else None
    return compiled.title, state


def _position_of(move: Event, agent: CompiledAgent) -> Position:
    """Where a ``journey_transition`` event left the session: (journey title, state
    name), or ``(None, None)`` when it left no journey (a final state ends it; a
    fallback to ``null`` waited outside one). The event's own names are used when the
    agent no longer has the state (republished since)."""
    target = move.content.get("to")
    if target is None:
        return None, None
    compiled = agent.journey_by_id(move.journey_id)
    if compiled is not None and str(target) in compiled.states:
        if compiled.states[str(target)].spec.ends_journey:
            return None, None
        return compiled.title, str(target)
    title = move.content.get("journey")
    return (str(title) if title is not None else None), str(target)


@dataclass(frozen=True, slots=True)
class RecordedTurn:
    """A turn as its events recorded it."""

    events: Sequence[Event]
    replies: tuple[str, ...]
    position: Position
    """Where the turn left the session."""


async def recorded_turn(
    store: Store,
    workspace_id: str,
    session: Session,
    found: Event,
    agent: Callable[[], Awaitable[CompiledAgent]],
) -> RecordedTurn:
    """The turn that began with the customer message ``found``: its events (up to the
    next customer message), the replies it sent and where it left the session."""
    events = await store.list_events(workspace_id, session.id, after=found.offset - 1)
    turn: list[Event] = [found]
    for event in events[1:]:
        if event.event_type is EventType.CUSTOMER_MESSAGE:
            break
        turn.append(event)
    replies = tuple(
        str(e.content.get("text", "")) for e in turn if e.event_type is EventType.AGENT_MESSAGE
    )
    moves = [e for e in turn if e.event_type is EventType.JOURNEY_TRANSITION]
    if moves:  # the turn moved: its last move is where it left the session
        position = _position_of(moves[-1], await agent())
    elif len(turn) == len(events):  # the latest turn, and it did not move
        position = position_now(session, await agent())
    else:  # an older turn that did not move: where the move before it left
        before = await store.list_events(workspace_id, session.id, limit=found.offset)
        moves = [e for e in before if e.event_type is EventType.JOURNEY_TRANSITION]
        compiled = await agent()
        position = _position_of(moves[-1], compiled) if moves else (None, None)
    return RecordedTurn(tuple(turn), replies, position)
