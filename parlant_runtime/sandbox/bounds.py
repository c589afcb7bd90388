"""How big a template's values are, and the work one render may spend on them.

A value's *size* counts the items it holds at every level of nesting: one per
element of a list or tuple, per entry of a mapping, per character of text, and one
per 64 bits of an integer beyond its first 64. A part held in several places counts
once per place, because that is what printing, ``tojson``, ``join``, ``string`` and
``==`` pay for: ``[[0] * 100000] * 100000`` holds two small lists in memory, yet its
text would take ten billion characters. Bounding only the outer length let such a
value through; bounding the size does not.

Every value a template builds (``*``, ``+``, ``~``, a list, tuple or mapping
literal, ``dict()``, ``namespace()``, a filter's result, a method's result) must
have a size of at most :data:`MAX_VALUE_CHARS`, checked before it is built where the
size can be computed first, right after otherwise; every conversion to text and
every comparison first checks the size of what it converts or compares. Each of
those operations also draws the size it handled from the render's
:class:`WorkBudget` (:data:`MAX_WORK` items in all), so that a loop cannot repeat
a bounded operation into an unbounded one. Past a bound: ``SecurityError``, which
the sandbox turns into a :class:`~parlant_runtime.errors.TemplateSandboxError`.

The rewrite (:class:`BoundedTree`) routes the template's own operations through
these checks before Jinja generates code: ``for`` loops through the
:class:`LoopBudget`, ``~`` through :func:`bounded_concat`, literals through
:func:`checked_value`, comparisons through :func:`bounded_compare`, slices through
:func:`bounded_slice`.
"""

from __future__ import annotations

import contextvars
import functools
import operator
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from jinja2 import nodes
from jinja2.exceptions import SecurityError
from jinja2.utils import Namespace
from jinja2.visitor import NodeTransformer

__all__ = [
    "BUDGET_NAME",
    "COMPARE_NAME",
    "CONCAT_NAME",
    "HELPER_FILTERS",
    "MAX_DEPTH",
    "MAX_ITERATIONS",
    "MAX_VALUE_CHARS",
    "MAX_WORK",
    "SLICE_NAME",
    "VALUE_NAME",
    "BoundedTree",
    "LoopBudget",
    "WorkBudget",
    "bounded",
    "bounded_compare",
    "bounded_concat",
    "bounded_slice",
    "charge",
    "charge_walk",
    "charged_test",
    "check_text_size",
    "checked_value",
    "helpers",
    "output_limit",
    "size_of",
    "too_big",
    "work_scope",
]

MAX_VALUE_CHARS = 100_000
"""Largest size (items at every level of nesting) of a value one operation may build."""

MAX_WORK = 250_000
"""Most items one render may build, convert to text, compare or sort, all operations
together (about a tenth of a second of work; see ``benchmarks/bench_sandbox.py``)."""

MAX_ITERATIONS = 10_000
"""Most loop iterations one render may run, all loops together."""

MAX_DEPTH = 100
"""Deepest nesting of a value a template may measure (print, compare, build around)."""

_NAMESPACE_ATTRS = "_Namespace__attrs"


def too_big(what: str) -> SecurityError:
    """The refusal of an operation whose value would be too big."""
    return SecurityError(f"{what} would build more than {MAX_VALUE_CHARS:,} items")


def size_of(value: Any, limit: int = MAX_VALUE_CHARS) -> int:
    """The size of ``value`` (see the module docstring), or a number above ``limit``
    as soon as it is known to exceed it. The walk takes at most about ``limit`` steps
    however the value nests, and fewer when it shares its parts (a part is measured
    once, then counted once per place) or holds flat runs of numbers or text
    (measured in bulk).

    Raises:
        SecurityError: the value nests deeper than :data:`MAX_DEPTH` (its text could
            not be made anyway: Python's own walks stop near a thousand levels).
    """
    return _size(value, limit, {}, 0)


_SCALAR_TYPES = frozenset({bool, float, type(None)})
_INT_TYPES = frozenset({int, bool})
_BULK = 16  # sequences longer than this are first measured in bulk


def _flat_size(items: list[Any] | tuple[Any, ...]) -> int | None:
    """What the elements of a sequence add when all are numbers or all are text,
    measured in bulk; ``None`` otherwise."""
    types = set(map(type, items))
    if types <= _SCALAR_TYPES:
        return 0
    if types <= _INT_TYPES:
        highest, lowest = max(items), min(items)
        return 0 if max(highest.bit_length(), lowest.bit_length()) <= 64 else None
    if types == {str}:
        return sum(map(len, items))
    return None


