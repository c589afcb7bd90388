"""The trace of a turn: every condition, transition, guideline and reply decision.

A chat backend shows it to the people who debug an agent; conversation tests read
it to say why a step went where it went. It is plain data (``to_dict`` gives
JSON) and is stored in the metadata of the turn's last event.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["ConditionTrace", "ReplyTrace", "Trace", "TransitionTrace"]


@dataclass(frozen=True, slots=True)
class ConditionTrace:
    """One condition evaluated: what, how (always, expression, natural), result, why."""

    where: str
    text: str | None
    kind: str
    result: bool
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class TransitionTrace:
    """One transition considered from a state, and what came of it."""

    source: str
    target: str
    priority: int
    outcome: str
    """``taken``, ``condition false``, ``revisit forbidden``, ``not tried`` (an earlier one won)."""
    transition_id: str | None = None
    """The transition's id (as published), telling apart transitions between the same states."""


@dataclass(frozen=True, slots=True)
class ReplyTrace:
    """How the reply was chosen, and why the other candidates were not."""

    source: str
    """``canned_response``, ``state_prompt``, ``guideline``, ``no_match``, ``none``."""
    chosen: str | None
    skipped: tuple[tuple[str, str], ...] = ()
    """(candidate, reason) for each candidate passed over."""


@dataclass
class Trace:
    """Everything one turn decided, in order."""

    conditions: list[ConditionTrace] = field(default_factory=list)
    transitions: list[TransitionTrace] = field(default_factory=list)
    path: list[str] = field(default_factory=list)
    """``journey/state`` entered during the turn, in order."""
    guidelines: list[str] = field(default_factory=list)
    reply: ReplyTrace | None = None
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The trace as JSON-ready data."""
        return asdict(self)
