"""The diagram graph: one journey, laid out as nodes and edges, with its findings placed.

Renderers (Mermaid, DOT) draw this graph and nothing else, so they never look at
the bundle schema or at field paths: deciding which finding belongs to which state
or transition, which end of a transition points nowhere, and what a label says is
done once, here. The graph is plain frozen data, in file order, so the same
journey and findings always give the same graph and the same text.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, replace

from parlant_runtime.bundle.schema import JourneySpec, StateSpec, TransitionSpec
from parlant_runtime.model import StateType
from parlant_runtime.validation.findings import Code, Finding, Severity

__all__ = [
    "DEFAULT_PRIORITY",
    "MAX_CONDITION_CHARS",
    "DiagramEdge",
    "DiagramNode",
    "JourneyDiagram",
    "build_diagram",
    "mark_coverage",
    "worst_severity",
]

DEFAULT_PRIORITY = 100
"""A transition's priority when the bundle gives none; labels only show other values."""

MAX_CONDITION_CHARS = 40
"""Conditions longer than this are cut in edge labels (the file has the full text)."""

_RANK = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}

# journeys[<j>].states[<i>] or journeys[<j>].transitions[<i>], followed by the end or
# a deeper part; the index is read whole, so transitions[1] never matches transitions[10]
_FIELD = re.compile(r"journeys\[(\d+)\]\.(states|transitions)\[(\d+)\](?=$|[.\[])")


def worst_severity(findings: Iterable[Finding]) -> Severity | None:
    """The most serious severity among ``findings``, or ``None`` when there are none."""
    return min((f.severity for f in findings), key=_RANK.__getitem__, default=None)


def _codes(findings: tuple[Finding, ...]) -> tuple[Code, ...]:
    return tuple(dict.fromkeys(f.code for f in findings))


@dataclass(frozen=True, slots=True)
class DiagramNode:
    """One state of the journey, or a placeholder for a state a transition names but lacks.

    Attributes:
        id: an identifier safe in every renderer (ASCII letters, digits, ``_``), unique
            within the diagram.
        name: the state's name as the bundle writes it.
        label: what the node shows: the name, and the tool a tool state calls.
        kind: the state's type; ``None`` for a missing state.
        initial: whether the journey starts here.
        final: whether entering the state ends the journey.
        findings: the findings that point at this state.
    """

    id: str
    name: str
    label: str
    kind: StateType | None
    initial: bool = False
    final: bool = False
    findings: tuple[Finding, ...] = ()
    covered: bool | None = None
    """Whether conversation tests entered the state; ``None``: no coverage drawn."""

    @property
    def missing(self) -> bool:
        """Whether this node stands for a state the journey does not define."""
        return self.kind is None

    @property
    def severity(self) -> Severity | None:
        """The worst severity of the node's findings, or ``None``."""
        return worst_severity(self.findings)

    @property
    def codes(self) -> tuple[Code, ...]:
        """The codes of the node's findings, each once, in report order."""
        return _codes(self.findings)


@dataclass(frozen=True, slots=True)
class DiagramEdge:
    """One transition of the journey.

    Attributes:
        index: the transition's position in the journey's ``transitions``.
        source: the id of the node it leaves.
        target: the id of the node it enters.
        label: the condition (shortened, on one line) and the priority when not the default.
        findings: the findings that point at this transition.
    """

    index: int
    source: str
    target: str
    label: str
    findings: tuple[Finding, ...] = ()
    covered: bool | None = None
    """Whether conversation tests took the transition; ``None``: no coverage drawn."""

    @property
    def severity(self) -> Severity | None:
        """The worst severity of the edge's findings, or ``None``."""
        return worst_severity(self.findings)

    @property
    def codes(self) -> tuple[Code, ...]:
        """The codes of the edge's findings, each once, in report order."""
        return _codes(self.findings)


@dataclass(frozen=True, slots=True)
class JourneyDiagram:
    """One journey as a graph: states (then missing states) and transitions, in file order.

    Attributes:
        title: the journey's title.
        index: the journey's position in the bundle's ``journeys``.
        nodes: the states, then placeholders for missing ones in order of first mention.
        edges: the transitions, one edge each.
        findings: findings about the journey that point at no single state or
            transition (``no_initial_state``, a dangling guideline link, ...).
    """

    title: str
    index: int
    nodes: tuple[DiagramNode, ...]
    edges: tuple[DiagramEdge, ...]
    findings: tuple[Finding, ...] = ()

    def node(self, name: str) -> DiagramNode | None:
        """The node of the state called ``name`` (missing or not), or ``None``."""
        return next((node for node in self.nodes if node.name == name), None)


