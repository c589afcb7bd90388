"""Rules about paths through a journey graph: reachability, traps and loops.

Each finding about paths carries a concrete example path, so the author can follow
it in the file (or in the diagram) instead of trusting the validator.
"""

from __future__ import annotations

from collections.abc import Iterator

from parlant_runtime.validation.context import JourneyContext, cycles
from parlant_runtime.validation.findings import Code, Finding
from parlant_runtime.validation.registry import journey_rule

__all__: list[str] = []  # rules register themselves; nothing to import from here


@journey_rule(Code.UNREACHABLE_STATE)
def check_unreachable_state(ctx: JourneyContext) -> Iterator[Finding]:
    """Every state must be reachable from the initial state."""
    if not ctx.initial_states:
        return  # no_initial_state says it; every state would be unreachable
    reached = ctx.reachable
    if any(name in reached for name in ctx.lost):
        return  # a transition that names no state (dangling_reference) may be the way in
    if len(reached) == len(ctx.successors):
        return  # every state is reached
    for name in ctx.names:
        if name not in reached and name not in ctx.orphans:
            yield ctx.finding(
                Code.UNREACHABLE_STATE,
                f"No path from the initial state reaches {name!r}; add a transition "
                "into it or remove it.",
                ctx.state_path(name),
                states=(name,),
            )


@journey_rule(Code.DEAD_END)
def check_dead_end(ctx: JourneyContext) -> Iterator[Finding]:
    """A state that is not final needs a way out."""
    successors = ctx.successors
    for name in ctx.names:
        if successors[name] or name in ctx.final_states:
            continue
        if name in ctx.lost:
            continue  # it has an exit, to a name that is no state: dangling_reference
        example = ctx.path_to(name) if ctx.is_reachable(name) else None
        yield ctx.finding(
            Code.DEAD_END,
            f"State {name!r} is not final and has no outgoing transition, so a "
            "conversation that gets "
            "there is stuck; add a transition or make it final.",
            ctx.state_path(name),
            states=(name,),
            example=example,
        )


@journey_rule(Code.CANNOT_REACH_FINAL)
def check_cannot_reach_final(ctx: JourneyContext) -> Iterator[Finding]:
    """From every reachable state some final state must stay reachable."""
    if not ctx.final_states:
        return  # no_final_state says it once instead of once per state
    reached, finishing, successors = ctx.reachable, ctx.can_reach_final, ctx.successors
    if reached <= finishing:
        return  # every reachable state can finish
    trapped = [
        name
        for name in ctx.names
        # a state with no way out is a dead_end
        if name in reached and name not in finishing and successors[name]
    ]
    if not trapped:
        return
    lost_way = set(ctx.lost)  # states whose way on may be a transition naming no state
    for name in ctx.lost:
        lost_way |= ctx.ancestors(name)
    for name in trapped:
        if name in lost_way:
            continue
        yield ctx.finding(
            Code.CANNOT_REACH_FINAL,
            f"From {name!r} no final state can be reached: every path out of it "
            "loops back among states that never finish; add a transition towards a "
            "final state.",
            ctx.state_path(name),
            states=(name,),
            example=ctx.path_to(name),
        )


@journey_rule(Code.AUTO_ADVANCE_CYCLE)
def check_auto_advance_cycle(ctx: JourneyContext) -> Iterator[Finding]:
    """States that do not wait (tool, decision) must not form a loop."""
    moving = ctx.moving
    for cycle in cycles(ctx.successors, moving, frozenset(moving)):
        yield ctx.finding(
            Code.AUTO_ADVANCE_CYCLE,
            f"States {_listed(cycle)} form a loop that never waits for the customer and "
            "can run forever within one turn; route one of them through a chat state.",
            ctx.state_path(cycle[0]),
            states=tuple(dict.fromkeys(cycle)),
            example=cycle,
        )


@journey_rule(Code.REVISIT_CYCLE)
def check_revisit_cycle(ctx: JourneyContext) -> Iterator[Finding]:
    """A journey that forbids revisiting cannot use its cycles."""
    if ctx.journey.allow_revisiting:
        return
    for cycle in cycles(ctx.successors, ctx.successors, None):
        if not ctx.waiting_states.intersection(cycle):
            continue  # a loop that never waits is an auto_advance_cycle, reported as such
        yield ctx.finding(
            Code.REVISIT_CYCLE,
            f"Journey {ctx.title!r} forbids revisiting, but {_listed(cycle)} form a cycle, "
            f"so the transition back into {cycle[0]!r} can never fire; allow revisiting "
            "or break the cycle.",
            ctx.state_path(cycle[0]),
            states=tuple(dict.fromkeys(cycle)),
            example=cycle,
        )


def _listed(cycle: tuple[str, ...]) -> str:
    return " -> ".join(cycle)
