"""The engine's caches against the simple path, interleaved in one process.

Run: ``.venv/bin/python benchmarks/bench_shortcuts.py`` (``--quick`` for fewer turns,
``--json`` for JSON).

A cache that shadows simpler code has to earn its place. Each case times the turn
(or the call) with the cache and with the simple path it shadows, one sample of
each in turn, so that a busy machine slows both alike:

- ``trace rows``: :meth:`TurnState.batched_row` keeps, per compiled agent, the
  trace row of a condition decided in a batch (by place, condition and result), so
  a turn of an agent with many expression guidelines does not build a hundred
  frozen rows again. The simple path builds each row. Measured on
  ``bench_engine.py``'s agent (b): 100 expression guidelines, 50 canned responses,
  ``run_turn``.

Measured and removed (the numbers are in the code that replaced them): the cache of
:func:`~parlant_runtime.engine.conditions.normalise` (2 % of a turn).

Figures are medians (and the first quartile) in microseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

from bench_engine import WAIT_AT, WS, publish, waiting_session

from parlant_runtime.engine.compose import DeterministicGenerator
from parlant_runtime.engine.conditions import Condition
from parlant_runtime.engine.tools import ToolRegistry
from parlant_runtime.engine.trace import ConditionTrace
from parlant_runtime.engine.turn import TurnInput, run_turn
from parlant_runtime.engine.turn_state import TurnState
from parlant_runtime.storage import MemoryStore


def _fresh_row(self: TurnState, where: str, condition: Condition, result: bool) -> ConditionTrace:
    """The simple path of :meth:`TurnState.batched_row`: a new row every time."""
    return ConditionTrace(where, condition.text, condition.kind.value, result)


Switch = Callable[[bool], None]
"""Puts the cache on (``True``) or the simple path (``False``) in place."""


def _rows(cached: bool) -> None:
    TurnState.batched_row = _KEPT_ROW if cached else _fresh_row  # type: ignore[method-assign]


_KEPT_ROW = TurnState.batched_row


async def interleaved(
    action: Callable[[], Awaitable[object]], switch: Switch, count: int
) -> dict[str, dict[str, float]]:
    samples: dict[bool, list[float]] = {True: [], False: []}
    for i in range(count + count // 5):
        cached = i % 2 == 0
        switch(cached)
        began = time.perf_counter()
        await action()
        if i >= count // 5:  # the first fifth warms up
            samples[cached].append(time.perf_counter() - began)
    switch(True)
    return {
        "cached" if cached else "simple": {
            "median_us": statistics.median(values) * 1e6,
            "p25_us": statistics.quantiles(values, n=4)[0] * 1e6,
        }
        for cached, values in samples.items()
    }


async def turn_action(behaviour: bool) -> Callable[[], Awaitable[object]]:
    served = await publish(MemoryStore(), behaviour=behaviour)
    session_id = await waiting_session(served, WAIT_AT - 1)
    store = served.store
    session = await store.get_session(WS, session_id)
    agent = await served.runtime.agent(WS, served.agent_id)
    variables = list(await store.get_variables(WS, session_id))
    inputs = TurnInput(session, agent, variables, "next")
    generator, tools = DeterministicGenerator(), ToolRegistry()

    async def compute() -> object:
        return await run_turn(
            inputs, evaluator=served.runtime.evaluator, generator=generator, tools=tools
        )

    return compute


async def measure(turns: int) -> dict[str, Any]:
    found: dict[str, Any] = {}
    found["trace rows, run_turn of agent (b)"] = await interleaved(
        await turn_action(behaviour=True), _rows, turns
    )
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer turns")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    results = asyncio.run(measure(600 if args.quick else 4_000))
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    machine = (
        f"{platform.machine()}, {os.cpu_count()} cores (load {load} at the end), "
        f"{platform.python_implementation()} {platform.python_version()}"
    )
    if args.json:
        print(json.dumps({"machine": machine, "cases": results}, indent=2))
        return
    print(f"engine caches against the simple path, interleaved ({machine})")
    print(f"{'':40} {'cached us':>10} {'simple us':>10} {'saved':>7}")
    for name, row in results.items():
        cached, simple = row["cached"]["median_us"], row["simple"]["median_us"]
        print(f"{name:40} {cached:>10.1f} {simple:>10.1f} {1 - cached / simple:>6.0%}")
        print(
            f"{'  first quartile':40} {row['cached']['p25_us']:>10.1f} "
            f"{row['simple']['p25_us']:>10.1f}"
        )


if __name__ == "__main__":
    main()
