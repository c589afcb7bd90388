"""One turn, computed: from the stored position and a customer message to everything
the turn changes (events, position, variables, usage), without writing anything.

This module makes the turn semantics of ``docs/architecture.md`` true;
:mod:`parlant_runtime.engine.runtime` loads its inputs and commits its outcome.
The steps, in order: the message and any variables set with it are recorded;
natural-language conditions are decided in one batch; with no active journey the
first enabled journey (in bundle order) whose activation condition holds is
entered; in a chat state the transitions are tried in priority order (the
machine takes the first eligible); entering states runs tool states, passes
through decision states and skippable states, and stops at chat and final
states, within :data:`MAX_CHAIN` steps; guidelines are matched; the reply is
composed. Anything that goes wrong inside (a tool that fails, a chain that does
not stop, a decision with no exit) becomes an error event and the session stays
at its last waiting state.

Plug-ins (the condition evaluator, the response generator) are code the runtime
does not own: each call runs under :data:`PLUGIN_TIMEOUT` seconds and all of a
turn's together under its budget (:data:`TURN_BUDGET`); one that raises, hangs or
answers data of the wrong shape writes an error event, and the turn goes on as if
it had said nothing (conditions false, the built-in reply).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar, cast
from uuid import UUID, uuid4

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from parlant_runtime.bundle.schema import ToolSpec
from parlant_runtime.engine import knowledge
from parlant_runtime.engine import tools as tooling
from parlant_runtime.engine.compiled import (
    CompiledAgent,
    CompiledCanned,
    CompiledGuideline,
    CompiledJourney,
    CompiledTransition,
    Template,
    natural_texts,
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
from parlant_runtime.engine.conditions import (
    Condition,
    ConditionEvaluator,
    KeywordEvaluator,
    ScriptedEvaluator,
    normalise,
)
from parlant_runtime.engine.knowledge import Retriever
from parlant_runtime.engine.trace import ConditionTrace, ReplyTrace, Trace, TransitionTrace
from parlant_runtime.engine.understanding import (
    CollectSpec,
    ModelUsage,
    TokenSink,
    TurnContext,
    Understander,
    Understanding,
    UnderstandRequest,
    Utterance,
)
from parlant_runtime.engine.usage import Counter, Entity, Usage, UsageKey
from parlant_runtime.errors import TemplateSandboxError
from parlant_runtime.model import (
    CompositionMode,
    EventType,
    Session,
    StateType,
    ValueType,
    Variable,
    value_fits_type,
)
from parlant_runtime.sandbox import ConditionKind
from parlant_runtime.storage.port import InvalidData, NewEvent, VariableChange

__all__ = [
    "DEFAULT_NO_MATCH",
    "MAX_CHAIN",
    "PLUGIN_TIMEOUT",
    "TURN_BUDGET",
    "TurnInput",
    "TurnOutcome",
    "record_message",
    "run_turn",
    "value_type_of",
]

KNOWLEDGE_TIMEOUT = 5.0
"""Seconds the knowledge-base search of a turn may take."""

MAX_CHAIN = 32
"""Most states one turn may pass through before it stops with an error event."""

DEFAULT_NO_MATCH = "I'm sorry, I can't help with that here."
"""The no-match reply of a strict agent that does not set its own."""

PRIVATE_REASON = "cannot be evaluated; the reason depends on a private value, so it is not shown"
"""What the trace says instead of the reason of a condition that may read a private value."""

_TOOL_NAME = re.compile(r"\btool\b")

RUNTIME_KEY = "parlantRuntime"
"""Where the runtime keeps its own bookkeeping in the session's metadata."""

PLUGIN_TIMEOUT = 30.0
"""Seconds one call of a condition evaluator or response generator may take."""

TURN_BUDGET = 60.0
"""Seconds all the plug-in calls of one turn may take together."""

CENT_MICROS = 10_000
"""Millionths of a dollar in a cent: the ``cost`` counters count whole cents."""

_T = TypeVar("_T")


_BUILT_IN_EVALUATORS = (KeywordEvaluator, ScriptedEvaluator)
"""Exactly these types (not subclasses, which may do anything) never wait on anything."""


def _is(plugin: object, method: str) -> bool:
    """Whether ``plugin`` has ``method`` (a structural check; ``isinstance`` on a
    runtime-checkable protocol costs more than a whole turn of the built-in plug-ins)."""
    return callable(getattr(plugin, method, None))


