"""Rules about a state's outgoing transitions and the order they are tried in.

Transitions leave a state in priority order (higher first); among equal
priorities the order of the file decides. That order is what these rules check.
"""

from __future__ import annotations

from collections.abc import Iterator

from parlant_runtime.bundle.schema import TransitionSpec
from parlant_runtime.validation.context import JourneyContext
from parlant_runtime.validation.findings import Code, Finding
from parlant_runtime.validation.registry import journey_rule

__all__: list[str] = []  # rules register themselves; nothing to import from here


def _normalised(condition: str | None) -> str:
    return " ".join((condition or "").split())


def _describe(transition: TransitionSpec) -> str:
    condition = _normalised(transition.condition)
    when = f"when {condition!r}" if condition else "always"
    return f"{transition.from_state} -> {transition.to_state} ({when})"


@journey_rule(Code.SELF_TRANSITION)
def check_self_transition(ctx: JourneyContext) -> Iterator[Finding]:
    """A transition back into the same state re-enters it: usually a mistake."""
    transitions = ctx.journey.transitions
    for index in ctx.self_loops:
        transition = transitions[index]
        yield ctx.finding(
            Code.SELF_TRANSITION,
            f"Transition from {transition.from_state!r} to itself; to stay in a state, "
            "leave it without a matching transition instead.",
            ctx.transition_path(index),
            states=(transition.from_state,),
        )


@journey_rule(Code.DUPLICATE_TRANSITION)
def check_duplicate_transition(ctx: JourneyContext) -> Iterator[Finding]:
    """The same transition twice: the second can never add anything."""
    transitions = ctx.journey.transitions
    candidates = sorted(  # only transitions between two ends that another one joins too
        index
        for source, target in ctx.repeats
        for index in ctx.by_source[source]
        if transitions[index].to_state == target
    )
    first: dict[tuple[str, str, str], int] = {}
    for index in candidates:
        transition = transitions[index]
        key = (transition.from_state, transition.to_state, _normalised(transition.condition))
        if key in first:
            yield ctx.finding(
                Code.DUPLICATE_TRANSITION,
                f"Transition {_describe(transition)} repeats transitions[{first[key]}]; "
                "remove one.",
                ctx.transition_path(index),
                states=key[:2],
            )
        else:
            first[key] = index


@journey_rule(Code.SHADOWED_TRANSITION)
def check_shadowed_transition(ctx: JourneyContext) -> Iterator[Finding]:
    """Nothing after an always-true transition is ever tried."""
    for source in _in_file_order(ctx, ctx.shadowing):
        blocker: tuple[int, TransitionSpec] | None = None
        for index, transition in ctx.tried(source):
            if blocker is not None:
                blocked_by, first = blocker
                yield ctx.finding(
                    Code.SHADOWED_TRANSITION,
                    f"Transition {_describe(transition)} is never taken: "
                    f"transitions[{blocked_by}] to {first.to_state!r} is always true and "
                    f"is tried first (priority {first.priority} vs {transition.priority}); "
                    "give this one a higher priority or a condition to the other.",
                    ctx.transition_path(index),
                    states=(source, transition.to_state),
                )
            elif ctx.always[index]:
                blocker = (index, transition)


@journey_rule(Code.AMBIGUOUS_PRIORITY)
def check_ambiguous_priority(ctx: JourneyContext) -> Iterator[Finding]:
    """Conditional siblings of equal priority: which one wins depends on file order."""
    for source in _in_file_order(ctx, ctx.sharing):
        groups: dict[int, list[tuple[int, TransitionSpec]]] = {}
        for index, transition in ctx.tried(source):
            if not ctx.always[index]:
                groups.setdefault(transition.priority, []).append((index, transition))
        for priority, group in groups.items():
            targets = list(dict.fromkeys(t.to_state for _, t in group))
            if len(targets) < 2:
                continue
            yield ctx.finding(
                Code.AMBIGUOUS_PRIORITY,
                f"From {source!r}, transitions to {', '.join(map(repr, targets))} share "
                f"priority {priority}; when more than one condition holds the first in the "
                "file wins, so give them distinct priorities if the order matters.",
                ctx.transition_path(group[1][0]),
                states=(source, *targets),
            )


def _in_file_order(ctx: JourneyContext, sources: set[str]) -> list[str]:
    """``sources`` in the order their first transition comes in the file."""
    if not sources:
        return []
    return [source for source in ctx.sources if source in sources]


@journey_rule(Code.NO_FALLBACK)
def check_no_fallback(ctx: JourneyContext) -> Iterator[Finding]:
    """A state that does not wait should always have a way on."""
    states = ctx.journey.states
    for index in ctx.movers:
        state = states[index]
        if state.name in ctx.sure or state.name not in ctx.sources:
            continue  # an always-true exit, or no exit at all (a dead_end)
        yield ctx.finding(
            Code.NO_FALLBACK,
            f"{state.state_type.value.capitalize()} state {state.name!r} has only "
            "conditional exits; when none holds the conversation stops there. Add an "
            "unconditional transition with a low priority as the fallback.",
            ("journeys", ctx.index, "states", index),
            states=(state.name,),
        )
