"""The storage port: what the runtime needs from a database, in our models.

Every operation is scoped by workspace: an id that belongs to another workspace
behaves exactly like an id that does not exist (:class:`NotFound`). Adapters take
and return the models of :mod:`parlant_runtime.model` and
:mod:`parlant_runtime.bundle`, never ORM rows, and translate driver errors into the
errors below.

A turn is committed with :meth:`Store.commit_turn`: its events (with contiguous
offsets), the session's new position, mode, status and counters, and the
variables it set, in one transaction guarded by a compare-and-set on the
session's ``version``. A concurrent commit gets :class:`ConcurrentUpdate` and
nothing of it is written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable
from uuid import UUID

from pydantic import Field

from parlant_runtime.bundle.schema import AgentBundle
from parlant_runtime.errors import ParlantRuntimeError
from parlant_runtime.model import (
    Event,
    EventType,
    Model,
    Session,
    SessionMode,
    SessionStatus,
    ValueType,
    Variable,
    VariableScope,
)

__all__ = [
    "MAX_EVENTS_PER_TURN",
    "MAX_EVENT_BYTES",
    "MAX_ID_LENGTH",
    "MAX_INTEGER",
    "MAX_TITLE_LENGTH",
    "MAX_VALUE_DEPTH",
    "MAX_VARIABLE_BYTES",
    "AgentChanges",
    "CommittedTurn",
    "ConcurrentUpdate",
    "DatabaseURLError",
    "DatabaseUnavailable",
    "DuplicateMessage",
    "InvalidData",
    "MigrationError",
    "NewEvent",
    "NotFound",
    "PublishRefused",
    "PublishReport",
    "SessionStart",
    "StorageError",
    "Store",
    "StoredAgent",
    "TurnCommit",
    "TurnRead",
    "VariableChange",
]

MAX_EVENT_BYTES = 256 * 1024
"""Largest event (content and metadata as JSON) a store accepts."""

MAX_VARIABLE_BYTES = 64 * 1024
"""Largest variable value (as JSON) a store accepts."""

MAX_EVENTS_PER_TURN = 200
"""Most events one turn may append."""

MAX_ID_LENGTH = 200
"""Longest id, key or name a caller gives (characters): workspace ids and names,
customer and user ids, idempotency keys, tool call ids. PostgreSQL indexes several of
them, and an index entry must fit in a third of a page; 200 characters always do."""

MAX_TITLE_LENGTH = 1_000
"""Longest session title (characters)."""

MAX_VALUE_DEPTH = 64
"""Deepest nesting of lists and objects in a caller's JSON value (variables, metadata,
event content)."""

MAX_INTEGER = 2**63 - 1
"""Largest integer a JSON value may hold (and ``-MAX_INTEGER - 1`` the smallest): what
a 64-bit integer holds; larger numbers are stored as text by the caller."""


class StorageError(ParlantRuntimeError):
    """Root of the storage errors."""


class NotFound(StorageError):
    """No such agent, session or event in this workspace."""


class ConcurrentUpdate(StorageError):
    """Another turn was committed to the session first; reload it and retry."""


class DuplicateMessage(StorageError):
    """A customer message with this idempotency key is already recorded."""

    def __init__(self, message: str, *, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


class InvalidData(StorageError):
    """The data to write breaks a rule (size, type, ownership); nothing was written."""


class PublishRefused(StorageError):
    """Publishing would strand live sessions or the bundle has errors; nothing was written."""

    def __init__(self, message: str, report: PublishReport | None = None) -> None:
        super().__init__(message)
        self.report = report


class DatabaseURLError(StorageError):
    """The database URL cannot be read or names a database the library does not support."""


class DatabaseUnavailable(StorageError):
    """The database cannot be reached or opened (server down, wrong name, no such folder)."""


class MigrationError(StorageError):
    """A migration failed; the transaction was rolled back and the database is unchanged."""


class NewEvent(Model):
    """An event to append; its offset is given by the store."""

    event_type: EventType
    content: dict[str, Any] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)
    tool_call_id: str | None = None
    journey_id: UUID | None = None
    state_id: UUID | None = None
    idempotency_key: str | None = None


class VariableChange(Model):
    """A variable a turn sets (session scope) or sets for the customer (customer scope)."""

    key: str
    value: Any
    scope: VariableScope = VariableScope.SESSION
    value_type: ValueType = ValueType.STRING
    is_private: bool = False


class TurnCommit(Model):
    """Everything one turn changes, written atomically or not at all."""

    session_id: UUID
    expected_version: int
    """The session's ``version`` the turn was computed from (compare-and-set)."""
    events: list[NewEvent] = Field(default_factory=list)
    current_journey_id: UUID | None = None
    current_state_id: UUID | None = None
    mode: SessionMode | None = None
    """A new mode, or ``None`` to keep it."""
    status: SessionStatus | None = None
    """A new status, or ``None`` to keep it."""
    variables: list[VariableChange] = Field(default_factory=list)
    usage: dict[str, int] = Field(default_factory=dict)
    """Usage deltas keyed ``"<entity>:<uuid>:<counter>"`` (match counts, use counts)."""
    metadata: dict[str, Any] | None = None
    """The session's new metadata (replaces it), or ``None`` to keep it."""


class SessionStart(Model):
    """What a new session starts with."""

    agent_id: UUID
    customer_id: str | None = None
    user_id: str | None = None
    mode: SessionMode = SessionMode.AUTO
    title: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    session_id: UUID | None = None
    """A caller-chosen id (for idempotent creation); random when ``None``."""


