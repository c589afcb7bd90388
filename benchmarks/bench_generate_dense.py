"""generate-tests on dense journeys, beside a plain all-pairs shortest path on the same graph.

Run: ``.venv/bin/python benchmarks/bench_generate_dense.py`` (``--sizes 25 40 100``).

A dense journey of ``n`` states: an initial chat state, ``n - 2`` chat states and a
final state; every state but the final one has a transition to every other state
but the initial one, each with its own natural-language condition (about ``n**2``
transitions). This is the shape that made the generator grow about as ``n**4``
(25 states 113 s, 40 states over two minutes): candidate paths enumerated per
transition, a set cover recomputed over every candidate per case, and a fresh
store with the whole bundle published for every case it checks.

Measured in the same process for each size:

- ``generate``: :func:`parlant_runtime.testing.generate_tests` (graph, paths, cover,
  planning, and running every planned case to check it);
- ``apsp``: the reference, ``networkx.all_pairs_shortest_path_length`` on the same
  graph, the least a generator that knows every shortest way has to do;
- ``cases``/``steps``: what was generated, and whether it covers every transition.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path
from typing import Any

import networkx as nx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from parlant_runtime import bundle_from_data
from parlant_runtime.bundle import LoadedBundle
from parlant_runtime.bundle.source import SourceMap
from parlant_runtime.testing import generate_tests


def dense_journey(size: int) -> dict[str, Any]:
    """Bundle data with one dense journey of ``size`` states (see the module docstring)."""
    names = [f"s{i}" for i in range(size)]
    states: list[dict[str, Any]] = [
        {"name": names[0], "stateType": "chat", "chatPrompt": "Hello!", "isInitial": True}
    ]
    states += [
        {"name": name, "stateType": "chat", "chatPrompt": f"Step {i}?"}
        for i, name in enumerate(names[1:-1], start=1)
    ]
    states.append({"name": names[-1], "stateType": "final"})
    transitions = [
        {"from": names[i], "to": names[j], "condition": f"customer picks {j} at {i}"}
        for i in range(size - 1)
        for j in range(1, size)
        if i != j
    ]
    return {
        "agent": {"name": f"Dense {size}"},
        "journeys": [
            {
                "title": f"Dense {size}",
                "conditions": ["customer starts"],
                "states": states,
                "transitions": transitions,
            }
        ],
    }


def measure(size: int) -> dict[str, float]:
    data = dense_journey(size)
    bundle = bundle_from_data(data)
    loaded = LoadedBundle(bundle, SourceMap(), f"dense{size}.yaml")
    graph = nx.DiGraph()
    graph.add_edges_from((t["from"], t["to"]) for t in data["journeys"][0]["transitions"])
    started = time.perf_counter()
    lengths = dict(nx.all_pairs_shortest_path_length(graph))
    apsp = time.perf_counter() - started
    assert len(lengths) == size
    started = time.perf_counter()
    tests = generate_tests(loaded)
    generate = time.perf_counter() - started
    (journey,) = tests.journeys
    return {
        "states": size,
        "transitions": journey.transitions,
        "covered": journey.covered,
        "cases": len(journey.cases),
        "steps": sum(len(case.data["steps"]) for case in journey.cases),
        "generate_s": generate,
        "apsp_s": apsp,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[25, 40, 100])
    args = parser.parse_args()
    print(f"CPython {platform.python_version()} on {platform.machine()}")
    print("states transitions covered cases steps generate_s apsp_s(reference) ratio")
    for size in args.sizes:
        row = measure(size)
        print(
            f"{row['states']:>6} {row['transitions']:>11} {row['covered']:>7} {row['cases']:>5} "
            f"{row['steps']:>5} {row['generate_s']:>10.2f} {row['apsp_s']:>17.4f} "
            f"{row['generate_s'] / row['apsp_s']:>7.0f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
