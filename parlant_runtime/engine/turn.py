"""One turn, computed: from the stored position and a customer message to everything
the turn changes (events, position, variables, usage), without writing anything.

This module makes the turn semantics of ``docs/architecture.md`` true, one step
after another; :mod:`parlant_runtime.engine.runtime` loads its inputs and commits
its outcome. The steps, in order: the message and any variables set with it are
recorded; natural-language conditions are decided in one batch (:mod:`.natural`);
with no active journey the first enabled journey (in bundle order) whose activation
condition holds is entered; in a chat state the transitions are tried in priority
order and the first eligible one is taken (the engine decides, the journey's
machine records the move); entering states runs tool states, passes through
decision states and skippable states, and stops at chat and final states, within
:data:`MAX_CHAIN` steps (:mod:`.transition`, tool states in :mod:`.tool_steps`);
guidelines are matched and their tools called (:mod:`.guidelines`); the reply is
composed (:mod:`.reply`). Every step reads and changes one working state
(:mod:`.turn_state`). Anything that goes wrong inside (a tool that fails, a chain
that does not stop, a decision with no exit) becomes an error event and the
session stays at its last waiting state.

Plug-ins (the condition evaluator, the response generator) are code the runtime
does not own: each call runs under :data:`PLUGIN_TIMEOUT` seconds and all of a
turn's together under its budget (:data:`TURN_BUDGET`); one that raises, hangs or
answers data of the wrong shape writes an error event, and the turn goes on as if
it had said nothing (conditions false, the built-in reply).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from parlant_runtime.engine import knowledge
from parlant_runtime.engine import tools as tooling
from parlant_runtime.engine.compose import (
    ResponseGenerator,
)
from parlant_runtime.engine.conditions import (
    ConditionEvaluator,
)
from parlant_runtime.engine.guidelines import matched_guidelines, run_guideline_tools
from parlant_runtime.engine.knowledge import Retriever
from parlant_runtime.engine.natural import understand
from parlant_runtime.engine.reply import DEFAULT_NO_MATCH, compose_reply
from parlant_runtime.engine.trace import Trace
from parlant_runtime.engine.transition import MAX_CHAIN, activate, advance
from parlant_runtime.engine.turn_state import (
    PLUGIN_TIMEOUT,
    PRIVATE_REASON,
    RUNTIME_KEY,
    TURN_BUDGET,
    TurnInput,
    TurnState,
    value_type_of,
)
from parlant_runtime.engine.understanding import (
    TokenSink,
    Understander,
)
from parlant_runtime.engine.usage import Counter, Entity, Usage, UsageKey
from parlant_runtime.model import (
    EventType,
)
from parlant_runtime.storage.port import NewEvent, VariableChange

__all__ = [
    "DEFAULT_NO_MATCH",
    "MAX_CHAIN",
    "PLUGIN_TIMEOUT",
    "PRIVATE_REASON",
    "RUNTIME_KEY",
    "TURN_BUDGET",
    "TurnInput",
    "TurnOutcome",
    "record_message",
    "run_turn",
    "value_type_of",
]

KNOWLEDGE_TIMEOUT = 5.0
"""Seconds the knowledge-base search of a turn may take."""

CENT_MICROS = 10_000
"""Millionths of a dollar in a cent: the ``cost`` counters count whole cents."""


@dataclass
class TurnOutcome:
    """What a turn changes, ready to commit."""

    events: list[NewEvent]
    journey_id: UUID | None
    state_id: UUID | None
    variables: list[VariableChange]
    metadata: dict[str, Any]
    usage: Usage
    replies: list[str]
    guidelines: list[str]
    trace: Trace
    tool_calls: list[str]


async def _retrieve(turn: TurnState, retriever: Retriever) -> None:
    """Search the agent's knowledge bases for the message (one batch); see
    :mod:`parlant_runtime.engine.knowledge`. A retriever that fails or takes longer
    than :data:`KNOWLEDGE_TIMEOUT` seconds writes an error event; ``kb`` stays empty."""
    links = turn.agent.stored.bundle.knowledge_bases
    queries = knowledge.queries_for(links, turn.inp.message or "", turn.agent.stored.workspace_id)
    if not queries:
        return
    try:
        found = await asyncio.wait_for(retriever.retrieve(queries), KNOWLEDGE_TIMEOUT)
        turn.kb, turn.trace.knowledge = knowledge.select(links, queries, found)
        for link in links:
            if link.enabled:
                turn.count(UsageKey(Entity.AGENT_KNOWLEDGE_BASE, link.id, Counter.SEARCH_COUNT))
    except TimeoutError:
        turn.error(f"the knowledge-base search took longer than {KNOWLEDGE_TIMEOUT} s")
    except Exception as exc:  # the plugin's failure, not the turn's
        turn.error(f"the knowledge-base search failed: {type(exc).__name__}: {exc}")


def _account(turn: TurnState) -> None:
    """Tokens and cost of the turn's model calls: into the trace and the usage counters
    of the session (``tokens_used``, ``cost``) and the agent (``total_tokens_used``,
    ``total_cost``). Costs are counted in whole cents: the session's exact total, in
    millionths of a dollar, is kept in its metadata, and a counter moves by the cents
    that total crosses."""
    usage = turn.model_usage
    if not usage.calls:
        return
    turn.trace.model = usage.to_dict()
    session_id = turn.inp.session.id
    agent_id = turn.agent.stored.agent_id
    if usage.tokens:
        turn.count(UsageKey(Entity.SESSION, session_id, Counter.TOKENS_USED), usage.tokens)
        turn.count(UsageKey(Entity.AGENT, agent_id, Counter.TOTAL_TOKENS_USED), usage.tokens)
    if usage.cost_micros:
        before = int(turn.book.get("cost_micros", 0))
        after = before + usage.cost_micros
        turn.book["cost_micros"] = after
        cents = after // CENT_MICROS - before // CENT_MICROS
        if cents:
            turn.count(UsageKey(Entity.SESSION, session_id, Counter.COST), cents)
            turn.count(UsageKey(Entity.AGENT, agent_id, Counter.TOTAL_COST), cents)


def record_message(inp: TurnInput, *, idempotency_key: str | None = None) -> TurnOutcome:
    """A turn that does not answer (``manual`` or ``paused``): the message and the
    variables set with it are recorded; position and bookkeeping stay as they are.

    Raises:
        InvalidData: a variable set with the message does not fit its declared type.
    """
    turn = TurnState(inp, {})
    if inp.message is not None:
        turn.emit(
            EventType.CUSTOMER_MESSAGE, {"text": inp.message}, idempotency_key=idempotency_key
        )
        turn.count(inp.agent.messages)
    for key, value in inp.set_variables.items():
        turn.set_variable(key, value, source="caller")
    return TurnOutcome(
        events=turn.events,
        journey_id=inp.session.current_journey_id,
        state_id=inp.session.current_state_id,
        variables=turn.changes,
        metadata=dict(inp.session.metadata),
        usage=turn.usage,
        replies=[],
        guidelines=[],
        trace=turn.trace,
        tool_calls=[],
    )


async def run_turn(
    inp: TurnInput,
    *,
    evaluator: ConditionEvaluator | Understander,
    generator: ResponseGenerator,
    tools: tooling.ToolRegistry,
    record_message: bool = True,
    idempotency_key: str | None = None,
    retriever: Retriever | None = None,
    plugin_timeout: float = PLUGIN_TIMEOUT,
    turn_budget: float = TURN_BUDGET,
    sink: TokenSink | None = None,
) -> TurnOutcome:
    """Compute one turn (see the module docstring).

    ``sink`` receives the reply's text as a generator that streams produces it.
    """
    turn = TurnState(inp, {}, plugin_timeout=plugin_timeout, turn_budget=turn_budget)
    if record_message and inp.message is not None:
        turn.emit(
            EventType.CUSTOMER_MESSAGE, {"text": inp.message}, idempotency_key=idempotency_key
        )
        turn.count(inp.agent.messages)
    for key, value in inp.set_variables.items():
        turn.set_variable(key, value, source="caller")
    if retriever is not None and inp.message is not None:
        await _retrieve(turn, retriever)
    if inp.message is not None:
        await understand(turn, evaluator)
    if turn.journey is None:
        await activate(turn, tools)
    else:
        await advance(turn, tools)
    guidelines = matched_guidelines(turn)
    turn.trace.guidelines = [g.spec.name or g.spec.action for g in guidelines]
    await run_guideline_tools(turn, guidelines, tools)
    replies = []
    for reply in await compose_reply(turn, guidelines, generator, sink):
        replies.append(reply.text)
        state_id = None
        if turn.journey is not None and turn.state is not None:
            state_id = turn.journey.states[turn.state].spec.id
        turn.emit(
            EventType.AGENT_MESSAGE,
            {"text": reply.text},
            journey_id=turn.journey.spec.id if turn.journey else None,
            state_id=state_id,
        )
    _account(turn)
    turn.book["visited"] = turn.visited
    metadata = {**inp.session.metadata, RUNTIME_KEY: turn.book}
    if turn.events:
        last = turn.events[-1]
        turn.events[-1] = last.model_copy(
            update={"metadata": {**last.metadata, "trace": turn.trace.stored()}}
        )
    journey_id = turn.journey.spec.id if turn.journey is not None else None
    state_id = (
        turn.journey.states[turn.state].spec.id
        if turn.journey is not None and turn.state is not None
        else None
    )
    return TurnOutcome(
        events=turn.events,
        journey_id=journey_id,
        state_id=state_id,
        variables=turn.changes,
        metadata=metadata,
        usage=turn.usage,
        replies=replies,
        guidelines=[g.spec.name or g.spec.action for g in guidelines],
        trace=turn.trace,
        tool_calls=turn.tool_calls,
    )
