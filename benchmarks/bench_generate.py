"""generate-tests on large journeys: time, cases and coverage, beside running the result once.

Run: ``.venv/bin/python benchmarks/bench_generate.py`` (``--sizes 20 50`` to choose).

For journeys of 20, 50 and 100 states (the journeys of ``bench_validation.py``:
chat, tool and decision states, forward edges with expression conditions, fallback
exits and back edges with natural-language conditions) it measures, in the same
process:

- ``generate``: :func:`parlant_runtime.testing.generate_tests` (graph, paths, set
  cover, planning, and running every planned case to check it);
- ``run``: the reference, running the generated file once with the conversation-test
  runner, which is what ``parlant-runtime test`` does with it;
- ``cases`` against ``transitions``: one case per transition is what a generator
  without set cover would write.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_validation import journey_data

from parlant_runtime import bundle_from_data
from parlant_runtime.bundle import LoadedBundle
from parlant_runtime.bundle.source import SourceMap
from parlant_runtime.testing import (
    CaseResult,
    generate_tests,
    loads_conversation_file,
    render_generated,
    run_case,
)
from parlant_runtime.testing.coverage import taken_transitions


def measure(size: int) -> dict[str, float]:
    bundle = bundle_from_data(journey_data(size))
    loaded = LoadedBundle(bundle, SourceMap(), f"journey{size}.yaml")
    started = time.perf_counter()
    tests = generate_tests(loaded)
    generate = time.perf_counter() - started
    text = render_generated(tests, bundle_ref="unused.yaml", command="bench")
    conversation = loads_conversation_file(text)

    async def run_all() -> list[CaseResult]:
        return [
            await run_case(conversation, i, bundle) for i in range(len(conversation.spec.cases))
        ]

    started = time.perf_counter()
    results = asyncio.run(run_all())
    run = time.perf_counter() - started
    traces = [trace for result in results for trace in result.traces]
    (journey,) = tests.journeys
    return {
        "states": size,
        "transitions": journey.transitions,
        "covered": len(taken_transitions(bundle, traces)),
        "cases": len(journey.cases),
        "steps": sum(len(case.data["steps"]) for case in journey.cases),
        "generate_s": generate,
        "run_s": run,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[20, 50, 100])
    args = parser.parse_args()
    print(f"CPython {platform.python_version()} on {platform.machine()}")
    print("states transitions covered cases steps generate_s run_s(reference) ratio")
    for size in args.sizes:
        row = measure(size)
        print(
            f"{row['states']:>6} {row['transitions']:>11} {row['covered']:>7} {row['cases']:>5} "
            f"{row['steps']:>5} {row['generate_s']:>10.2f} {row['run_s']:>16.2f} "
            f"{row['generate_s'] / row['run_s']:>5.1f}"
        )


if __name__ == "__main__":
    main()
