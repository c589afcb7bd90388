"""Property tests of the validator against an independent brute-force search.

The brute force below reads the bundle data directly (no networkx, no code of
the package), so agreement means the rules find what they promise.
"""

from __future__ import annotations

import difflib
import gc
from collections.abc import Iterator
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from parlant_runtime import Code, Finding, Severity, bundle_from_data, validate_bundle
from parlant_runtime.validation.context import BundleContext, cycles
from parlant_runtime.validation.registry import BUNDLE_RULES, Rule
from tests.strategies import arbitrary_journeys, mutated_journeys, valid_journeys


def _adjacency(journey: dict[str, Any]) -> dict[str, set[str]]:
    names = {state["name"] for state in journey["states"]}
    edges: dict[str, set[str]] = {name: set() for name in names}
    for transition in journey["transitions"]:
        if transition["from"] in names and transition["to"] in names:
            edges[transition["from"]].add(transition["to"])
    return edges


def _reach(edges: dict[str, set[str]], start: str) -> set[str]:
    seen, stack = {start}, [start]
    while stack:
        for nxt in edges[stack.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return seen


def _closest(word: str, names: set[str]) -> str | None:
    """The state a misspelt name most likely means: same letters ignoring case, else
    difflib's closest."""
    folded = {name.casefold(): name for name in sorted(names)}
    if word.casefold() in folded:
        return folded[word.casefold()]
    close = difflib.get_close_matches(word, sorted(names), n=1)
    return close[0] if close else None


def _is_final(state: dict[str, Any]) -> bool:
    return bool(state["stateType"] == "final" or state.get("isFinal"))


@given(st.one_of(arbitrary_journeys(), mutated_journeys()))
def test_no_error_means_every_state_reachable_and_every_state_can_finish(data: Any) -> None:
    report = validate_bundle(bundle_from_data(data))
    if report.errors:
        return
    journey = data["journeys"][0]
    edges = _adjacency(journey)
    initial = [s["name"] for s in journey["states"] if s.get("isInitial")]
    assert len(initial) == 1
    assert _reach(edges, initial[0]) == set(edges)
    finals = {s["name"] for s in journey["states"] if _is_final(s)}
    for name in edges:
        assert _reach(edges, name) & finals, f"{name} cannot reach a final state"


@given(arbitrary_journeys())
def test_validator_never_crashes_and_reports_only_known_severities(data: Any) -> None:
    report = validate_bundle(bundle_from_data(data))
    for finding in report.findings:
        assert finding.severity in set(Severity)
        assert finding.message.strip()
        assert finding.journey in (None, "J")


@given(st.one_of(arbitrary_journeys(), mutated_journeys()))
def test_path_examples_are_real_paths_of_the_graph(data: Any) -> None:
    report = validate_bundle(bundle_from_data(data))
    edges = _adjacency(data["journeys"][0])
    for finding in report.findings:
        if finding.example is None:
            continue
        steps = list(zip(finding.example, finding.example[1:], strict=False))
        assert all(b in edges[a] for a, b in steps), (finding.code, finding.example)


@given(st.one_of(arbitrary_journeys(), mutated_journeys()))
def test_unreachable_findings_match_brute_force(data: Any) -> None:
    journey = data["journeys"][0]
    initial = [s["name"] for s in journey["states"] if s.get("isInitial")]
    report = validate_bundle(bundle_from_data(data))
    reported = {f.states[0] for f in report.findings if f.code == "unreachable_state"}
    if not initial:
        assert not reported
        return
    edges = _adjacency(journey)
    reachable = set().union(*(_reach(edges, name) for name in initial))
    names = set(edges)
    lost = {t["from"] for t in journey["transitions"] if t["to"] not in names}
    lost |= {
        close
        for t in journey["transitions"]
        if t["from"] not in names and t["to"] in names
        for close in [_closest(t["from"], names)]
        if close
    }
    if lost & reachable:  # one cause, one finding: the dangling_reference may be the way in
        assert not reported
        return
    orphans = {t["to"] for t in journey["transitions"] if t["from"] not in names}
    assert reported == names - reachable - orphans


@given(valid_journeys())
def test_a_journey_built_to_be_valid_is_reported_valid(data: Any) -> None:
    report = validate_bundle(bundle_from_data(data))
    serious = [f for f in report.findings if f.severity is not Severity.INFO]
    assert serious == []


def test_validation_leaves_the_cycle_collector_as_it_found_it() -> None:
    """validate_bundle pauses the collector while the rules run (for speed) and puts it
    back as it was: on when it was on, off when the host had turned it off."""
    bundle = bundle_from_data({"agent": {"name": "gc"}})
    seen: list[bool] = []

    def spy(context: BundleContext) -> Iterator[Finding]:  # a rule that only looks
        seen.append(gc.isenabled())
        yield from ()

    BUNDLE_RULES.append((Rule(Code.DANGLING_REFERENCE, "spy", per_journey=False), spy))
    try:
        assert gc.isenabled()
        validate_bundle(bundle)
        assert gc.isenabled()
        gc.disable()
        try:
            validate_bundle(bundle)
            assert not gc.isenabled()
        finally:
            gc.enable()
    finally:
        BUNDLE_RULES.pop()
    assert seen == [False, False]


graphs = st.integers(1, 9).flatmap(
    lambda n: st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=3 * n).map(
        lambda edges: (n, edges)
    )
)


