"""Stress and fault tests of the SQL store: many processes, killed connections, failures.

Shared here: the databases (a throwaway PostgreSQL database, one on the Citus cluster
or a SQLite file, all upgraded to head), the agent the tests publish, and a raw asyncpg DSN for the
connections a test holds beside the store (locks, ``pg_terminate_backend``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from itertools import pairwise
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from parlant_runtime.bundle.schema import AgentBundle
from parlant_runtime.storage.migrate import upgrade
from tests.citus import citus_url
from tests.postgres import postgres_url

__all__ = [
    "WS",
    "agent_bundle",
    "asyncpg_dsn",
    "upgraded_citus",
    "upgraded_postgres",
    "upgraded_sqlite",
]

WS = "ws-stress"


@contextmanager
def upgraded_postgres() -> Iterator[str]:
    """A throwaway PostgreSQL database at head (skipped when no server answers)."""
    with postgres_url() as url:
        asyncio.run(upgrade(url))
        yield url


@contextmanager
def upgraded_citus() -> Iterator[str]:
    """A throwaway database on the Citus cluster at head, its tables sharded (skipped
    when no coordinator answers, outside CI)."""
    with citus_url() as url:
        asyncio.run(upgrade(url, citus=True))
        yield url


@contextmanager
def upgraded_sqlite(folder: Path) -> Iterator[str]:
    """A SQLite file database at head (WAL: set by the engine on every connection)."""
    url = f"sqlite+aiosqlite:///{folder / 'stress.db'}"
    asyncio.run(upgrade(url))
    yield url


def asyncpg_dsn(url: str) -> str:
    """The plain ``postgresql://`` DSN asyncpg takes, for the URL of a test database."""
    return sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def agent_bundle(
    states: Sequence[str] = ("s0", "s1", "s2", "s3"),
    *,
    name: str = "Stress",
    guidelines: Sequence[str] = ("be brief",),
) -> AgentBundle:
    """An agent with one journey through chat ``states`` to a final ``end``, a variable
    and ``guidelines`` (actions)."""
    names = [*states, "end"]
    data: dict[str, Any] = {
        "agent": {"name": name},
        "guidelines": [{"name": f"g{i}", "action": a} for i, a in enumerate(guidelines)],
        "variables": [{"key": "day", "value": "monday"}],
        "journeys": [
            {
                "title": "Stress",
                "states": [
                    *(
                        {"name": s, "stateType": "chat", "isInitial": i == 0}
                        for i, s in enumerate(states)
                    ),
                    {"name": "end", "stateType": "final"},
                ],
                "transitions": [{"from": a, "to": b} for a, b in pairwise(names)],
            }
        ],
    }
    return AgentBundle.model_validate(data)
