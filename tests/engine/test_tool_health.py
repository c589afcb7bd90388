"""Tool use count, error count, success rate and health, on every store.

Turns write the counters (the tool's ``use_count``, the ``error_count`` of the
integration a call went to) as usage deltas; :meth:`Runtime.tool_health` derives the
success rate and health from them, before and after the deltas are rolled up, the
same on memory, SQLite and PostgreSQL; the SQL stores' roll-up writes the same into
their ``success_rate`` and ``health_status`` columns.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
import sqlalchemy as sa

from parlant_runtime import bundle_from_data
from parlant_runtime.engine import Runtime, ScriptedEvaluator, ToolRegistry, current_call
from parlant_runtime.engine.health import health_of, success_rate
from parlant_runtime.storage.port import NotFound
from parlant_runtime.storage.sql import schema
from parlant_runtime.storage.sql.engine import create_engine
from tests.engine.test_persisted import BACKENDS, database_url, opener
from tests.engine.test_turns import WS, chat, edge, flow, tool_state


def health_flow() -> dict[str, Any]:
    """Every ``go`` calls ``lookup`` (routed to its second, enabled, integration)."""
    return flow(
        chat("a", "Again?"),
        tool_state("t", "lookup", toolConfig={"resultVariable": "found"}),
        transitions=[edge("a", "t", "go"), edge("t", "a")],
    ) | {
        "tools": [
            {
                "name": "lookup",
                "errorHandling": {"retries": 1, "backoffMs": 0},
                "integrations": [
                    {"integrationType": "mcp_server", "targetId": "old", "enabled": False},
                    {"integrationType": "workflow_block", "targetId": "wf_lookup"},
                ],
            },
            {"name": "unregistered"},
        ]
    }


async def columns(url: str, tool_id: UUID) -> tuple[int, list[tuple[str, str]]]:
    """``parlant_tool.success_rate`` and the integrations' ``health_status``."""
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            rate = (
                await conn.execute(
                    sa.select(schema.tool.c.success_rate).where(schema.tool.c.id == tool_id)
                )
            ).scalar_one()
            ti = schema.tool_integration
            rows = await conn.execute(
                sa.select(ti.c.target_id, ti.c.health_status, ti.c.last_health_check)
                .where(ti.c.parlant_tool_id == tool_id)
                .order_by(ti.c.target_id)
            )
            found = rows.all()
            assert all(row.last_health_check is not None for row in found)
            return rate, [(row.target_id, row.health_status) for row in found]
    finally:
        await engine.dispose()


@pytest.mark.parametrize("backend", BACKENDS)
def test_calls_and_failures_give_the_success_rate_and_health_on_every_store(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    open_store = opener(backend, request, tmp_path)
    url = database_url(backend, request, tmp_path)  # the database open_store opens
    script = [True, False, True, True]  # the second call fails, retried once: one failure
    targets: list[str | None] = []

    async def lookup(arguments: dict[str, Any]) -> Any:
        current = current_call()
        assert current is not None
        targets.append(current.integration.target_id if current.integration else None)
        if not script[0]:
            raise RuntimeError("down")
        return {"ok": True}

    async def scenario() -> None:
        store = await open_store()
        try:
            await store.ensure_workspace(WS)
            report = await store.publish(WS, bundle_from_data(health_flow()))
            tools = ToolRegistry()
            tools.register("lookup", lookup)
            runtime = Runtime(store, evaluator=ScriptedEvaluator(["start", "go"]), tools=tools)
            before = await runtime.tool_health(WS, report.agent_id, "lookup")
            assert (before.use_count, before.success_rate, before.health) == (0, 100, "unknown")
            session = await runtime.start_session(WS, report.agent_id)
            await runtime.process_message(WS, session.id, "hi")
            while script:
                await runtime.process_message(WS, session.id, "go")
                script.pop(0)
            assert targets == ["wf_lookup"] * 5  # four calls, one of them retried
            pending = await runtime.tool_health(WS, report.agent_id, "lookup")
            await store.roll_up_usage()
            rolled = await runtime.tool_health(WS, report.agent_id, "lookup")
            for health in (pending, rolled):
                assert (health.use_count, health.error_count) == (4, 1)
                assert (health.success_rate, health.health) == (75, "degraded")
                old, routed = health.integrations
                assert (old.target_id, old.error_count, old.health) == ("old", 0, "disabled")
                assert (routed.target_id, routed.error_count) == ("wf_lookup", 1)
                assert routed.health == "degraded"
            if url is not None:  # the SQL columns, written at roll-up by the same rule
                assert await columns(url, rolled.tool_id) == (
                    75,
                    [("old", "disabled"), ("wf_lookup", "degraded")],
                )
            never = await runtime.tool_health(WS, report.agent_id, "unregistered")
            assert (never.use_count, never.health, never.integrations) == (0, "unknown", ())
            with pytest.raises(NotFound, match="no tool 'nope'; its tools: lookup, unregistered"):
                await runtime.tool_health(WS, report.agent_id, "nope")
        finally:
            await store.close()

    asyncio.run(scenario())


def test_a_call_whose_function_never_ran_counts_neither_a_use_nor_an_error() -> None:
    async def scenario() -> None:
        from parlant_runtime.storage import MemoryStore

        store = MemoryStore()
        await store.ensure_workspace(WS)
        report = await store.publish(WS, bundle_from_data(health_flow()))
        runtime = Runtime(store, evaluator=ScriptedEvaluator(["start", "go"]))  # no lookup
        session = await runtime.start_session(WS, report.agent_id)
        await runtime.process_message(WS, session.id, "hi")
        result = await runtime.process_message(WS, session.id, "go")
        assert "no function is registered" in result.trace.errors[0]
        health = await runtime.tool_health(WS, report.agent_id, "lookup")
        assert (health.use_count, health.error_count, health.health) == (0, 0, "unknown")

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("uses", "errors", "rate", "health"),
    [
        (0, 0, 100, "unknown"),
        (20, 1, 95, "healthy"),
        (100, 6, 94, "degraded"),
        (2, 1, 50, "degraded"),
        (3, 2, 33, "failing"),
        (1, 1, 0, "failing"),
    ],
)
def test_success_rate_rounds_down_and_health_has_documented_thresholds(
    uses: int, errors: int, rate: int, health: str
) -> None:
    assert success_rate(uses, errors) == rate
    assert health_of(uses, errors) == health
