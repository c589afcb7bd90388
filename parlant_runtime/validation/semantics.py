"""Rules about what a text means, not whether it parses: names it compares with, and
conditions that were meant as expressions.

Both read the expression tree that Jinja's parser gives (never running anything):
``state.name == 'offers'`` names a state, ``vars.day is defined`` without braces is
an expression that the runtime would hand to the natural-language evaluator.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from jinja2 import nodes

from parlant_runtime.bundle.schema import JourneySpec
from parlant_runtime.bundle.source import did_you_mean
from parlant_runtime.model import StateType
from parlant_runtime.sandbox import expression_source
from parlant_runtime.validation.context import (
    NAMES_A_FIELD,
    BundleContext,
    Site,
    SiteKind,
    parse_expression,
    reads_like_expression,
)
from parlant_runtime.validation.findings import Code, Finding
from parlant_runtime.validation.registry import bundle_rule

__all__: list[str] = []  # rules register themselves; nothing to import from here

_STATE_TYPES = tuple(kind.value for kind in StateType)


@dataclass(frozen=True, slots=True)
class _Named:
    """A comparison of ``state.name``, ``state.type`` or ``journey.title`` with a constant."""

    field: str
    value: str


def _field(node: nodes.Node) -> str | None:
    """``state.name`` / ``state['name']`` / ``journey.title`` as ``"state.name"``."""
    if isinstance(node, nodes.Getattr):
        base, attr = node.node, node.attr
    elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
        base, attr = node.node, node.arg.value
    else:
        return None
    if not isinstance(base, nodes.Name) or not isinstance(attr, str):
        return None
    name = f"{base.name}.{attr}"
    return name if name in ("state.name", "state.type", "journey.title") else None


def _constants(node: nodes.Node) -> list[str]:
    if isinstance(node, nodes.Const) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, nodes.List | nodes.Tuple):
        return [v for item in node.items for v in _constants(item)]
    return []


def _named(tree: nodes.Node) -> list[_Named]:
    """Every constant that ``state.name``, ``state.type`` or ``journey.title`` is
    compared with (``==``, ``!=``, ``in``, ``not in``), either way round."""
    found: list[_Named] = []
    compares = [tree] if isinstance(tree, nodes.Compare) else []
    for compare in [*compares, *tree.find_all(nodes.Compare)]:
        if len(compare.ops) != 1 or compare.ops[0].op not in ("eq", "ne", "in", "notin"):
            continue
        left, right = compare.expr, compare.ops[0].expr
        for side, other in ((left, right), (right, left)):
            field = _field(side)
            if field is not None:
                found.extend(_Named(field, value) for value in _constants(other))
    return found


def _title(ctx: BundleContext, site: Site) -> str | None:
    return ctx.bundle.journeys[site.journey].title if site.journey is not None else None


def _suggestion(word: str, known: list[str]) -> str:
    close = did_you_mean(word, known)
    return f"did you mean {close!r}?" if close else "name one that exists or fix the condition."


@bundle_rule(Code.DANGLING_REFERENCE)
def check_condition_names(ctx: BundleContext) -> Iterator[Finding]:
    """``state.name``, ``state.type`` and ``journey.title`` must be compared with names
    that exist, or the condition can never hold (or always holds, with ``!=``)."""
    titles = [journey.title for journey in ctx.bundle.journeys]
    for site in ctx.checked_sites:
        if site.kind is not SiteKind.CONDITION or site.analysis is None:
            continue
        if site.analysis.error is not None:
            continue  # invalid_condition says it
        source = expression_source(site.text)
        if not NAMES_A_FIELD.search(source):
            continue  # the cheap test first: parsing every expression again is not
        tree = parse_expression(source)
        if tree is None:
            continue
        inside = ctx.bundle.journeys[site.journey] if site.journey is not None else None
        for named in _named(tree):
            problem = _unknown(named, inside, ctx, titles)
            if problem is not None:
                yield ctx.finding(
                    Code.DANGLING_REFERENCE,
                    f"The condition at {site.what} {problem}",
                    site.path,
                    journey=_title(ctx, site),
                    states=site.states,
                )


def _unknown(
    named: _Named, inside: JourneySpec | None, ctx: BundleContext, titles: list[str]
) -> str | None:
    """Why the compared constant names nothing (``None`` when it is fine)."""
    if named.field == "state.type":
        if named.value in _STATE_TYPES:
            return None
        return (
            f"compares state.type with {named.value!r}, which is no state type "
            f"({', '.join(_STATE_TYPES)}); {_suggestion(named.value, list(_STATE_TYPES))}"
        )
    if named.field == "journey.title":
        if named.value in titles:
            return None
        return (
            f"compares journey.title with {named.value!r}, but no journey has that title; "
            f"{_suggestion(named.value, titles)}"
        )
    if inside is not None:  # evaluated only while in this journey
        own = [state.name for state in inside.states]
        if named.value in own:
            return None
        where = f"journey {inside.title!r} has no state"
        return f"compares state.name with {named.value!r}, but {where} of that name; " + (
            _suggestion(named.value, own)
        )
    if named.value in ctx.journeys_of_state:
        return None
    everywhere = sorted(ctx.journeys_of_state)
    return (
        f"compares state.name with {named.value!r}, but no journey has a state of that "
        f"name; {_suggestion(named.value, everywhere)}"
    )


@bundle_rule(Code.UNBRACED_EXPRESSION)
def check_unbraced_expression(ctx: BundleContext) -> Iterator[Finding]:
    """A condition without ``{{ }}`` is natural language, decided by the evaluator (an
    LLM, or keywords offline): one that parses as an expression over the turn context
    was almost surely meant as one."""
    for site in ctx.checked_sites:
        if site.kind is not SiteKind.CONDITION or site.analysis is not None:
            continue
        text = site.text.strip()
        if not reads_like_expression(text):
            continue
        yield ctx.finding(
            Code.UNBRACED_EXPRESSION,
            f"The condition at {site.what} reads like an expression but has no `{{{{ }}}}`, "
            f"so it goes to the natural-language evaluator as words; write "
            f'"{{{{ {text} }}}}".',
            site.path,
            journey=_title(ctx, site),
            states=site.states,
        )
