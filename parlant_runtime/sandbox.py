"""The one sandboxed Jinja environment for templates and expression conditions.

Templates (state prompts, canned responses, tool arguments) and expression
conditions (``{{ ... }}``) come from a database that many people edit, so they run
in Jinja's :class:`~jinja2.sandbox.SandboxedEnvironment`: no attribute that starts
with an underscore, no internals of functions, frames or generators, no loading of
other templates, ranges bounded, and rendered output bounded by
:data:`MAX_OUTPUT_CHARS`. The validator uses the same environment and the same
static checks (:func:`analyse`), so a template it accepts is one the runtime can
run, and one that reaches for ``__class__`` is refused before it is published.

What a template or expression can read (the turn context):

=============  ==========================================================
``vars``       the session's variables (private ones only in conditions)
``message``    the customer's message text
``session``    the session: id, mode, status, metadata
``journey``    the active journey: title
``state``      the current state: name, type
``tool``       the latest result of each tool, by tool name
``kb``         knowledge-base results of this turn
``mentions``   ``mentions('term')``: the message names a glossary term or a synonym
=============  ==========================================================
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateSyntaxError, Undefined, nodes
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import (
    UNSAFE_ASYNC_GENERATOR_ATTRIBUTES,
    UNSAFE_COROUTINE_ATTRIBUTES,
    UNSAFE_GENERATOR_ATTRIBUTES,
    ImmutableSandboxedEnvironment,
)
from jinja2.utils import Namespace

from parlant_runtime._quick_analysis import QuickResult, analyse_shape, shape_of
from parlant_runtime.errors import TemplateSandboxError

__all__ = [
    "CONTEXT_ROOTS",
    "MAX_ITERATIONS",
    "MAX_OUTPUT_CHARS",
    "MAX_RANGE",
    "MAX_VALUE_CHARS",
    "Analysis",
    "CompiledExpression",
    "CompiledTemplate",
    "ConditionKind",
    "VariableRead",
    "analyse",
    "compile_expression",
    "compile_template",
    "condition_kind",
    "expression_source",
    "has_template_syntax",
    "render",
    "sandbox",
]

MAX_OUTPUT_CHARS = 20_000
"""Longest text a template may render; longer output is an error, never truncated."""

CONTEXT_ROOTS = frozenset(
    {"vars", "message", "session", "journey", "state", "tool", "kb", "mentions"}
)
"""Names a template or expression can read; everything else is undefined."""

MAX_VALUE_CHARS = 100_000
"""Longest string or sequence one operation inside a template may build."""

MAX_ITERATIONS = 10_000
"""Most loop iterations one render may run, all loops together."""

MAX_RANGE = 1_000
"""Longest ``range()`` a template may ask for."""

MAX_POWER_EXPONENT = 64
"""Largest exponent of ``**`` (big enough for arithmetic, too small for a memory bomb)."""

MAX_POWER_BITS = 4_096
"""Largest integer ``**`` may build, in bits."""

_FORBIDDEN_ATTRIBUTES = frozenset(
    {"mro", "format", "format_map", "func_globals", "f_globals", "f_locals", "f_builtins"}
    | UNSAFE_GENERATOR_ATTRIBUTES
    | UNSAFE_COROUTINE_ATTRIBUTES
    | UNSAFE_ASYNC_GENERATOR_ATTRIBUTES
)
_SAFE_STR_METHODS = frozenset(
    {
        "capitalize",
        "casefold",
        "count",
        "endswith",
        "find",
        "index",
        "isalnum",
        "isalpha",
        "isdigit",
        "islower",
        "isnumeric",
        "isspace",
        "istitle",
        "isupper",
        "lower",
        "lstrip",
        "partition",
        "rfind",
        "rpartition",
        "rsplit",
        "rstrip",
        "split",
        "splitlines",
        "startswith",
        "strip",
        "swapcase",
        "title",
        "upper",
    }
)  # no padding (center, ljust, zfill, expandtabs) nor format: they can build huge strings
_SAFE_FILTERS = frozenset(
    {
        "abs",
        "attr",
        "batch",
        "capitalize",
        "count",
        "d",
        "default",
        "dictsort",
        "e",
        "escape",
        "filesizeformat",
        "first",
        "float",
        "groupby",
        "int",
        "items",
        "join",
        "last",
        "length",
        "list",
        "lower",
        "map",
        "max",
        "min",
        "reject",
        "rejectattr",
        "reverse",
        "round",
        "select",
        "selectattr",
        "slice",
        "sort",
        "string",
        "striptags",
        "sum",
        "title",
        "tojson",
        "trim",
        "truncate",
        "unique",
        "upper",
        "urlencode",
        "wordcount",
        "wordwrap",
    }
)  # left out: random (not deterministic), center/indent/format (unbounded output), pprint,
# urlize, xmlattr, safe, forceescape (HTML-only); replace is re-implemented with a bound
_FORBIDDEN_BLOCKS = (
    (nodes.Extends, "loads another template"),
    (nodes.Include, "loads another template"),
    (nodes.Import, "loads another template"),
    (nodes.FromImport, "loads another template"),
    (nodes.Macro, "defines a macro (templates that can recurse can run forever)"),
    (nodes.CallBlock, "uses a call block"),
)
_BUDGET = "__loop_budget__"  # a name no user can shadow usefully: it is only a counter
_GUARD_TESTS = frozenset({"defined", "undefined", "none"})
_GUARD_FILTERS = frozenset({"default", "d"})


def _bounded_range(*args: int) -> range:
    numbers = range(*args)
    if len(numbers) > MAX_RANGE:
        raise SecurityError(f"range() of more than {MAX_RANGE:,} numbers")
    return numbers


def _bounded_replace(value: Any, old: str, new: str, count: int | None = None) -> str:
    text = str(value)
    hits = text.count(old) if old else len(text) + 1
    if count is not None and count >= 0:
        hits = min(hits, count)
    if len(text) + hits * (len(new) - len(old)) > MAX_VALUE_CHARS:
        raise SecurityError(f"replace() would build more than {MAX_VALUE_CHARS:,} characters")
    return text.replace(old, new, -1 if count is None else count)


def _size(value: Any) -> int | None:
    return len(value) if isinstance(value, str | list | tuple) else None


class _LoopBudget:
    """Counts loop iterations of one render; every ``for`` loop draws from it."""

    def __init__(self) -> None:
        self.left = MAX_ITERATIONS

    def __call__(self, iterable: Any) -> Iterator[Any]:
        for item in iterable:
            self.left -= 1
            if self.left < 0:
                raise SecurityError(f"loops ran more than {MAX_ITERATIONS:,} times")
            yield item


class _Sandbox(ImmutableSandboxedEnvironment):
    """No mutation, no private attributes, bounded operators, output is chat text."""

    intercepted_binops = frozenset({"*", "**"})

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if attr in _FORBIDDEN_ATTRIBUTES:
            return False
        if isinstance(obj, str) and callable(value) and attr not in _SAFE_STR_METHODS:
            return False
        return super().is_safe_attribute(obj, attr, value)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            if isinstance(right, int | float) and abs(right) > MAX_POWER_EXPONENT:
                raise SecurityError(f"exponent larger than {MAX_POWER_EXPONENT}")
            if isinstance(left, int) and left.bit_length() * abs(right) > MAX_POWER_BITS:
                raise SecurityError(f"power larger than {MAX_POWER_BITS:,} bits")
        elif operator == "*":
            for sequence, times in ((left, right), (right, left)):
                size = _size(sequence)
                if size is not None and isinstance(times, int) and size * times > MAX_VALUE_CHARS:
                    raise SecurityError(f"builds more than {MAX_VALUE_CHARS:,} items")
        return super().call_binop(context, operator, left, right)


sandbox = _Sandbox(undefined=StrictUndefined, autoescape=False)
"""The shared environment. Do not add globals to it: pass the context per render."""
sandbox.globals = {"range": _bounded_range, "dict": dict, "namespace": Namespace}
sandbox.filters = {name: sandbox.filters[name] for name in _SAFE_FILTERS}
sandbox.filters["replace"] = _bounded_replace


class ConditionKind(StrEnum):
    """How a condition is decided."""

    ALWAYS = "always"
    """Empty or missing: always true."""
    EXPRESSION = "expression"
    """The whole text is one ``{{ ... }}`` Jinja expression, evaluated in the sandbox."""
    NATURAL = "natural"
    """Any other text: decided by the condition evaluator plugin."""


def condition_kind(condition: str | None) -> ConditionKind:
    """Classify a condition by its text."""
    text = (condition or "").strip()
    if not text:
        return ConditionKind.ALWAYS
    if text.startswith("{{") and text.endswith("}}"):
        return ConditionKind.EXPRESSION
    return ConditionKind.NATURAL


def expression_source(condition: str) -> str:
    """The expression inside an expression condition's braces."""
    return condition.strip()[2:-2].strip()


