"""Conversation tests generated from the journey graph: skeletons that take every transition.

For each journey, :func:`generate_tests` works in four steps:

1. **Graph.** The journey becomes a networkx multigraph: one node per state, one
   edge per transition (keyed by its position, so two transitions between the same
   two states stay two edges).
2. **Candidate paths** (:class:`_Routes`). One breadth-first tree from the initial
   state gives, for every transition ``t`` it reaches, the shortest way to ``t``'s
   source, and the distances to the final states a way on from ``t``'s target.
   Among equally short ways the tree keeps the one through the transitions tried
   first (highest priority), which have no rival to get past. Alternatives (up to
   :data:`ALTERNATIVES` ways, at most :data:`_DETOUR` transitions longer) are
   searched only for a transition whose first way fails. Linear in the journey,
   where enumerating paths per transition grew as ``states**4`` on dense journeys.
3. **Greedy set cover** (:func:`_greedy_cover`). Repeatedly the candidate that
   takes the most transitions not yet taken (the shorter on ties, then file
   order) becomes a case, until every transition is taken or no candidate is
   left: the classic greedy approximation, within a factor ``ln(n)`` of the
   fewest cases, evaluated lazily on a heap. The chosen way is extended by a walk
   through transitions not taken yet (:meth:`_Routes.extended`), so that one case
   takes many transitions of a dense journey.
4. **Planning.** Each path is turned into steps: a step per customer turn (the
   first starts the journey; each later one leaves the chat state the session
   waits in), with ``holds`` listing the natural-language conditions the path
   needs and leaving out those of every transition that would win first; ``set``
   values and tool stubs built from the expression conditions it can read (``is
   defined``, comparisons with a constant, truthiness, ``not``/``and``/``or``,
   ``mentions('term')``) and from the tools' parameter and return schemas. A
   value set in a step holds for the whole step, so every expression the step
   decided is checked again after each one; a contradiction ("``score > 3``" and
   "not ``score > 2``" in one turn) makes the path unplannable. After ``t``, the
   way on to a final state is searched depth first (the suggested one first,
   then the others nearest a final state, within a bounded detour and budget),
   so that a way on that contradicts the path so far is replaced by one that
   does not.
5. **Checking** (:class:`_Checker`). The case is then **run** with the real runner
   (on one published agent when cases cannot see each other's values); only the
   transitions it really took count, and a case that does not pass (or does not
   take ``t``) is dropped and the next candidate tried. A transition no case
   took is reported with the reason.

Where a person must write something, the text says ``TODO``: each customer
message is a placeholder (``"TODO: ..."``, carrying a glossary term where a
``mentions()`` condition needs one) and each step has a ``# TODO`` comment for
the reply to expect. The generated file is valid as it stands and passes.
"""

from __future__ import annotations

import asyncio
import copy
import heapq
import json
import os
import re
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
from jinja2 import Environment, nodes
from jinja2.exceptions import TemplateSyntaxError

from parlant_runtime.bundle import LoadedBundle
from parlant_runtime.bundle.schema import AgentBundle, JourneySpec, StateSpec, TransitionSpec
from parlant_runtime.bundle.source import SourceMap
from parlant_runtime.model import StateType
from parlant_runtime.sandbox import ConditionKind, condition_kind, expression_source
from parlant_runtime.testing.coverage import taken_transitions, transition_positions
from parlant_runtime.testing.loader import ConversationFile
from parlant_runtime.testing.runner import AgentHost, run_case
from parlant_runtime.testing.schema import ConversationSpec

__all__ = [
    "GeneratedCase",
    "GeneratedJourney",
    "GeneratedTests",
    "Uncovered",
    "generate_tests",
    "render_generated",
]

_PARSER = Environment(autoescape=False)
"""Only parses expressions (never renders): the runtime's sandbox evaluates them."""

_MISSING: Any = object()


@dataclass(frozen=True, slots=True)
class Uncovered:
    """A transition no generated case takes, and why."""

    journey: str
    index: int
    line: int | None
    description: str
    reason: str


@dataclass(frozen=True, slots=True)
class GeneratedCase:
    """One case as conversation-test data, with the comments written beside its steps."""

    data: dict[str, Any]
    notes: tuple[tuple[str, ...], ...]
    """Per step, the comment lines (what the step takes, the TODO for the reply)."""
    covers: frozenset[int]
    """Positions of the transitions the case took when it was run."""


@dataclass(frozen=True, slots=True)
class GeneratedJourney:
    """The cases of one journey, and the transitions they leave out."""

    title: str
    transitions: int
    cases: tuple[GeneratedCase, ...]
    uncovered: tuple[Uncovered, ...]

    @property
    def covered(self) -> int:
        return self.transitions - len(self.uncovered)


@dataclass(frozen=True, slots=True)
class GeneratedTests:
    """Everything generated for one bundle."""

    bundle: str
    journeys: tuple[GeneratedJourney, ...]

    @property
    def cases(self) -> int:
        return sum(len(journey.cases) for journey in self.journeys)


class _Unplannable(Exception):
    """The path cannot be turned into steps by construction; the message says why."""


# ---------------------------------------------------------------------------
# the graph and its paths


@dataclass(frozen=True, slots=True)
class _Edge:
    index: int
    spec: TransitionSpec


def _ordered(journey: JourneySpec) -> dict[str, list[_Edge]]:
    """Transitions per source state in the order the engine tries them."""
    names = {state.name for state in journey.states}
    ordered = sorted(
        (
            (i, t)
            for i, t in enumerate(journey.transitions)
            if t.from_state in names and t.to_state in names
        ),
        key=lambda item: (-item[1].priority, item[0]),
    )
    outgoing: dict[str, list[_Edge]] = {}
    for index, spec in ordered:
        outgoing.setdefault(spec.from_state, []).append(_Edge(index, spec))
    return outgoing


def _graph(journey: JourneySpec, outgoing: Mapping[str, list[_Edge]]) -> nx.MultiDiGraph:
    graph = nx.MultiDiGraph()
    graph.add_nodes_from(state.name for state in journey.states)
    for edges in outgoing.values():
        for edge in edges:
            graph.add_edge(edge.spec.from_state, edge.spec.to_state, key=edge.index)
    return graph


ALTERNATIVES = 4
"""Ways to a transition tried, the shortest first, when one cannot be planned or run."""

_SEARCH_LIMIT = 200
"""Simple paths looked at per leg end before the shortest few are kept (bounds the work)."""

_DETOUR = 3
"""Alternative ways (to a transition, and on to a final state) are at most this many
transitions longer than the shortest."""


