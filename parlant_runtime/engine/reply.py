"""Composing a turn's reply: eligible canned responses, the state's prompt, the
matched guidelines, and the response generator (see :mod:`.compose` for the
plug-in's side).

Strict agents send the first eligible canned response that fills (or what a
:class:`~parlant_runtime.engine.compose.CannedChooser` chooses among them), else
the no-match text; fluid agents hand the candidates to the generator, falling back
to the built-in one, then to the no-match text: never silence. Canned responses
offered are remembered by the name their candidate carries, so what the generator
sends is counted through the offer, never found again by its label.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, cast

from parlant_runtime.engine.compiled import (
    CompiledGuideline,
    Template,
)
from parlant_runtime.engine.compose import (
    Candidate,
    CannedChooser,
    ComposeRequest,
    DeterministicGenerator,
    Part,
    Reply,
    ResponseGenerator,
)
from parlant_runtime.engine.trace import ReplyTrace
from parlant_runtime.engine.turn_state import (
    Failed,
    TurnState,
    is_plugin,
)
from parlant_runtime.engine.understanding import (
    TokenSink,
)
from parlant_runtime.errors import TemplateSandboxError
from parlant_runtime.model import (
    CompositionMode,
    StateType,
)
from parlant_runtime.sandbox import ConditionKind

__all__ = ["DEFAULT_NO_MATCH", "MAX_FIELD_CHARS", "compose_reply"]

DEFAULT_NO_MATCH = "I'm sorry, I can't help with that here."
"""The no-match reply of a strict agent that does not set its own."""

MAX_FIELD_CHARS = 500
"""Longest value a language model may give a canned response's field."""


def _render(
    template: Template | None,
    turn: TurnState,
    label: str,
    skipped: list[tuple[str, str]],
    context: Mapping[str, Any] | None = None,
) -> str | None:
    if template is None:
        return None
    if template.compiled is None:
        skipped.append((label, template.error or "does not compile"))
        return None
    try:
        return template.compiled.render(context if context is not None else turn.template_context())
    except TemplateSandboxError as exc:  # a field that cannot be filled: never send half a text
        skipped.append((label, str(exc)))
        return None


def _candidates(
    turn: TurnState, skipped: list[tuple[str, str]], *, first_only: bool, fills: bool = False
) -> list[Candidate]:
    """The eligible canned responses, rendered, in priority order; with ``first_only``
    (strict composition) the first one only: those after it are never tried. One with
    fields is a candidate only when a language model ``fills`` them (its text shows
    ``{name}`` for each)."""
    if not first_only and len(turn.agent.canned_batch) > 1:
        turn.decided = turn.decided | turn.agent.canned_batch.evaluate(turn.condition_context())
    context = turn.template_context() if turn.agent.canned else None
    candidates = []
    shared: dict[str, Any] | None = None  # one condition context for them all: nothing moves
    for canned in turn.agent.canned_by_priority:
        label = canned.label
        if shared is None and any(
            c.kind is ConditionKind.EXPRESSION and c not in turn.decided for c in canned.conditions
        ):
            shared = turn.condition_context()
        if not all(turn.check(label, c, shared) for c in canned.conditions):
            skipped.append((label, "a condition does not hold"))
            continue
        if canned.fields and not fills:
            skipped.append(
                (label, f"has fields only a language model fills: {', '.join(canned.fields)}")
            )
            continue
        shown = context
        if canned.fields and context is not None:
            shown = {**context, "fields": {name: f"{{{name}}}" for name in canned.fields}}
        text = _render(canned.template, turn, label, skipped, shown)
        if text is not None:
            turn.offered[label] = canned
            candidates.append(
                Candidate(
                    label,
                    text,
                    canned.spec.priority,
                    canned.spec.requires_exact_match,
                    canned.fields,
                )
            )
            if first_only:
                break
    return candidates


def _parts(
    turn: TurnState, prompt: str | None, guidelines: Sequence[CompiledGuideline]
) -> tuple[Part, ...]:
    """What the reply covers: the journey step (its prompt), then each matched guideline."""
    parts = []
    if prompt is not None:
        where = f"{turn.journey.title}/{turn.state}" if turn.journey is not None else "final"
        parts.append(Part("step", where, prompt))
    for guideline in guidelines:
        parts.append(
            Part("guideline", guideline.spec.name or str(guideline.order), guideline.spec.action)
        )
    return tuple(parts)


def _replies(turn: TurnState, answered: Any, what: str) -> list[Reply] | None:
    """The plug-in's answer as replies, or ``None`` (and an error) when it is not one."""
    if answered is None:
        return []
    listed = [answered] if isinstance(answered, Reply) else answered
    if isinstance(listed, list | tuple) and all(
        isinstance(r, Reply) and isinstance(r.text, str) for r in listed
    ):
        for reply in listed:
            turn.add_usage(reply.usage)
            for error in reply.errors:
                turn.error(f"{what} reported: {error}")
        return [r for r in listed if r.text.strip()]
    turn.error(
        f"{what} answered {type(answered).__name__}, not a Reply; the built-in reply is sent"
    )
    return None


