"""The in-memory store: the storage port kept in dicts, for tests and as the reference.

Unit tests run the engine on it without a database, and it is the behaviour the SQL
adapter is checked against: the conformance suite runs the same operations on both
and expects the same answers. Everything lives in the process and is gone on exit.

Every operation runs under one :class:`asyncio.Lock`, so it is atomic on its event
loop, and checks everything before it changes anything: a refused publish or turn
leaves no trace. Stored objects never leave the store; callers get copies that share
nothing mutable with it (:func:`_detached`: containers and models are copied, the
immutable leaves such as strings, numbers, UUIDs and datetimes are shared, which is
what makes the copies cheap next to ``copy.deepcopy``).
Where the database would clear a session's reference (``ON DELETE SET NULL``) because
a publish removed a journey or a state, this store clears it too; events keep theirs.
"""

from __future__ import annotations

import asyncio
import copy
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import Any, Self, TypeVar
from uuid import UUID, uuid4

from pydantic import BaseModel, ValidationError

from parlant_runtime.bundle.schema import AgentBundle
from parlant_runtime.model import Event, EventType, Session, SessionStatus, Variable, VariableScope
from parlant_runtime.storage.checks import (
    check_bundle,
    check_session_start,
    check_text,
    check_turn,
    check_workspace,
    counters_of,
    parse_usage_key,
)
from parlant_runtime.storage.port import (
    CommittedTurn,
    ConcurrentUpdate,
    DuplicateMessage,
    InvalidData,
    NotFound,
    PublishRefused,
    PublishReport,
    SessionStart,
    StorageError,
    StoredAgent,
    TurnCommit,
    TurnRead,
)
from parlant_runtime.storage.publishing import (
    diff,
    for_workspace,
    move_record,
    plan_moves,
    refuse_knowledge_bases,
    refuse_taken_ids,
    removed_states,
)

__all__ = ["MemoryStore"]

T = TypeVar("T")

_MESSAGES = frozenset({EventType.CUSTOMER_MESSAGE, EventType.AGENT_MESSAGE})
_ENDED = frozenset({SessionStatus.COMPLETED, SessionStatus.ABANDONED})


@dataclass
class _Agent:
    workspace_id: str
    version: int
    bundle: AgentBundle
    journeys: frozenset[UUID]
    states: dict[UUID, UUID]  # state id -> the id of its journey

    @classmethod
    def of(cls, workspace_id: str, version: int, bundle: AgentBundle) -> _Agent:
        states = {s.id: j.id for j in bundle.journeys for s in j.states}
        journeys = frozenset(j.id for j in bundle.journeys)
        return cls(workspace_id, version, bundle, journeys, states)


@dataclass
class _Session:
    row: Session
    events: list[Event] = field(default_factory=list)  # events[i].offset == i
    keys: dict[str, int] = field(default_factory=dict)  # idempotency key -> offset
    variables: dict[str, Variable] = field(default_factory=dict)
    arrived: asyncio.Event | None = None  # set (and dropped) by the next commit with events


def _move(
    s: _Session,
    content: dict[str, Any],
    journey_id: UUID | None,
    state_id: UUID | None,
    now: datetime,
) -> None:
    """Move a session a publish strands, with the ``journey_transition`` event that says
    so (the log alone gives the position), bumping its version."""
    s.row.current_journey_id, s.row.current_state_id = journey_id, state_id
    s.events.append(
        Event(
            id=uuid4(),
            session_id=s.row.id,
            offset=s.row.event_count,
            event_type=EventType.JOURNEY_TRANSITION,
            content=content,
            journey_id=journey_id,
            state_id=state_id,
            created_at=now,
        )
    )
    s.row.event_count += 1
    s.row.version += 1
    s.row.updated_at = now
    if s.arrived is not None:
        s.arrived.set()
        s.arrived = None


def _now() -> datetime:
    return datetime.now(UTC)