@dataclass(frozen=True, slots=True)
class _Route:
    """A way to a transition (``before``), the transition, and a suggested way on to a
    final state (``after``; the planner may find another when this one cannot be planned)."""

    before: list[_Edge]
    edge: _Edge
    after: list[_Edge]

    @property
    def edges(self) -> list[_Edge]:
        return [*self.before, self.edge, *self.after]


def _to_final(journey: JourneySpec, outgoing: Mapping[str, list[_Edge]]) -> dict[str, int]:
    """Transitions from each state to the nearest final state (states that reach one)."""
    reverse = _graph(journey, outgoing).reverse(copy=False)
    distance: dict[str, int] = {}
    for state in journey.states:
        if state.ends_journey:
            for name, steps in nx.single_source_shortest_path_length(reverse, state.name).items():
                distance[name] = min(steps, distance.get(name, steps))
    return distance


class _Routes:
    """The ways through a journey the cover chooses from.

    One breadth-first tree from the initial state gives, for every transition, the
    shortest way to its source (trying transitions in the engine's order, so that
    among equally short ways the one through the transitions tried first wins), and
    the distances to a final state give the way on. That is linear in the size of
    the journey, where enumerating paths per transition grew with its fourth power
    on dense journeys. Alternatives (longer ways, :data:`ALTERNATIVES` at most) are
    searched only for a transition whose first way cannot be planned or run.
    """

    def __init__(
        self, journey: JourneySpec, initial: str, outgoing: Mapping[str, list[_Edge]]
    ) -> None:
        self.initial = initial
        self.outgoing = outgoing
        self.graph = _graph(journey, outgoing)
        self.rank = {e.index: n for es in outgoing.values() for n, e in enumerate(es)}
        self.distance = _to_final(journey, outgoing)
        self.parent: dict[str, _Edge | None] = {initial: None}
        queue = deque([initial])
        while queue:
            here = queue.popleft()
            for edge in outgoing.get(here, []):
                if edge.spec.to_state not in self.parent:
                    self.parent[edge.spec.to_state] = edge
                    queue.append(edge.spec.to_state)
        self.edges = {e.index: e for es in outgoing.values() for e in es}
        self.revisit = journey.allow_revisiting
        self._after: dict[str, list[_Edge]] = {}

    def reachable(self) -> list[int]:
        """The transitions whose source the initial state reaches, in file order."""
        return sorted(i for i, e in self.edges.items() if e.spec.from_state in self.parent)

    def first(self, index: int) -> _Route:
        """The shortest way through transition ``index`` (see the class docstring)."""
        edge = self.edges[index]
        before: list[_Edge] = []
        here = edge.spec.from_state
        while (step := self.parent[here]) is not None:
            before.append(step)
            here = step.spec.from_state
        before.reverse()
        return _Route(before, edge, self.on_to_final(edge.spec.to_state))

    def routes(self, index: int, covered: set[int], chat: frozenset[str]) -> Iterator[_Route]:
        """The first way extended by a walk (:meth:`extended`), the first way, then up to
        ALTERNATIVES - 1 others, each tried only when the one before it was not good
        enough."""
        first = self.first(index)
        walked = self.extended(first, covered, chat)
        yield walked
        if walked is not first:
            yield first
        edge = self.edges[index]
        for before in self.ways(self.initial, edge.spec.from_state)[1:]:
            if before != first.before:
                yield _Route(before, edge, first.after)

    def ways(self, start: str, end: str) -> list[list[_Edge]]:
        """The shortest simple paths from ``start`` to ``end``: the shortest first (using
        the transitions tried first), then up to ALTERNATIVES - 1 others at most _DETOUR
        transitions longer, found depth first and pruned by the distance still to go."""
        if start == end:
            return [[]]
        to_end = nx.single_source_shortest_path_length(self.graph.reverse(copy=False), end)
        if start not in to_end:
            return []
        budget = to_end[start] + _DETOUR
        found: list[list[_Edge]] = []
        stack: list[tuple[str, list[_Edge], frozenset[str]]] = [(start, [], frozenset({start}))]
        while stack and len(found) < _SEARCH_LIMIT:
            here, path, seen = stack.pop()
            if here == end:
                found.append(path)
                continue
            for edge in reversed(self.outgoing.get(here, [])):  # popped in the order tried
                nxt = edge.spec.to_state
                if nxt in seen or nxt not in to_end or len(path) + 1 + to_end[nxt] > budget:
                    continue
                stack.append((nxt, [*path, edge], seen | {nxt}))
        found.sort(key=lambda way: (len(way), [self.rank[e.index] for e in way]))
        return found[:ALTERNATIVES]

    def extended(self, route: _Route, covered: set[int], chat: frozenset[str]) -> _Route:
        """``route`` with its way on replaced by a walk through transitions no case has
        taken yet (the first untaken one in the engine's order, from chat state to chat
        state, each transition once, at most :data:`_WALK` long), then on to a final
        state: on a dense journey one case then takes many transitions instead of one."""
        used = {e.index for e in route.before} | {route.edge.index}
        walk: list[_Edge] = []
        here = route.edge.spec.to_state
        visited = {self.initial, *(e.spec.to_state for e in [*route.before, route.edge])}
        while here in chat and len(walk) < _WALK:
            step = next(
                (
                    e
                    for e in self.outgoing.get(here, [])
                    if e.index not in covered
                    and e.index not in used
                    and e.spec.to_state in self.distance
                    and (self.revisit or e.spec.to_state not in visited)
                ),
                None,
            )
            if step is None:
                break
            walk.append(step)
            used.add(step.index)
            visited.add(step.spec.to_state)
            here = step.spec.to_state
        if not walk:
            return route
        return _Route(route.before, route.edge, [*walk, *self.on_to_final(here)])

    def on_to_final(self, start: str) -> list[_Edge]:
        """A shortest way from ``start`` to the nearest final state (transitions tried
        first); remembered per state."""
        known = self._after.get(start)
        if known is not None:
            return known
        way: list[_Edge] = []
        here = start
        while self.distance.get(here, 0) > 0:
            here_distance = self.distance[here]
            edge = next(
                e
                for e in self.outgoing.get(here, [])
                if self.distance.get(e.spec.to_state, here_distance) == here_distance - 1
            )
            way.append(edge)
            here = edge.spec.to_state
        self._after[start] = way
        return way


# ---------------------------------------------------------------------------
# planning a path into steps


