"""What observability costs a turn: telemetry off, the no-op API, the SDK.

Run: ``.venv/bin/python benchmarks/bench_telemetry.py`` (``--quick`` for fewer turns,
``--json`` for JSON). About half a minute.

The turn: ``Runtime.process_message`` on a session that waits in a chat state; the
message moves it through a tool state (one tool call) and back, so every turn makes
one tool call, a handful of store calls and one commit. Measured in the same run, on a
:class:`MemoryStore` (where the runtime's own work is all there is, so overhead shows
most) and on a SQLite file:

- ``reference``: the same turn without instrumentation: the undecorated method
  (``Runtime.process_message.__wrapped__``) on the bare store, telemetry disabled
  (what is left is one no-op check at the tool call site);
- ``off``: ``Runtime(telemetry=Telemetry(enabled=False))``, which is also exactly the
  code path when OpenTelemetry is not installed (no SDK, no API);
- ``noop-api``: the default ``Telemetry()`` with no SDK configured (what a host that
  exports nothing gets): no span is made until a global tracer provider is set, and
  the metrics go to the API's no-op meter;
- ``sdk-memory``: the OpenTelemetry SDK with a ``SimpleSpanProcessor`` into an
  ``InMemorySpanExporter`` and an ``InMemoryMetricReader``: every span is recorded and
  exported synchronously (a host's ``BatchSpanProcessor`` does the export off the turn).

Configurations run interleaved, in rounds, so that load on a shared machine falls on
all of them alike. Figures are medians of single turns (``perf_counter``) and each
configuration's overhead over the reference.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from uuid import UUID

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from parlant_runtime import bundle_from_data
from parlant_runtime.engine import Runtime, ScriptedEvaluator, ToolRegistry, TurnResult
from parlant_runtime.storage import MemoryStore
from parlant_runtime.storage.migrate import upgrade
from parlant_runtime.storage.port import Store
from parlant_runtime.storage.sql.store import SqlStore
from parlant_runtime.telemetry import Telemetry

WS = "bench"

DATA: dict[str, Any] = {
    "agent": {"name": "Bench", "compositionMode": "fluid"},
    "journeys": [
        {
            "title": "Loop",
            "conditions": ["start"],
            "states": [
                {
                    "name": "a",
                    "stateType": "chat",
                    "isInitial": True,
                    "chatPrompt": "Again, {{ vars.name }}?",
                },
                {
                    "name": "t",
                    "stateType": "tool",
                    "tool": "count",
                    "toolConfig": {"resultVariable": "counted"},
                },
            ],
            "transitions": [{"from": "a", "to": "t", "condition": "go"}, {"from": "t", "to": "a"}],
        }
    ],
    "tools": [{"name": "count"}],
    "variables": [{"key": "name", "value": "Ada"}, {"key": "counted", "valueType": "object"}],
}

Turn = Callable[[str], Awaitable[TurnResult]]


async def count(arguments: dict[str, Any]) -> Any:
    return {"n": 1}


def sdk() -> tuple[Telemetry, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    return Telemetry(tracer_provider=tracer_provider, meter_provider=meter_provider), exporter


async def session_turn(store: Store, config: str, telemetry: Telemetry) -> Turn:
    """A session of the loop agent on ``store``, and how to send it one message."""
    await store.ensure_workspace(WS)
    found = await store.find_agent(WS, "Bench")
    agent: UUID = found or (await store.publish(WS, bundle_from_data(DATA))).agent_id
    tools = ToolRegistry()
    tools.register("count", count)
    runtime = Runtime(
        store, evaluator=ScriptedEvaluator(["start", "go"]), tools=tools, telemetry=telemetry
    )
    session = (await runtime.start_session(WS, agent)).id
    await runtime.process_message(WS, session, "hello")  # enter the journey
    looped = await runtime.process_message(WS, session, "go")
    assert looped.tool_calls == ("count",), looped.tool_calls  # the turn measured
    assert looped.state == "a", looped.state
    if config == "reference":
        bare: Callable[..., Awaitable[TurnResult]] = Runtime.process_message.__wrapped__  # type: ignore[attr-defined]
        return lambda text: bare(runtime, WS, session, text)
    return lambda text: runtime.process_message(WS, session, text)


async def measure(backend: str, turns: int, rounds: int) -> dict[str, dict[str, float]]:
    folder = Path(tempfile.mkdtemp(prefix="bench_telemetry_"))
    stores: list[Store] = []

    async def open_store() -> Store:
        if backend == "memory":
            store: Store = MemoryStore()
        else:
            url = f"sqlite:///{folder / 'bench.db'}"
            if not stores:
                await upgrade(url)
            store = SqlStore.open(url)
        stores.append(store)
        return store

    telemetry, exporter = sdk()
    configs = {
        "reference": Telemetry(enabled=False),
        "off": Telemetry(enabled=False),
        "noop-api": Telemetry(),
        "sdk-memory": telemetry,
    }
    senders = {
        name: await session_turn(await open_store(), name, config)
        for name, config in configs.items()
    }
    times: dict[str, list[float]] = {name: [] for name in configs}
    for _ in range(rounds):
        for name, send in senders.items():
            for _ in range(turns):
                started = time.perf_counter()
                await send("go")
                times[name].append(time.perf_counter() - started)
            exporter.clear()
    for store in stores:
        await store.close()
    reference = statistics.median(times["reference"])
    return {
        name: {
            "median_us": statistics.median(values) * 1e6,
            "overhead_us": (statistics.median(values) - reference) * 1e6,
            "overhead_pct": (statistics.median(values) / reference - 1) * 100,
        }
        for name, values in times.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer turns")
    parser.add_argument("--json", action="store_true", help="print JSON")
    options = parser.parse_args()
    turns, rounds = (20, 3) if options.quick else (50, 8)
    results = {
        backend: asyncio.run(measure(backend, turns, rounds)) for backend in ("memory", "sqlite")
    }
    if options.json:
        print(json.dumps(results, indent=2))
        return
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"{os.cpu_count()} CPUs, load average {load}; {turns} turns x {rounds} rounds each")
    for backend, figures in results.items():
        print(f"\n{backend}: one turn (a tool call, store calls, a commit), median")
        for name, row in figures.items():
            print(
                f"  {name:<11} {row['median_us']:9.0f} us"
                f"  {row['overhead_us']:+8.0f} us  ({row['overhead_pct']:+5.1f} %)"
            )


if __name__ == "__main__":
    main()
