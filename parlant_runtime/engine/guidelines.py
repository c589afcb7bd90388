"""Guidelines in a turn: which match, and the tools the matched ones name.

The agent's enabled guidelines whose condition holds, plus the active journey's
links (link enabled, guideline condition and journey-specific condition both hold,
priority = override or the guideline's); a guideline linked from the active journey
is matched through its link only. Order: priority, then bundle order. Expression
conditions are decided in one batch (:mod:`.batch`).
"""

from __future__ import annotations

from collections.abc import Sequence

from parlant_runtime.engine import tools as tooling
from parlant_runtime.engine.compiled import (
    CompiledGuideline,
)
from parlant_runtime.engine.tool_steps import call
from parlant_runtime.engine.turn_state import (
    TurnState,
)

__all__ = ["matched_guidelines", "run_guideline_tools"]


def matched_guidelines(turn: TurnState) -> list[CompiledGuideline]:
    if len(turn.agent.guideline_batch) > 1:
        turn.decided = turn.agent.guideline_batch.evaluate(turn.condition_context())
    linked = {g.spec.id: g for g in turn.journey.guidelines} if turn.journey is not None else {}
    matched: list[CompiledGuideline] = []
    for guideline in turn.agent.guidelines:
        if guideline.spec.id in linked:
            continue  # the journey's link decides for it
        if turn.check(guideline.label, guideline.condition):
            matched.append(guideline)
    for link in linked.values():
        label = f"{turn.journey.title if turn.journey else ''} guideline {link.spec.name}"
        if turn.check(label, link.condition) and (
            link.link_condition is None or turn.check(f"{label} (journey)", link.link_condition)
        ):
            matched.append(link)
    matched.sort(key=lambda g: (-g.priority, g.order))
    for guideline in matched:
        turn.count(guideline.matched)
        if guideline.link_matched is not None:
            turn.count(guideline.link_matched)
    return matched


async def run_guideline_tools(
    turn: TurnState, guidelines: Sequence[CompiledGuideline], tools: tooling.ToolRegistry
) -> None:
    """Call the tools named by the matched guidelines, in priority order, each tool once
    per turn; arguments come from the variables of the tool's required parameters.
    A failed call writes an error event and leaves ``tool.<name>`` unset; the turn goes
    on (no state is involved, so nothing moves back)."""
    called: set[str] = set()
    for guideline in guidelines:
        label = f"guideline {guideline.spec.name or guideline.order}"
        for name in guideline.spec.tools:
            if name in called:
                continue
            called.add(name)
            tool = turn.agent.tools.get(name)
            if tool is None:
                turn.error(f"{label} names tool {name!r}, which the agent lacks")
                continue
            outcome = await call(turn, tool, {}, tools, by=label)
            if isinstance(outcome, str):
                turn.error(outcome)
            elif not outcome.advances:
                turn.error(outcome.error or f"tool {name!r} failed")
            else:
                turn.tool_results[name] = outcome.result
                turn.private_tools.discard(name)