@dataclass
class _Step:
    holds: list[str] = field(default_factory=list)
    not_holds: set[str] = field(default_factory=set)
    sets: dict[str, Any] = field(default_factory=dict)
    terms: list[str] = field(default_factory=list)
    avoid_terms: set[str] = field(default_factory=set)
    takes: list[str] = field(default_factory=list)
    checks: list[tuple[nodes.Node, bool, str]] = field(default_factory=list)
    """Expression conditions this step decided, with the truth the path needs."""

    def clone(self) -> _Step:
        return _Step(
            holds=list(self.holds),
            not_holds=set(self.not_holds),
            sets=copy.deepcopy(self.sets),
            terms=list(self.terms),
            avoid_terms=set(self.avoid_terms),
            takes=list(self.takes),
            checks=list(self.checks),
            journey=self.journey,
            state=self.state,
        )

    journey: str | None = None
    state: str | None = None


def _path_of(node: nodes.Node) -> tuple[str, ...] | None:
    """``vars.a.b`` / ``vars['a']`` / ``tool.t.x`` as a tuple of names, else ``None``."""
    if isinstance(node, nodes.Name):
        return (node.name,)
    if isinstance(node, nodes.Getattr):
        base = _path_of(node.node)
        return (*base, node.attr) if base is not None else None
    if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
        base = _path_of(node.node)
        if base is not None and isinstance(node.arg.value, str):
            return (*base, node.arg.value)
    return None


def _const(node: nodes.Node) -> Any:
    if isinstance(node, nodes.Const):
        return node.value
    if isinstance(node, nodes.List | nodes.Tuple):
        values = [_const(item) for item in node.items]
        return _MISSING if any(v is _MISSING for v in values) else values
    if isinstance(node, nodes.Neg):
        inner = _const(node.node)
        return (
            -inner if isinstance(inner, int | float) and not isinstance(inner, bool) else _MISSING
        )
    return _MISSING


def _other_than(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 1
    if isinstance(value, str):
        return f"not {value}" if value else "something"
    return "something else"


def _compares(op: str, left: Any, right: Any) -> bool:
    try:
        if op == "eq":
            return bool(left == right)
        if op == "ne":
            return bool(left != right)
        if op == "gt":
            return bool(left > right)
        if op == "gteq":
            return bool(left >= right)
        if op == "lt":
            return bool(left < right)
        if op == "lteq":
            return bool(left <= right)
        if op == "in":
            return bool(left in right)
        if op == "notin":
            return bool(left not in right)
    except TypeError:
        return False
    return False


def _satisfying(op: str, constant: Any, want: bool, current: Any) -> Any:
    """A value ``v`` with ``(v <op> constant) == want``, keeping ``current`` when it fits."""
    if current is not _MISSING and _compares(op, current, constant) == want:
        return current
    positive = {"eq": True, "ne": False, "in": True, "notin": False}
    if op in positive:
        equal = positive[op] == want
        if op in ("in", "notin"):
            if not isinstance(constant, list):
                return _MISSING
            if equal:
                return constant[0] if constant else _MISSING
            return _other_than(constant[0] if constant else "")
        return constant if equal else _other_than(constant)
    if not isinstance(constant, int | float) or isinstance(constant, bool):
        return _MISSING
    above = {"gt": True, "gteq": True, "lt": False, "lteq": False}[op] == want
    if above:
        return constant + 1
    return constant - 1


_REGEX_PIECE = re.compile(r"\\d|\\w|\[[^\]]+\]|\\.|[^\\\[\]{}()*+?|^$.]|\.")


def example_for_pattern(pattern: str) -> str | None:
    """A string a simple regular expression matches (classes, escapes, ``{n}``, ``+``,
    ``*``, ``?``, anchors), or ``None`` for anything richer."""
    body = pattern.removeprefix("^").removesuffix("$")
    out: list[str] = []
    position = 0
    while position < len(body):
        match = _REGEX_PIECE.match(body, position)
        if match is None:
            return None
        piece = match[0]
        position = match.end()
        if piece == "\\d":
            char = "1"
        elif piece in ("\\w", "."):
            char = "a"
        elif piece.startswith("["):
            inner = piece[1:-1]
            if inner.startswith("^"):
                return None
            char = inner[0] if inner[0] != "\\" else inner[1]
        elif piece.startswith("\\"):
            char = piece[1]
        else:
            char = piece
        repeat = 1
        quantifier = re.match(r"\{(\d+)(?:,(\d*))?\}|[+*?]", body[position:])
        if quantifier is not None:
            position += quantifier.end()
            if quantifier[0] in ("*", "?"):
                repeat = 0
            elif quantifier[1] is not None:
                repeat = int(quantifier[1])
        out.append(char * repeat)
    text = "".join(out)
    return text if re.search(pattern, text) else None


def example_for_schema(schema: Any, name: str) -> Any:
    """A small value that a JSON schema accepts (required properties only)."""
    if not isinstance(schema, dict):
        return f"TODO {name}"
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), kind[0] if kind else None)
    if kind == "object" or (kind is None and "properties" in schema):
        properties = schema.get("properties") or {}
        return {
            key: example_for_schema(properties.get(key), key)
            for key in schema.get("required") or []
        }
    if kind == "array":
        return []
    if kind == "boolean":
        return True
    if kind in ("integer", "number"):
        if "minimum" in schema:
            low = schema["minimum"]
        elif "exclusiveMinimum" in schema:
            low = schema["exclusiveMinimum"] + 1
        else:
            low = 0
        return int(low) if kind == "integer" else low
    if kind == "null":
        return None
    pattern = schema.get("pattern")
    if isinstance(pattern, str):
        example = example_for_pattern(pattern)
        if example is not None:
            return example
    return f"TODO {name}"


def _set_in(target: dict[str, Any], path: Sequence[str], value: Any) -> bool:
    """Set ``target[p0][p1]... = value``; ``False`` when it contradicts what is there."""
    here = target
    for part in path[:-1]:
        nxt = here.get(part, _MISSING)
        if nxt is _MISSING:
            nxt = here[part] = {}
        if not isinstance(nxt, dict):
            return False
        here = nxt
    old = here.get(path[-1], _MISSING)
    if old is not _MISSING and old != value:
        return False
    here[path[-1]] = value
    return True


def _drop_in(target: dict[str, Any], path: Sequence[str]) -> None:
    """Remove ``target[p0][p1]...`` if it is there."""
    here: Any = target
    for part in path[:-1]:
        here = here.get(part) if isinstance(here, dict) else None
    if isinstance(here, dict):
        here.pop(path[-1], None)