def has_template_syntax(text: str) -> bool:
    """Whether text holds any Jinja syntax at all (plain text needs no parsing)."""
    return "{{" in text or "{%" in text or "{#" in text


@dataclass(frozen=True, slots=True)
class VariableRead:
    """One read of ``vars.<name>``; guarded reads test for presence first."""

    name: str
    guarded: bool


@dataclass(frozen=True, slots=True)
class Analysis:
    """What static analysis found in one template or expression.

    Attributes:
        error: why it cannot run (does not parse, or uses what the sandbox forbids),
            or ``None``.
        variables: every read of ``vars.<name>``.
        unknown_names: top-level names that are not part of the turn context.
        tools: tool names read through ``tool.<name>``.
        terms: glossary terms named in ``mentions('...')``.
        constant: for an expression that folds to a constant, its truth; else ``None``.
    """

    error: str | None = None
    variables: tuple[VariableRead, ...] = ()
    unknown_names: tuple[str, ...] = ()
    tools: tuple[str, ...] = ()
    terms: tuple[str, ...] = ()
    constant: bool | None = None


@functools.lru_cache(maxsize=16_384)
def analyse(text: str, *, expression: bool) -> Analysis:
    """Parse a template (or, with ``expression``, a bare expression) and check it statically.

    Simple texts take a fast path (:mod:`parlant_runtime._quick_analysis`); the rest
    are parsed by Jinja. Both give the same answer for the texts the fast path takes.
    """
    shape = shape_of(text, expression=expression)
    if shape is not None:
        analysis = _analyse_shape(shape)
        if analysis is not None:
            return analysis
    return _analyse_with_jinja(text, expression=expression)


