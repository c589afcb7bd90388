"""Loading an agent costs the same number of queries however many journeys it has."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from typing import Any

from parlant_runtime import bundle_from_data
from parlant_runtime.storage.migrate import upgrade
from parlant_runtime.storage.sql.store import SqlStore


def agent_with(journeys: int, states: int = 5) -> Any:
    def journey(j: int) -> dict[str, Any]:
        names = [f"j{j}s{i}" for i in range(states)]
        return {
            "title": f"Journey {j}",
            "states": [
                {"name": names[0], "stateType": "chat", "chatPrompt": "Hi", "isInitial": True},
                *({"name": n, "stateType": "chat", "chatPrompt": "Next?"} for n in names[1:-1]),
                {"name": names[-1], "stateType": "final", "isFinal": True},
            ],
            "transitions": [{"from": a, "to": b} for a, b in itertools.pairwise(names)],
            "guidelines": [{"guideline": "g0"}],
        }

    return bundle_from_data(
        {
            "agent": {"name": f"Agent {journeys}"},
            "guidelines": [{"name": f"g{i}", "action": "Be kind."} for i in range(5)],
            "journeys": [journey(j) for j in range(journeys)],
        }
    )


def count_load_queries(url: str, journeys: int) -> int:
    async def work() -> int:
        await upgrade(url)
        store = SqlStore.open(url)
        try:
            await store.ensure_workspace("ws")
            report = await store.publish("ws", agent_with(journeys))
            statements: list[str] = []
            # on a SQLite file a load runs in the reader's thread on sqlite3 itself
            # (storage/sql/_driver_load.py): its connection's trace callback sees them
            reader, _, _ = store._threads()
            await reader.call(lambda c: c.set_trace_callback(statements.append))
            stored = await store.load_agent("ws", report.agent_id)
            await reader.call(lambda c: c.set_trace_callback(None))
            assert len(stored.bundle.journeys) == journeys
            return sum(1 for s in statements if s.lstrip().upper().startswith("SELECT"))
        finally:
            await store.close()

    return asyncio.run(work())


def test_query_count_does_not_grow_with_journeys(tmp_path: Path) -> None:
    one = count_load_queries(f"sqlite:///{tmp_path / 'one.db'}", journeys=1)
    ten = count_load_queries(f"sqlite:///{tmp_path / 'ten.db'}", journeys=10)
    assert one == ten == 12