@dataclass(frozen=True, slots=True)
class TurnRead:
    """What a turn reads before it runs, read at once (:meth:`Store.read_turn`)."""

    session: Session
    agent_version: int
    """The session's agent's version now (compiled agents are cached by it)."""
    variables: Sequence[Variable]
    """What :meth:`Store.get_variables` gives."""
    message: Event | None = None
    """The customer message recorded with the idempotency key asked about, if any."""


@dataclass(frozen=True, slots=True)
class CommittedTurn:
    """A committed turn: the session as it now is and the events as stored."""

    session: Session
    events: Sequence[Event]


@dataclass(frozen=True, slots=True)
class StoredAgent:
    """An agent as the runtime needs it: the whole bundle, with the stored ids."""

    workspace_id: str
    agent_id: UUID
    version: int
    bundle: AgentBundle
    host_written: bool = False
    """Some of its rows were written by the host platform, not published through the
    runtime: the runtime validates the agent before running it (``docs/host-database.md``)."""


@dataclass(frozen=True, slots=True)
class AgentChanges:
    """What a publish adds, removes and changes, by kind (``journey``, ``state``, ...)."""

    added: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    removed: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    changed: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        """Whether nothing changes."""
        return not (
            any(self.added.values()) or any(self.removed.values()) or any(self.changed.values())
        )


@dataclass(frozen=True, slots=True)
class PublishReport:
    """The outcome of a publish (or of a dry run)."""

    agent_id: UUID
    version: int
    created: bool
    changes: AgentChanges
    stranded_sessions: Mapping[str, int] = field(default_factory=dict)
    """Live sessions on states this version removes: ``"journey/state"`` -> count."""
    moved_sessions: int = 0
    written: bool = False


@runtime_checkable
class Store(Protocol):
    """The storage port. Every method is scoped by ``workspace_id``."""

    async def ensure_workspace(
        self, workspace_id: str, name: str | None = None, *, owner_id: str | None = None
    ) -> None:
        """Create the host workspace row if it is missing (embedded use).

        ``owner_id`` names its owner, a user of the host; required where the host's
        schema requires an owner (the host owns workspaces there).
        """

    async def ensure_knowledge_bases(self, workspace_id: str, ids: Sequence[str]) -> None:
        """Create the workspace's knowledge bases that are missing (embedded use); an id
        another workspace has stays that workspace's (a publish linking it is refused)."""

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
        """Write an agent in one transaction: create it, or update it in place.

        ``created_by`` (a user of the host) is recorded on a new agent; by default the
        workspace's owner. Where the host's schema requires a creator and there is
        none, or the user is unknown, the publish is refused with :class:`InvalidData`.

        Live sessions on states the new version removes are moved by
        ``state_mapping`` (journey title -> old state name -> new state name);
        without a mapping for each of them the publish is refused
        (:class:`PublishRefused`) unless ``force`` (they then leave their journey).
        """

    async def load_agent(self, workspace_id: str, agent_id: UUID) -> StoredAgent:
        """Everything the runtime needs of an agent, in a fixed number of queries."""

    async def find_agent(self, workspace_id: str, name: str) -> UUID | None:
        """The id of the workspace's agent with this name, if any."""

    async def agent_version(self, workspace_id: str, agent_id: UUID) -> int:
        """The agent's current version (one cheap read: compiled agents are cached by it)."""

    async def create_session(self, workspace_id: str, start: SessionStart) -> Session:
        """A new session of an agent of this workspace."""

    async def get_session(self, workspace_id: str, session_id: UUID) -> Session:
        """The session as stored (its ``version`` is what a commit must expect)."""

    async def list_sessions(
        self, workspace_id: str, agent_id: UUID, *, status: SessionStatus | None = None
    ) -> Sequence[Session]:
        """The agent's sessions, oldest first."""

    async def list_events(
        self, workspace_id: str, session_id: UUID, *, after: int = -1, limit: int | None = None
    ) -> Sequence[Event]:
        """The session's events with an offset greater than ``after``, in order."""

    async def find_message(
        self, workspace_id: str, session_id: UUID, idempotency_key: str
    ) -> Event | None:
        """The customer message recorded with this idempotency key, if any."""

    async def get_variables(self, workspace_id: str, session_id: UUID) -> Sequence[Variable]:
        """The variables a turn of this session sees: the agent's definitions, then the
        customer's values, then the session's own (later ones win by key)."""

    async def read_turn(
        self, workspace_id: str, session_id: UUID, *, idempotency_key: str | None = None
    ) -> TurnRead:
        """The session, its agent's version, its variables and (with ``idempotency_key``)
        the message recorded with that key: what a turn needs, in one read.

        Raises:
            NotFound: no such session in this workspace.
        """

    async def record_turn(self, workspace_id: str, turn: TurnCommit) -> CommittedTurn:
        """:meth:`commit_turn`, returning the stored events too (with their offsets and
        ids), so that nothing has to be read back."""

    async def commit_turn(self, workspace_id: str, turn: TurnCommit) -> Session:
        """Write one turn atomically; returns the session as it now is.

        Raises:
            ConcurrentUpdate: the session's version is no longer ``expected_version``.
            DuplicateMessage: an event's idempotency key is already recorded.
            InvalidData: an event or variable is too large or does not fit its type.
            NotFound: no such session in this workspace.
        """

    async def wait_for_events(
        self, workspace_id: str, session_id: UUID, *, after: int, timeout: float
    ) -> Sequence[Event]:
        """Events after ``after``; waits up to ``timeout`` seconds for the first one."""

    async def usage(self, workspace_id: str, entity: str, entity_id: UUID) -> dict[str, int]:
        """The entity's usage counters: stored totals plus deltas not yet rolled up."""

    async def roll_up_usage(self) -> int:
        """Fold pending usage deltas into the counter columns; returns how many."""

    async def close(self) -> None:
        """Release connections."""
