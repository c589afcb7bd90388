"""What the condition evaluator is asked once per turn: the natural-language
conditions the turn may read and, for an :class:`~.understanding.Understander`, the
variables the position collects.

A plain :class:`~.conditions.ConditionEvaluator` is asked every natural-language
condition of the agent (the list is made once per agent version); its answers are
read by loose form when a condition needs one. An understander is asked only those
the position may read, with the variables to collect; the values it reads are
stored when they fit their schema, else refused with an error event.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, cast

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from parlant_runtime.engine.compiled import (
    CompiledAgent,
    CompiledJourney,
    natural_texts,
)
from parlant_runtime.engine.conditions import (
    ConditionEvaluator,
    KeywordEvaluator,
    ScriptedEvaluator,
    normalise,
)
from parlant_runtime.engine.turn_state import (
    Failed,
    TurnState,
    is_plugin,
)
from parlant_runtime.engine.understanding import (
    CollectSpec,
    Understander,
    Understanding,
    UnderstandRequest,
)

__all__ = ["understand"]

_BUILT_IN_EVALUATORS = (KeywordEvaluator, ScriptedEvaluator)
"""Exactly these types (not subclasses, which may do anything) never wait on anything."""


async def understand(turn: TurnState, evaluator: ConditionEvaluator | Understander) -> None:
    """Decide the natural-language conditions (and read the variables to collect)."""
    texts = turn.agent.memo.get(natural_texts)  # the same for every turn of this version
    if texts is None:
        texts = turn.agent.memo[natural_texts] = natural_texts(turn.agent.conditions)
    what = "the condition evaluator"
    if not is_plugin(evaluator, "understand"):
        evaluator = cast(ConditionEvaluator, evaluator)
        decided = await turn.guarded(
            what,
            evaluator.evaluate(
                texts, message=turn.inp.message or "", context=turn.template_context()
            ),
            built_in=type(evaluator) in _BUILT_IN_EVALUATORS,
        )
        if isinstance(decided, Failed):
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
    if isinstance(found, Failed):
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


def _pending_texts(turn: TurnState) -> list[str]:
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


def _collect_specs(turn: TurnState) -> tuple[CollectSpec, ...]:
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


def _schema_problem(turn: TurnState, spec: CollectSpec, value: Any) -> str | None:
    key = ("collect-schema", spec.state, spec.name)
    validator = turn.agent.memo.get(key)
    if validator is None:
        try:
            validator = turn.agent.memo[key] = Draft202012Validator(dict(spec.schema))
        except SchemaError as exc:  # checked at load; kept safe for hand-built agents
            return f"its schema is broken: {exc.message}"
    errors = sorted(validator.iter_errors(value), key=lambda e: list(e.path))
    return errors[0].message if errors else None


def _store_collected(turn: TurnState, collect: Sequence[CollectSpec], values: Any) -> None:
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