_IMMUTABLE: frozenset[type] = frozenset({str, int, float, bool, type(None), UUID, datetime})
_new = object.__new__


def _detached(value: T) -> T:
    """A copy of ``value`` that shares nothing mutable with it.

    Dicts, lists and models are copied at every depth; leaves of immutable types (and
    enums) are shared rather than copied; anything else is deep-copied.
    """
    kind = value.__class__
    if kind in _IMMUTABLE:
        return value
    if kind is dict:
        return {key: _detached(item) for key, item in value.items()}  # type: ignore[attr-defined,return-value]
    if kind is list:
        return [_detached(item) for item in value]  # type: ignore[attr-defined,return-value]
    if isinstance(value, BaseModel):
        model: Any = _new(kind)
        object.__setattr__(
            model, "__dict__", {key: _detached(item) for key, item in value.__dict__.items()}
        )
        object.__setattr__(model, "__pydantic_fields_set__", set(value.model_fields_set))
        object.__setattr__(model, "__pydantic_extra__", _detached(value.__pydantic_extra__))
        object.__setattr__(model, "__pydantic_private__", _detached(value.__pydantic_private__))
        return model  # type: ignore[no-any-return]
    if isinstance(value, Enum):
        return value
    if kind is tuple:
        return tuple(_detached(item) for item in value)  # type: ignore[attr-defined,return-value]
    return copy.deepcopy(value)


def _entity_ids(bundle: AgentBundle, entity: str) -> set[UUID]:
    journeys = bundle.journeys
    ids: dict[str, list[UUID]] = {
        "agent": [bundle.agent.id],
        "guideline": [g.id for g in bundle.guidelines],
        "canned_response": [c.id for c in bundle.canned_responses],
        "journey": [j.id for j in journeys],
        "transition": [tr.id for j in journeys for tr in j.transitions],
        "journey_guideline": [link.id for j in journeys for link in j.guidelines],
        "tool": [tool.id for tool in bundle.tools],
        "tool_integration": [i.id for tool in bundle.tools for i in tool.integrations],
        "agent_knowledge_base": [kb.id for kb in bundle.knowledge_bases],
    }
    return set(ids.get(entity, ()))


# the kinds whose rows a publish deletes when the bundle drops them (tools stay: the
# workspace shares them), so their counters start from zero if they come back
_REMOVABLE = ("guideline", "canned_response", "journey", "transition", "journey_guideline")


