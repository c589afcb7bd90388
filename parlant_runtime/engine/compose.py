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
candidate marked ``exact``, which it must send verbatim or not at all. It may answer
in several parts (a sequence of :class:`Reply`: the journey step, then each matched
guideline; :attr:`ComposeRequest.parts` lists them), each sent as its own message.

In strict composition, a generator that is also a :class:`CannedChooser` is asked to
choose, per part, among the eligible canned responses (never free text); the runtime
checks that each choice is one of them. Without one, the highest-priority eligible
canned response is sent, as before.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from parlant_runtime.engine.understanding import ModelUsage, TokenSink, TurnContext

__all__ = [
    "Candidate",
    "CannedChooser",
    "ComposeRequest",
    "DeterministicGenerator",
    "Part",
    "Reply",
    "ResponseGenerator",
]


@dataclass(frozen=True, slots=True)
class Candidate:
    """A canned response that may be sent, already rendered."""

    name: str
    text: str
    priority: int
    exact: bool
    fields: tuple[str, ...] = ()
    """Fields the chooser fills (``{{ fields.<name> }}``); :attr:`text` shows each as
    ``{name}`` until it is filled."""


@dataclass(frozen=True, slots=True)
class Part:
    """One message the turn may answer with: the journey step or a matched guideline."""

    kind: str
    """``step`` (the journey's current state) or ``guideline``."""
    name: str
    instruction: str
    """The state's rendered prompt, or the guideline's action."""


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
    parts: tuple[Part, ...] = ()
    """What the reply should cover, in order (step first, then guidelines by priority)."""
    context: TurnContext | None = None
    """The conversation, glossary, variables (non-private), passages and tool results."""
    strict: bool = False
    """Strict composition: only canned responses may be sent."""
    no_match: str | None = None
    """The strict agent's reply when no canned response fits."""
    sink: TokenSink | None = None
    """Set when the caller streams the reply: a generator that can, sends text as it comes."""


@dataclass(frozen=True, slots=True)
class Reply:
    """The text to send and where it came from (for the trace)."""

    text: str
    source: str
    name: str | None = None
    usage: ModelUsage | None = None
    """What producing it cost (a model's calls), if anything; on the first part only."""
    errors: tuple[str, ...] = ()
    """What went wrong on the way (recorded as error events)."""
    fields: Mapping[str, str] | None = None
    """A strict choice's values for the candidate's fields."""


class ResponseGenerator(Protocol):
    """Composes the reply of a fluid agent."""

    async def compose(self, request: ComposeRequest) -> Reply | Sequence[Reply] | None:
        """The reply (one or several parts, sent in order), or ``None`` to say nothing."""
        ...


@runtime_checkable
class CannedChooser(Protocol):
    """Chooses canned responses for a strict agent (see the module docstring)."""

    async def choose(self, request: ComposeRequest) -> Sequence[Reply]:
        """One reply per part it answers, each naming (``name``) an eligible candidate
        and giving its ``fields``; the runtime sends that candidate's template filled
        with them, whatever ``text`` says."""
        ...


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