def _get_in(source: Any, path: Sequence[str]) -> Any:
    here = source
    for part in path:
        if not isinstance(here, dict) or part not in here:
            return _MISSING
        here = here[part]
    return here


class _Planner:
    """Turns one path through a journey into a case, or says why it cannot."""

    def __init__(self, bundle: AgentBundle, journey: JourneySpec) -> None:
        self.bundle = bundle
        self.journey = journey
        self.tools = {tool.name: tool for tool in bundle.tools}
        # declared without a value: not set (see docs/concepts.md, Variables)
        self.values: dict[str, Any] = {
            v.key: v.value for v in bundle.variables if v.value is not None
        }
        self.declared = {v.key: v for v in bundle.variables}
        self.results: dict[str, str] = {}
        """Result variable -> tool, for tool states already run in this case."""
        self.ran_this_step: set[str] = set()
        self.stubs: dict[str, Any] = {}
        """The result of each tool's latest call in this case."""
        self.calls: dict[str, list[Any]] = {}
        """Every call's result per tool, in order (the last one is ``stubs[tool]``): a tool
        that runs again gets a result of its own, written as the stub's ``calls``."""
        self.placeholders: set[tuple[str, tuple[str, ...]]] = set()
        """(tool, field path) of stub fields filled in only because the tool's
        ``returnSchema`` requires them: any value a condition needs may replace them."""
        self.start: dict[str, Any] = {}
        self.steps: list[_Step] = []
        self.hints = _argument_schemas(bundle)
        self.result_tools = {
            state.tool_config["resultVariable"]: state.tool
            for state in journey.states
            if state.tool and isinstance(state.tool_config.get("resultVariable"), str)
        }

    @property
    def step(self) -> _Step:
        return self.steps[-1]

    # -- conditions ------------------------------------------------------------

    def condition(self, text: str | None, want: bool) -> None:
        kind = condition_kind(text)
        if kind is ConditionKind.ALWAYS:
            if not want:
                raise _Unplannable("a transition without a condition always holds first")
            return
        assert text is not None
        if kind is ConditionKind.NATURAL:
            self.natural(text, want)
            return
        source = expression_source(text)
        try:
            tree = _PARSER.parse("{{ " + source + " }}")
        except TemplateSyntaxError as exc:
            raise _Unplannable(f"the condition {text!r} does not parse: {exc}") from None
        body = tree.body
        if len(body) != 1 or not isinstance(body[0], nodes.Output) or len(body[0].nodes) != 1:
            raise _Unplannable(f"cannot read the condition {text!r}")
        node = body[0].nodes[0]
        self.expression(node, want, text)
        self.step.checks.append((node, want, text))
        # a value set for this condition holds for the whole step: recheck the others
        for other, wanted, other_text in self.step.checks:
            if self.evaluate(other) not in (None, wanted):
                raise _Unplannable(
                    f"{text!r} and {other_text!r} cannot both be as the path needs in one step"
                )

    def evaluate(self, node: nodes.Node) -> bool | None:
        """The truth of an expression over the values planned so far; ``None`` when it
        depends on a tool's result or on something the planner does not read."""
        if isinstance(node, nodes.Not):
            inner = self.evaluate(node.node)
            return None if inner is None else not inner
        if isinstance(node, nodes.And | nodes.Or):
            left, right = self.evaluate(node.left), self.evaluate(node.right)
            if left is None or right is None:
                return None
            return (left and right) if isinstance(node, nodes.And) else (left or right)
        if isinstance(node, nodes.Const):
            return bool(node.value)
        if isinstance(node, nodes.Call) and _path_of(node.node) == ("mentions",):
            if len(node.args) != 1 or not isinstance(node.args[0], nodes.Const):
                return None
            return str(node.args[0].value) in self.step.terms
        target = node.node if isinstance(node, nodes.Test) else node
        if isinstance(node, nodes.Compare):
            target = node.expr
        path = _path_of(target)
        if path is None or path[0] != "vars" or len(path) < 2 or path[1] in self.result_tools:
            return None
        value = self.current(path)
        if isinstance(node, nodes.Test):
            if node.name in ("defined", "undefined"):
                return (value is not _MISSING) == (node.name == "defined")
            return None
        if isinstance(node, nodes.Compare):
            if len(node.ops) != 1 or value is _MISSING:
                return None
            constant = self.constant(node.ops[0].expr)
            return None if constant is _MISSING else _compares(node.ops[0].op, value, constant)
        return None if value is _MISSING else bool(value)

    def natural(self, text: str, want: bool) -> None:
        key = " ".join(text.casefold().split())
        step = self.step
        if want:
            if key in step.not_holds:
                raise _Unplannable(f"{text!r} must both hold and not hold in one step")
            if text not in step.holds:
                step.holds.append(text)
        else:
            if any(" ".join(h.casefold().split()) == key for h in step.holds):
                raise _Unplannable(f"{text!r} must both hold and not hold in one step")
            step.not_holds.add(key)

    def expression(self, node: nodes.Node, want: bool, text: str) -> None:
        if isinstance(node, nodes.Not):
            self.expression(node.node, not want, text)
        elif isinstance(node, nodes.And | nodes.Or):
            both = isinstance(node, nodes.And) == want
            if both:
                self.expression(node.left, want, text)
                self.expression(node.right, want, text)
            else:
                self.either(node.left, node.right, want, text)
        elif isinstance(node, nodes.Const):
            if bool(node.value) != want:
                raise _Unplannable(f"the condition {text!r} is always {bool(node.value)}")
        elif isinstance(node, nodes.Test) and node.name in ("defined", "undefined"):
            path = self.readable(node.node, text)
            self.defined(path, want == (node.name == "defined"), text)
        elif isinstance(node, nodes.Test) and node.name == "none":
            path = self.readable(node.node, text)
            self.value(path, None if want else self.placeholder(path), text)
        elif isinstance(node, nodes.Compare) and len(node.ops) == 1:
            self.compare(node, want, text)
        elif isinstance(node, nodes.Call) and _path_of(node.node) == ("mentions",):
            if len(node.args) != 1 or not isinstance(node.args[0], nodes.Const):
                raise _Unplannable(f"cannot read the mentions() call in {text!r}")
            term = str(node.args[0].value)
            if want:
                self.step.terms.append(term)
            else:
                self.step.avoid_terms.add(term)
        else:
            path = self.readable(node, text)
            current = self.current(path)
            if current is not _MISSING and bool(current) == want:
                return
            self.value(path, self.truthy(path, want), text)

    def either(self, left: nodes.Node, right: nodes.Node, want: bool, text: str) -> None:
        saved = self.snapshot()
        try:
            self.expression(left, want, text)
        except _Unplannable:
            self.restore(saved)
            self.expression(right, want, text)

    def compare(self, node: nodes.Compare, want: bool, text: str) -> None:
        operand = node.ops[0]
        path = _path_of(node.expr)
        constant = self.constant(operand.expr)
        if path is None or constant is _MISSING:
            raise _Unplannable(f"the generator cannot choose values for {text!r}")
        current = self.current(path)
        if not want and current is _MISSING and operand.op not in ("ne", "notin"):
            return  # a comparison with an unset value is false
        value = _satisfying(operand.op, constant, want, current)
        schema = self.schema_at(path) or (self.hints.get(path[1]) if len(path) == 2 else None)
        allowed = schema.get("enum") if isinstance(schema, dict) else None
        if isinstance(allowed, list) and value not in allowed:
            fits = [v for v in allowed if _compares(operand.op, v, constant) == want]
            value = fits[0] if fits else _MISSING
        if value is _MISSING:
            raise _Unplannable(f"the generator cannot choose values for {text!r}")
        self.value(path, value, text)

    def constant(self, node: nodes.Node) -> Any:
        value = _const(node)
        if value is not _MISSING:
            return value
        path = _path_of(node)
        if path is not None and path[0] == "vars":
            return self.current(path)
        return _MISSING

    def readable(self, node: nodes.Node, text: str) -> tuple[str, ...]:
        path = _path_of(node)
        if path is None or path[0] not in ("vars", "tool") or len(path) < 2:
            raise _Unplannable(f"the generator cannot choose values for {text!r}")
        return path

    # -- values ----------------------------------------------------------------

    def current(self, path: Sequence[str]) -> Any:
        if path[0] == "tool":
            if path[1] not in self.ran_this_step:
                return _MISSING
            return _get_in(self.stubs.get(path[1]), path[2:])
        return _get_in(self.values, path[1:])

    def schema_at(self, path: Sequence[str]) -> Any:
        """The JSON schema of a tool result's field (``tool.t.x``, ``vars.<result>.x``)."""
        if path[0] == "tool":
            tool, rest = path[1], path[2:]
        elif path[0] == "vars" and path[1] in self.result_tools:
            tool, rest = self.result_tools[path[1]], path[2:]
        else:
            return None
        spec = self.tools.get(tool)
        schema: Any = spec.return_schema if spec is not None else None
        for part in rest:
            if not isinstance(schema, dict):
                return None
            schema = (schema.get("properties") or {}).get(part)
        return schema

    def placeholder(self, path: Sequence[str]) -> Any:
        key = path[-1]
        schema = self.schema_at(path)
        if schema is not None:
            return example_for_schema(schema, key)
        if len(path) == 2 and path[0] == "vars":
            if key in self.hints:
                return example_for_schema(self.hints[key], key)
            declared = self.declared.get(key)
            if declared is not None:
                return {
                    "string": f"TODO {key}",
                    "number": 1,
                    "boolean": True,
                    "object": {},
                    "array": [],
                }.get(declared.value_type.value, f"TODO {key}")
        return f"TODO {key}"

    def truthy(self, path: Sequence[str], want: bool) -> Any:
        """A value of the field's type that is true (or false) in a condition."""
        schema = self.schema_at(path)
        kind = schema.get("type") if isinstance(schema, dict) else None
        if not want:
            return {"string": "", "number": 0, "integer": 0, "array": [], "object": {}}.get(
                kind if isinstance(kind, str) else "", False
            )
        value = self.placeholder(path)
        return value if value else True

    def defined(self, path: tuple[str, ...], want: bool, text: str) -> None:
        present = self.current(path) is not _MISSING
        if present == want:
            return
        if not want:
            raise _Unplannable(
                f"{text!r} needs {'.'.join(path)} unset, but the path has set it already"
            )
        self.value(path, self.placeholder(path), text)

    def value(self, path: tuple[str, ...], value: Any, text: str) -> None:
        """Make ``path`` hold ``value`` from this step on."""
        if path[0] == "tool" or (path[0] == "vars" and path[1] in self.results):
            tool = path[1] if path[0] == "tool" else self.results[path[1]]
            if tool not in self.ran_this_step and path[0] == "tool":
                raise _Unplannable(f"{text!r} reads tool {tool!r} before it runs in this step")
            stub = self.stubs.setdefault(tool, {})
            if len(path) == 2:
                raise _Unplannable(f"{text!r} needs tool {tool!r} to return something specific")
            field = tuple(path[2:])
            held = [p for p in self.placeholders if p[0] == tool and field[: len(p[1])] == p[1]]
            if held and isinstance(stub, dict):  # a schema's placeholder, not a need: replace it
                self.placeholders.difference_update(held)
                _drop_in(stub, held[0][1])
            if not isinstance(stub, dict) or not _set_in(stub, field, value):
                was = _get_in(stub, field)
                raise _Unplannable(
                    f"a call of tool {tool!r} would have to return two different results: "
                    f"{'.'.join(field)} is {json.dumps(was, default=str)} for an earlier "
                    f"condition and {json.dumps(value, default=str)} for {text!r}"
                )
            if path[0] == "vars":
                _set_in(self.values, path[1:], value)
            return
        key = path[1]
        if len(path) == 2:
            self.values[key] = value
            self.step.sets[key] = value
            return
        whole = copy.deepcopy(self.values.get(key, {}))
        if not isinstance(whole, dict):
            whole = {}
        here = whole
        for part in path[2:-1]:
            here = here.setdefault(part, {})
            if not isinstance(here, dict):
                raise _Unplannable(f"cannot give {'.'.join(path)} a value for {text!r}")
        here[path[-1]] = value
        self.values[key] = whole
        self.step.sets[key] = whole

    def snapshot(self) -> Any:
        return (
            copy.deepcopy((self.values, self.stubs, self.calls)),
            self.steps[-1].clone(),
            set(self.placeholders),
        )

    def restore(self, saved: Any) -> None:
        (self.values, self.stubs, self.calls), self.steps[-1], self.placeholders = saved

    def save(self) -> Any:
        """Everything planned so far, to go back to when a branch of the search fails."""
        return (
            copy.deepcopy((self.values, self.stubs, self.calls, self.start)),
            [step.clone() for step in self.steps],
            dict(self.results),
            set(self.ran_this_step),
            set(self.placeholders),
        )

    def back_to(self, saved: Any) -> None:
        (self.values, self.stubs, self.calls, self.start), self.steps, self.results, ran, held = (
            saved
        )
        self.ran_this_step = set(ran)
        self.placeholders = set(held)

    # -- walking the path ------------------------------------------------------

    def activation(self) -> None:
        """Step 1: this journey's activation holds, no earlier journey's does."""
        for other in self.bundle.journeys:
            if other is self.journey:
                break
            if other.enabled and any(s.is_initial for s in other.states):
                for text in other.conditions:
                    self.condition(text, False)
        if not self.journey.conditions:
            raise _Unplannable("the journey has no activation condition, so no message starts it")
        problems = []
        for text in self.journey.conditions:
            saved = self.snapshot()
            try:
                self.condition(text, True)
                return
            except _Unplannable as exc:
                problems.append(str(exc))
                self.restore(saved)
        raise _Unplannable("no activation condition can be made to hold: " + "; ".join(problems))

    def enter(self, state: StateSpec) -> None:
        """Entering ``state`` in the current step (a chat state is waited in, not skipped)."""
        if state.ends_journey:
            self.step.journey, self.step.state = None, None
            return
        skippable = (
            self.journey.allow_skipping
            and state.allow_skip
            and state.condition
            and state.state_type is StateType.CHAT
        )
        if skippable:
            self.condition(state.condition, False)
        if state.state_type is StateType.CHAT:
            self.step.journey, self.step.state = self.journey.title, state.name
        if state.state_type is StateType.TOOL and state.tool in self.tools:
            self.prepare_tool(state)

    def prepare_tool(self, state: StateSpec) -> None:
        tool = self.tools[state.tool or ""]
        if tool.name in self.calls:  # called again in this case: a result of its own
            self.placeholders = {p for p in self.placeholders if p[0] != tool.name}
            self.stubs[tool.name] = {}
        stub = self.stubs.setdefault(tool.name, {})
        self.calls.setdefault(tool.name, []).append(stub)
        if isinstance(stub, dict) and tool.return_schema:
            example = example_for_schema(tool.return_schema, tool.name)
            if isinstance(example, dict):
                for key, value in example.items():
                    if key not in stub:
                        stub[key] = value
                        self.placeholders.add((tool.name, (key,)))
        arguments = state.tool_config.get("arguments") or {}
        schema = tool.parameters if isinstance(tool.parameters, dict) else {}
        properties = schema.get("properties") or {}
        needed = {
            name: _simple_var(value)
            for name, value in arguments.items()
            if isinstance(value, str) and _simple_var(value)
        }
        for name in schema.get("required") or []:
            if name not in arguments:
                needed[name] = name
        for parameter, key in needed.items():
            if key is None:
                continue
            if self.current(("vars", key)) is _MISSING:
                self.hints.setdefault(key, properties.get(parameter))
                self.value(("vars", key), self.placeholder(("vars", key)), f"tool {tool.name}")
        result = state.tool_config.get("resultVariable")
        self.ran_this_step.add(tool.name)
        if isinstance(result, str):
            self.results[result] = tool.name
            self.values[result] = self.stubs[tool.name]

    def take(self, edge: _Edge, rivals: Sequence[_Edge]) -> None:
        """Take ``edge``: every transition tried before it fails, it holds."""
        self.condition(edge.spec.condition, True)  # first: rivals then bend around it
        for rival in rivals:
            if rival.index == edge.index:
                break
            self.condition(rival.spec.condition, False)
        label = f"{edge.spec.from_state} -> {edge.spec.to_state}"
        if edge.spec.condition:
            label += f" [{' '.join(edge.spec.condition.split())}]"
        self.step.takes.append(label)

    def plan(
        self, route: _Route, outgoing: Mapping[str, list[_Edge]], distance: Mapping[str, int]
    ) -> tuple[_Plan, list[_Edge]]:
        """Steps that take ``route.before`` and ``route.edge``, then on to a final state
        (``route.after`` first, else the first way on that can be planned)."""
        states = {state.name: state for state in self.journey.states}
        initial = next(state for state in self.journey.states if state.is_initial)
        path = [*route.before, route.edge]
        names = [initial.name, *(edge.spec.to_state for edge in path)]
        if not self.journey.allow_revisiting and len(set(names)) < len(names):
            raise _Unplannable(
                "the journey forbids revisiting and every path found through it revisits a state"
            )
        self.steps.append(_Step())
        self.activation()
        self.enter(initial)
        for edge in path:
            self.along(edge, states, outgoing)
        search = _Search(
            states, outgoing, distance, set(names), [_FINISH_BUDGET + len(route.after)]
        )
        rest = self.finish(names[-1], search, list(route.after), _DETOUR)
        return _Plan(self.steps, self.calls, self.start), [*path, *rest]

    def along(
        self, edge: _Edge, states: Mapping[str, StateSpec], outgoing: Mapping[str, list[_Edge]]
    ) -> None:
        """Take ``edge``: a new step when it leaves a chat state (the customer speaks)."""
        if states[edge.spec.from_state].state_type is StateType.CHAT:
            self.steps.append(_Step())
            self.ran_this_step = set()
        self.take(edge, outgoing[edge.spec.from_state])
        self.enter(states[edge.spec.to_state])

    def finish(self, here: str, search: _Search, hint: list[_Edge], slack: int) -> list[_Edge]:
        """Plan on from ``here`` to a final state, depth first: the hinted transition first,
        then those nearest a final state; at most ``slack`` transitions of detour."""
        if search.states[here].ends_journey or here not in search.distance:
            return []  # ended, or no final state is reachable: the case ends where it waits
        wanted = hint[0].index if hint else None
        options = [
            edge
            for edge in search.outgoing.get(here, [])
            if edge.spec.to_state in search.distance
            and (
                edge.index == wanted
                or search.distance[edge.spec.to_state] + 1 - search.distance[here] <= slack
            )
            and (self.journey.allow_revisiting or edge.spec.to_state not in search.visited)
        ]
        options.sort(key=lambda edge: (edge.index != wanted, search.distance[edge.spec.to_state]))
        failure: _Unplannable | None = None
        for edge in options:
            if search.budget[0] <= 0:
                break
            search.budget[0] -= 1
            saved = self.save()
            target = edge.spec.to_state
            try:
                self.along(edge, search.states, search.outgoing)
                search.visited.add(target)
                # the hinted way costs no slack: it may be a long walk on purpose
                extra = (
                    0
                    if edge.index == wanted
                    else search.distance[target] + 1 - search.distance[here]
                )
                rest = self.finish(
                    target, search, hint[1:] if edge.index == wanted else [], slack - extra
                )
                return [edge, *rest]
            except _Unplannable as exc:
                failure = failure or exc
                self.back_to(saved)
        if failure is not None:
            raise failure
        raise _Unplannable(f"no way on from {here!r} to a final state can be planned")


