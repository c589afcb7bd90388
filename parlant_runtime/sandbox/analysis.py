"""Static analysis of templates and expression conditions, shared by validator and runtime.

:func:`analyse` tells whether a text can run in the sandbox at all and what it
reads (variables, tools, glossary terms, names outside the turn context), without
running any of it. Simple texts take a fast exact path (:mod:`._quick`); the rest
are parsed by Jinja and walked once.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from jinja2 import TemplateSyntaxError, nodes
from jinja2.environment import TemplateExpression
from jinja2.exceptions import SecurityError

from parlant_runtime.sandbox._quick import (
    QuickResult,
    analyse_shape,
    quick_key,
    shape_of,
)
from parlant_runtime.sandbox.bounds import bounded, helpers, size_of, work_scope
from parlant_runtime.sandbox.environment import (
    CONTEXT_ROOTS,
    FORBIDDEN_ATTRIBUTES,
    MAX_OUTPUT_CHARS,
    MAX_SOURCE_CHARS,
    sandbox,
)

__all__ = [
    "Analysis",
    "ConditionKind",
    "VariableRead",
    "analyse",
    "analyse_condition",
    "analyse_template",
    "analyse_text",
    "condition_kind",
    "expression_source",
    "has_template_syntax",
]

_FORBIDDEN_BLOCKS = (
    (nodes.Extends, "loads another template"),
    (nodes.Include, "loads another template"),
    (nodes.Import, "loads another template"),
    (nodes.FromImport, "loads another template"),
    (nodes.Macro, "defines a macro (templates that can recurse can run forever)"),
    (nodes.CallBlock, "uses a call block"),
    (nodes.AssignBlock, "captures output in a set block"),
    (nodes.FilterBlock, "uses a filter block"),
)
_GUARD_TESTS = frozenset({"defined", "undefined", "none"})
# str methods that can build huge strings: refused at run time for strings; refused here by
# name whatever the object, since the analysis cannot know types
_UNSAFE_METHODS = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs", "translate"})
# mapping methods that read vars as a whole or by a computed key
_MAPPING_READERS = frozenset({"items", "keys", "values", "get"})
_GUARD_FILTERS = frozenset({"default", "d"})


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


_BY_KEY: tuple[dict[str, Analysis], dict[str, Analysis]] = ({}, {})
"""Fast-path analyses by :func:`quick_key`, of templates and of expressions:
``Step 41: {{ vars.name }}`` and ``Step 42: {{ vars.name }}`` share one, found
without the regular expressions of the shape."""
_BY_KEY_LIMIT = 16_384


@functools.lru_cache(maxsize=16_384)
def analyse(text: str, *, expression: bool) -> Analysis:
    """Parse a template (or, with ``expression``, a bare expression) and check it statically.

    Never raises for bad input and never runs any of it: problems come back as
    :attr:`Analysis.error`. Remembered per text (the runtime compiles the same texts
    again and again); :func:`analyse_text` is the same analysis, not remembered.
    """
    return analyse_text(text, expression=expression)


def analyse_text(text: str, *, expression: bool) -> Analysis:
    """:func:`analyse`, without remembering the text itself: for a caller that sees
    each text once, such as validation (a large journey's texts, each kept, would
    only push the runtime's out of the cache). Texts of one shape still share their
    analysis."""
    if len(text) > MAX_SOURCE_CHARS:
        return Analysis(error=f"is longer than {MAX_SOURCE_CHARS:,} characters")
    key = quick_key(text, expression=expression)
    by_key = _BY_KEY[expression]
    if key is not None:
        known = by_key.get(key)
        if known is not None:
            return known
    shape = shape_of(text, expression=expression)
    if shape is not None:
        analysis = _analyse_shape(shape)
        if analysis is not None:
            if key is not None:  # kept only when the fast path answered (see quick_key)
                if len(by_key) >= _BY_KEY_LIMIT:
                    by_key.clear()
                by_key[key] = analysis
            return analysis
    try:
        return _analyse_with_jinja(text, expression=expression)
    except RecursionError:
        return Analysis(error="is nested too deeply to be analysed")


def analyse_template(text: str) -> Analysis | None:
    """:func:`analyse_text` of a template, or ``None`` for plain text (no Jinja syntax).

    The common text with one ``{{ ... }}`` whose inside the fast path has already seen
    in another text is answered with a look-up (see :func:`quick_key`).
    """
    start = text.find("{{")
    if start < 0:
        if "{%" not in text and "{#" not in text:
            return None
        return analyse_text(text, expression=False)
    end = text.find("}}", start + 2)
    if (
        end >= 0
        and len(text) <= MAX_SOURCE_CHARS
        and "{{" not in text[end + 2 :]
        and "{%" not in text
        and "{#" not in text
    ):
        known = _BY_KEY[False].get(text[start + 2 : end])
        if known is not None:
            return known
    return analyse_text(text, expression=False)


def analyse_condition(condition: str) -> tuple[ConditionKind, Analysis | None]:
    """A condition's kind and, for an expression, :func:`analyse_text` of its expression
    (``None`` for the other kinds).

    The common ``{{ words }}`` whose expression the fast path has already seen in
    another text of the same key is answered from the words alone.
    """
    words = condition.split()
    if (
        len(words) > 2
        and words[0] == "{{"
        and words[-1] == "}}"
        and len(condition) <= MAX_SOURCE_CHARS
        and "'" not in condition
        and '"' not in condition
    ):  # the expression's words are those between the braces (see quick_key)
        inner = words[1:-1]
        for index, word in enumerate(inner):  # expression_key, inline
            if word.isdigit() and word.isascii():
                inner[index] = "0"
        known = _BY_KEY[True].get(" ".join(inner))
        if known is not None:
            return ConditionKind.EXPRESSION, known
    kind = condition_kind(condition)
    if kind is ConditionKind.EXPRESSION:
        return kind, analyse_text(expression_source(condition), expression=True)
    return kind, None


@functools.lru_cache(maxsize=16_384)
def _analyse_shape(shape: tuple[str, ...]) -> Analysis | None:
    quick = analyse_shape(shape, FORBIDDEN_ATTRIBUTES)
    return _from_quick(quick) if quick is not None else None


def clear_caches() -> None:
    """Forget every analysis (benchmarks use it to measure cold runs)."""
    analyse.cache_clear()
    _analyse_shape.cache_clear()
    for by_key in _BY_KEY:
        by_key.clear()


def _from_quick(quick: QuickResult) -> Analysis:
    if quick.forbidden is not None:
        return Analysis(error=_forbidden_message(quick.forbidden))
    unknown = {
        name for name in quick.names if name not in CONTEXT_ROOTS and name not in sandbox.globals
    }
    return Analysis(
        variables=tuple(VariableRead(name, guarded) for name, guarded in quick.reads),
        unknown_names=tuple(sorted(unknown)),
        tools=tuple(quick.tools),
    )


def _forbidden_message(name: str) -> str:
    return f"reads {name!r}, which the sandbox forbids"


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
    unknown = collector.unknown - collector.assigned
    if collector.loops:
        unknown.discard("loop")  # the loop variable of a for body
    constant = _constant_truth(tree) if expression else None
    # last: evaluating rewrites parts of the tree; an expression's value is not printed
    beyond = _constant_beyond_bounds(tree, printing=not expression)
    if beyond is not None:
        return Analysis(error=beyond)
    return Analysis(
        variables=tuple(collector.variables),
        unknown_names=tuple(sorted(unknown)),
        tools=tuple(collector.tools),
        terms=tuple(collector.terms),
        constant=constant,
    )


# nodes whose value may be large; a constant part without any is as small as its source
_BUILDERS = (nodes.Mul, nodes.Add, nodes.Pow, nodes.Concat, nodes.Filter, nodes.Test)
# nodes that read the turn context or call something: never constant
_VARYING = (nodes.Name, nodes.Call, nodes.ContextReference, nodes.DerivedContextReference)


def _constant_beyond_bounds(tree: nodes.Template, *, printing: bool) -> str | None:
    """Run each constant part of the text that builds something (``[[0] * 100000] *
    100000``, ``'x' * 10 ** 9``) in the sandbox, within the same bounds as a render:
    one that breaks a bound, or prints more than a template may, is an error now
    rather than in a conversation. Nothing that reads the context is run."""
    parts: list[tuple[nodes.Expr, bool]] = []
    _constant_parts(tree, None, parts)
    for node, output in parts:
        printed = printing and output
        try:
            value = _evaluate(node)
        except SecurityError as exc:
            return f"builds a value beyond the sandbox's bounds: {exc}"
        except Exception:  # a type error and the like: the render reports it, not a bound
            continue
        if printed and not isinstance(value, str) and size_of(value) > MAX_OUTPUT_CHARS:
            return f"prints a value longer than {MAX_OUTPUT_CHARS:,} characters"
        if printed and isinstance(value, str) and len(value) > MAX_OUTPUT_CHARS:
            return f"prints a value longer than {MAX_OUTPUT_CHARS:,} characters"
    return None


def _constant_parts(
    node: nodes.Node, parent: nodes.Node | None, found: list[tuple[nodes.Expr, bool]]
) -> tuple[bool, bool]:
    """Whether ``node`` is constant and whether it builds; collects the largest constant
    parts that build (and whether each is printed as is)."""
    children = [(child, _constant_parts(child, node, found)) for child in node.iter_child_nodes()]
    constant = (
        isinstance(node, nodes.Expr | nodes.Helper)
        and not isinstance(node, _VARYING)
        and all(flag for _, (flag, _) in children)
    )
    builds = isinstance(node, _BUILDERS) or any(flag for _, (_, flag) in children)
    if not constant:
        for child, (child_constant, child_builds) in children:
            if child_constant and child_builds and isinstance(child, nodes.Expr):
                found.append((child, isinstance(node, nodes.Output)))
    return constant, builds


def _evaluate(node: nodes.Expr) -> Any:
    body = [nodes.Assign(nodes.Name("result", "store"), node, lineno=1)]
    template = sandbox.from_string(bounded(nodes.Template(body, lineno=1)))
    with work_scope(MAX_OUTPUT_CHARS):
        return TemplateExpression(template, undefined_to_none=False)(**helpers())


def _is_multiple_outputs(tree: nodes.Template) -> bool:
    outputs = [node for node in tree.body if isinstance(node, nodes.Output)]
    return len(tree.body) != 1 or len(outputs) != 1 or len(outputs[0].nodes) != 1


def _constant_truth(tree: nodes.Template) -> bool | None:
    """Fold the expression if it is made of literals only.

    Folding goes through the sandbox's intercepted operators and checked filters, so
    it is bounded like a render.
    """
    output = tree.body[0]
    assert isinstance(output, nodes.Output)
    try:
        return bool(output.nodes[0].as_const())
    except nodes.Impossible:
        return None
    except Exception:  # folding hit a sandbox bound or a type error: not a constant
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
    loops: int = 0

    def visit(self, node: nodes.Node, parent: nodes.Node | None) -> None:
        self._check(node, parent)
        for child in node.iter_child_nodes():
            self.visit(child, node)

    def _check(self, node: nodes.Node, parent: nodes.Node | None) -> None:
        for kind, what in _FORBIDDEN_BLOCKS:
            if isinstance(node, kind):
                self.forbidden.append(f"{what}, which the sandbox forbids")
        if isinstance(node, nodes.For):
            self.loops += 1
            if node.recursive:
                self.forbidden.append("uses a recursive loop, which the sandbox forbids")
        if isinstance(node, nodes.Getattr):
            self._attribute(node.attr, node.node, parent, node)
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
            if isinstance(node.arg.value, str):
                self._attribute(node.arg.value, node.node, parent, node)
        elif isinstance(node, nodes.Name):
            self._name(node)
        elif isinstance(node, nodes.Filter):
            self._filter(node)
        elif (
            isinstance(node, nodes.Mod)
            and isinstance(node.left, nodes.Const)
            and isinstance(node.left.value, str)
        ):
            self.forbidden.append("formats text with %, which the sandbox forbids; use ~")
        elif isinstance(node, nodes.Call) and _is_name(node.node, "mentions"):
            for arg in node.args:
                if isinstance(arg, nodes.Const) and isinstance(arg.value, str):
                    self.terms.append(arg.value)

    def _filter(self, node: nodes.Filter) -> None:
        if node.name not in sandbox.filters or node.name.startswith("_"):
            self.forbidden.append(
                f"uses the filter {node.name!r}, which the sandbox does not offer"
            )
        elif node.name == "attr" and node.args and isinstance(node.args[0], nodes.Const):
            name = str(node.args[0].value)
            if name.startswith("_") or name in FORBIDDEN_ATTRIBUTES | _UNSAFE_METHODS:
                self.forbidden.append(_forbidden_message(name))

    def _name(self, node: nodes.Name) -> None:
        if node.name.startswith("_"):
            self.forbidden.append(
                f"uses the name {node.name!r}; names starting with _ are reserved"
            )
        elif node.ctx in ("store", "param"):
            self.assigned.add(node.name)
        elif node.name not in CONTEXT_ROOTS and node.name not in sandbox.globals:
            self.unknown.add(node.name)

    def _attribute(
        self, attr: str, owner: nodes.Node, parent: nodes.Node | None, node: nodes.Node
    ) -> None:
        called = isinstance(parent, nodes.Call) and parent.node is node
        if _forbidden_attribute(attr):
            # the walk meets `a._x.mro` at `mro` first; name the first in reading order
            self.forbidden.append(_forbidden_message(_first_forbidden(owner) or attr))
        elif called and attr in _UNSAFE_METHODS:
            self.forbidden.append(f"calls {attr!r}, which the sandbox forbids")
        elif _is_name(owner, "vars") and called and attr in _MAPPING_READERS:
            self._mapping_call(attr, parent)
        elif _is_name(owner, "vars"):
            self.variables.append(VariableRead(attr, _is_guarded(node, parent)))
        elif _is_name(owner, "tool"):
            self.tools.append(attr)

    def _mapping_call(self, method: str, call: nodes.Node | None) -> None:
        """``vars.get('x')`` reads x (and is safe when x is missing); the others read all."""
        assert isinstance(call, nodes.Call)
        if method == "get" and call.args and isinstance(call.args[0], nodes.Const):
            self.variables.append(VariableRead(str(call.args[0].value), guarded=True))


def _forbidden_attribute(attr: str) -> bool:
    return attr.startswith("_") or attr in FORBIDDEN_ATTRIBUTES


def _first_forbidden(node: nodes.Node) -> str | None:
    """The first forbidden attribute, in reading order, of a chain ``a.b['c'].d``."""
    found = None
    while isinstance(node, nodes.Getattr | nodes.Getitem):
        if isinstance(node, nodes.Getattr):
            name = node.attr
        elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
            name = node.arg.value
        else:
            name = None
        if name is not None and _forbidden_attribute(name):
            found = name
        node = node.node
    return found


def _is_name(node: nodes.Node, name: str) -> bool:
    return isinstance(node, nodes.Name) and node.name == name


def _is_guarded(node: nodes.Node, parent: nodes.Node | None) -> bool:
    if isinstance(parent, nodes.Test) and parent.node is node:
        return parent.name in _GUARD_TESTS
    if isinstance(parent, nodes.Filter) and parent.node is node:
        return parent.name in _GUARD_FILTERS
    return False