def _size(value: Any, limit: int, memo: dict[int, int], depth: int) -> int:
    kind = type(value)
    if kind is str or isinstance(value, str):
        return len(value)
    if kind in _SCALAR_TYPES or not isinstance(value, int | list | tuple | dict | Namespace):
        return 0
    if isinstance(value, int):
        return 0 if isinstance(value, bool) else value.bit_length() >> 6
    known = memo.get(id(value))  # every part is alive while its root is walked
    if known is not None:
        return known
    if depth >= MAX_DEPTH:
        raise SecurityError(f"a value nested more than {MAX_DEPTH} levels deep")
    if isinstance(value, Namespace):
        total = _size(object.__getattribute__(value, _NAMESPACE_ATTRS), limit, memo, depth + 1)
    else:
        total = len(value)
        if total > limit:
            return total
        parts: list[Any] | tuple[Any, ...]
        parts = [*value.keys(), *value.values()] if isinstance(value, dict) else value
        flat = _flat_size(parts) if len(parts) > _BULK else None
        if flat is not None:
            total += flat
        else:
            for part in parts:
                total += _size(part, limit - total, memo, depth + 1)
                if total > limit:
                    return total
    memo[id(value)] = total
    return total


class WorkBudget:
    """The items one render may still handle (see :data:`MAX_WORK`)."""

    __slots__ = ("left", "output_limit")

    def __init__(self, output_limit: int) -> None:
        self.left = MAX_WORK
        self.output_limit = output_limit


_WORK: contextvars.ContextVar[WorkBudget | None] = contextvars.ContextVar(
    "parlant_runtime_sandbox_work", default=None
)


class work_scope:
    """Run a render (or an evaluation) with a fresh :class:`WorkBudget` (a class rather
    than a generator-based context manager: it runs once per condition)."""

    __slots__ = ("_budget", "_token")

    def __init__(self, output_limit: int) -> None:
        self._budget = WorkBudget(output_limit)

    def __enter__(self) -> WorkBudget:
        self._token = _WORK.set(self._budget)
        return self._budget

    def __exit__(self, *exc: object) -> None:
        _WORK.reset(self._token)


def charge(items: int) -> None:
    """Draw ``items`` from the current render's budget (no budget outside a render:
    then only the bound of each single operation applies)."""
    budget = _WORK.get()
    if budget is None:
        return
    budget.left -= items
    if budget.left < 0:
        raise SecurityError(
            f"the template handles more than {MAX_WORK:,} items in all; simplify it"
        )


def output_limit() -> int | None:
    """The output limit of the current render, if one is running."""
    budget = _WORK.get()
    return budget.output_limit if budget is not None else None


def checked_value(value: Any, what: str = "a literal") -> Any:
    """``value`` once its size is known to be within bounds (and charged)."""
    size = size_of(value)
    if size > MAX_VALUE_CHARS:
        raise too_big(what)
    charge(size)
    return value


def check_text_size(value: Any, what: str, limit: int = MAX_VALUE_CHARS) -> int:
    """Check and charge what turning ``value`` into text costs; its size.

    The text of a value is never shorter than its size, so a value over ``limit``
    is refused before its text is built."""
    size = len(value) if isinstance(value, str) else size_of(value, limit)
    if size > limit:
        raise too_big(what)
    charge(size)
    return size


def bounded_concat(parts: Iterable[Any]) -> str:
    """The ``~`` operator, with the size of every part checked before it becomes text."""
    texts: list[str] = []
    total = 0
    for part in parts:
        check_text_size(part, "~", MAX_VALUE_CHARS - total)
        text = str(part)
        total += len(text)
        if total > MAX_VALUE_CHARS:
            raise too_big("~")
        texts.append(text)
    return "".join(texts)


_COMPARISONS: dict[str, Callable[[Any, Any], Any]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "gteq": operator.ge,
    "lt": operator.lt,
    "lteq": operator.le,
    "in": lambda left, right: left in right,
    "notin": lambda left, right: left not in right,
}


def charge_walk(*values: Any) -> None:
    """Charge what walking ``values`` may cost (comparing them, or a call that reads
    them): text by its length, containers by their size, anything else as one item.
    A walk never goes further than the budget left."""
    budget = _WORK.get()
    limit = budget.left + 1 if budget is not None and budget.left >= 0 else MAX_WORK
    total = 0
    for value in values:
        if isinstance(value, str):
            total += len(value)
        elif isinstance(value, list | tuple | dict | Namespace):
            total += size_of(value, limit)
        else:
            total += 1
    charge(total)


_ATOMS = frozenset({int, float, bool, type(None)})
_SHORT_TEXT = 64


def _cheap(value: Any) -> bool:
    """Compared in constant time (numbers are at most 4,096 bits): not charged."""
    kind = type(value)
    return kind in _ATOMS or (kind is str and len(value) <= _SHORT_TEXT)


