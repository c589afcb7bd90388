"""Moving an existing single-server database onto a Citus cluster, as
docs/operations.md tells it: ``pg_dump`` of the single server restored into a database
of the coordinator, then ``parlant-runtime db upgrade`` lays the tables out. Every
conversation, agent and counter is there afterwards, and conversations go on.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from typing import Any
from uuid import UUID

import asyncpg  # type: ignore[import-untyped]  # no stubs, no py.typed
import pytest
import sqlalchemy as sa

from parlant_runtime.model import ValueType, VariableScope
from parlant_runtime.storage import migrate
from parlant_runtime.storage.port import SessionStart, VariableChange
from parlant_runtime.storage.sql.store import SqlStore
from tests.citus import citus_url
from tests.postgres import postgres_url
from tests.storage.support import (
    WS,
    message,
    setup_agent,
    state_ids,
    turn,
    usage_key,
)

pytestmark = [pytest.mark.postgres, pytest.mark.citus]


def _dsn(url: str) -> str:
    return sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _converse(url: str) -> tuple[UUID, list[UUID]]:
    store = SqlStore.open(url)
    try:
        agent = await setup_agent(store)
        journey, state = await state_ids(store, agent, "confirm")
        sessions = []
        for number in range(5):
            session = await store.create_session(
                WS, SessionStart(agent_id=agent, customer_id=f"customer-{number % 2}")
            )
            for step in range(3):
                session = await store.commit_turn(
                    WS,
                    turn(
                        session,
                        events=[message(f"{number}.{step}", key=f"k-{number}-{step}")],
                        current_journey_id=journey,
                        current_state_id=state,
                        variables=[
                            VariableChange(key="day", value=f"day {step}"),
                            VariableChange(
                                key="visits",
                                value=step,
                                scope=VariableScope.CUSTOMER,
                                value_type=ValueType.NUMBER,
                            ),
                        ],
                        usage={usage_key("agent", agent, "total_messages"): 1},
                    ),
                )
            sessions.append(session.id)
        await store.roll_up_usage()
        await store.commit_turn(
            WS, turn(session, usage={usage_key("agent", agent, "total_messages"): 1})
        )
        return agent, sessions
    finally:
        await store.close()


async def _everything(url: str, agent: UUID, sessions: list[UUID]) -> dict[str, Any]:
    store = SqlStore.open(url)
    try:
        return {
            "agent": (await store.load_agent(WS, agent)).bundle,
            "sessions": [await store.get_session(WS, s) for s in sessions],
            "events": [await store.list_events(WS, s) for s in sessions],
            "variables": [await store.get_variables(WS, s) for s in sessions],
            "usage": await store.usage(WS, "agent", agent),
        }
    finally:
        await store.close()


@pytest.mark.subprocess
def test_a_single_server_database_dumped_into_a_coordinator_keeps_every_conversation() -> None:
    if shutil.which("pg_dump") is None or shutil.which("psql") is None:
        pytest.skip("pg_dump and psql are needed")
    with postgres_url() as single, citus_url() as distributed:
        asyncio.run(migrate.upgrade(single))
        agent, sessions = asyncio.run(_converse(single))
        before = asyncio.run(_everything(single, agent, sessions))

        dump = subprocess.run(
            ["pg_dump", "--no-owner", "--no-privileges", _dsn(single)],
            capture_output=True,
            check=True,
            timeout=120,
        )
        subprocess.run(
            ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", _dsn(distributed)],
            input=dump.stdout,
            capture_output=True,
            check=True,
            timeout=300,
        )
        laid = asyncio.run(migrate.distribute(distributed, required=True))
        assert laid is not None
        assert "parlant_session: distributed by id" in laid

        assert (
            "5 session values moved from parlant_variable to parlant_runtime.session_variable"
            in laid
        )

        after = asyncio.run(_everything(distributed, agent, sessions))
        assert after == before
        # the session values now live beside their sessions, none left in the platform's table
        assert _scalar(distributed, "SELECT count(*) FROM parlant_runtime.session_variable") == 5
        assert (
            _scalar(
                distributed, "SELECT count(*) FROM parlant_variable WHERE session_id IS NOT NULL"
            )
            == 0
        )

        async def go_on() -> None:  # a converted conversation takes its next turn
            store = SqlStore.open(distributed)
            try:
                session = await store.get_session(WS, sessions[0])
                done = await store.commit_turn(
                    WS,
                    turn(
                        session,
                        events=[message("after")],
                        variables=[VariableChange(key="day", value="after")],
                    ),
                )
                assert done.event_count == session.event_count + 1
                values = {v.key: v.value for v in await store.get_variables(WS, sessions[0])}
                assert values["day"] == "after"  # the converted value found and set
                kept = {v.key: v.value for v in await store.get_variables(WS, sessions[1])}
                assert kept["day"] == "day 2"
                with pytest.raises(Exception, match="already recorded"):
                    await store.commit_turn(WS, turn(done, events=[message("again", key="k-0-0")]))
            finally:
                await store.close()

        asyncio.run(go_on())
        assert (
            _scalar(
                distributed,
                "SELECT value #>> '{}' FROM parlant_runtime.session_variable "
                f"WHERE session_id = '{sessions[0]}'",
            )
            == "after"
        )
        assert (
            _scalar(
                distributed, "SELECT count(*) FROM parlant_variable WHERE session_id IS NOT NULL"
            )
            == 0
        )


def _scalar(url: str, query: str) -> Any:
    """One value of a query, on a connection of its own."""

    async def ask() -> Any:
        connection = await asyncpg.connect(_dsn(url))
        try:
            return await connection.fetchval(query)
        finally:
            await connection.close()

    return asyncio.run(ask())
