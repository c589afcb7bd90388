"""What the rules read: the bundle indexed once, each journey as a networkx graph.

Rules never rebuild what another rule needs: names, reachability, the breadth-first
tree that gives example paths, the outgoing transitions of each state in the order
they are tried, and the static analysis of every template and condition are
computed here once per validation.
"""

from __future__ import annotations

import functools
import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from typing import Any

import networkx as nx
from jinja2 import Environment, nodes
from jinja2.exceptions import TemplateError

from parlant_runtime.bundle.schema import AgentBundle, JourneySpec, TransitionSpec
from parlant_runtime.bundle.source import FieldPath, SourceMap, did_you_mean, format_path
from parlant_runtime.sandbox import (
    CONTEXT_ROOTS,
    Analysis,
    ConditionKind,
    analyse,
    condition_kind,
    expression_source,
    has_template_syntax,
)
from parlant_runtime.sandbox.environment import MAX_SOURCE_CHARS
from parlant_runtime.validation.findings import Code, Finding

_PARSER = Environment(autoescape=False)
"""Parses only (the runtime's sandbox is what evaluates): for what a text means."""

_CONTEXT_WORD = re.compile(r"\b(?:" + "|".join(sorted(CONTEXT_ROOTS)) + r")\b")
"""A word naming part of the turn context: no expression over it can do without one."""

__all__ = [
    "BundleContext",
    "JourneyContext",
    "Site",
    "SiteKind",
    "is_always_true",
    "parse_expression",
    "reads_like_expression",
]


class SiteKind(StrEnum):
    """What a piece of text in the bundle is."""

    TEMPLATE = "template"
    """Text sent to the customer: a prompt, a canned response, the no-match reply."""
    ARGUMENT = "argument"
    """A templated tool argument: rendered like a template, never shown to the customer."""
    CONDITION = "condition"


@dataclass(frozen=True, slots=True)
class Site:
    """One template or condition in the bundle, where it is, and what analysis found."""

    kind: SiteKind
    text: str
    path: FieldPath
    journey: int | None
    states: tuple[str, ...]
    analysis: Analysis | None
    """``None`` for text that needs no parsing (plain prompts, natural-language conditions)."""

    @property
    def what(self) -> str:
        """A short name of the site for messages."""
        return format_path(self.path)


@functools.lru_cache(maxsize=4096)
def parse_expression(source: str) -> nodes.Node | None:
    """The single Jinja expression ``source`` is, or ``None`` when it is not one (only
    parsed, never run)."""
    if len(source) > MAX_SOURCE_CHARS or "{" in source or "}" in source:
        return None
    try:
        body = _PARSER.parse("{{ " + source + " }}").body
    except (TemplateError, RecursionError):
        return None
    if len(body) != 1 or not isinstance(body[0], nodes.Output) or len(body[0].nodes) != 1:
        return None
    node: nodes.Node = body[0].nodes[0]
    return node


def reads_like_expression(condition: str) -> bool:
    """Whether a condition without ``{{ }}`` is an expression over the turn context
    (``vars.day is defined``, ``state.name == 'x'``): plain words never parse as one
    that reads ``vars``, ``state``, ``journey``, ``tool``, ``session``, ``kb``,
    ``message`` or calls ``mentions``, and a lone word is not enough."""
    text = condition.strip()
    if condition_kind(text) is not ConditionKind.NATURAL or not _CONTEXT_WORD.search(text):
        return False  # the cheap test first: most sentences name no part of the context
    tree = parse_expression(text)
    if tree is None or isinstance(tree, nodes.Name):
        return False
    return bool({node.name for node in tree.find_all(nodes.Name)} & CONTEXT_ROOTS)


def is_always_true(condition: str | None) -> bool:
    """Whether a condition holds whatever the turn: empty, or a constant-true expression."""
    kind = condition_kind(condition)
    if kind is ConditionKind.ALWAYS:
        return True
    if kind is ConditionKind.EXPRESSION:
        assert condition is not None
        return analyse(expression_source(condition), expression=True).constant is True
    return False


def _condition_site(
    text: str | None, path: FieldPath, journey: int | None, states: tuple[str, ...] = ()
) -> Site | None:
    if text is None:
        return None
    kind = condition_kind(text)
    if kind is ConditionKind.ALWAYS:
        return None
    analysis = None
    if kind is ConditionKind.EXPRESSION:
        analysis = analyse(expression_source(text), expression=True)
    elif has_template_syntax(text):
        analysis = Analysis(
            error="mixes text with `{{ }}`; an expression condition is one `{{ ... }}` "
            "and nothing else, a natural-language condition has no braces"
        )
    return Site(SiteKind.CONDITION, text, path, journey, states, analysis)


def _template_site(
    text: str | None,
    path: FieldPath,
    journey: int | None,
    states: tuple[str, ...] = (),
    kind: SiteKind = SiteKind.TEMPLATE,
) -> Site | None:
    if text is None:
        return None
    analysis = analyse(text, expression=False) if has_template_syntax(text) else None
    return Site(kind, text, path, journey, states, analysis)