class _Failed:
    """What :meth:`_Turn.guarded` returns for a plug-in call that failed (error recorded)."""


FAILED = _Failed()


@dataclass(frozen=True)
class TurnInput:
    """What a turn starts from."""

    session: Session
    agent: CompiledAgent
    variables: list[Variable]
    message: str | None
    set_variables: Mapping[str, Any] = field(default_factory=dict)
    call_key: str | None = None
    """What makes tool call ids stable when the turn is computed again (the session and
    the message's idempotency key); random when ``None``."""
    history: tuple[Utterance, ...] = ()
    """The conversation before this message, oldest first (for language-model plug-ins)."""


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


class _Turn:
    """The mutable working state of one turn."""

    def __init__(
        self,
        inp: TurnInput,
        natural: Mapping[str, bool],
        *,
        plugin_timeout: float = PLUGIN_TIMEOUT,
        turn_budget: float = TURN_BUDGET,
    ) -> None:
        self.inp = inp
        self.agent = inp.agent
        self.natural = natural
        self.rationales: dict[str, str] = {}
        """The understander's reason per natural-language condition (normalised text)."""
        self.model_usage = ModelUsage()
        self.plugin_timeout = plugin_timeout
        self.turn_budget = turn_budget
        self.deadline = time.monotonic() + turn_budget
        self.trace = Trace()
        self.decided: dict[Condition, tuple[bool, str | None]] = {}
        """Expression conditions decided in advance, in one batch (the reply phase only:
        the context no longer changes there)."""
        self.events: list[NewEvent] = []
        self.changes: list[VariableChange] = []
        self.usage: Usage = {}
        self.tool_calls: list[str] = []
        self.offered: dict[str, CompiledCanned] = {}
        """The canned responses offered to the reply, by the name their candidate has."""
        self.tool_results: dict[str, Any] = {}
        self.private_tools: set[str] = set()
        """Tools whose last result went to a private variable: hidden from templates."""
        self._taint: dict[tuple[str, frozenset[str], frozenset[str]], bool] = {}
        self.call_key = inp.call_key or uuid4().hex
        self.kb: list[dict[str, Any]] = []
        """The knowledge-base passages of the turn, in order (``kb`` in templates)."""
        # a variable without a value (declared only, or set to null) is undefined: it is
        # left out, so ``vars.x is defined`` is false and no tool receives it as null
        self.values: dict[str, Any] = {v.key: v.value for v in inp.variables if v.value is not None}
        self.private = {v.key for v in inp.variables if v.is_private}
        self.types = {v.key: v.value_type for v in inp.variables}
        book = dict(inp.session.metadata.get(RUNTIME_KEY, {}))
        self.book = book
        # the states entered since the journey began, each once, in order of first visit:
        # all the no-revisit rule needs, and bounded by the journey's size however long
        # the session loops (sessions stored before kept every entry: made distinct here)
        self.visited: list[str] = list(dict.fromkeys(book.get("visited", [])))
        self.journey = self.agent.journey_by_id(inp.session.current_journey_id)
        self.state: str | None = None
        state_id = inp.session.current_state_id
        if self.journey is not None:
            self.state = self.journey.by_id.get(state_id) if state_id is not None else None
            if self.state is None:  # the stored state is gone (republished): leave the journey
                self.journey = None
        self.waiting = (self.journey, self.state)
        self.waiting_visited = list(self.visited)
        self.entered_chat = False
        self.final_prompt: Template | None = None
        self.ended: tuple[CompiledJourney, str] | None = None
        """The journey and final state this turn ended in: the rest of the turn (guidelines,
        the reply) is composed there, although the session is in no journey afterwards."""

    # ------------------------------------------------------------------ context

    def _base(self) -> dict[str, Any]:
        session = self.inp.session
        # outside a journey the keys are there and none, so ``state.name == 'x'`` is
        # plainly false rather than a condition that cannot be evaluated
        # a turn that entered a final state is composed in it, so that ``state.name ==
        # '<final state>'`` selects the journey's last message
        here = (self.journey, self.state) if self.journey is not None else self.ended
        journey: dict[str, Any] = {"title": None}
        state: dict[str, Any] = {"name": None, "type": None}
        if here is not None and here[0] is not None and here[1] is not None:
            spec = here[0].states[here[1]].spec
            journey = {"title": here[0].title}
            state = {"name": spec.name, "type": spec.state_type.value}
        return {
            "message": self.inp.message or "",
            "session": {
                "id": str(session.id),
                "mode": session.mode.value,
                "status": session.status.value,
                "customer": session.customer_id,
                "metadata": {k: v for k, v in session.metadata.items() if k != RUNTIME_KEY},
            },
            "journey": journey,
            "state": state,
            "tool": dict(self.tool_results),
            "kb": list(self.kb),
            "mentions": self._mentions,
        }

    def condition_context(self) -> dict[str, Any]:
        return {**self._base(), "vars": dict(self.values)}

    def template_context(self) -> dict[str, Any]:
        public = {k: v for k, v in self.values.items() if k not in self.private}
        base = self._base()
        if self.private_tools:
            base["tool"] = {
                k: v for k, v in self.tool_results.items() if k not in self.private_tools
            }
        return {**base, "vars": public}

    def _mentions(self, term: str) -> bool:
        message = (self.inp.message or "").casefold()
        wanted = normalise(term)
        words = {wanted}
        for spec in self.agent.stored.bundle.terms:
            names = {normalise(spec.name), *(normalise(s) for s in spec.synonyms)}
            if wanted in names:
                words |= names
        return any(re.search(rf"\b{re.escape(word)}\b", message) for word in words if word)

    # ------------------------------------------------------------------ conditions

    def may_read_private(self, text: str | None) -> bool:
        """Whether a condition or template text may read a private value: a private
        variable, ``vars`` as a whole, or the result of a tool whose result is private.
        Whatever such a text produces (a value, an error message) is tainted."""
        if not text or not (self.private or self.private_tools):
            return False
        memo = (text, frozenset(self.private), frozenset(self.private_tools))
        known = self._taint.get(memo)
        if known is None:
            known = tooling.reads_private(text, self.private) or bool(
                self.private_tools and _TOOL_NAME.search(text)
            )
            self._taint[memo] = known
        return known

    def redact(self, text: str) -> str:
        """``text`` with the values of private variables blanked (for traces and events)."""
        for key in self.private:
            value = self.values.get(key)
            if value not in (None, "") and str(value) in text:
                text = text.replace(str(value), "[private]")
        return text

    def check(self, where: str, condition: Condition) -> bool:
        known = self.decided.get(condition)
        if known is not None and known[1] is None:  # decided in a batch, for no reason
            self.trace.conditions.append(self.batched_row(where, condition, known[0]))
            return known[0]
        if known is not None:
            result, reason = known
        else:  # only an expression reads the context: building it is most of a check
            expression = condition.kind is ConditionKind.EXPRESSION
            context = self.condition_context() if expression else {}
            result, reason = condition.evaluate(context, self.natural)
        if reason is not None:
            # a condition that never compiled never ran: its reason comes from its source
            ran = condition.expression is not None
            tainted = ran and self.may_read_private(condition.text)
            reason = PRIVATE_REASON if tainted else self.redact(reason)
        rationale = None
        if self.rationales and condition.text is not None:
            rationale = self.rationales.get(normalise(condition.text))
        self.trace.conditions.append(
            ConditionTrace(where, condition.text, condition.kind.value, result, reason, rationale)
        )
        return result

    def batched_row(self, where: str, condition: Condition, result: bool) -> ConditionTrace:
        """The trace row of a condition decided in a batch, made once per agent version
        and reused by later turns (measured: ``benchmarks/bench_shortcuts.py``)."""
        key = (where, condition, result)
        row = self.agent.trace_rows.get(key)
        if row is None:
            row = ConditionTrace(where, condition.text, condition.kind.value, result)
            self.agent.trace_rows[key] = row
        return row

    # ------------------------------------------------------------------ plug-ins

    async def guarded(
        self, what: str, call: Awaitable[_T], *, built_in: bool = False
    ) -> _T | _Failed:
        """``call``'s answer, or :data:`FAILED` (and an error event) when it raises, takes
        longer than the plug-in timeout or goes past the turn's budget. A ``built_in``
        plug-in (the library's own, which never waits on anything) runs without the
        timer, which would cost more than the call."""
        if built_in:
            try:
                return await call
            except Exception as exc:
                self.error(f"{what} failed: {type(exc).__name__}: {exc}")
                return FAILED
        left = self.deadline - time.monotonic()
        timeout = min(self.plugin_timeout, left)
        if timeout <= 0:
            if asyncio.iscoroutine(call):
                call.close()
            self.error(f"{what} not asked: the turn's budget of {self.turn_budget:g} s is spent")
            return FAILED
        try:
            # a timeout on the running task, not a task per call: a turn makes two calls
            async with asyncio.timeout(timeout):
                return await call
        except TimeoutError:
            if timeout < self.plugin_timeout:
                self.error(f"{what} stopped: the turn's budget of {self.turn_budget:g} s is spent")
            else:
                self.error(f"{what} took longer than {self.plugin_timeout:g} s")
        except Exception as exc:  # the plug-in's failure, not the turn's
            self.error(f"{what} failed: {type(exc).__name__}: {exc}")
            self.add_usage(getattr(exc, "usage", None))  # what its attempts cost still counts
        return FAILED

    def turn_context(self) -> TurnContext:
        """What language-model plug-ins see of the turn (no private value)."""
        bundle = self.agent.stored.bundle
        spec = bundle.agent
        template = self.template_context()
        return TurnContext(
            agent_name=spec.name,
            agent_description=spec.description,
            system_prompt=spec.system_prompt,
            message=self.inp.message,
            conversation=tuple(Utterance(u.role, self.redact(u.text)) for u in self.inp.history),
            glossary=tuple(
                {"name": t.name, "description": t.description, "synonyms": list(t.synonyms)}
                for t in bundle.terms
            ),
            variables=template["vars"],
            journey=self.journey.title if self.journey is not None else None,
            state=self.state if self.journey is not None else None,
            kb=tuple(self.kb),
            tools=template["tool"],
            temperature=spec.temperature,
            max_tokens=spec.max_tokens,
            model_provider=spec.model_provider,
            model_name=spec.model_name,
        )

    def add_usage(self, usage: Any) -> None:
        if isinstance(usage, ModelUsage):
            self.model_usage = self.model_usage + usage

    # ------------------------------------------------------------------ events

    def emit(self, event_type: EventType, content: dict[str, Any], **extra: Any) -> None:
        self.events.append(NewEvent(event_type=event_type, content=content, **extra))

    def error(self, message: str) -> None:
        message = self.redact(message)
        self.trace.errors.append(message)
        self.emit(EventType.STATUS_UPDATE, {"error": message})

    def set_variable(self, key: str, value: Any, *, source: str) -> bool:
        """Set a variable for the rest of the turn; ``False`` (and an error event) when the
        value does not fit the variable's declared type."""
        value_type = self.types.get(key) or value_type_of(value)
        if not value_fits_type(value, value_type):
            if source == "caller":  # the caller's mistake: refuse the call, write nothing
                quoted = "its value" if key in self.private else repr(value)
                raise InvalidData(f"variable {key!r}: {quoted} is not a {value_type.value}")
            self.error(f"{source} gave variable {key!r} a value that is not a {value_type.value}")
            return False
        if value is None:  # null unsets: the variable is undefined again
            self.values.pop(key, None)
        else:
            self.values[key] = value
        private = key in self.private
        self.changes.append(
            VariableChange(key=key, value=value, value_type=value_type, is_private=private)
        )
        shown: dict[str, Any] = {"key": key, "source": source}
        if private:
            shown["private"] = True  # private values never reach an event
        else:
            shown["value"] = value
        self.emit(EventType.VARIABLE_UPDATE, shown)
        return True

    def count(self, key: UsageKey, delta: int = 1) -> None:
        self.usage[key] = self.usage.get(key, 0) + delta