@functools.lru_cache(maxsize=16_384)
def _analyse_shape(shape: tuple[str, ...]) -> Analysis | None:
    quick = analyse_shape(shape, _FORBIDDEN_ATTRIBUTES)
    return _from_quick(quick) if quick is not None else None


def _from_quick(quick: QuickResult) -> Analysis:
    if quick.forbidden is not None:
        return Analysis(error=f"reads {quick.forbidden!r}, which the sandbox forbids")
    unknown = {
        name for name in quick.names if name not in CONTEXT_ROOTS and name not in sandbox.globals
    }
    return Analysis(
        variables=tuple(VariableRead(name, guarded) for name, guarded in quick.reads),
        unknown_names=tuple(sorted(unknown)),
        tools=tuple(quick.tools),
    )


def _analyse_with_jinja(text: str, *, expression: bool) -> Analysis:
    source = f"{{{{ {text} }}}}" if expression else text
    try:
        tree = sandbox.parse(source)
    except TemplateSyntaxError as exc:
        return Analysis(error=f"does not parse: {exc.message}")
    if expression and _is_multiple_outputs(tree):
        return Analysis(error="is not one expression; write a single `{{ ... }}`")
    collector = _Collector()
    collector.visit(tree, parent=None)
    if collector.forbidden:
        return Analysis(error=collector.forbidden[0])
    constant = _constant_truth(tree) if expression else None
    return Analysis(
        variables=tuple(collector.variables),
        unknown_names=tuple(sorted(collector.unknown - collector.assigned)),
        tools=tuple(collector.tools),
        terms=tuple(collector.terms),
        constant=constant,
    )


def _is_multiple_outputs(tree: nodes.Template) -> bool:
    outputs = [node for node in tree.body if isinstance(node, nodes.Output)]
    return len(tree.body) != 1 or len(outputs) != 1 or len(outputs[0].nodes) != 1


def _constant_truth(tree: nodes.Template) -> bool | None:
    output = tree.body[0]
    assert isinstance(output, nodes.Output)
    try:
        return bool(output.nodes[0].as_const())
    except nodes.Impossible:
        return None


@dataclass
class _Collector:
    """Walks a template tree once, noting reads and anything the sandbox forbids."""

    forbidden: list[str] = field(default_factory=list)
    variables: list[VariableRead] = field(default_factory=list)
    unknown: set[str] = field(default_factory=set)
    assigned: set[str] = field(default_factory=set)
    tools: list[str] = field(default_factory=list)
    terms: list[str] = field(default_factory=list)

    def visit(self, node: nodes.Node, parent: nodes.Node | None) -> None:
        self._check(node, parent)
        for child in node.iter_child_nodes():
            self.visit(child, node)

    def _check(self, node: nodes.Node, parent: nodes.Node | None) -> None:
        for kind, what in _FORBIDDEN_BLOCKS:
            if isinstance(node, kind):
                self.forbidden.append(f"{what}, which the sandbox forbids")
        if isinstance(node, nodes.For) and node.recursive:
            self.forbidden.append("uses a recursive loop, which the sandbox forbids")
        if isinstance(node, nodes.Getattr):
            self._attribute(node.attr, node.node, parent, node)
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
            if isinstance(node.arg.value, str):
                self._attribute(node.arg.value, node.node, parent, node)
        elif isinstance(node, nodes.Name):
            if node.ctx in ("store", "param"):
                self.assigned.add(node.name)
            elif node.name not in CONTEXT_ROOTS and node.name not in sandbox.globals:
                self.unknown.add(node.name)
        elif isinstance(node, nodes.Filter) and node.name not in sandbox.filters:
            self.forbidden.append(
                f"uses the filter {node.name!r}, which the sandbox does not offer"
            )
        elif isinstance(node, nodes.Call) and _is_name(node.node, "mentions"):
            for arg in node.args:
                if isinstance(arg, nodes.Const) and isinstance(arg.value, str):
                    self.terms.append(arg.value)

    def _attribute(
        self, attr: str, owner: nodes.Node, parent: nodes.Node | None, node: nodes.Node
    ) -> None:
        if attr.startswith("_") or attr in _FORBIDDEN_ATTRIBUTES:
            self.forbidden.append(f"reads {attr!r}, which the sandbox forbids")
        elif _is_name(owner, "vars"):
            self.variables.append(VariableRead(attr, _is_guarded(node, parent)))
        elif _is_name(owner, "tool"):
            self.tools.append(attr)