@dataclass
class BundleContext:
    """The bundle, indexed for the rules."""

    bundle: AgentBundle
    source: SourceMap | None = None
    _always_true: dict[str | None, bool] = field(default_factory=dict, init=False, repr=False)

    def always_true(self, condition: str | None) -> bool:
        """:func:`is_always_true`, remembered for the rest of this validation."""
        known = self._always_true.get(condition)
        if known is None:
            known = self._always_true[condition] = is_always_true(condition)
        return known

    @cached_property
    def tool_names(self) -> frozenset[str]:
        """Names of the declared tools."""
        return frozenset(tool.name for tool in self.bundle.tools)

    @cached_property
    def guideline_names(self) -> frozenset[str]:
        """Names of the named guidelines."""
        return frozenset(g.name for g in self.bundle.guidelines if g.name is not None)

    @cached_property
    def term_words(self) -> frozenset[str]:
        """Glossary term names and synonyms, case-folded."""
        words = set()
        for term in self.bundle.terms:
            words.add(term.name.casefold())
            words.update(synonym.casefold() for synonym in term.synonyms)
        return frozenset(words)

    @cached_property
    def private_variables(self) -> frozenset[str]:
        """Keys of variables declared private."""
        return frozenset(v.key for v in self.bundle.variables if v.is_private)

    @cached_property
    def sites(self) -> tuple[Site, ...]:
        """Every template and condition of the bundle, in file order."""
        return tuple(site for site in self._iter_sites() if site is not None)

    @cached_property
    def defined_variables(self) -> frozenset[str]:
        """Variables something defines: declared, set by a tool state, or tested for presence.

        A variable tested with ``is defined`` somewhere is taken as set from outside
        the bundle (by an extractor or the host), so the author knows it may be missing.
        """
        names = {variable.key for variable in self.bundle.variables}
        for journey in self.bundle.journeys:
            for state in journey.states:
                result = state.tool_config.get("resultVariable")
                if isinstance(result, str):
                    names.add(result)
        for site in self.sites:
            analysis = site.analysis
            if (
                analysis is None
                and site.kind is SiteKind.CONDITION
                and reads_like_expression(site.text)
            ):  # meant as an expression (unbraced_expression says so): count it as one
                analysis = analyse(site.text.strip(), expression=True)
            if analysis is not None:
                names.update(read.name for read in analysis.variables if read.guarded)
        return frozenset(names)

    @cached_property
    def journeys_of_state(self) -> dict[str, tuple[str, ...]]:
        """For each state name, the titles of the journeys that have such a state."""
        owners: dict[str, list[str]] = {}
        for journey in self.bundle.journeys:
            for state in journey.states:
                owners.setdefault(state.name, []).append(journey.title)
        return {name: tuple(titles) for name, titles in owners.items()}

    def _iter_sites(self) -> Iterator[Site | None]:
        bundle = self.bundle
        if bundle.agent.no_match_response and has_template_syntax(bundle.agent.no_match_response):
            yield _template_site(bundle.agent.no_match_response, ("agent", "noMatchResponse"), None)
        for i, guideline in enumerate(bundle.guidelines):
            yield _condition_site(guideline.condition, ("guidelines", i, "condition"), None)
        for i, canned in enumerate(bundle.canned_responses):
            yield _template_site(canned.template, ("cannedResponses", i, "template"), None)
            for k, condition in enumerate(canned.conditions):
                yield _condition_site(condition, ("cannedResponses", i, "conditions", k), None)
        for j, journey in enumerate(bundle.journeys):
            here: FieldPath = ("journeys", j)
            for k, condition in enumerate(journey.conditions):
                yield _condition_site(condition, (*here, "conditions", k), j)
            for i, state in enumerate(journey.states):
                at = (*here, "states", i)
                names = (state.name,)
                yield _template_site(state.chat_prompt, (*at, "chatPrompt"), j, names)
                yield _condition_site(state.condition, (*at, "condition"), j, names)
                arguments = state.tool_config.get("arguments")
                if isinstance(arguments, dict):
                    for key, value in arguments.items():
                        if isinstance(value, str) and has_template_syntax(value):
                            path = (*at, "toolConfig", "arguments", key)
                            yield _template_site(value, path, j, names, SiteKind.ARGUMENT)
            for i, transition in enumerate(journey.transitions):
                ends = (transition.from_state, transition.to_state)
                path = (*here, "transitions", i, "condition")
                yield _condition_site(transition.condition, path, j, ends)
            for i, link in enumerate(journey.guidelines):
                path = (*here, "guidelines", i, "journeySpecificCondition")
                yield _condition_site(link.journey_specific_condition, path, j)

    def finding(
        self,
        code: Code,
        message: str,
        path: FieldPath,
        *,
        journey: str | None = None,
        states: Iterable[str] = (),
        example: Iterable[str] | None = None,
    ) -> Finding:
        """A finding at ``path``, with its line when the bundle came from a file."""
        return Finding(
            code=code,
            journey=journey,
            states=tuple(states),
            message=message,
            field=format_path(path),
            line=self.source.line_of(path) if self.source is not None else None,
            example=tuple(example) if example is not None else None,
        )