def _loose_index(agent: CompiledAgent, texts: Sequence[str]) -> dict[str, str]:
    """Each natural-language text of the agent by its loose form (the last one wins, as
    one answer per loose form is kept); the same for every turn of this version."""
    index: dict[str, str] | None = agent.memo.get(_loose_index)
    if index is None:
        index = agent.memo[_loose_index] = {normalise(text): text for text in texts}
    return index


class _Decided(Mapping[str, bool]):
    """The evaluator's answers by loose form, read when a condition needs one rather
    than copied whole every turn (an agent may have thousands of conditions)."""

    def __init__(self, decided: Mapping[str, Any], index: Mapping[str, str]) -> None:
        self._decided, self._index = decided, index

    def __getitem__(self, loose: str) -> bool:
        text = self._index.get(loose, loose)
        if text in self._decided:
            return bool(self._decided[text])
        return bool(self._decided[loose])  # an evaluator that answered by the loose form

    def __iter__(self) -> Iterator[str]:
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._index)


def value_type_of(value: Any) -> ValueType:
    """The variable type a JSON value fits."""
    if isinstance(value, bool):
        return ValueType.BOOLEAN
    if isinstance(value, int | float):
        return ValueType.NUMBER
    if isinstance(value, dict):
        return ValueType.OBJECT
    if isinstance(value, list):
        return ValueType.ARRAY
    return ValueType.STRING


