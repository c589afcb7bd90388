"""Rules about a journey's parts: initial and final states, state content, names.

Each function is one rule and reports one code.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from parlant_runtime.bundle.schema import StateSpec
from parlant_runtime.model import StateType
from parlant_runtime.validation.context import BundleContext, JourneyContext
from parlant_runtime.validation.findings import Code, Finding
from parlant_runtime.validation.registry import bundle_rule, journey_rule

__all__: list[str] = []  # rules register themselves; nothing to import from here

_TOOL_CONFIG_KEYS = frozenset({"arguments", "resultVariable"})
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@journey_rule(Code.NO_INITIAL_STATE)
def check_no_initial_state(ctx: JourneyContext) -> Iterator[Finding]:
    """A journey needs a state to start in."""
    if not ctx.initial_states:
        where = ("journeys", ctx.index, "states")
        hint = (
            "mark the first step with `isInitial: true`"
            if ctx.journey.states
            else "add states, one of them with `isInitial: true`"
        )
        yield ctx.finding(
            Code.NO_INITIAL_STATE, f"Journey {ctx.title!r} has no initial state; {hint}.", where
        )


@journey_rule(Code.MULTIPLE_INITIAL_STATES)
def check_multiple_initial_states(ctx: JourneyContext) -> Iterator[Finding]:
    """Exactly one state may be initial, or the entry point is a guess."""
    initial = ctx.initial_states
    if len(initial) > 1:
        listed = ", ".join(initial)
        yield ctx.finding(
            Code.MULTIPLE_INITIAL_STATES,
            f"States {listed} are all initial; keep `isInitial: true` on one of them.",
            ctx.state_path(initial[1]),
            states=initial,
        )


@journey_rule(Code.NO_FINAL_STATE)
def check_no_final_state(ctx: JourneyContext) -> Iterator[Finding]:
    """A journey that cannot end keeps every customer in it forever."""
    if ctx.journey.states and not ctx.final_states:
        yield ctx.finding(
            Code.NO_FINAL_STATE,
            f"Journey {ctx.title!r} has no final state; add one "
            "(`stateType: final, isFinal: true`) and a transition into it.",
            ("journeys", ctx.index, "states"),
        )


@journey_rule(Code.FINAL_HAS_OUTGOING)
def check_final_has_outgoing(ctx: JourneyContext) -> Iterator[Finding]:
    """Entering a final state ends the journey, so its exits can never be taken."""
    if not any(name in ctx.sources for name in ctx.final_states):
        return
    transitions = ctx.journey.transitions
    exits = ctx.by_source
    for index in sorted(i for name in ctx.final_states for i in exits.get(name, ())):
        transition = transitions[index]
        yield ctx.finding(
            Code.FINAL_HAS_OUTGOING,
            f"Final state {transition.from_state!r} has a transition to "
            f"{transition.to_state!r}, which can never be taken; remove it or "
            "make the state non-final.",
            ctx.transition_path(index),
            states=(transition.from_state, transition.to_state),
        )


@journey_rule(Code.INVALID_STATE)
def check_invalid_state(ctx: JourneyContext) -> Iterator[Finding]:
    """A state's content must fit its type."""
    states = ctx.journey.states
    for index in ctx.looked_at:  # the other states plainly fit their type
        state = states[index]
        if state.state_type is StateType.TOOL and _plain_tool_state(ctx, state):
            continue
        at = ("journeys", ctx.index, "states", index)
        for field, problem in _state_problems(ctx, state.name, index):
            yield ctx.finding(
                Code.INVALID_STATE,
                f"State {state.name!r} {problem}.",
                (*at, field) if field else at,
                states=(state.name,),
            )


def _plain_tool_state(ctx: JourneyContext, state: StateSpec) -> bool:
    """Whether a tool state certainly fits: it names a tool, is not marked final, and
    its ``toolConfig`` has only known keys, arguments the tool declares and a valid
    result variable (what :func:`_state_problems` would find nothing wrong with)."""
    config = state.tool_config
    if not state.tool or state.is_final or not config.keys() <= _TOOL_CONFIG_KEYS:
        return False
    arguments = config.get("arguments", {})
    if not isinstance(arguments, dict):
        return False
    declared = ctx.bundle.tool_parameters.get(state.tool)
    if isinstance(declared, dict) and not arguments.keys() <= declared.keys():
        return False
    result = config.get("resultVariable")
    return result is None or (isinstance(result, str) and _IDENTIFIER.match(result) is not None)