@dataclass
class JourneyContext:
    """One journey as a graph: states are nodes, resolvable transitions are edges."""

    bundle: BundleContext
    journey: JourneySpec
    index: int
    graph: Any = field(init=False)  # nx.DiGraph; networkx ships no type information

    guesses: dict[str, str] = field(init=False)
    """Transition ends that name no state, and the state each most likely means."""
    lost: frozenset[str] = field(init=False)
    """States with a transition to a name that is no state of the journey."""
    orphans: frozenset[str] = field(init=False)
    """States with a transition from a name that is no state of the journey."""

    def __post_init__(self) -> None:
        # A transition with an end that names no state is one dangling_reference; the
        # path rules stay quiet about what follows from it (no dead_end at its source,
        # no unreachable_state behind it), as the fix may change all of that.
        graph = nx.DiGraph()
        names = [state.name for state in self.journey.states]
        graph.add_nodes_from(names)
        self.guesses = {}
        lost: set[str] = set()
        orphans: set[str] = set()
        for transition in self.journey.transitions:
            source, target = transition.from_state, transition.to_state
            for name in (source, target):
                if name not in graph and name not in self.guesses:
                    guess = did_you_mean(name, sorted(names))
                    if guess is not None:
                        self.guesses[name] = guess
            if source in graph and target in graph:
                graph.add_edge(source, target)
            elif source in graph:
                lost.add(source)
            elif target in graph:
                orphans.add(target)
                if source in self.guesses:  # the state it most likely leaves lacks that exit
                    lost.add(self.guesses[source])
        self.graph = graph
        self.lost = frozenset(lost)
        self.orphans = frozenset(orphans)

    @property
    def title(self) -> str:
        """The journey's title."""
        return self.journey.title

    @cached_property
    def initial_states(self) -> tuple[str, ...]:
        """Names of the states marked initial."""
        return tuple(state.name for state in self.journey.states if state.is_initial)

    @cached_property
    def final_states(self) -> frozenset[str]:
        """Names of the states that end the journey."""
        return frozenset(state.name for state in self.journey.states if state.ends_journey)

    @cached_property
    def waiting_states(self) -> frozenset[str]:
        """Names of the states where the conversation waits for the customer."""
        return frozenset(state.name for state in self.journey.states if state.stops_turn)

    @cached_property
    def parents(self) -> dict[str, str | None]:
        """Breadth-first tree from the initial states: each reachable state's parent."""
        return _bfs(self.initial_states, self.graph.successors)

    def is_reachable(self, state: str) -> bool:
        """Whether some path from an initial state reaches ``state``."""
        return state in self.parents

    @cached_property
    def can_reach_final(self) -> frozenset[str]:
        """States from which some final state can be reached."""
        return frozenset(_bfs(sorted(self.final_states), self.graph.predecessors))

    @cached_property
    def outgoing(self) -> dict[str, list[tuple[int, TransitionSpec]]]:
        """Each state's transitions (with their index) in the order they are tried.

        Higher priority first; among equal priorities, the order of the file.
        """
        by_source: dict[str, list[tuple[int, TransitionSpec]]] = {}
        for index, transition in enumerate(self.journey.transitions):
            by_source.setdefault(transition.from_state, []).append((index, transition))
        for transitions in by_source.values():
            transitions.sort(key=lambda item: (-item[1].priority, item[0]))
        return by_source

    def path_to(self, state: str) -> tuple[str, ...]:
        """The shortest path from an initial state to ``state`` (which must be reachable)."""
        path = [state]
        parent = self.parents[state]
        while parent is not None:
            path.append(parent)
            parent = self.parents[parent]
        return tuple(reversed(path))

    def state_path(self, name: str) -> FieldPath:
        """The field path of the state called ``name``."""
        for index, state in enumerate(self.journey.states):
            if state.name == name:
                return ("journeys", self.index, "states", index)
        return ("journeys", self.index, "states")

    def transition_path(self, index: int) -> FieldPath:
        """The field path of transition ``index``."""
        return ("journeys", self.index, "transitions", index)

    def finding(
        self,
        code: Code,
        message: str,
        path: FieldPath,
        *,
        states: Iterable[str] = (),
        example: Iterable[str] | None = None,
    ) -> Finding:
        """A finding in this journey."""
        return self.bundle.finding(
            code, message, path, journey=self.title, states=states, example=example
        )


def _bfs(
    starts: Iterable[str], neighbours: Callable[[str], Iterable[str]]
) -> dict[str, str | None]:
    parents: dict[str, str | None] = {}
    queue: deque[str] = deque()
    for start in starts:
        if start not in parents:
            parents[start] = None
            queue.append(start)
    while queue:
        node = queue.popleft()
        for nxt in neighbours(node):
            if nxt not in parents:
                parents[nxt] = node
                queue.append(nxt)
    return parents