async def _enter(
    turn: _Turn, journey: CompiledJourney, target: str, tools: tooling.ToolRegistry
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
            nxt = _next(turn, journey, target)
            if nxt is not None:
                target = nxt
                continue
            # nothing to skip to: the state does its work after all (waits, calls its tool)
        if state.spec.state_type is StateType.CHAT:
            turn.entered_chat = True
            return
        if state.spec.state_type is StateType.TOOL and not await _run_tool(
            turn, journey, target, tools
        ):
            return
        nxt = _next(turn, journey, target)
        if nxt is None:
            _fall_back(
                turn, f"{state.spec.state_type.value} state {target!r} has no exit that holds"
            )
            return
        target = nxt
    _fall_back(turn, f"the turn passed through {MAX_CHAIN} states without waiting; stopped")


def _fall_back(turn: _Turn, message: str) -> None:
    """Stop with an error event and put the session back where it last waited."""
    turn.error(message)
    _go_back(turn)


def _go_back(turn: _Turn) -> None:
    """Put the session back where it last waited, with a ``journey_transition`` event
    that says so (``"fallback": true``; ``to`` is ``null`` when it waited in no journey),
    so that the log alone gives the position."""
    failed_journey, failed_state = turn.journey, turn.state
    turn.journey, turn.state = turn.waiting
    turn.visited = list(turn.waiting_visited)  # states passed in the failed chain stay unvisited
    shown = turn.journey or failed_journey
    if shown is None:
        return
    back = turn.journey.states[turn.state].spec.id if turn.journey and turn.state else None
    turn.emit(
        EventType.JOURNEY_TRANSITION,
        {"journey": shown.title, "from": failed_state, "to": turn.state, "fallback": True},
        journey_id=turn.journey.spec.id if turn.journey is not None else None,
        state_id=back,
    )


def _next(turn: _Turn, journey: CompiledJourney, source: str) -> str | None:
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


async def _call(
    turn: _Turn,
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


async def _run_tool(
    turn: _Turn, journey: CompiledJourney, name: str, tools: tooling.ToolRegistry
) -> bool:
    """Call a tool state's tool; ``False`` when the turn must stop (error event written)."""
    state = journey.states[name].spec
    tool = turn.agent.tools.get(state.tool or "")
    if tool is None:
        _fall_back(turn, f"state {name!r} names tool {state.tool!r}, which the agent lacks")
        return False
    result_variable = state.tool_config.get("resultVariable")
    private_result = isinstance(result_variable, str) and result_variable in turn.private
    outcome = await _call(
        turn,
        tool,
        state.tool_config,
        tools,
        by=f"state {journey.title}/{name}",
        private_result=private_result,
    )
    if isinstance(outcome, str):
        _fall_back(turn, outcome)
        return False
    if not outcome.advances:
        _fall_back(turn, outcome.error or f"tool {tool.name!r} failed")
        return False
    turn.tool_results[tool.name] = outcome.result
    if private_result:
        turn.private_tools.add(tool.name)
    else:
        turn.private_tools.discard(tool.name)
    if isinstance(result_variable, str) and not turn.set_variable(
        result_variable, outcome.result, source=f"tool:{tool.name}"
    ):
        _go_back(turn)
        return False
    return True


async def _run_guideline_tools(
    turn: _Turn, guidelines: Sequence[CompiledGuideline], tools: tooling.ToolRegistry
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
            outcome = await _call(turn, tool, {}, tools, by=label)
            if isinstance(outcome, str):
                turn.error(outcome)
            elif not outcome.advances:
                turn.error(outcome.error or f"tool {name!r} failed")
            else:
                turn.tool_results[name] = outcome.result
                turn.private_tools.discard(name)


async def _retrieve(turn: _Turn, retriever: Retriever) -> None:
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


def _matched_guidelines(turn: _Turn) -> list[CompiledGuideline]:
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


def _render(
    template: Template | None,
    turn: _Turn,
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
    turn: _Turn, skipped: list[tuple[str, str]], *, first_only: bool, fills: bool = False
) -> list[Candidate]:
    """The eligible canned responses, rendered, in priority order; with ``first_only``
    (strict composition) the first one only: those after it are never tried. One with
    fields is a candidate only when a language model ``fills`` them (its text shows
    ``{name}`` for each)."""
    if not first_only and len(turn.agent.canned_batch) > 1:
        turn.decided = turn.decided | turn.agent.canned_batch.evaluate(turn.condition_context())
    context = turn.template_context() if turn.agent.canned else None
    candidates = []
    for canned in turn.agent.canned_by_priority:
        label = canned.label
        if not all(turn.check(label, c) for c in canned.conditions):
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
    turn: _Turn, prompt: str | None, guidelines: Sequence[CompiledGuideline]
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


def _replies(turn: _Turn, answered: Any, what: str) -> list[Reply] | None:
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


async def _compose(
    turn: _Turn,
    guidelines: list[CompiledGuideline],
    generator: ResponseGenerator,
    sink: TokenSink | None = None,
) -> list[Reply]:
    skipped: list[tuple[str, str]] = []
    strict = turn.agent.stored.bundle.agent.composition_mode is CompositionMode.STRICT
    chooser = cast(CannedChooser, generator) if strict and _is(generator, "choose") else None
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
            if not isinstance(chosen, _Failed):
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
        replies = None if isinstance(answered, _Failed) else _replies(turn, answered, what)
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


MAX_FIELD_CHARS = 500
"""Longest value a language model may give a canned response's field."""


def _chosen(
    turn: _Turn,
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


async def _understand(turn: _Turn, evaluator: ConditionEvaluator | Understander) -> None:
    """Decide the natural-language conditions (and read the variables to collect)."""
    texts = turn.agent.memo.get(natural_texts)  # the same for every turn of this version
    if texts is None:
        texts = turn.agent.memo[natural_texts] = natural_texts(turn.agent.conditions)
    what = "the condition evaluator"
    if not _is(evaluator, "understand"):
        evaluator = cast(ConditionEvaluator, evaluator)
        decided = await turn.guarded(
            what,
            evaluator.evaluate(
                texts, message=turn.inp.message or "", context=turn.template_context()
            ),
            built_in=type(evaluator) in _BUILT_IN_EVALUATORS,
        )
        if isinstance(decided, _Failed):
            return
        if not isinstance(decided, Mapping):
            turn.error(
                f"{what} answered {type(decided).__name__}, not a mapping of condition to "
                "true or false; natural-language conditions count as false"
            )
            return
        turn.natural = _Decided(decided, _loose_index(turn.agent, texts))
        return
    texts = _pending_texts(turn)
    collect = _collect_specs(turn)
    if not texts and not collect:
        return
    request = UnderstandRequest(tuple(texts), collect, turn.turn_context())
    found = await turn.guarded(what, cast(Understander, evaluator).understand(request))
    if isinstance(found, _Failed):
        return
    if not isinstance(found, Understanding):
        turn.error(
            f"{what} answered {type(found).__name__}, not an Understanding; "
            "natural-language conditions count as false"
        )
        return
    turn.add_usage(found.usage)
    for error in found.errors:
        turn.error(f"{what} reported: {error}")
    turn.natural = {
        normalise(str(text)): value is True for text, value in dict(found.holds).items()
    }
    turn.rationales = {
        normalise(str(text)): str(reason)[:500] for text, reason in dict(found.rationales).items()
    }
    _store_collected(turn, collect, found.values)


def _pending_texts(turn: _Turn) -> list[str]:
    """The natural-language conditions this turn may read: in a journey, its own
    (transitions, skips, guideline links) and the agent-wide ones (guidelines, canned
    responses); outside one, every condition (any journey may start and run a few
    states). Those not asked count as false, as they would never be read."""
    journey = turn.journey
    key = ("pending", journey.spec.id if journey is not None else None)
    cached = turn.agent.memo.get(key)
    if cached is None:
        if journey is None:
            conditions = turn.agent.conditions
        else:
            conditions = [s.skip for s in journey.states.values() if s.skip is not None]
            conditions += [t.condition for ts in journey.outgoing.values() for t in ts]
            conditions += [g.link_condition for g in journey.guidelines if g.link_condition]
            conditions += [g.condition for g in journey.guidelines]
            conditions += [g.condition for g in turn.agent.guidelines]
            conditions += [c for canned in turn.agent.canned for c in canned.conditions]
        cached = turn.agent.memo[key] = natural_texts(conditions)
    return list(cached)


def _collect_specs(turn: _Turn) -> tuple[CollectSpec, ...]:
    """The variables to read this turn: the current state's first, then those of the
    other states of the active journey (a customer may answer ahead), or of every
    enabled journey when none is active (the first message may already say them)."""
    key = ("collect", turn.journey.spec.id if turn.journey else None, turn.state)
    cached = turn.agent.memo.get(key)
    if cached is not None:
        return tuple(cached)
    places: list[tuple[CompiledJourney, str]] = []
    if turn.journey is not None and turn.state is not None:
        places.append((turn.journey, turn.state))
    journeys = [turn.journey] if turn.journey is not None else turn.agent.journeys
    places.extend((j, name) for j in journeys if j.spec.enabled for name in j.states)
    specs: dict[str, CollectSpec] = {}
    for journey, name in places:
        for c in journey.states[name].spec.collect:
            specs.setdefault(
                c.name,
                CollectSpec(c.name, c.value_schema, c.description, f"{journey.title}/{name}"),
            )
    turn.agent.memo[key] = tuple(specs.values())
    return tuple(specs.values())


def _schema_problem(turn: _Turn, spec: CollectSpec, value: Any) -> str | None:
    key = ("collect-schema", spec.state, spec.name)
    validator = turn.agent.memo.get(key)
    if validator is None:
        try:
            validator = turn.agent.memo[key] = Draft202012Validator(dict(spec.schema))
        except SchemaError as exc:  # checked at load; kept safe for hand-built agents
            return f"its schema is broken: {exc.message}"
    errors = sorted(validator.iter_errors(value), key=lambda e: list(e.path))
    return errors[0].message if errors else None


def _store_collected(turn: _Turn, collect: Sequence[CollectSpec], values: Any) -> None:
    """Store the values read that fit their schema; the others are refused (error event)."""
    if not isinstance(values, Mapping):
        turn.error("the condition evaluator gave values that are not a mapping; none stored")
        return
    specs = {c.name: c for c in collect}
    declared = {v.key: v for v in turn.agent.stored.bundle.variables}
    for name, value in values.items():
        spec = specs.get(name)
        if spec is None:
            turn.error(f"the condition evaluator read {name!r}, which is not collected here")
            continue
        if value is None:  # not said
            continue
        private = name in turn.private or (name in declared and declared[name].is_private)
        problem = _schema_problem(turn, spec, value)
        if problem is not None:
            shown = "the value does not fit its schema" if private else problem
            turn.error(
                f"variable {name!r} read from the message was not stored ({shown}); "
                "the state asks again"
            )
            turn.trace.collected.append({"variable": name, "stored": False, "error": shown})
            continue
        if private:
            turn.private.add(name)
        stored = turn.set_variable(name, value, source="model")
        turn.trace.collected.append({"variable": name, "stored": stored})


def _account(turn: _Turn) -> None:
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
    turn = _Turn(inp, {})
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
    turn = _Turn(inp, {}, plugin_timeout=plugin_timeout, turn_budget=turn_budget)
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
        await _understand(turn, evaluator)
    if turn.journey is None:
        for journey in inp.agent.journeys:
            if not journey.spec.enabled or journey.initial is None:
                continue
            if any(turn.check(f"journey {journey.title}", c) for c in journey.activation):
                turn.visited = []
                turn.waiting = (None, None)
                turn.waiting_visited = []
                await _enter(turn, journey, journey.initial, tools)
                break
    elif turn.state is not None:
        journey, state = turn.journey, turn.state
        if journey.states[state].spec.state_type is StateType.CHAT:
            target = _next(turn, journey, state)
            if target is not None:
                await _enter(turn, journey, target, tools)
    guidelines = _matched_guidelines(turn)
    turn.trace.guidelines = [g.spec.name or g.spec.action for g in guidelines]
    await _run_guideline_tools(turn, guidelines, tools)
    replies = []
    for reply in await _compose(turn, guidelines, generator, sink):
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
