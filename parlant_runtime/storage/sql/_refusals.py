"""The errors of a turn the database refuses, worded once for every path that commits
one: the generic path (:mod:`._turns`), PostgreSQL's one statement (:mod:`._pg_turns`)
and SQLite's writer thread (:mod:`._sqlite_turns`) refuse alike."""

from __future__ import annotations

from uuid import UUID

from parlant_runtime.model import VariableScope
from parlant_runtime.storage.port import (
    ConcurrentUpdate,
    DuplicateMessage,
    InvalidData,
    NotFound,
    TurnCommit,
)

__all__ = [
    "changed_meanwhile",
    "duplicate_message",
    "foreign_position",
    "no_customer",
    "no_session",
    "offset_taken",
    "stale_version",
]


def no_session(session_id: UUID, workspace_id: str) -> NotFound:
    return NotFound(f"no session {session_id} in workspace {workspace_id!r}")


def stale_version(turn: TurnCommit, version: int) -> ConcurrentUpdate:
    """The session is at ``version``, not at the one the turn was computed at."""
    return ConcurrentUpdate(
        f"session {turn.session_id} is at version {version}, the turn was "
        f"computed at {turn.expected_version}; reload the session and retry"
    )


def changed_meanwhile(turn: TurnCommit) -> ConcurrentUpdate:
    """Everything fits now: the session moved on while the turn's statement ran."""
    return ConcurrentUpdate(
        f"session {turn.session_id} changed while the turn was committed; reload the "
        "session and retry"
    )


def offset_taken(turn: TurnCommit) -> ConcurrentUpdate:
    """Another writer (the host platform numbers its events ``MAX(offset) + 1``) took an
    offset between the turn's count and its insert."""
    return ConcurrentUpdate(
        f"another writer appended to session {turn.session_id} while the turn was "
        "committed; reload the session and retry"
    )


def foreign_position(turn: TurnCommit) -> InvalidData:
    """The turn's journey or state, or one an event names, is not its agent's."""
    return InvalidData(
        f"state {turn.current_state_id} of journey {turn.current_journey_id}, or a "
        "journey or state an event names, is not a state of the session's agent"
    )


def no_customer(turn: TurnCommit) -> InvalidData:
    """The turn sets a customer-scoped variable of a session without a customer."""
    key = next(c.key for c in turn.variables if c.scope is VariableScope.CUSTOMER)
    return InvalidData(f"variable {key!r} is customer-scoped, but the session has no customer")


def duplicate_message(key: str, offset: int) -> DuplicateMessage:
    return DuplicateMessage(
        f"a message with idempotency key {key!r} is already recorded at offset {offset}",
        offset=offset,
    )