async def compose_reply(
    turn: TurnState,
    guidelines: list[CompiledGuideline],
    generator: ResponseGenerator,
    sink: TokenSink | None = None,
) -> list[Reply]:
    skipped: list[tuple[str, str]] = []
    strict = turn.agent.stored.bundle.agent.composition_mode is CompositionMode.STRICT
    chooser = cast(CannedChooser, generator) if strict and is_plugin(generator, "choose") else None
    modelled = chooser is not None or not (strict or isinstance(generator, DeterministicGenerator))
    candidates = _candidates(turn, skipped, first_only=strict and chooser is None, fills=modelled)
    prompt = None
    final = turn.final_prompt
    wants_prompt = not strict or chooser is not None  # a strict agent alone sends canned only
    if final is not None and wants_prompt:
        prompt = _render(final, turn, "final state prompt", skipped)
    elif turn.journey is not None and turn.state is not None and wants_prompt:
        state = turn.journey.states[turn.state]
        if state.spec.state_type is StateType.CHAT:
            prompt = _render(state.prompt, turn, f"prompt of {turn.state}", skipped)
    parts = _parts(turn, prompt, guidelines) if modelled else ()
    request = ComposeRequest(
        prompt=prompt,
        entered=turn.entered_chat or final is not None,
        guidelines=tuple(g.spec.action for g in guidelines),
        candidates=tuple(candidates),
        message=turn.inp.message,
        parts=parts,
        # the built-in generator reads none of the context: not built for it
        context=turn.turn_context() if modelled else None,
        strict=strict,
    )
    what = "the response generator"
    replies: list[Reply] | None
    if strict:
        no_match = _render(turn.agent.no_match, turn, "no-match response", skipped)
        replies = None
        if chooser is not None and candidates:
            chosen = await turn.guarded(
                what, chooser.choose(replace(request, no_match=no_match or DEFAULT_NO_MATCH))
            )
            if not isinstance(chosen, Failed):
                replies = _chosen(turn, _replies(turn, list(chosen), what), candidates, skipped)
        if replies is None and candidates:  # no chooser, or it failed: the first that fits
            replies = [Reply(candidates[0].text, "canned_response", candidates[0].name)]
        if not replies:
            replies = [Reply(no_match or DEFAULT_NO_MATCH, "no_match")]
    else:
        answered = await turn.guarded(
            what,
            generator.compose(replace(request, sink=sink) if sink else request),
            built_in=type(generator) is DeterministicGenerator,
        )
        replies = None if isinstance(answered, Failed) else _replies(turn, answered, what)
        if replies is None:  # the built-in choice, else the no-match text: never silence
            fallback = await DeterministicGenerator().compose(request)
            if not isinstance(fallback, Reply):
                text = _render(turn.agent.no_match, turn, "no-match response", skipped)
                fallback = Reply(text or DEFAULT_NO_MATCH, "no_match")
            replies = [fallback]
    first = replies[0] if replies else None
    turn.trace.reply = ReplyTrace(
        first.source if first else "none",
        first.name if first else None,
        tuple(skipped),
        tuple((r.source, r.name) for r in replies) if len(replies) > 1 else (),
    )
    sent = [turn.offered.get(r.name or "") for r in replies if r.source == "canned_response"]
    for key in dict.fromkeys(c.used for c in sent if c is not None):  # each once
        turn.count(key)
    return replies


def _chosen(
    turn: TurnState,
    replies: list[Reply] | None,
    candidates: Sequence[Candidate],
    skipped: list[tuple[str, str]],
) -> list[Reply] | None:
    """The chooser's picks that are eligible candidates, once each, with their own text
    (their templates filled with the fields given; a pick with a field missing or not
    plain text is not sent)."""
    if replies is None:
        return None
    by_name = {c.name: c for c in candidates}
    kept: list[Reply] = []
    for reply in replies:
        candidate = by_name.get(reply.name or "")
        if candidate is None:
            turn.error(
                f"the response generator chose {reply.name!r}, which is not an eligible "
                "canned response; not sent"
            )
            continue
        if any(r.name == candidate.name for r in kept):
            continue
        text: str | None = candidate.text
        if candidate.fields:
            given = reply.fields if isinstance(reply.fields, Mapping) else {}
            missing = [
                name
                for name in candidate.fields
                if not isinstance(given.get(name), str)
                or not given[name].strip()
                or len(given[name]) > MAX_FIELD_CHARS
            ]
            if missing:
                turn.error(
                    f"the response generator chose {candidate.name!r} without a value for "
                    f"field {missing[0]!r}; not sent"
                )
                continue
            values = {name: given[name] for name in candidate.fields}
            context = {**turn.template_context(), "fields": values}
            text = _render(
                turn.offered[candidate.name].template, turn, candidate.name, skipped, context
            )
        if text is not None:
            kept.append(Reply(text, "canned_response", candidate.name))
    return kept
