"""Choosing the reply: canned responses, state prompts, guideline actions.

Strict composition sends only canned responses: the highest-priority one whose
conditions hold and whose template can be filled, else the agent's no-match text.
Fluid composition hands the candidates to a :class:`ResponseGenerator`; the
built-in :class:`DeterministicGenerator` never rewrites a text, it only chooses:

1. an eligible canned response marked ``requiresExactMatch`` (compliance texts);
2. the prompt of a chat state entered this turn;
3. another eligible canned response;
4. the prompt of the chat state the session stays in (it asks again);
5. the action of the highest-priority matched guideline;
6. nothing.

An LLM-backed generator receives the same request and may rephrase anything but a
candidate marked ``exact``, which it must send verbatim or not at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

__all__ = ["Candidate", "ComposeRequest", "DeterministicGenerator", "Reply", "ResponseGenerator"]


@dataclass(frozen=True, slots=True)
class Candidate:
    """A canned response that may be sent, already rendered."""

    name: str
    text: str
    priority: int
    exact: bool


@dataclass(frozen=True, slots=True)
class ComposeRequest:
    """What the turn offers the generator."""

    prompt: str | None
    """The rendered prompt of the current chat state, if any."""
    entered: bool
    """Whether that state was entered this turn (else the session stays in it)."""
    guidelines: tuple[str, ...]
    """Actions of the matched guidelines, highest priority first."""
    candidates: tuple[Candidate, ...]
    """Eligible canned responses, highest priority first."""
    message: str | None


@dataclass(frozen=True, slots=True)
class Reply:
    """The text to send and where it came from (for the trace)."""

    text: str
    source: str
    name: str | None = None


class ResponseGenerator(Protocol):
    """Composes the reply of a fluid agent."""

    async def compose(self, request: ComposeRequest) -> Reply | None:
        """The reply, or ``None`` to say nothing."""


class DeterministicGenerator:
    """The built-in generator: chooses, never rewrites (see the module docstring)."""

    async def compose(self, request: ComposeRequest) -> Reply | None:
        exact = [c for c in request.candidates if c.exact]
        if exact:
            return Reply(exact[0].text, "canned_response", exact[0].name)
        if request.prompt is not None and request.entered:
            return Reply(request.prompt, "state_prompt")
        if request.candidates:
            best = request.candidates[0]
            return Reply(best.text, "canned_response", best.name)
        if request.prompt is not None:
            return Reply(request.prompt, "state_prompt")
        if request.guidelines:
            return Reply(request.guidelines[0], "guideline")
        return None
