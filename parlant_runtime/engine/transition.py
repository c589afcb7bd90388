"""Moving through a journey within one turn: activation, the transition a state takes,
and entering states until one waits.

With no active journey, the first enabled journey (in bundle order) whose
activation condition holds is entered at its initial state. At a chat state the
transitions are tried in priority order (ties in file order) and the first eligible
one is taken: the engine decides (:func:`next_state`), the journey's ``transitions``
machine records the move (``docs/engine.md``, "One decision per step"). Entering
runs tool states, passes through decision and skippable states, and stops at chat
and final states, within :data:`MAX_CHAIN` states; anything that goes wrong puts
the session back where it last waited.
"""

from __future__ import annotations

from parlant_runtime.engine import tools as tooling
from parlant_runtime.engine.compiled import (
    CompiledJourney,
    CompiledTransition,
)
from parlant_runtime.engine.tool_steps import run_tool_state
from parlant_runtime.engine.trace import TransitionTrace
from parlant_runtime.engine.turn_state import (
    TurnState,
)
from parlant_runtime.model import (
    EventType,
    StateType,
)

__all__ = ["MAX_CHAIN", "activate", "advance", "enter", "next_state"]

MAX_CHAIN = 32
"""Most states one turn may pass through before it stops with an error event."""


async def enter(
    turn: TurnState, journey: CompiledJourney, target: str, tools: tooling.ToolRegistry
) -> None:
    """Enter ``target`` and go on through states that do not wait, within MAX_CHAIN."""
    for _ in range(MAX_CHAIN):
        previous = turn.state if turn.journey is journey else None
        turn.journey, turn.state = journey, target
        state = journey.states[target]
        if target not in turn.visited:
            turn.visited.append(target)
        turn.trace.path.append(f"{journey.title}/{target}")
        turn.emit(
            EventType.JOURNEY_TRANSITION,
            {"journey": journey.title, "from": previous, "to": target},
            journey_id=journey.spec.id,
            state_id=state.spec.id,
        )
        if state.spec.ends_journey:
            turn.count(journey.finished)
            turn.final_prompt = state.prompt
            turn.ended = (journey, target)
            turn.journey, turn.state, turn.visited = None, None, []
            return
        skip = state.skip if journey.spec.allow_skipping else None
        if skip is not None and turn.check(f"{journey.title}/{target} skip", skip):
            nxt = next_state(turn, journey, target)
            if nxt is not None:
                target = nxt
                continue
            # nothing to skip to: the state does its work after all (waits, calls its tool)
        if state.spec.state_type is StateType.CHAT:
            turn.entered_chat = True
            return
        if state.spec.state_type is StateType.TOOL and not await run_tool_state(
            turn, journey, target, tools
        ):
            return
        nxt = next_state(turn, journey, target)
        if nxt is None:
            turn.fall_back(f"{state.spec.state_type.value} state {target!r} has no exit that holds")
            return
        target = nxt
    turn.fall_back(f"the turn passed through {MAX_CHAIN} states without waiting; stopped")


def next_state(turn: TurnState, journey: CompiledJourney, source: str) -> str | None:
    """The target of the first eligible transition from ``source``, tried in priority
    order (ties in file order), or ``None``: the engine decides, the journey's machine
    records the move (``docs/engine.md``, "One decision per step")."""
    taken: CompiledTransition | None = None
    for transition in journey.outgoing.get(source, ()):
        spec = transition.spec
        # every condition is decided (and traced), also after the one taken
        holds = turn.check(f"{journey.title}/{source}->{spec.to_state}", transition.condition)
        if taken is not None:
            outcome = "not tried"
        elif not journey.spec.allow_revisiting and spec.to_state in turn.visited:
            outcome = "revisit forbidden"
        elif holds:
            outcome, taken = "taken", transition
        else:
            outcome = "condition false"
        turn.trace.transitions.append(
            TransitionTrace(source, spec.to_state, spec.priority, outcome, str(spec.id))
        )
    if taken is None or journey.machine is None:
        return None
    turn.count(taken.used)
    return journey.machine.move(source, taken.spec.id)


async def activate(turn: TurnState, tools: tooling.ToolRegistry) -> None:
    """With no active journey: enter the first enabled journey whose activation holds."""
    for journey in turn.agent.journeys:
        if not journey.spec.enabled or journey.initial is None:
            continue
        if any(turn.check(f"journey {journey.title}", c) for c in journey.activation):
            turn.visited = []
            turn.waiting = (None, None)
            turn.waiting_visited = []
            await enter(turn, journey, journey.initial, tools)
            return


async def advance(turn: TurnState, tools: tooling.ToolRegistry) -> None:
    """At a chat state: take the first eligible transition, if any, and go on."""
    journey, state = turn.journey, turn.state
    if journey is None or state is None:
        return
    if journey.states[state].spec.state_type is StateType.CHAT:
        target = next_state(turn, journey, state)
        if target is not None:
            await enter(turn, journey, target, tools)