@dataclass
class _Search:
    """What the search for a way on to a final state shares across its branches."""

    states: Mapping[str, StateSpec]
    outgoing: Mapping[str, list[_Edge]]
    distance: Mapping[str, int]
    visited: set[str]
    budget: list[int]


_FINISH_BUDGET = 64
"""Most transitions tried while searching a way on to a final state, per path, beyond
those of the suggested way."""

_WALK = 40
"""Most transitions a case walks past the one it is for (see :meth:`_Routes.extended`)."""


def _simple_var(template: str) -> str | None:
    match = re.fullmatch(r"\s*\{\{\s*vars\.([A-Za-z_]\w*)\s*\}\}\s*", template)
    return match[1] if match else None


def _argument_schemas(bundle: AgentBundle) -> dict[str, Any]:
    """Variable -> the schema of the tool parameter it feeds (``{{ vars.x }}`` arguments)."""
    tools = {tool.name: tool for tool in bundle.tools}
    hints: dict[str, Any] = {}
    for journey in bundle.journeys:
        for state in journey.states:
            tool = tools.get(state.tool or "")
            if tool is None or not isinstance(tool.parameters, dict):
                continue
            properties = tool.parameters.get("properties") or {}
            for name, value in (state.tool_config.get("arguments") or {}).items():
                key = _simple_var(value) if isinstance(value, str) else None
                if key is not None and name in properties:
                    hints.setdefault(key, properties[name])
            for name in tool.parameters.get("required") or []:
                if name in properties:
                    hints.setdefault(name, properties[name])
    return hints


