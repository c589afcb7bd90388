"""Many expression conditions evaluated in one sandbox call, with the same results.

A turn of an agent with a hundred expression guidelines would otherwise pay the
sandbox's per-call cost (a fresh Jinja context) a hundred times. A
:class:`ConditionBatch` compiles its expressions together, as one list expression
per chunk, and evaluates each chunk once per turn. The result of every condition
is the one :meth:`Condition.evaluate` gives:

- only expressions that parse to their last token are batched, so that the
  parentheses around each one change nothing; others are evaluated alone;
- a chunk that fails (an expression reads something undefined, breaks a sandbox
  rule, or all together spend the loop budget) is split in two and each half
  tried again, down to single conditions evaluated alone, which then give their
  own reason; so one broken condition costs a few extra calls, not a slow agent;
- a value that is undefined is evaluated alone too (it then fails with its reason).

Chunks are compiled on first use and kept with the compiled agent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from jinja2 import Undefined
from jinja2.exceptions import TemplateError
from jinja2.parser import Parser

from parlant_runtime.engine.conditions import Condition
from parlant_runtime.errors import TemplateSandboxError
from parlant_runtime.sandbox import CompiledExpression, ConditionKind, sandbox

__all__ = ["MAX_CHUNK", "ConditionBatch"]

MAX_CHUNK = 64
"""Most expressions evaluated by one sandbox call."""

_MAX_CHUNK_CHARS = 20_000
"""Most characters of source in one chunk (the sandbox refuses sources past 50,000)."""

Decided = tuple[bool, str | None]


def _batchable(condition: Condition) -> bool:
    """An expression that compiled and whose source is one whole expression."""
    if condition.kind is not ConditionKind.EXPRESSION or condition.expression is None:
        return False
    try:
        parser = Parser(sandbox, condition.expression.source, state="variable")
        parser.parse_expression()
        return bool(parser.stream.eos)
    except (TemplateError, RecursionError):
        return False


class _Chunk:
    """Conditions ``start:stop`` of the batch, compiled together on first use."""

    __slots__ = ("_compiled", "_halves", "_tried", "start", "stop")

    def __init__(self, start: int, stop: int) -> None:
        self.start, self.stop = start, stop
        self._compiled: CompiledExpression | None = None
        self._tried = False
        self._halves: tuple[_Chunk, _Chunk] | None = None

    def halves(self) -> tuple[_Chunk, _Chunk]:
        if self._halves is None:
            middle = (self.start + self.stop) // 2
            self._halves = (_Chunk(self.start, middle), _Chunk(middle, self.stop))
        return self._halves

    def compiled(self, conditions: Sequence[Condition]) -> CompiledExpression | None:
        if not self._tried:
            self._tried = True
            parts = []
            for condition in conditions[self.start : self.stop]:
                assert condition.expression is not None
                parts.append(f"({condition.expression.source})")
            try:
                self._compiled = CompiledExpression("[" + ", ".join(parts) + "]")
            except TemplateSandboxError:
                self._compiled = None  # together they break a limit: split
        return self._compiled


class ConditionBatch:
    """Expression conditions decided together (see the module docstring)."""

    def __init__(self, conditions: Sequence[Condition]) -> None:
        unique = list(dict.fromkeys(conditions))
        self._batched = [c for c in unique if _batchable(c)]
        self._alone = [
            c for c in unique if c.kind is ConditionKind.EXPRESSION and not _batchable(c)
        ]
        self._chunks: list[_Chunk] = []
        start = size = 0
        for index, condition in enumerate(self._batched):
            assert condition.expression is not None
            length = len(condition.expression.source) + 4
            if index > start and (index - start >= MAX_CHUNK or size + length > _MAX_CHUNK_CHARS):
                self._chunks.append(_Chunk(start, index))
                start, size = index, 0
            size += length
        if start < len(self._batched):
            self._chunks.append(_Chunk(start, len(self._batched)))

    def __len__(self) -> int:
        return len(self._batched) + len(self._alone)

    def evaluate(self, context: Mapping[str, Any]) -> dict[Condition, Decided]:
        """Each expression condition's truth (and reason) over ``context``, as
        :meth:`Condition.evaluate` gives it."""
        decided: dict[Condition, Decided] = {}
        for chunk in self._chunks:
            self._decide(chunk, context, decided)
        for condition in self._alone:
            decided[condition] = condition.evaluate(context, {})
        return decided

    def _decide(
        self, chunk: _Chunk, context: Mapping[str, Any], decided: dict[Condition, Decided]
    ) -> None:
        conditions = self._batched
        if chunk.stop - chunk.start == 1:
            condition = conditions[chunk.start]
            decided[condition] = condition.evaluate(context, {})
            return
        compiled = chunk.compiled(conditions)
        values: Any = None
        if compiled is not None:
            try:
                values = compiled.evaluate(context)
            except TemplateSandboxError:
                values = None
        if not isinstance(values, list) or len(values) != chunk.stop - chunk.start:
            for half in chunk.halves():
                self._decide(half, context, decided)
            return
        for condition, value in zip(conditions[chunk.start : chunk.stop], values, strict=True):
            if isinstance(value, Undefined):
                decided[condition] = condition.evaluate(context, {})
            else:
                decided[condition] = (bool(value), None)