def _is_name(node: nodes.Node, name: str) -> bool:
    return isinstance(node, nodes.Name) and node.name == name


def _is_guarded(node: nodes.Node, parent: nodes.Node | None) -> bool:
    if isinstance(parent, nodes.Test) and parent.node is node:
        return parent.name in _GUARD_TESTS
    if isinstance(parent, nodes.Filter) and parent.node is node:
        return parent.name in _GUARD_FILTERS
    return False


class CompiledTemplate:
    """A template checked and compiled once, rendered many times."""

    __slots__ = ("_template", "source")

    def __init__(self, source: str) -> None:
        analysis = analyse(source, expression=False)
        if analysis.error is not None:
            raise TemplateSandboxError(f"template {analysis.error}")
        tree = sandbox.parse(source)
        for loop in tree.find_all(nodes.For):
            loop.iter = nodes.Call(nodes.Name(_BUDGET, "load"), [loop.iter], [], None, None)
        self.source = source
        self._template: Template = sandbox.from_string(tree)

    def render(self, context: Mapping[str, Any], *, max_chars: int = MAX_OUTPUT_CHARS) -> str:
        """Render with bounded output and loops.

        Raises:
            TemplateSandboxError: it reads something undefined, breaks a sandbox rule,
                or renders more than ``max_chars`` characters.
        """
        parts: list[str] = []
        size = 0
        try:
            for chunk in self._template.generate({**context, _BUDGET: _LoopBudget()}):
                size += len(chunk)
                if size > max_chars:
                    raise TemplateSandboxError(
                        f"template output exceeds {max_chars:,} characters; shorten it"
                    )
                parts.append(chunk)
        except TemplateSandboxError:
            raise
        except Exception as exc:  # whatever a user's template does wrong is the template's fault
            raise TemplateSandboxError(f"template cannot be rendered: {exc}") from exc
        return "".join(parts)


class CompiledExpression:
    """An expression condition checked and compiled once, evaluated many times."""

    __slots__ = ("_expression", "source")

    def __init__(self, source: str) -> None:
        analysis = analyse(source, expression=True)
        if analysis.error is not None:
            raise TemplateSandboxError(f"expression {analysis.error}")
        self.source = source
        self._expression = sandbox.compile_expression(source, undefined_to_none=False)

    def evaluate(self, context: Mapping[str, Any]) -> Any:
        """The expression's value.

        Raises:
            TemplateSandboxError: it reads something undefined or breaks a sandbox rule.
        """
        try:
            value = self._expression(**context)
            if isinstance(value, Undefined):
                value._fail_with_undefined_error()
        except Exception as exc:  # whatever a user's expression does wrong is its own fault
            raise TemplateSandboxError(f"expression cannot be evaluated: {exc}") from exc
        return value


@functools.lru_cache(maxsize=2048)
def compile_template(source: str) -> CompiledTemplate:
    """The compiled template for ``source`` (cached; raises :class:`TemplateSandboxError`)."""
    return CompiledTemplate(source)


@functools.lru_cache(maxsize=2048)
def compile_expression(source: str) -> CompiledExpression:
    """The compiled expression for ``source`` (cached; raises :class:`TemplateSandboxError`)."""
    return CompiledExpression(source)


def render(text: str, context: Mapping[str, Any], *, max_chars: int = MAX_OUTPUT_CHARS) -> str:
    """Render a template in the sandbox (see :meth:`CompiledTemplate.render`)."""
    return compile_template(text).render(context, max_chars=max_chars)
