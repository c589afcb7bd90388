"""The journey as a graph, and the ways through it that the generator's cover chooses from.

Part of :mod:`parlant_runtime.testing.generate` (steps 1 to 3 of its docstring): the
graph, the candidate ways through each transition, and the greedy set cover's order.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import networkx as nx

from parlant_runtime.bundle.schema import JourneySpec, TransitionSpec

__all__ = [
    "ALTERNATIVES",
    "DETOUR",
    "Route",
    "Routes",
    "TransitionEdge",
    "greedy_cover",
    "ordered_transitions",
]


@dataclass(frozen=True, slots=True)
class TransitionEdge:
    index: int
    spec: TransitionSpec


def ordered_transitions(journey: JourneySpec) -> dict[str, list[TransitionEdge]]:
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
    outgoing: dict[str, list[TransitionEdge]] = {}
    for index, spec in ordered:
        outgoing.setdefault(spec.from_state, []).append(TransitionEdge(index, spec))
    return outgoing


def _graph(journey: JourneySpec, outgoing: Mapping[str, list[TransitionEdge]]) -> nx.MultiDiGraph:
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

DETOUR = 3
"""Alternative ways (to a transition, and on to a final state) are at most this many
transitions longer than the shortest."""

_WALK = 40
"""Most transitions a case walks past the one it is for (see :meth:`Routes.extended`)."""


@dataclass(frozen=True, slots=True)
class Route:
    """A way to a transition (``before``), the transition, and a suggested way on to a
    final state (``after``; the planner may find another when this one cannot be planned)."""

    before: list[TransitionEdge]
    edge: TransitionEdge
    after: list[TransitionEdge]

    @property
    def edges(self) -> list[TransitionEdge]:
        return [*self.before, self.edge, *self.after]


def _to_final(journey: JourneySpec, outgoing: Mapping[str, list[TransitionEdge]]) -> dict[str, int]:
    """Transitions from each state to the nearest final state (states that reach one)."""
    reverse = _graph(journey, outgoing).reverse(copy=False)
    distance: dict[str, int] = {}
    for state in journey.states:
        if state.ends_journey:
            for name, steps in nx.single_source_shortest_path_length(reverse, state.name).items():
                distance[name] = min(steps, distance.get(name, steps))
    return distance


class Routes:
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
        self, journey: JourneySpec, initial: str, outgoing: Mapping[str, list[TransitionEdge]]
    ) -> None:
        self.initial = initial
        self.outgoing = outgoing
        self.graph = _graph(journey, outgoing)
        self.rank = {e.index: n for es in outgoing.values() for n, e in enumerate(es)}
        self.distance = _to_final(journey, outgoing)
        self.parent: dict[str, TransitionEdge | None] = {initial: None}
        queue = deque([initial])
        while queue:
            here = queue.popleft()
            for edge in outgoing.get(here, []):
                if edge.spec.to_state not in self.parent:
                    self.parent[edge.spec.to_state] = edge
                    queue.append(edge.spec.to_state)
        self.edges = {e.index: e for es in outgoing.values() for e in es}
        self.revisit = journey.allow_revisiting
        self._after: dict[str, list[TransitionEdge]] = {}

    def reachable(self) -> list[int]:
        """The transitions whose source the initial state reaches, in file order."""
        return sorted(i for i, e in self.edges.items() if e.spec.from_state in self.parent)

    def first(self, index: int) -> Route:
        """The shortest way through transition ``index`` (see the class docstring)."""
        edge = self.edges[index]
        before: list[TransitionEdge] = []
        here = edge.spec.from_state
        while (step := self.parent[here]) is not None:
            before.append(step)
            here = step.spec.from_state
        before.reverse()
        return Route(before, edge, self.on_to_final(edge.spec.to_state))

    def routes(self, index: int, covered: set[int], chat: frozenset[str]) -> Iterator[Route]:
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
                yield Route(before, edge, first.after)

    def ways(self, start: str, end: str) -> list[list[TransitionEdge]]:
        """The shortest simple paths from ``start`` to ``end``: the shortest first (using
        the transitions tried first), then up to ALTERNATIVES - 1 others at most DETOUR
        transitions longer, found depth first and pruned by the distance still to go."""
        if start == end:
            return [[]]
        to_end = nx.single_source_shortest_path_length(self.graph.reverse(copy=False), end)
        if start not in to_end:
            return []
        budget = to_end[start] + DETOUR
        found: list[list[TransitionEdge]] = []
        stack: list[tuple[str, list[TransitionEdge], frozenset[str]]] = [
            (start, [], frozenset({start}))
        ]
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

    def extended(self, route: Route, covered: set[int], chat: frozenset[str]) -> Route:
        """``route`` with its way on replaced by a walk through transitions no case has
        taken yet (the first untaken one in the engine's order, from chat state to chat
        state, each transition once, at most :data:`_WALK` long), then on to a final
        state: on a dense journey one case then takes many transitions instead of one."""
        used = {e.index for e in route.before} | {route.edge.index}
        walk: list[TransitionEdge] = []
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
        return Route(route.before, route.edge, [*walk, *self.on_to_final(here)])

    def on_to_final(self, start: str) -> list[TransitionEdge]:
        """A shortest way from ``start`` to the nearest final state (transitions tried
        first); remembered per state."""
        known = self._after.get(start)
        if known is not None:
            return known
        way: list[TransitionEdge] = []
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


def greedy_cover(routes: Routes, open_: Sequence[int], covered: set[int]) -> Iterator[int]:
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
