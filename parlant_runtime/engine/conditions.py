"""Deciding conditions: expressions in the sandbox, natural language by a plugin.

A condition is one of three kinds (``parlant_runtime.sandbox.condition_kind``):
empty (always true), one ``{{ ... }}`` expression (evaluated in the sandbox over
the turn context), or natural language, which a :class:`ConditionEvaluator`
decides. The evaluator receives every natural-language condition a turn may need
in one batch, as an LLM would. A condition that cannot be evaluated counts as
false and the trace says why; it never fails the turn.

Two evaluators ship: :class:`ScriptedEvaluator` (tests: told which conditions
hold) and :class:`KeywordEvaluator` (offline and deterministic: a condition holds
when the message carries its key words, glossary synonyms included).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from parlant_runtime.bundle.schema import TermSpec
from parlant_runtime.errors import TemplateSandboxError
from parlant_runtime.sandbox import (
    CompiledExpression,
    ConditionKind,
    compile_expression,
    condition_kind,
    expression_source,
)

__all__ = [
    "Condition",
    "ConditionEvaluator",
    "KeywordEvaluator",
    "ScriptedEvaluator",
    "compile_condition",
    "normalise",
]


def normalise(text: str) -> str:
    """Condition text compared loosely: case and runs of white space do not matter.

    A compiled condition keeps its own loose form (:attr:`Condition.loose`), so a turn
    folds only texts from outside (an evaluator's answers, glossary terms). It was
    remembered per text (``functools.lru_cache``); measured against folding again
    (``benchmarks/bench_shortcuts.py``, interleaved), that saved 2 % of a turn
    (141 us against 144 us) and held up to 65,536 texts, so it went.
    """
    return " ".join(text.casefold().split())


@dataclass(frozen=True, slots=True, eq=False)
class Condition:
    """A condition compiled once per agent version; one is equal only to itself (the
    turn keys what it decided by the condition, and identity is the cheapest hash)."""

    text: str | None
    kind: ConditionKind
    expression: CompiledExpression | None = None
    error: str | None = None
    loose: str = field(init=False)
    """The text compared loosely (:func:`normalise`), for natural-language answers."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "loose", normalise(self.text) if self.text else "")

    def evaluate(
        self, context: Mapping[str, Any], natural: Mapping[str, bool]
    ) -> tuple[bool, str | None]:
        """Its truth in this turn, and why when it is false for a reason other than itself."""
        if self.kind is ConditionKind.ALWAYS:
            return True, None
        if self.kind is ConditionKind.NATURAL:
            assert self.text is not None
            return natural.get(self.loose, False), None
        if self.expression is None:
            return False, self.error
        try:
            return bool(self.expression.evaluate(context)), None
        except TemplateSandboxError as exc:
            return False, str(exc)


def compile_condition(text: str | None) -> Condition:
    """Classify and, for an expression, compile; a broken expression is kept with its error."""
    kind = condition_kind(text)
    if kind is not ConditionKind.EXPRESSION:
        return Condition(text, kind)
    assert text is not None
    try:
        return Condition(text, kind, compile_expression(expression_source(text)))
    except TemplateSandboxError as exc:
        return Condition(text, kind, error=str(exc))


class ConditionEvaluator(Protocol):
    """Decides natural-language conditions, all of a turn's in one call."""

    async def evaluate(
        self, conditions: Sequence[str], *, message: str, context: Mapping[str, Any]
    ) -> Mapping[str, bool]:
        """Each condition's truth, keyed by the condition text as given."""


class ScriptedEvaluator:
    """For tests: exactly the conditions in :attr:`holds` are true (case and spacing aside)."""

    def __init__(self, holds: Iterable[str] = ()) -> None:
        self.holds: set[str] = {normalise(text) for text in holds}

    def set(self, holds: Iterable[str]) -> None:
        """Say which conditions hold from now on."""
        self.holds = {normalise(text) for text in holds}

    async def evaluate(
        self, conditions: Sequence[str], *, message: str, context: Mapping[str, Any]
    ) -> Mapping[str, bool]:
        return _Holds(conditions, frozenset(self.holds))


class _Holds(Mapping[str, bool]):
    """A scripted evaluator's answers, decided when read: a turn reads a few of the
    agent's conditions, and a dense agent has thousands."""

    def __init__(self, conditions: Sequence[str], holds: frozenset[str]) -> None:
        self._conditions, self._holds = conditions, holds

    def __getitem__(self, text: str) -> bool:
        return normalise(text) in self._holds

    def __iter__(self) -> Iterator[str]:
        return iter(self._conditions)

    def __len__(self) -> int:
        return len(self._conditions)


_WORD = re.compile(r"[a-z0-9']+")
_GENERIC = frozenset(
    "a an the to of and or for in on at is are be it its this that with from by about as "
    "customer customers user users client wants want would like asks ask says say mentions "
    "mention gave give gives has have had does do did is was were their them they i me my "
    "you your we our not no any some".split()
)


class KeywordEvaluator:
    """Offline and deterministic: a condition holds when the message carries its key words.

    The key words of a condition are its words minus generic ones ("customer",
    "wants", "the", ...); a glossary term in the condition also matches any of its
    synonyms in the message. The condition holds when at least ``threshold`` of
    its key words are found (default: half). Good enough for demos and smoke
    tests; wire an LLM-backed evaluator for production.
    """

    def __init__(self, terms: Collection[TermSpec] = (), *, threshold: float = 0.5) -> None:
        self.threshold = threshold
        self._synonyms: dict[str, set[str]] = {}
        for term in terms:
            words = {term.name.casefold(), *(s.casefold() for s in term.synonyms)}
            for word in words:
                self._synonyms.setdefault(word, set()).update(words)

    def _found(self, word: str, message: str, tokens: set[str]) -> bool:
        if word in tokens:
            return True
        return any(
            (alt in tokens) if " " not in alt else (alt in message)
            for alt in self._synonyms.get(word, ())
        )

    async def evaluate(
        self, conditions: Sequence[str], *, message: str, context: Mapping[str, Any]
    ) -> Mapping[str, bool]:
        lowered = message.casefold()
        tokens = set(_WORD.findall(lowered))
        results: dict[str, bool] = {}
        for text in conditions:
            words = [w for w in _WORD.findall(text.casefold()) if w not in _GENERIC]
            if not words:
                results[text] = False
                continue
            found = sum(1 for word in words if self._found(word, lowered, tokens))
            results[text] = found / len(words) >= self.threshold
        return results