@dataclass(frozen=True, slots=True)
class _Plan:
    steps: list[_Step]
    stubs: dict[str, list[Any]]
    """Each stubbed tool's result per call, in order."""
    start: dict[str, Any]


def _message(step: _Step, number: int) -> str:
    text = f"TODO: what the customer says (step {number})"
    if step.terms:
        text += " - mentions " + ", ".join(dict.fromkeys(step.terms))
    return text


def _stub(results: list[Any]) -> dict[str, Any]:
    """One result for every call when the calls need the same, else one per call."""
    if all(result == results[0] for result in results):
        return {"returns": results[0]}
    return {"calls": [{"returns": result} for result in results]}


def _case_data(name: str, plan: _Plan) -> tuple[dict[str, Any], tuple[tuple[str, ...], ...]]:
    steps = []
    notes = []
    for number, step in enumerate(plan.steps, start=1):
        data: dict[str, Any] = {"customer": _message(step, number)}
        if step.holds:
            data["holds"] = list(step.holds)
        if step.sets:
            data["set"] = step.sets
        data["expect"] = {"journey": step.journey, "state": step.state}
        steps.append(data)
        comment = [f"takes {take}" for take in step.takes]
        if number == 1:
            comment.insert(0, "starts the journey")
        comment.append('TODO: expect the reply, e.g. reply: "..." or reply_contains: "..."')
        notes.append(tuple(comment))
    case: dict[str, Any] = {"name": name}
    if plan.start:
        case["variables"] = plan.start
    if plan.stubs:
        case["tools"] = {tool: _stub(results) for tool, results in sorted(plan.stubs.items())}
    case["steps"] = steps
    return case, tuple(notes)