@given(graphs)
def test_example_cycles_are_the_ones_networkx_finds(
    graph: tuple[int, list[tuple[int, int]]],
) -> None:
    """One cycle per strongly connected component with a cycle, and it is the cycle
    networkx's ``find_cycle`` finds from the component's smallest node (what the
    validator reported when it ran on networkx)."""
    import networkx as nx

    count, edges = graph
    names = [f"s{i}" for i in range(count)]
    successors: dict[str, dict[str, None]] = {name: {} for name in names}
    for a, b in edges:
        successors[names[a]][names[b]] = None
    expected = set()
    whole = nx.DiGraph()
    whole.add_nodes_from(names)
    whole.add_edges_from((a, b) for a in names for b in successors[a])
    for component in nx.strongly_connected_components(whole):
        if len(component) == 1:
            (node,) = component
            if node in successors[node]:
                expected.add((node, node))
            continue
        inside = nx.DiGraph()
        inside.add_edges_from(
            (a, b) for a in names if a in component for b in successors[a] if b in component
        )
        found = nx.find_cycle(inside, source=min(component))
        expected.add((*(edge[0] for edge in found), found[-1][1]))
    assert set(cycles(successors, names, None)) == expected


priorities_few = st.sampled_from([None, 50, 100, 100, 200])
conditions_few = st.sampled_from(
    [None, "", "{{ true }}", "{{ 1 < 2 }}", "{{ false }}", "customer agrees", "{{ vars.n > 1 }}"]
)


@given(
    st.integers(2, 5).flatmap(
        lambda n: st.lists(
            st.tuples(st.integers(0, n - 1), st.integers(0, n - 1), conditions_few, priorities_few),
            max_size=4 * n,
        ).map(lambda rows: (n, rows))
    )
)
@example((2, [(0, 0, "customer agrees", 50), (0, 1, "customer agrees", 200),
              (0, 0, "customer agrees", 100), (0, 1, "{{ vars.n > 1 }}", 100)]))  # fmt: skip
@example((2, [(0, 1, "{{ vars.n > 1 }}", 200), (0, 0, None, 50), (0, 1, "customer agrees", 300),
              (0, 0, "{{ 1 < 2 }}", 300)]))  # fmt: skip
def test_transition_order_rules_match_their_definitions(
    journey: tuple[int, list[tuple[int, int, str | None, int | None]]],
) -> None:
    """shadowed_transition, ambiguous_priority and duplicate_transition, checked against
    the order of transitions written out by hand (the validator only looks closely at
    the states where one of them may apply)."""
    count, rows = journey
    names = [f"s{i}" for i in range(count)]
    states: list[dict[str, Any]] = [
        {"name": name, "stateType": "chat", "chatPrompt": "Hi"} for name in names
    ]
    states[0]["isInitial"] = True
    transitions = []
    for a, b, condition, priority in rows:
        row: dict[str, Any] = {"from": names[a], "to": names[b]}
        if condition is not None:
            row["condition"] = condition
        if priority is not None:
            row["priority"] = priority
        transitions.append(row)
    data = {
        "agent": {"name": "A"},
        "variables": [{"key": "n", "valueType": "number", "value": 0}],
        "journeys": [{"title": "J", "states": states, "transitions": transitions}],
    }
    report = validate_bundle(bundle_from_data(data))

    def fields(code: Code) -> set[str]:
        return {finding.field for finding in report.findings if finding.code is code}

    def always(row: dict[str, Any]) -> bool:
        return row.get("condition") in (None, "", "{{ true }}", "{{ 1 < 2 }}")

    shadowed: set[str] = set()
    ambiguous: set[str] = set()
    duplicates: set[str] = set()
    for source in names:
        exits = [(i, row) for i, row in enumerate(transitions) if row["from"] == source]
        tried = sorted(exits, key=lambda item: (-item[1].get("priority", 100), item[0]))
        first = next((k for k, (_, row) in enumerate(tried) if always(row)), None)
        if first is not None:
            shadowed.update(f"journeys[0].transitions[{i}]" for i, _ in tried[first + 1 :])
        by_priority: dict[int, list[tuple[int, dict[str, Any]]]] = {}
        for i, row in tried:
            if not always(row):
                by_priority.setdefault(row.get("priority", 100), []).append((i, row))
        for group in by_priority.values():
            if len({row["to"] for _, row in group}) > 1:
                ambiguous.add(f"journeys[0].transitions[{group[1][0]}]")
    seen: set[tuple[str, str, str]] = set()
    for i, row in enumerate(transitions):
        key = (row["from"], row["to"], " ".join((row.get("condition") or "").split()))
        if key in seen:
            duplicates.add(f"journeys[0].transitions[{i}]")
        seen.add(key)
    assert fields(Code.SHADOWED_TRANSITION) == shadowed
    assert fields(Code.AMBIGUOUS_PRIORITY) == ambiguous
    assert fields(Code.DUPLICATE_TRANSITION) == duplicates