def _state_problems(ctx: JourneyContext, name: str, index: int) -> Iterator[tuple[str, str]]:
    state = ctx.journey.states[index]
    kind = state.state_type
    if kind is StateType.CHAT and not (state.chat_prompt or "").strip():
        yield "chatPrompt", "is a chat state without a `chatPrompt`; write what the agent says"
    if kind is StateType.TOOL and not state.tool:
        yield "tool", "is a tool state without a `tool`; name the tool it calls"
    if kind is StateType.DECISION and not (state.condition or "").strip():
        yield (
            "condition",
            ("is a decision state without a `condition`; name the question it decides"),
        )
    if state.is_initial and state.ends_journey:
        yield "isInitial", "is both initial and final; a journey needs at least one step"
    if state.is_final and kind is not StateType.FINAL:
        yield (
            "isFinal",
            (f"is marked `isFinal` but is a {kind.value} state; use `stateType: final`"),
        )
    if kind is not StateType.TOOL and state.tool:
        yield "tool", f"names a tool but is a {kind.value} state; only tool states call tools"
    if kind is not StateType.TOOL and state.tool_config:
        yield (
            "toolConfig",
            (f"has a `toolConfig` but is a {kind.value} state; only tool states use it"),
        )
    if kind is StateType.TOOL:
        yield from _tool_config_problems(ctx, index)


def _tool_config_problems(ctx: JourneyContext, index: int) -> Iterator[tuple[str, str]]:
    state = ctx.journey.states[index]
    config = state.tool_config
    for key in sorted(set(config) - _TOOL_CONFIG_KEYS):
        yield (
            "toolConfig",
            (f"has an unknown `toolConfig` key {key!r}; known keys: arguments, resultVariable"),
        )
    arguments = config.get("arguments", {})
    if not isinstance(arguments, dict):
        yield "toolConfig", "has `toolConfig.arguments` that is not a mapping of parameter names"
    elif state.tool in ctx.bundle.tool_names:
        declared = ctx.bundle.tool_parameters[state.tool]
        if isinstance(declared, dict):
            for name in sorted(set(arguments) - set(declared)):
                yield (
                    "toolConfig",
                    (
                        f"passes argument {name!r}, which tool {state.tool!r} does not declare "
                        f"(its parameters: {', '.join(sorted(declared)) or 'none'})"
                    ),
                )
    result = config.get("resultVariable")
    if result is not None and not (isinstance(result, str) and _IDENTIFIER.match(result)):
        yield (
            "toolConfig",
            (f"has `toolConfig.resultVariable` {result!r}, which is not a variable name"),
        )


@journey_rule(Code.DANGLING_REFERENCE)
def check_dangling_transition_states(ctx: JourneyContext) -> Iterator[Finding]:
    """A transition must join two states of its own journey."""
    if not ctx.dangling:
        return
    names = ctx.successors
    for index, transition in enumerate(ctx.journey.transitions):
        for end, name in (("from", transition.from_state), ("to", transition.to_state)):
            if name in names:
                continue
            elsewhere = ctx.bundle.journeys_of_state.get(name)
            if elsewhere:
                reason = f"belongs to journey {elsewhere[0]!r}, not to {ctx.title!r}"
            else:
                reason = "does not exist"
            guess = ctx.guesses.get(name)
            fix = f"did you mean {guess!r}?" if guess else "name a state of this journey."
            yield ctx.finding(
                Code.DANGLING_REFERENCE,
                f"Transition {end} state {name!r} {reason}; {fix}",
                (*ctx.transition_path(index), end),
                states=(name,),
            )


@journey_rule(Code.DANGLING_REFERENCE)
def check_dangling_state_tools(ctx: JourneyContext) -> Iterator[Finding]:
    """A tool state must call a tool the bundle declares."""
    states = ctx.journey.states
    for index in ctx.tool_users:
        state = states[index]
        if state.tool not in ctx.bundle.tool_names:
            yield ctx.finding(
                Code.DANGLING_REFERENCE,
                f"State {state.name!r} calls tool {state.tool!r}, which `tools` does not "
                "declare; declare it or fix the name.",
                ("journeys", ctx.index, "states", index, "tool"),
                states=(state.name,),
            )


@journey_rule(Code.DANGLING_REFERENCE)
def check_dangling_guideline_links(ctx: JourneyContext) -> Iterator[Finding]:
    """A journey's guideline link must name a guideline of the agent."""
    for index, link in enumerate(ctx.journey.guidelines):
        if link.guideline not in ctx.bundle.guideline_names:
            yield ctx.finding(
                Code.DANGLING_REFERENCE,
                f"Journey {ctx.title!r} links guideline {link.guideline!r}, which no "
                "guideline is named; give the guideline that `name` or fix the link.",
                ("journeys", ctx.index, "guidelines", index, "guideline"),
            )


@bundle_rule(Code.DANGLING_REFERENCE)
def check_dangling_guideline_tools(ctx: BundleContext) -> Iterator[Finding]:
    """A guideline may only offer tools the bundle declares."""
    for index, guideline in enumerate(ctx.bundle.guidelines):
        for position, name in enumerate(guideline.tools):
            if name not in ctx.tool_names:
                label = repr(guideline.name) if guideline.name else f"#{index}"
                yield ctx.finding(
                    Code.DANGLING_REFERENCE,
                    f"Guideline {label} uses tool {name!r}, which `tools` does not declare; "
                    "declare it or fix the name.",
                    ("guidelines", index, "tools", position),
                )