def bounded_compare(left: Any, op: str, right: Any) -> Any:
    """One comparison (``==``, ``<``, ``in`` ...), charged the sizes it may walk
    (nothing for two numbers or short texts: the loop budget bounds how many)."""
    if not (_cheap(left) and _cheap(right)):
        charge_walk(left, right)
    return _COMPARISONS[op](left, right)


_COMPARING_TESTS = frozenset(
    {"in", "eq", "equalto", "==", "ne", "!=", "lt", "lessthan", "<", "le", "<="}
    | {"gt", "greaterthan", ">", "ge", ">=", "sameas"}
)
"""Jinja tests (``x is in y``, ``select('eq', y)``) that compare their arguments."""


def charged_test(name: str, test: Callable[..., Any]) -> Callable[..., Any]:
    """A Jinja test that is charged like a comparison when it compares."""
    if name not in _COMPARING_TESTS:
        return test

    @functools.wraps(test)
    def charged(*args: Any, **kwargs: Any) -> Any:
        charge_walk(*args, *kwargs.values())
        return test(*args, **kwargs)

    return charged


def bounded_slice(value: Any, start: Any, stop: Any, step: Any) -> Any:
    """``value[start:stop:step]`` (Jinja writes slices straight into Python, past the
    environment's ``getitem``): the copy is charged like any value built."""
    result = value[start:stop:step]
    if isinstance(result, str | list | tuple):
        charge(len(result))
    return result


class LoopBudget:
    """Counts loop iterations of one render; every ``for`` loop draws from it."""

    def __init__(self) -> None:
        self.left = MAX_ITERATIONS

    def __call__(self, iterable: Any) -> Iterator[Any]:
        for item in iterable:
            self.left -= 1
            if self.left < 0:
                raise SecurityError(f"loops ran more than {MAX_ITERATIONS:,} times")
            yield item


# names a user cannot write (the analysis refuses names and filters starting with _)
BUDGET_NAME = "__loop_budget__"
CONCAT_NAME = "__concat__"
VALUE_NAME = "__value__"
COMPARE_NAME = "__compare__"
SLICE_NAME = "__slice__"

HELPER_FILTERS: dict[str, Callable[..., Any]] = {
    CONCAT_NAME: bounded_concat,
    VALUE_NAME: checked_value,
    COMPARE_NAME: bounded_compare,
    SLICE_NAME: bounded_slice,
}
"""The rewrite's helpers, as filters: Jinja calls a filter directly, where a call of a
function goes through the sandbox's checks (ten times the cost of a comparison)."""


def helpers() -> dict[str, Any]:
    """What a bounded tree needs in its context: a fresh loop budget."""
    return {BUDGET_NAME: LoopBudget()}


def _call(name: str, *args: nodes.Node) -> nodes.Call:
    return nodes.Call(nodes.Name(name, "load"), list(args), [], None, None)


def _filter(name: str, value: nodes.Node, *args: nodes.Node) -> nodes.Filter:
    return nodes.Filter(value, name, list(args), [], None, None)


class BoundedTree(NodeTransformer):
    """Routes a template's loops, ``~``, literals and comparisons through the bounds."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = _call(BUDGET_NAME, node.iter)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return _filter(CONCAT_NAME, nodes.List(node.nodes))

    def visit_List(self, node: nodes.List) -> nodes.Node:
        self.generic_visit(node)
        return _filter(VALUE_NAME, node) if node.items else node

    def visit_Dict(self, node: nodes.Dict) -> nodes.Node:
        self.generic_visit(node)
        return _filter(VALUE_NAME, node) if node.items else node

    def visit_Tuple(self, node: nodes.Tuple) -> nodes.Node:
        self.generic_visit(node)
        if node.ctx != "load" or not node.items:
            return node  # an assignment target, or nothing to bound
        return _filter(VALUE_NAME, node)

    def visit_Getitem(self, node: nodes.Getitem) -> nodes.Node:
        self.generic_visit(node)
        if not isinstance(node.arg, nodes.Slice) or node.ctx != "load":
            return node
        parts = [node.arg.start, node.arg.stop, node.arg.step]
        bounds = [part if part is not None else nodes.Const(None) for part in parts]
        return _filter(SLICE_NAME, node.node, *bounds)

    def visit_Compare(self, node: nodes.Compare) -> nodes.Node:
        self.generic_visit(node)
        left = node.expr
        result: nodes.Expr | None = None
        for operand in node.ops:  # a < b < c: (a < b) and (b < c), as Python means it
            call = _filter(COMPARE_NAME, left, nodes.Const(operand.op), operand.expr)
            result = call if result is None else nodes.And(result, call)
            left = operand.expr
        assert result is not None
        return result


def bounded(tree: nodes.Template) -> nodes.Template:
    """``tree`` rewritten by :class:`BoundedTree`."""
    result = BoundedTree().visit(tree)
    assert isinstance(result, nodes.Template)
    return result
