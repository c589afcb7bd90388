"""What the conformance tests share: workspaces, bundles, turns and snapshots.

Everything here goes through the :class:`~parlant_runtime.Store` protocol only, so
the same helpers serve every store a host plugs in.
"""

from __future__ import annotations

from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any, Protocol, TypeVar
from uuid import UUID

from parlant_runtime.bundle.schema import AgentBundle
from parlant_runtime.model import Event, EventType, Session, Variable
from parlant_runtime.storage.port import NewEvent, PublishReport, Store, TurnCommit

__all__ = [
    "OTHER_WS",
    "REPLY",
    "WS",
    "Run",
    "Snapshot",
    "make_bundle",
    "message",
    "publish",
    "setup_agent",
    "snapshot",
    "state_ids",
    "turn",
    "usage_key",
]

T = TypeVar("T")

WS = "ws-a"
"""The workspace most tests work in."""
OTHER_WS = "ws-b"
"""A second workspace, for isolation."""
REPLY = NewEvent(event_type=EventType.AGENT_MESSAGE, content={"text": "Which day?"})
"""An agent's reply, as a turn appends it."""


class Run(Protocol):
    """Runs a coroutine to completion on the test's event loop (the ``run`` fixture)."""

    def __call__(self, coro: Coroutine[Any, Any, T], /) -> T: ...


# ------------------------------------------------------------------ bundles


def make_bundle(
    states: Sequence[str] = ("ask", "confirm", "done"),
    guidelines: Mapping[str, str] | None = None,
    *,
    name: str = "Clinic",
    day: str = "monday",
    journeys: Sequence[str] = ("Book",),
) -> AgentBundle:
    """An agent with journeys through ``states`` (the last one final), a guideline
    per entry of ``guidelines``, a canned response, a tool and two variables."""
    *chats, final = states
    return AgentBundle.model_validate(
        {
            "agent": {"name": name},
            "guidelines": [{"name": n, "action": a} for n, a in (guidelines or {}).items()],
            "cannedResponses": [{"name": "hello", "template": "Hello!"}],
            "tools": [{"name": "lookup", "parameters": {"type": "object", "properties": {}}}],
            "variables": [
                {"key": "day", "value": day},
                {"key": "visits", "scope": "customer", "valueType": "number", "value": 0},
            ],
            "journeys": [
                {
                    "title": title,
                    "states": [
                        *(
                            {"name": s, "stateType": "chat", "isInitial": i == 0}
                            for i, s in enumerate(chats)
                        ),
                        {"name": final, "stateType": "final"},
                    ],
                    "transitions": [{"from": a, "to": b} for a, b in pairwise(states)],
                    "guidelines": [{"guideline": n} for n in (guidelines or {})][:1],
                }
                for title in journeys
            ],
        }
    )


async def publish(store: Store, workspace_id: str, bundle: AgentBundle) -> PublishReport:
    """Publish, first creating the knowledge bases the bundle links (every store needs them)."""
    await store.ensure_knowledge_bases(
        workspace_id, [kb.knowledge_base_id for kb in bundle.knowledge_bases]
    )
    return await store.publish(workspace_id, bundle)


async def setup_agent(
    store: Store, bundle: AgentBundle | None = None, workspace_id: str = WS
) -> UUID:
    """Create workspaces ``ws-a`` and ``ws-b``, publish ``bundle`` in one, give its id."""
    await store.ensure_workspace(WS)
    await store.ensure_workspace(OTHER_WS)
    return (await publish(store, workspace_id, bundle or make_bundle())).agent_id


async def state_ids(
    store: Store, agent_id: UUID, state: str, journey: str = "Book", workspace_id: str = WS
) -> tuple[UUID, UUID]:
    """The stored ids of a journey and one of its states."""
    found = (await store.load_agent(workspace_id, agent_id)).bundle.journey(journey)
    assert found is not None
    spec = found.state(state)
    assert spec is not None
    return found.id, spec.id


def message(text: str, key: str | None = None) -> NewEvent:
    """A customer message, with an idempotency key when given."""
    return NewEvent(
        event_type=EventType.CUSTOMER_MESSAGE, content={"text": text}, idempotency_key=key
    )


def usage_key(entity: str, entity_id: UUID, counter: str) -> str:
    """A usage delta key as :class:`TurnCommit` takes it."""
    return f"{entity}:{entity_id}:{counter}"


def turn(session: Session, **changes: Any) -> TurnCommit:
    """A turn computed from ``session`` as it is (expecting its version)."""
    return TurnCommit.model_validate(
        {"session_id": session.id, "expected_version": session.version, **changes}
    )


# ------------------------------------------------------------------ snapshots


@dataclass(frozen=True)
class Snapshot:
    """Everything a failed operation must leave as it was, for a set of sessions."""

    sessions: tuple[Session, ...]
    events: tuple[tuple[Event, ...], ...]
    variables: tuple[tuple[Variable, ...], ...]
    agents: tuple[int, ...]
    usage: tuple[dict[str, int], ...]


async def snapshot(
    store: Store,
    sessions: Sequence[tuple[str, UUID]],
    agents: Sequence[tuple[str, UUID]] = (),
) -> Snapshot:
    """The sessions (``(workspace, id)``) with their events and variables, and the
    agents' versions and usage counters."""
    return Snapshot(
        sessions=tuple([await store.get_session(ws, sid) for ws, sid in sessions]),
        events=tuple([tuple(await store.list_events(ws, sid)) for ws, sid in sessions]),
        variables=tuple([tuple(await store.get_variables(ws, sid)) for ws, sid in sessions]),
        agents=tuple([(await store.load_agent(ws, aid)).version for ws, aid in agents]),
        usage=tuple([await store.usage(ws, "agent", aid) for ws, aid in agents]),
    )
