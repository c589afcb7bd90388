"""The working state of one turn: where the session is, what the turn has decided and
written so far, and the context conditions and templates see.

:class:`TurnState` is what every step of a turn (:mod:`.turn`) reads and changes:
the position (journey, state, visited states, where the session last waited),
conditions decided with their trace rows, plug-in calls under their timeouts
(:meth:`TurnState.guarded`), events, variables set and usage counted. It writes
nothing: the runtime commits what it gathered.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from uuid import uuid4

from parlant_runtime.engine import tools as tooling
from parlant_runtime.engine.compiled import (
    CompiledAgent,
    CompiledCanned,
    CompiledJourney,
    Template,
)
from parlant_runtime.engine.conditions import (
    Condition,
    normalise,
)
from parlant_runtime.engine.trace import ConditionTrace, Trace
from parlant_runtime.engine.understanding import (
    ModelUsage,
    TurnContext,
    Utterance,
)
from parlant_runtime.engine.usage import Usage, UsageKey
from parlant_runtime.model import (
    EventType,
    Session,
    ValueType,
    Variable,
    value_fits_type,
)
from parlant_runtime.sandbox import ConditionKind
from parlant_runtime.storage.port import InvalidData, NewEvent, VariableChange

__all__ = [
    "FAILED",
    "PLUGIN_TIMEOUT",
    "PRIVATE_REASON",
    "RUNTIME_KEY",
    "TURN_BUDGET",
    "Failed",
    "TurnInput",
    "TurnState",
    "is_plugin",
    "value_type_of",
]

PRIVATE_REASON = "cannot be evaluated; the reason depends on a private value, so it is not shown"
"""What the trace says instead of the reason of a condition that may read a private value."""

_TOOL_NAME = re.compile(r"\btool\b")

RUNTIME_KEY = "parlantRuntime"
"""Where the runtime keeps its own bookkeeping in the session's metadata."""

PLUGIN_TIMEOUT = 30.0
"""Seconds one call of a condition evaluator or response generator may take."""

TURN_BUDGET = 60.0
"""Seconds all the plug-in calls of one turn may take together."""

_T = TypeVar("_T")


def is_plugin(plugin: object, method: str) -> bool:
    """Whether ``plugin`` has ``method`` (a structural check; ``isinstance`` on a
    runtime-checkable protocol costs more than a whole turn of the built-in plug-ins)."""
    return callable(getattr(plugin, method, None))


class Failed:
    """What :meth:`TurnState.guarded` returns for a plug-in call that failed (error recorded)."""


FAILED = Failed()


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


class TurnState:
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

    def check(
        self, where: str, condition: Condition, context: Mapping[str, Any] | None = None
    ) -> bool:
        """Whether ``condition`` holds, recorded in the trace. ``context``: the condition
        context (:meth:`condition_context`) when the caller checks several conditions in
        one unchanged state; built here otherwise."""
        known = self.decided.get(condition)
        if known is not None and known[1] is None:  # decided in a batch, for no reason
            self.trace.conditions.append(self.batched_row(where, condition, known[0]))
            return known[0]
        if known is not None:
            result, reason = known
        else:  # only an expression reads the context: building it is most of a check
            if condition.kind is not ConditionKind.EXPRESSION:
                context = {}
            elif context is None:
                context = self.condition_context()
            result, reason = condition.evaluate(context, self.natural)
        if reason is not None:
            # a condition that never compiled never ran: its reason comes from its source
            ran = condition.expression is not None
            tainted = ran and self.may_read_private(condition.text)
            reason = PRIVATE_REASON if tainted else self.redact(reason)
        rationale = None
        if self.rationales and condition.text is not None:
            rationale = self.rationales.get(condition.loose)
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
    ) -> _T | Failed:
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

    # ------------------------------------------------------------------ position

    def fall_back(self, message: str) -> None:
        """Stop with an error event and put the session back where it last waited."""
        self.error(message)
        self.go_back()

    def go_back(self) -> None:
        """Put the session back where it last waited, with a ``journey_transition`` event
        that says so (``"fallback": true``; ``to`` is ``null`` when it waited in no
        journey), so that the log alone gives the position."""
        failed_journey, failed_state = self.journey, self.state
        self.journey, self.state = self.waiting
        self.visited = list(self.waiting_visited)  # states passed in a failed chain stay unvisited
        shown = self.journey or failed_journey
        if shown is None:
            return
        back = self.journey.states[self.state].spec.id if self.journey and self.state else None
        self.emit(
            EventType.JOURNEY_TRANSITION,
            {"journey": shown.title, "from": failed_state, "to": self.state, "fallback": True},
            journey_id=self.journey.spec.id if self.journey is not None else None,
            state_id=back,
        )


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