def build_diagram(journey: JourneySpec, index: int, findings: Iterable[Finding]) -> JourneyDiagram:
    """The diagram graph of one journey, with the findings that concern it placed.

    A finding belongs to this journey when its ``journey`` is the journey's title.
    It marks a transition when its field is ``journeys[<index>].transitions[<i>]``
    (or a part of it), a state when its field is ``journeys[<index>].states[<i>]``
    (or a part of it). A finding that is not a transition's also marks every state
    it names (all states of a cycle, all rival initial states); one that marks
    nothing is kept on the diagram itself.

    Args:
        journey: the journey to draw.
        index: its position in the bundle's ``journeys`` (field paths use it).
        findings: any findings, e.g. a whole :class:`ValidationReport`'s; others are ignored.
    """
    on_state: dict[int, list[Finding]] = {i: [] for i in range(len(journey.states))}
    on_transition: dict[int, list[Finding]] = {i: [] for i in range(len(journey.transitions))}
    position = {state.name: i for i, state in enumerate(journey.states)}
    loose: list[Finding] = []
    for finding in findings:
        if finding.journey != journey.title:
            continue
        match = _FIELD.match(finding.field)
        marked: set[int] = set()
        if match is not None and int(match[1]) == index:
            if match[2] == "transitions" and int(match[3]) in on_transition:
                on_transition[int(match[3])].append(finding)
                continue  # a transition's finding marks the edge, not its ends
            if match[2] == "states" and int(match[3]) in on_state:
                marked.add(int(match[3]))
        # a state's finding also marks the other states it names (a cycle, rival initials)
        marked.update(position[name] for name in finding.states if name in position)
        for i in sorted(marked):
            on_state[i].append(finding)
        if not marked:
            loose.append(finding)

    ids = _Ids()
    nodes = [
        _state_node(state, ids.new("s", state.name), tuple(on_state[i]))
        for i, state in enumerate(journey.states)
    ]
    node_ids = {node.name: node.id for node in nodes}
    for transition in journey.transitions:
        for name in (transition.from_state, transition.to_state):
            if name not in node_ids:
                node_ids[name] = ids.new("missing", name)
                label = f"{_shown(name)}\n(missing)"
                nodes.append(DiagramNode(node_ids[name], name, label, None))
    edges = tuple(
        DiagramEdge(
            i,
            node_ids[transition.from_state],
            node_ids[transition.to_state],
            _edge_label(transition),
            tuple(on_transition[i]),
        )
        for i, transition in enumerate(journey.transitions)
    )
    return JourneyDiagram(journey.title, index, tuple(nodes), edges, tuple(loose))


def mark_coverage(
    diagram: JourneyDiagram, visited: Iterable[str], taken: Iterable[int]
) -> JourneyDiagram:
    """The diagram with every state and transition marked covered or not.

    Args:
        visited: names of the states the tests entered.
        taken: positions (in the journey's ``transitions``) of the transitions taken;
            a position tells apart two transitions between the same two states.
    """
    entered, used = set(visited), set(taken)
    nodes = tuple(
        node if node.missing else replace(node, covered=node.name in entered)
        for node in diagram.nodes
    )
    edges = tuple(replace(edge, covered=edge.index in used) for edge in diagram.edges)
    return replace(diagram, nodes=nodes, edges=edges)


def _edge_label(transition: TransitionSpec) -> str:
    """A transition's condition on one line, cut to ~40 characters, and its priority."""
    text = " ".join(_clean(transition.condition or "").split())
    if len(text) > MAX_CONDITION_CHARS:
        text = text[: MAX_CONDITION_CHARS - 1].rstrip() + "…"
    if transition.priority != DEFAULT_PRIORITY:
        text = f"{text} (p={transition.priority})" if text else f"p={transition.priority}"
    return text


def _state_node(state: StateSpec, node_id: str, findings: tuple[Finding, ...]) -> DiagramNode:
    label = _shown(state.name)
    if state.tool is not None:
        label += f"\ntool: {_shown(state.tool)}"
    return DiagramNode(
        node_id,
        state.name,
        label,
        state.state_type,
        initial=state.is_initial,
        final=state.ends_journey,
        findings=findings,
    )


def _shown(name: str) -> str:
    """A name as a label; a blank one quoted, so that the node is not an empty box."""
    label = _clean(name)
    # renderers trim labels, JavaScript's trim takes the byte-order mark too
    return label if label.replace("\ufeff", "").strip() else _clean(repr(name))


def _clean(text: str) -> str:
    """Line breaks as ``\\n``, other control characters as spaces: labels are for people."""
    lines = text.splitlines() or [""]
    return "\n".join(
        "".join(" " if unicodedata.category(ch) == "Cc" else ch for ch in line) for line in lines
    )


class _Ids:
    """Identifiers made of ASCII letters, digits and ``_``, unique, readable when possible."""

    def __init__(self) -> None:
        self._used: set[str] = set()

    def new(self, prefix: str, name: str) -> str:
        base = f"{prefix}_{re.sub(r'[^0-9A-Za-z_]', '_', name)}"
        candidate, counter = base, 1
        while candidate in self._used:
            counter += 1
            candidate = f"{base}_{counter}"
        self._used.add(candidate)
        return candidate
