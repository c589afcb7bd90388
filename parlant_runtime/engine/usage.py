"""Usage counters a turn moves, as typed keys.

A turn counts what it used (a guideline matched, a transition taken, a tool called,
tokens spent) as deltas committed with it and rolled up later by the store. Inside
the engine a counter is a :class:`UsageKey`: which kind of entity, which one, which
counter. The store's port takes the deltas keyed by text
(``"<entity>:<uuid>:<counter>"``, :attr:`parlant_runtime.storage.port.TurnCommit.usage`),
so :func:`wire` spells them out once, where the commit is assembled.

The keys of the agent's own entities (guidelines, links, transitions, canned
responses) are made once per compiled version (:mod:`.compiled`); a key keeps its
hash and its spelling, so counting costs what counting by text did.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from uuid import UUID

__all__ = ["Counter", "Entity", "Usage", "UsageKey", "wire"]


class Entity(StrEnum):
    """The kinds of entity that have usage counters (the store's names)."""

    AGENT = "agent"
    SESSION = "session"
    GUIDELINE = "guideline"
    CANNED_RESPONSE = "canned_response"
    JOURNEY = "journey"
    TRANSITION = "transition"
    JOURNEY_GUIDELINE = "journey_guideline"
    TOOL = "tool"
    TOOL_INTEGRATION = "tool_integration"
    AGENT_KNOWLEDGE_BASE = "agent_knowledge_base"


class Counter(StrEnum):
    """The usage counters (columns of the entity's table)."""

    TOTAL_SESSIONS = "total_sessions"
    TOTAL_MESSAGES = "total_messages"
    TOTAL_TOKENS_USED = "total_tokens_used"
    TOTAL_COST = "total_cost"
    TOKENS_USED = "tokens_used"
    COST = "cost"
    MATCH_COUNT = "match_count"
    USE_COUNT = "use_count"
    ERROR_COUNT = "error_count"
    SEARCH_COUNT = "search_count"


@dataclass(frozen=True, slots=True)
class UsageKey:
    """One counter of one entity."""

    entity: Entity
    entity_id: UUID
    counter: Counter
    text: str = field(init=False, repr=False, compare=False)
    """The store's spelling, ``"<entity>:<uuid>:<counter>"``."""
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "text", f"{self.entity}:{self.entity_id}:{self.counter}")
        object.__setattr__(self, "_hash", hash(self.text))

    def __hash__(self) -> int:
        return self._hash


Usage = dict[UsageKey, int]
"""Deltas by counter."""


def wire(usage: Mapping[UsageKey, int]) -> dict[str, int]:
    """The deltas keyed as the store's port takes them."""
    return {key.text: delta for key, delta in usage.items()}