# ---------------------------------------------------------------------------
# generating and checking


def _describe(spec: TransitionSpec) -> str:
    text = f"{spec.from_state} -> {spec.to_state}"
    if spec.condition:
        text += f" [{' '.join(spec.condition.split())}]"
    return text


def _greedy_cover(routes: _Routes, open_: Sequence[int], covered: set[int]) -> Iterator[int]:
    """The transitions to plan a case for, in the greedy set cover's order.

    Each time, the transition whose first way takes the most transitions not yet
    covered (the shorter way on ties, then file order). ``covered`` grows as the
    caller's cases run. Lazy: a way's gain only shrinks as ``covered`` grows, so a
    stale gain on top of the heap is recomputed and pushed back, and only a fresh
    one is taken. Same choices as recomputing every gain each time, without the
    quadratic work.
    """
    heap: list[tuple[int, int, int]] = []
    ways: dict[int, frozenset[int]] = {}
    for i in open_:
        route = routes.first(i)
        ways[i] = frozenset(e.index for e in route.edges)
        heap.append((-len(ways[i]), len(route.edges), i))
    heapq.heapify(heap)
    while heap:
        stale, length, i = heapq.heappop(heap)
        if i in covered:
            continue
        gain = len(ways[i] - covered)
        if -gain != stale:
            heapq.heappush(heap, (-gain, length, i))
            continue
        yield i


class _Checker:
    """Runs planned cases with the real runner, on one event loop; where cases cannot
    see each other (see :meth:`AgentHost.shareable`) on one published agent too."""

    def __init__(self, bundle: AgentBundle, journey: int, positions: Mapping[str, Any]) -> None:
        self.bundle, self.journey, self.positions = bundle, journey, positions
        self.loop = asyncio.new_event_loop()
        self.host: AgentHost | None = None
        if AgentHost.shareable(bundle):
            self.host = self.loop.run_until_complete(AgentHost.publish(bundle))

    def run(self, case: dict[str, Any]) -> tuple[bool, set[int], str]:
        """Run one case: whether it passed, the transitions of the journey it took, and
        why not."""
        # as JSON data, which is what the rendered file says (a YAML round trip per case
        # cost more than running it)
        data = json.loads(json.dumps({"cases": [case]}))
        loaded = ConversationFile(ConversationSpec.model_validate(data), SourceMap(), None)
        result = self.loop.run_until_complete(run_case(loaded, 0, self.bundle, host=self.host))
        taken = {
            i
            for j, i in taken_transitions(self.bundle, result.traces, self.positions)
            if j == self.journey
        }
        why = ""
        if result.failure is not None and result.failure.mismatches:
            first = result.failure.mismatches[0]
            where = f"step {result.failure.step}: " if result.failure.step else ""
            errors = f" ({'; '.join(result.failure.errors)})" if result.failure.errors else ""
            why = f"{where}{first.key}: {first.message}{errors}"
        return result.passed, taken, why

    def close(self) -> None:
        self.loop.close()