class MemoryStore:
    """The storage port in process memory (see the module docstring).

    ``users`` are the host database's user ids a session may name (``user_id``); the
    SQL adapter checks them against the host ``user`` table, this store against them.
    """

    def __init__(self, *, users: Iterable[str] = ()) -> None:
        self._users = frozenset(users)
        self._lock = asyncio.Lock()
        self._closed = False
        self._workspaces: dict[str, str] = {}
        self._knowledge_bases: dict[str, str] = {}  # knowledge base id -> its workspace
        self._agents: dict[UUID, _Agent] = {}
        self._agent_names: dict[tuple[str, str], UUID] = {}
        self._sessions: dict[UUID, _Session] = {}  # in creation order: oldest first
        self._customer_variables: dict[tuple[UUID, str], dict[str, Variable]] = {}
        self._usage_totals: dict[tuple[str, UUID], dict[str, int]] = {}
        self._usage_pending: list[tuple[str, str, UUID, str, int]] = []
        # tools belong to the workspace and outlive the agents that drop them (as their
        # SQL rows do): every tool id a publish of the workspace has named
        self._workspace_tools: dict[str, set[UUID]] = {}

    async def __aenter__(self) -> Self:
        """``async with MemoryStore() as store:`` closes the store at the end of the block."""
        if self._closed:
            raise StorageError("the store is closed; open a new one")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{len(self._sessions)} sessions"
        return f"<parlant_runtime.MemoryStore {state}>"

    @asynccontextmanager
    async def _atomic(self) -> AsyncIterator[None]:
        async with self._lock:
            if self._closed:
                raise StorageError("the store is closed; open a new one")
            yield

    def _agent(self, workspace_id: str, agent_id: UUID) -> _Agent:
        agent = self._agents.get(agent_id)
        if agent is None or agent.workspace_id != workspace_id:
            raise NotFound(f"no agent {agent_id} in workspace {workspace_id!r}")
        return agent

    def _session(self, workspace_id: str, session_id: UUID) -> _Session:
        found = self._sessions.get(session_id)
        if found is None or found.row.workspace_id != workspace_id:
            raise NotFound(f"no session {session_id} in workspace {workspace_id!r}")
        return found

    # ------------------------------------------------------------------ agents

    async def ensure_workspace(
        self, workspace_id: str, name: str | None = None, *, owner_id: str | None = None
    ) -> None:
        """Create the host workspace row if it is missing (embedded use); an ``owner_id``
        must be one of the users this store knows."""
        check_workspace(workspace_id, name)
        check_text(owner_id, "the workspace owner id")
        if owner_id is not None and owner_id not in self._users:
            raise InvalidData(f"user {owner_id!r} (workspace owner) is not a known user")
        async with self._atomic():
            self._workspaces.setdefault(workspace_id, name or workspace_id)

    async def ensure_knowledge_bases(self, workspace_id: str, ids: Sequence[str]) -> None:
        """Create the knowledge bases of the workspace that are missing (as the SQL
        adapter creates host rows): an id another workspace has stays that workspace's.
        """
        check_workspace(workspace_id)
        for kb in ids:
            check_text(kb, "a knowledge base id")
        async with self._atomic():
            for kb in ids:
                self._knowledge_bases.setdefault(kb, workspace_id)

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
        """Write an agent: create it, or update it in place (see :meth:`Store.publish`).

        A dry run reports what the publish would do (the version the agent would get,
        the sessions it would move) with ``written=False``.
        """
        if "\x00" in workspace_id:  # cannot exist: answered as any unknown workspace
            raise NotFound(f"no workspace {workspace_id!r}; create it first")
        check_bundle(bundle)
        async with self._atomic():
            if workspace_id not in self._workspaces:
                raise NotFound(f"no workspace {workspace_id!r}; create it first")
            if created_by is not None and created_by not in self._users:
                raise InvalidData(
                    f"user {created_by!r} (the agent's creator) is not a known user; give the "
                    "id of an existing user"
                )
            new = for_workspace(bundle, workspace_id)
            refuse_knowledge_bases(new, workspace_id, self._knowledge_bases)
            agent_id = new.agent.id
            old = self._agents.get(agent_id)
            named = self._agent_names.get((workspace_id, new.agent.name))
            if old is not None and old.workspace_id != workspace_id:
                raise InvalidData(
                    f"agent id {agent_id} is taken by another workspace; give a new id"
                )
            if named not in (None, agent_id):
                raise InvalidData(
                    f"the workspace already has an agent named {new.agent.name!r} with id {named}; "
                    "remove the explicit id from the bundle or use that one"
                )
            refuse_taken_ids(
                new,
                workspace_id,
                (
                    (other.workspace_id, other.bundle)
                    for other_id, other in self._agents.items()
                    if other_id != agent_id
                ),
            )
            old_bundle = old.bundle if old is not None else None
            version = old.version if old is not None else 0
            changes = diff(old_bundle, new)
            removed = removed_states(old_bundle, new)
            live: list[tuple[_Session, UUID]] = [
                (s, s.row.current_state_id)
                for s in self._sessions.values()
                if s.row.agent_id == agent_id
                and s.row.status is SessionStatus.ACTIVE
                and s.row.current_state_id is not None
                and s.row.current_state_id in removed
            ]
            stranded = {state_id: removed[state_id] for _, state_id in live}
            counts = Counter("/".join(removed[state_id]) for _, state_id in live)

            def report(version: int, moved: int = 0, *, written: bool = False) -> PublishReport:
                return PublishReport(
                    agent_id=agent_id,
                    version=version,
                    created=old is None,
                    changes=changes,
                    stranded_sessions=dict(sorted(counts.items())),
                    moved_sessions=moved,
                    written=written,
                )

            try:
                moves = plan_moves(new, stranded, state_mapping, force=force)
            except PublishRefused as exc:
                raise PublishRefused(str(exc), report(version)) from exc
            if old is not None and changes.empty:
                return report(version)
            if dry_run:
                return report(version + 1, len(live))
            if old is not None:
                del self._agent_names[(workspace_id, old.bundle.agent.name)]  # a rename
            self._agents[agent_id] = _Agent.of(workspace_id, version + 1, new)
            self._workspace_tools.setdefault(workspace_id, set()).update(t.id for t in new.tools)
            self._agent_names[(workspace_id, new.agent.name)] = agent_id
            now = _now()
            for s, old_state in live:
                record = move_record(new, removed[old_state], moves[old_state], version + 1)
                _move(s, *record, now)
            if old is not None:
                self._forget_removed(agent_id, old, self._agents[agent_id])
            return report(version + 1, len(live), written=True)

    def _forget_removed(self, agent_id: UUID, old: _Agent, new: _Agent) -> None:
        """Clear sessions' references to removed journeys and states, as ``ON DELETE SET
        NULL`` does; events keep theirs (the log records what was, see migration 0003)."""
        for kind in _REMOVABLE:  # their rows are gone: a returning one counts from zero
            for entity_id in _entity_ids(old.bundle, kind) - _entity_ids(new.bundle, kind):
                self._usage_totals.pop((kind, entity_id), None)
        journeys = old.journeys - new.journeys
        states = old.states.keys() - new.states.keys()
        if not journeys and not states:
            return
        for s in self._sessions.values():
            if s.row.agent_id != agent_id:
                continue
            if s.row.current_journey_id in journeys:
                s.row.current_journey_id = None
            if s.row.current_state_id in states:
                s.row.current_state_id = None

    async def load_agent(self, workspace_id: str, agent_id: UUID) -> StoredAgent:
        """The agent's bundle as published, with the workspace's ids."""
        async with self._atomic():
            agent = self._agent(workspace_id, agent_id)
            bundle = _detached(agent.bundle)
            return StoredAgent(workspace_id, agent_id, agent.version, bundle)

    async def agent_version(self, workspace_id: str, agent_id: UUID) -> int:
        """The agent's current version."""
        async with self._atomic():
            return self._agent(workspace_id, agent_id).version

    async def find_agent(self, workspace_id: str, name: str) -> UUID | None:
        """The id of the workspace's agent with this name, if any."""
        async with self._atomic():
            return self._agent_names.get((workspace_id, name))

    # ------------------------------------------------------------------ sessions

    async def create_session(self, workspace_id: str, start: SessionStart) -> Session:
        """A new session; with a given id that this agent already has, that session."""
        check_session_start(start)
        async with self._atomic():
            self._agent(workspace_id, start.agent_id)
            if start.user_id is not None and start.user_id not in self._users:
                raise InvalidData(
                    f"user {start.user_id!r} is not a user of the host database; create the "
                    "user first or leave user_id out"
                )
            session_id = start.session_id if start.session_id is not None else uuid4()
            found = self._sessions.get(session_id)
            if found is not None:
                if found.row.workspace_id == workspace_id and found.row.agent_id == start.agent_id:
                    return _detached(found.row)
                raise InvalidData(f"session id {session_id} is taken; give another or none")
            now = _now()
            data = start.model_dump(by_alias=False, exclude={"session_id"})  # fresh containers
            times = ("started_at", "last_activity_at", "created_at", "updated_at")
            row = Session.model_validate(
                {
                    **data,
                    "metadata": _detached(start.metadata),
                    **dict.fromkeys(times, now),
                    "id": session_id,
                    "workspace_id": workspace_id,
                }
            )
            self._sessions[session_id] = _Session(row)
            self._usage_pending.append((workspace_id, "agent", start.agent_id, "total_sessions", 1))
            return _detached(row)

    async def get_session(self, workspace_id: str, session_id: UUID) -> Session:
        """The session as stored, with its ``version``."""
        async with self._atomic():
            return _detached(self._session(workspace_id, session_id).row)

    async def list_sessions(
        self, workspace_id: str, agent_id: UUID, *, status: SessionStatus | None = None
    ) -> Sequence[Session]:
        """The agent's sessions, oldest first (in creation order)."""
        async with self._atomic():
            self._agent(workspace_id, agent_id)
            return [
                _detached(s.row)
                for s in self._sessions.values()
                if s.row.agent_id == agent_id and (status is None or s.row.status is status)
            ]

    @staticmethod
    def _events_after(found: _Session, after: int, limit: int | None) -> list[Event]:
        if limit is not None and limit < 0:
            raise InvalidData(f"limit must be 0 or more, not {limit}")
        start = max(after + 1, 0)
        # one slice of what is asked for: slicing the tail first, then the limit, copied
        # the rest of the log, so a page of the log cost O(session length)
        events = found.events[start:] if limit is None else found.events[start : start + limit]
        return [_detached(e) for e in events]

    async def list_events(
        self, workspace_id: str, session_id: UUID, *, after: int = -1, limit: int | None = None
    ) -> Sequence[Event]:
        """The session's events with an offset greater than ``after``, in order."""
        async with self._atomic():
            return self._events_after(self._session(workspace_id, session_id), after, limit)

    async def find_message(
        self, workspace_id: str, session_id: UUID, idempotency_key: str
    ) -> Event | None:
        """The event recorded with this idempotency key, if any."""
        async with self._atomic():
            found = self._session(workspace_id, session_id)
            offset = found.keys.get(idempotency_key)
            return _detached(found.events[offset]) if offset is not None else None

    async def get_variables(self, workspace_id: str, session_id: UUID) -> Sequence[Variable]:
        """Definitions, then the customer's values, then the session's (later ones win)."""
        async with self._atomic():
            return self._variables_of(workspace_id, session_id)

    def _variables_of(self, workspace_id: str, session_id: UUID) -> list[Variable]:
        row = self._session(workspace_id, session_id).row
        agent = self._agents[row.agent_id]
        merged: dict[str, Variable] = {
            spec.key: Variable.model_validate({**spec.model_dump(), "agentId": row.agent_id})
            for spec in agent.bundle.variables
        }
        if row.customer_id is not None:
            merged.update(self._customer_variables.get((row.agent_id, row.customer_id), {}))
        merged.update(self._sessions[session_id].variables)
        return [_detached(merged[key]) for key in sorted(merged)]

    # ------------------------------------------------------------------ turns

    async def read_turn(
        self, workspace_id: str, session_id: UUID, *, idempotency_key: str | None = None
    ) -> TurnRead:
        """The session, its agent's version, its variables and the keyed message."""
        async with self._atomic():
            found = self._session(workspace_id, session_id)
            offset = found.keys.get(idempotency_key) if idempotency_key is not None else None
            message = _detached(found.events[offset]) if offset is not None else None
            version = self._agents[found.row.agent_id].version
            variables = self._variables_of(workspace_id, session_id)
            return TurnRead(_detached(found.row), version, variables, message)

    async def commit_turn(self, workspace_id: str, turn: TurnCommit) -> Session:
        """Write one turn atomically (see :meth:`Store.commit_turn`)."""
        return (await self.record_turn(workspace_id, turn)).session

    async def record_turn(self, workspace_id: str, turn: TurnCommit) -> CommittedTurn:
        """Write one turn atomically (see :meth:`Store.commit_turn`); with its events.

        A turn with several faults gets the first of: sizes, types and keys
        (:class:`InvalidData`), the session (:class:`NotFound`), its version
        (:class:`ConcurrentUpdate`), ids and scopes (:class:`InvalidData`), idempotency
        keys (:class:`DuplicateMessage`). Every adapter should refuse in this order.
        """
        check_turn(turn)
        async with self._atomic():
            found = self._session(workspace_id, turn.session_id)
            row = found.row
            if row.version != turn.expected_version:
                raise ConcurrentUpdate(
                    f"session {row.id} is at version {row.version}, the turn was computed at "
                    f"{turn.expected_version}; reload the session and retry"
                )
            self._check_ids(self._agents[row.agent_id], turn)
            variables = self._variable_rows(row, turn)
            usage = [(*parse_usage_key(key), delta) for key, delta in turn.usage.items()]
            for new in turn.events:
                key = new.idempotency_key
                if key is not None and key in found.keys:
                    raise DuplicateMessage(
                        f"a message with idempotency key {key!r} is already recorded at "
                        f"offset {found.keys[key]}",
                        offset=found.keys[key],
                    )
            now = _now()
            events = [
                Event.model_validate(
                    dict(new.__dict__)
                    | {
                        "content": _detached(new.content),
                        "metadata": _detached(new.metadata),
                        "id": uuid4(),
                        "session_id": row.id,
                        "offset": offset,
                        "created_at": now,
                    }
                )
                for offset, new in enumerate(turn.events, start=row.event_count)
            ]
            # Everything is checked and built: from here on nothing raises.
            for new, event in zip(turn.events, events, strict=True):
                found.events.append(event)
                if new.idempotency_key is not None:
                    found.keys[new.idempotency_key] = event.offset
            row.current_journey_id = turn.current_journey_id
            row.current_state_id = turn.current_state_id
            if turn.mode is not None:
                row.mode = turn.mode
            if turn.metadata is not None:
                row.metadata = _detached(turn.metadata)
            if turn.status is not None:
                row.status = turn.status
                if turn.status in _ENDED:
                    row.ended_at = now
            row.event_count += len(turn.events)
            row.message_count += sum(1 for e in turn.events if e.event_type in _MESSAGES)
            row.last_activity_at = row.updated_at = now
            row.version += 1
            for variable in variables:
                if variable.scope is VariableScope.CUSTOMER:
                    assert row.customer_id is not None  # checked by _variable_rows
                    customer = (row.agent_id, row.customer_id)
                    target = self._customer_variables.setdefault(customer, {})
                else:
                    target = found.variables
                prior = target.get(variable.key)
                variable.id = prior.id if prior is not None else uuid4()
                variable.created_at = prior.created_at if prior is not None else now
                variable.updated_at = now
                target[variable.key] = variable
            self._usage_pending.extend((workspace_id, *entry) for entry in usage)
            if turn.events and found.arrived is not None:
                found.arrived.set()
                found.arrived = None
            return CommittedTurn(_detached(row), [_detached(event) for event in events])

    @staticmethod
    def _check_ids(agent: _Agent, turn: TurnCommit) -> None:
        """Refuse journeys and states that are not the session's agent's."""
        journey_id, state_id = turn.current_journey_id, turn.current_state_id
        if state_id is not None and (
            journey_id is None or agent.states.get(state_id) != journey_id
        ):
            raise InvalidData(
                f"state {state_id} is not a state of journey {journey_id} of the session's "
                "agent; give the journey and one of its states"
            )
        if journey_id is not None and journey_id not in agent.journeys:
            raise InvalidData(f"journey {journey_id} is not a journey of the session's agent")
        for index, event in enumerate(turn.events):
            if event.journey_id is not None and event.journey_id not in agent.journeys:
                raise InvalidData(f"event {index}: journey {event.journey_id} is not the agent's")
            if event.state_id is not None and event.state_id not in agent.states:
                raise InvalidData(f"event {index}: state {event.state_id} is not the agent's")

    @staticmethod
    def _variable_rows(row: Session, turn: TurnCommit) -> list[Variable]:
        """Each variable change as the row it becomes (nothing is stored yet)."""
        rows: list[Variable] = []
        for change in turn.variables:
            if change.scope is VariableScope.CUSTOMER and row.customer_id is None:
                raise InvalidData(
                    f"variable {change.key!r} is customer-scoped, but the session has no "
                    "customer; set it for the session or start the session with a customer"
                )
            try:
                variable = Variable(
                    agent_id=row.agent_id,
                    session_id=row.id if change.scope is VariableScope.SESSION else None,
                    customer_id=row.customer_id if change.scope is VariableScope.CUSTOMER else None,
                    key=change.key,
                    scope=change.scope,
                    value=_detached(change.value),
                    value_type=change.value_type,
                    is_private=change.is_private,
                )
            except ValidationError as exc:
                raise InvalidData(f"variable {change.key!r} cannot be stored: {exc}") from exc
            rows.append(variable)
        return rows

    async def wait_for_events(
        self, workspace_id: str, session_id: UUID, *, after: int, timeout: float
    ) -> Sequence[Event]:
        """Events after ``after``; waits up to ``timeout`` seconds for the first one."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            async with self._atomic():
                found = self._session(workspace_id, session_id)
                events = self._events_after(found, after, None)
                if events or loop.time() >= deadline:
                    return events
                if found.arrived is None:
                    found.arrived = asyncio.Event()
                arrived = found.arrived
            with suppress(TimeoutError):
                await asyncio.wait_for(arrived.wait(), deadline - loop.time())

    # ------------------------------------------------------------------ usage

    async def usage(self, workspace_id: str, entity: str, entity_id: UUID) -> dict[str, int]:
        """Every counter of the entity: totals rolled up plus deltas still pending."""
        counters = counters_of(entity)
        async with self._atomic():
            if not self._has(workspace_id, entity, entity_id):
                raise NotFound(f"no {entity} {entity_id} in workspace {workspace_id!r}")
            totals = dict.fromkeys(sorted(counters), 0)
            totals.update(self._usage_totals.get((entity, entity_id), {}))
            for ws, kind, id_, counter, delta in self._usage_pending:
                if (ws, kind, id_) == (workspace_id, entity, entity_id):
                    totals[counter] = totals.get(counter, 0) + delta
            return totals

    def _has(self, workspace_id: str, entity: str, entity_id: UUID) -> bool:
        """Whether the workspace has this entity (a tool: whether it ever published it)."""
        if entity == "tool":
            return entity_id in self._workspace_tools.get(workspace_id, ())
        if entity == "session":
            found = self._sessions.get(entity_id)
            return found is not None and found.row.workspace_id == workspace_id
        agents = (a for a in self._agents.values() if a.workspace_id == workspace_id)
        return any(entity_id in _entity_ids(a.bundle, entity) for a in agents)

    async def roll_up_usage(self) -> int:
        """Fold pending deltas into the totals; returns how many were folded."""
        async with self._atomic():
            for workspace_id, entity, entity_id, counter, delta in self._usage_pending:
                if not self._has(workspace_id, entity, entity_id):
                    continue  # a delta naming another workspace's entity is dropped
                totals = self._usage_totals.setdefault((entity, entity_id), {})
                totals[counter] = totals.get(counter, 0) + delta
                if entity == "session":  # the session row carries its counters, as in SQL
                    row = self._sessions[entity_id].row
                    setattr(row, counter, getattr(row, counter) + delta)
            folded = len(self._usage_pending)
            self._usage_pending.clear()
            return folded

    async def close(self) -> None:
        """Refuse further use and wake every waiter (it then gets :class:`StorageError`)."""
        async with self._lock:
            self._closed = True
            for found in self._sessions.values():
                if found.arrived is not None:
                    found.arrived.set()
                    found.arrived = None
