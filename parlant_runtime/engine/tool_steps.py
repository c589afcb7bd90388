"""Tool calls inside a turn: a tool state's call, and the one call every tool call
goes through (arguments, stable call id, events, usage, trace).

Arguments that may carry a private value are hidden in the events, and a call that
carries one (in or out) reports no detail that could quote it
(``docs/engine.md``, "Private values"). The calls themselves, with retries and
``errorHandling``, are :mod:`.tools`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from parlant_runtime.bundle.schema import ToolSpec
from parlant_runtime.engine import tools as tooling
from parlant_runtime.engine.compiled import (
    CompiledJourney,
)
from parlant_runtime.engine.turn_state import (
    TurnState,
)

__all__ = ["call", "run_tool_state"]


async def call(
    turn: TurnState,
    tool: ToolSpec,
    tool_config: Mapping[str, Any],
    tools: tooling.ToolRegistry,
    *,
    by: str,
    private_result: bool = False,
) -> tooling.ToolOutcome | str:
    """Build the arguments and call ``tool``: its events, usage and trace entry are
    written; the outcome, or why no call was made. Arguments that may carry a private
    value are hidden in the events, and a call that carries one (in or out) reports
    no detail that could quote it."""
    hidden = tooling.private_argument_names(tool, tool_config, turn.private)
    try:
        arguments = tooling.build_arguments(
            tool,
            tool_config,
            turn.template_context() | {"vars": turn.values},
            turn.values,
            private_arguments=hidden,
        )
    except tooling.ToolError as exc:
        turn.trace.tools.append({"tool": tool.name, "by": by, "called": False, "error": str(exc)})
        return f"tool {tool.name!r}: {exc}"
    # the id is shown in events: a hash of a short private value (a PIN) could be
    # reversed by trying every value, so private arguments do not enter it
    keyed = {n: tooling.PRIVATE_PLACEHOLDER if n in hidden else v for n, v in arguments.items()}
    call_id = tooling.stable_call_id(
        turn.call_key, tool.name, turn.tool_calls.count(tool.name), keyed
    )
    outcome = await tooling.call_tool(
        tool,
        tools.get(tool.name),
        arguments,
        call_id=call_id,
        private=private_result or bool(hidden),
    )
    turn.tool_calls.append(tool.name)
    journey_id = turn.journey.spec.id if turn.journey is not None else None
    state_id = (
        turn.journey.states[turn.state].spec.id
        if turn.journey is not None and turn.state is not None
        else None
    )
    turn.events.extend(
        tooling.tool_events(
            outcome,
            journey_id,
            state_id,
            private_arguments=hidden,
            private_result=private_result,
        )
    )
    integration = tooling.route(tool)
    deltas = tooling.usage_deltas(outcome, tool.id, integration.id if integration else None)
    for key, delta in deltas.items():
        turn.count(key, delta)
    turn.trace.tools.append(
        {
            "tool": tool.name,
            "by": by,
            "called": outcome.attempts > 0,
            "call_id": outcome.tool_call_id,
            "ok": outcome.ok,
            "attempts": outcome.attempts,
            "fell_back": outcome.fell_back,
            "error": turn.redact(outcome.error) if outcome.error else None,
        }
    )
    return outcome


async def run_tool_state(
    turn: TurnState, journey: CompiledJourney, name: str, tools: tooling.ToolRegistry
) -> bool:
    """Call a tool state's tool; ``False`` when the turn must stop (error event written)."""
    state = journey.states[name].spec
    tool = turn.agent.tools.get(state.tool or "")
    if tool is None:
        turn.fall_back(f"state {name!r} names tool {state.tool!r}, which the agent lacks")
        return False
    result_variable = state.tool_config.get("resultVariable")
    private_result = isinstance(result_variable, str) and result_variable in turn.private
    outcome = await call(
        turn,
        tool,
        state.tool_config,
        tools,
        by=f"state {journey.title}/{name}",
        private_result=private_result,
    )
    if isinstance(outcome, str):
        turn.fall_back(outcome)
        return False
    if not outcome.advances:
        turn.fall_back(outcome.error or f"tool {tool.name!r} failed")
        return False
    turn.tool_results[tool.name] = outcome.result
    if private_result:
        turn.private_tools.add(tool.name)
    else:
        turn.private_tools.discard(tool.name)
    if isinstance(result_variable, str) and not turn.set_variable(
        result_variable, outcome.result, source=f"tool:{tool.name}"
    ):
        turn.go_back()
        return False
    return True