def _journey_tests(loaded: LoadedBundle, index: int, tick: Callable[[], None]) -> GeneratedJourney:
    bundle = loaded.bundle
    journey = bundle.journeys[index]
    line_of = loaded.source.line_of
    total = len(journey.transitions)
    reasons: dict[int, str] = {}
    names = {state.name for state in journey.states}
    for i, t in enumerate(journey.transitions):
        if t.from_state not in names or t.to_state not in names:
            reasons[i] = "it names a state the journey does not have"
    initial = next((s.name for s in journey.states if s.is_initial), None)
    cases: list[GeneratedCase] = []
    covered: set[int] = set()
    if not journey.enabled:
        reasons.update({i: "the journey is disabled" for i in range(total) if i not in reasons})
    elif initial is None:
        reasons.update(
            {i: "the journey has no initial state" for i in range(total) if i not in reasons}
        )
    else:
        outgoing = _ordered(journey)
        routes = _Routes(journey, initial, outgoing)
        distance = routes.distance
        positions = transition_positions(bundle)
        reachable = routes.reachable()
        for i in range(total):
            if i not in reachable and i not in reasons:
                reasons[i] = "no path from the initial state reaches it"
        checker = _Checker(bundle, index, positions)
        chat = frozenset(s.name for s in journey.states if s.state_type is StateType.CHAT)
        try:
            for best in _greedy_cover(routes, reachable, covered):
                tick()
                for route in routes.routes(best, covered, chat):
                    try:
                        plan, path = _Planner(bundle, journey).plan(route, outgoing, distance)
                    except _Unplannable as exc:
                        reasons.setdefault(best, str(exc))
                        continue
                    number = len(cases) + 1
                    shown = " -> ".join([initial, *(e.spec.to_state for e in path)])
                    name = f"{journey.title}: path {number} ({shown})"
                    data, notes = _case_data(name, plan)
                    passed, taken, why = checker.run(data)
                    if not passed:
                        reasons.setdefault(best, f"the planned case does not run as planned: {why}")
                        continue
                    if best not in taken:  # it ran, but went elsewhere: try the next path
                        reasons.setdefault(best, "the planned case ran but did not take it")
                        continue
                    covered |= taken
                    cases.append(GeneratedCase(data, notes, frozenset(taken)))
                    break
        finally:
            checker.close()
    uncovered = tuple(
        Uncovered(
            journey.title,
            i,
            line_of(("journeys", index, "transitions", i)),
            _describe(journey.transitions[i]),
            reasons.get(i, "no generated case takes it"),
        )
        for i in range(total)
        if i not in covered
    )
    return GeneratedJourney(journey.title, total, tuple(cases), uncovered)


def generate_tests(
    loaded: LoadedBundle,
    *,
    titles: Sequence[str] = (),
    progress: Callable[[Iterator[int]], Iterator[int]] | None = None,
) -> GeneratedTests:
    """Cases that together take every transition they can of each journey (see the module
    docstring); ``titles`` limits it to those journeys.

    ``progress`` wraps the iteration over journeys (e.g. a click progress bar).

    Raises:
        KeyError: a title names no journey of the bundle.
    """
    bundle = loaded.bundle
    known = [journey.title for journey in bundle.journeys]
    for title in titles:
        if title not in known:
            raise KeyError(title)
    indices = [i for i, title in enumerate(known) if not titles or title in titles]
    walk: Iterator[int] = iter(indices)
    if progress is not None:
        walk = progress(walk)
    journeys = [_journey_tests(loaded, index, lambda: None) for index in walk]
    return GeneratedTests(loaded.path or "bundle.yaml", tuple(journeys))


# ---------------------------------------------------------------------------
# the file


def _flow(value: Any) -> str:
    """A value as one line of YAML (JSON is YAML; keys of plain words stay bare)."""
    if isinstance(value, dict):
        parts = [f"{_key(k)}: {_flow(v)}" for k, v in value.items()]
        return "{" + ", ".join(parts) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def _key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key) else json.dumps(key)


def _comment(text: str) -> str:
    return " ".join(text.split())


def render_generated(tests: GeneratedTests, *, bundle_ref: str, command: str) -> str:
    """The conversation test file: a header that says what it covers and what it leaves
    out, then the cases with their TODO comments."""
    total = sum(journey.transitions for journey in tests.journeys)
    covered = sum(journey.covered for journey in tests.journeys)
    lines = [
        f"# Generated by `{_comment(command)}`.",
        "# Skeletons: replace each TODO with what a customer says and what the agent",
        "# should reply. As generated, every case passes; together they take",
        f"# {covered} of {total} transitions in {tests.cases} case(s).",
    ]
    uncovered = [u for journey in tests.journeys for u in journey.uncovered]
    if uncovered:
        lines.append("# Transitions no generated case takes (write these by hand):")
        for item in uncovered:
            where = f"{tests.bundle}:{item.line}" if item.line else tests.bundle
            lines.append(
                f"#   - {where} {_comment(item.journey)}: {_comment(item.description)}"
                f" - {_comment(item.reason)}"
            )
    lines.append(f"bundle: {json.dumps(bundle_ref, ensure_ascii=False)}")
    lines.append("cases:")
    if not tests.cases:
        lines[-1] = "cases: []  # nothing could be generated; see above"
    for journey in tests.journeys:
        for case in journey.cases:
            data = case.data
            lines.append(f"  - name: {json.dumps(data['name'], ensure_ascii=False)}")
            if "variables" in data:
                lines.append(f"    variables: {_flow(data['variables'])}")
            if "tools" in data:
                lines.append("    tools:")
                for tool, stub in data["tools"].items():
                    lines.append(f"      {_key(tool)}: {_flow(stub)}")
            lines.append("    steps:")
            for step, notes in zip(data["steps"], case.notes, strict=True):
                lines.append(
                    f"      - customer: {json.dumps(step['customer'], ensure_ascii=False)}"
                )
                for note in notes:
                    lines.append(f"        # {_comment(note)}")
                if "holds" in step:
                    lines.append(f"        holds: {_flow(step['holds'])}")
                if "set" in step:
                    lines.append(f"        set: {_flow(step['set'])}")
                lines.append(f"        expect: {_flow(step['expect'])}")
    return "\n".join(lines) + "\n"


def relative_bundle(bundle: str, folder: str) -> str:
    """The bundle path as a test file in ``folder`` names it (relative, with ``/``)."""
    return os.path.relpath(bundle, folder).replace(os.sep, "/")
