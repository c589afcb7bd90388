"""Validation time of large journeys, beside a plain breadth-first reachability check.

Run: ``./run bench`` (or ``.venv/bin/python benchmarks/bench_validation.py``).

For journeys of 100, 1,000 and 10,000 states it measures, in the same process:

- ``validate``: :func:`parlant_runtime.validate_bundle` on an already loaded bundle
  (every rule, template and condition analysis caches cleared before each run);
- ``load``: building the bundle from plain data (pydantic validation, derived ids);
- ``networkx``: the reference of issue 11, a plain networkx reachability check on
  the same graph: a ``DiGraph`` built from the journey's transitions, then
  ``nx.descendants`` of the initial state (the least a validator built on networkx
  does before any rule of its own);
- ``floor``: the graph questions validation cannot do without, asked of networkx on
  the same graph: reachability from the initial state (unreachable states), reachability
  of a final state backwards (traps: ``cannot_reach_final``), and the strongly
  connected components of the states that do not wait (loops within one turn:
  ``auto_advance_cycle``). (A journey that forbids revisiting adds the components of
  the whole graph; the benchmark's allows it.) The rest of validation (every
  template and condition analysed, each state's and transition's content, the order
  of transitions) has no networkx counterpart;
- ``bfs``: a hand-written breadth-first reachability check over an adjacency dict of
  the same graph: the least any reachability check must do.

The journeys look like real ones scaled up: mostly chat states, some tool and
decision states, forward edges with natural-language and expression conditions,
a fallback exit from every non-waiting state, and back edges from chat states.
Medians of several runs, the four measured in turn within each run; the ratio
columns are validate / networkx (the aim: at most 2x at 10,000 states), validate /
floor and validate / bfs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import networkx as nx

from parlant_runtime import AgentBundle, bundle_from_data, validate_bundle
from parlant_runtime.sandbox import clear_caches

SIZES = (100, 1_000, 10_000)


def journey_data(size: int, seed: int = 7) -> dict[str, Any]:
    """A valid journey of ``size`` states (see the module docstring)."""
    rng = random.Random(seed)
    kinds = ["chat"] + [rng.choice("cccccctd") for _ in range(size - 2)] + ["final"]
    names = [f"s{i}" for i in range(size)]
    states: list[dict[str, Any]] = []
    for i, kind in enumerate(kinds):
        state: dict[str, Any] = {"name": names[i]}
        if kind == "c":
            state.update(stateType="chat", chatPrompt=f"Step {i}: {{{{ vars.name }}}}, go on?")
        elif kind == "t":
            state.update(
                stateType="tool",
                tool="lookup",
                toolConfig={"arguments": {"query": f"{{{{ vars.name }}}} {i}"}},
            )
        elif kind == "d":
            state.update(stateType="decision", condition=f"Which way after step {i}?")
        elif kind == "chat":
            state.update(stateType="chat", chatPrompt="Hello!", isInitial=True)
        else:
            state.update(stateType="final", isFinal=True)
        states.append(state)
    transitions: list[dict[str, Any]] = []
    last = size - 1
    for i in range(last):
        near = min(i + 1, last)
        far = min(i + rng.randint(2, 6), last)
        transitions.append(
            {
                "from": names[i],
                "to": names[far],
                "condition": f"{{{{ vars.score is defined and vars.score > {i} }}}}",
                "priority": 200,
            }
        )
        # the fallback: no condition, the default priority (100), below the ones above;
        # no priority key, so that 10,000 states stay under the bundle's node bound
        transitions.append({"from": names[i], "to": names[near]})
        if kinds[i] == "c" and i > 10 and rng.random() < 0.2:
            transitions.append(
                {
                    "from": names[i],
                    "to": names[i - rng.randint(1, 10)],
                    "condition": f"the customer wants to redo step {i}",
                    "priority": 300,
                }
            )
    return {
        "agent": {"name": f"Benchmark {size}"},
        "tools": [
            {"name": "lookup", "parameters": {"type": "object", "properties": {"query": {}}}}
        ],
        "variables": [
            {"key": "name", "value": "Ada"},
            {"key": "score", "valueType": "number", "value": 0},
        ],
        "journeys": [
            {
                "title": f"Journey of {size}",
                "conditions": ["customer starts"],
                "states": states,
                "transitions": transitions,
            }
        ],
    }


def bfs_reachability(bundle: AgentBundle) -> int:
    """The reference: reachable states from the initial one, over a plain dict."""
    journey = bundle.journeys[0]
    edges: dict[str, list[str]] = {state.name: [] for state in journey.states}
    for transition in journey.transitions:
        edges[transition.from_state].append(transition.to_state)
    start = next(state.name for state in journey.states if state.is_initial)
    seen = {start}
    queue = deque([start])
    while queue:
        for nxt in edges[queue.popleft()]:
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    return len(seen)


def networkx_reachability(bundle: AgentBundle) -> int:
    """The reference of issue 11: the same check with networkx, graph building included."""
    journey = bundle.journeys[0]
    graph = nx.DiGraph()
    graph.add_nodes_from(state.name for state in journey.states)
    graph.add_edges_from((t.from_state, t.to_state) for t in journey.transitions)
    start = next(state.name for state in journey.states if state.is_initial)
    return len(nx.descendants(graph, start)) + 1


def networkx_floor(bundle: AgentBundle) -> int:
    """The graph work validation needs beyond reachability, with networkx: reachable
    states, states that can reach a final one, and loops among states that do not wait."""
    journey = bundle.journeys[0]
    graph = nx.DiGraph()
    graph.add_nodes_from(state.name for state in journey.states)
    graph.add_edges_from((t.from_state, t.to_state) for t in journey.transitions)
    start = next(state.name for state in journey.states if state.is_initial)
    reached = nx.descendants(graph, start) | {start}
    finals = [state.name for state in journey.states if state.ends_journey]
    finishing = set(finals).union(*(nx.ancestors(graph, final) for final in finals))
    # a copy: networkx's filtered views are slow to walk on large graphs
    moving = graph.subgraph(s.name for s in journey.states if not s.stops_turn).copy()
    loops = [c for c in nx.strongly_connected_components(moving) if len(c) > 1]
    return len(reached) + len(finishing) + len(loops)


def median_seconds(action: Callable[[], object], repeats: int, before: Callable[[], None]) -> float:
    samples = []
    for _ in range(repeats):
        before()
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def measure(size: int, repeats: int) -> dict[str, float]:
    """The figures of one journey size."""
    data = journey_data(size)
    bundle = bundle_from_data(data)
    report = validate_bundle(bundle)
    assert report.ok, report.findings[:3]
    assert bfs_reachability(bundle) == size
    assert networkx_reachability(bundle) == size

    def nothing() -> None:
        pass

    load = median_seconds(lambda: bundle_from_data(data), repeats, nothing)
    assert networkx_floor(bundle) == 2 * size
    checks, graphs, floors, bfss = [], [], [], []
    for _ in range(repeats):  # in turn, so that drift in the machine hits all four
        checks.append(median_seconds(lambda: validate_bundle(bundle), 1, clear_caches))
        graphs.append(median_seconds(lambda: networkx_reachability(bundle), 3, nothing))
        floors.append(median_seconds(lambda: networkx_floor(bundle), 3, nothing))
        bfss.append(median_seconds(lambda: bfs_reachability(bundle), 4, nothing))
    check, graph, floor, bfs = (statistics.median(x) for x in (checks, graphs, floors, bfss))
    return {
        "states": size,
        "transitions": len(bundle.journeys[0].transitions),
        "load_ms": load * 1e3,
        "validate_ms": check * 1e3,
        "networkx_ms": graph * 1e3,
        "floor_ms": floor * 1e3,
        "bfs_ms": bfs * 1e3,
        "ratio_networkx": check / graph,
        "ratio_floor": check / floor,
        "ratio": check / bfs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs per measurement")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()

    rows = [measure(size, args.repeats) for size in SIZES]
    machine = (
        f"{platform.machine()}, {os.cpu_count()} cores, "
        f"{platform.python_implementation()} {platform.python_version()}"
    )
    if args.json:
        print(json.dumps({"machine": machine, "rows": rows}, indent=2))
        return
    print(f"journey validation ({machine}; median of {args.repeats} runs)")
    header = ("states", "transitions", "load ms", "validate ms", "networkx ms", "floor ms")
    print(
        "{:>8} {:>12} {:>8} {:>12} {:>12} {:>9} {:>7}   validate / networkx, / floor, / bfs".format(
            *header, "bfs ms"
        )
    )
    for row in rows:
        print(
            f"{row['states']:>8,.0f} {row['transitions']:>12,.0f} {row['load_ms']:>8.1f} "
            f"{row['validate_ms']:>12.1f} {row['networkx_ms']:>12.2f} {row['floor_ms']:>9.2f} "
            f"{row['bfs_ms']:>7.2f}   {row['ratio_networkx']:>5.2f}x, "
            f"{row['ratio_floor']:.2f}x, {row['ratio']:.0f}x"
        )


if __name__ == "__main__":
    main()
