"""The conformance suite on the library's own stores: memory, SQLite and PostgreSQL.

The suite itself ships with the package (:mod:`parlant_runtime.testing.conformance`)
so that a host runs it against its own store; here it runs on every adapter through
the ``store`` fixture of ``conftest.py``. What only these adapters can be asked (the
example bundles of the repository, PostgreSQL's connections) is tested below it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from parlant_runtime import AgentBundle, SqlStore, StorageError, Store, load_bundle
from parlant_runtime.storage.publishing import from_workspace
from parlant_runtime.testing.conformance import StoreConformance
from tests.storage.conftest import open_store
from tests.storage.support import (
    EXAMPLES,
    OTHER_WS,
    WS,
    Run,
    make_bundle,
    publish,
    setup_agent,
)


class TestStoreConformance(StoreConformance):
    """The whole suite, once per adapter (``backend``: memory, sqlite, postgresql)."""

    @pytest.fixture
    def store(
        self, backend: str, request: pytest.FixtureRequest, tmp_path: Path, runner: asyncio.Runner
    ) -> Iterator[Store]:
        opened = open_store(backend, request, tmp_path, runner)
        yield opened
        runner.run(opened.close())


def own_knowledge_bases(bundle: AgentBundle, workspace: str) -> AgentBundle:
    """The bundle linking knowledge bases of its own: a knowledge base id (the host's
    primary key) belongs to one workspace, and an agent links only its workspace's."""
    if not bundle.knowledge_bases:
        return bundle
    data = bundle.model_dump(by_alias=True, mode="json")
    for link in data["knowledgeBases"]:
        link["knowledgeBaseId"] = f"{workspace}/{link['knowledgeBaseId']}"
        del link["id"]  # derived again from the new knowledge base id
    return AgentBundle.model_validate(data)


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda path: Path(path).stem)
def test_publish_then_load_gives_the_bundle_back(store: Store, run: Run, path: Path) -> None:
    bundle = load_bundle(path)

    async def body() -> None:
        await setup_agent(store, make_bundle(name="Someone else"))
        for workspace in (WS, OTHER_WS):
            mine = own_knowledge_bases(bundle, workspace)
            report = await publish(store, workspace, mine)
            stored = await store.load_agent(workspace, report.agent_id)
            assert stored.bundle.agent.id != bundle.agent.id  # the workspace's own ids
            assert from_workspace(stored.bundle, workspace) == mine

    run(body())


@pytest.mark.postgres
def test_waiting_on_a_closed_store_opens_no_connection(
    postgres_database: str, runner: asyncio.Runner
) -> None:
    async def connections() -> int:
        engine = create_async_engine(postgres_database, poolclass=NullPool)
        try:
            async with engine.connect() as conn:
                found = await conn.scalar(
                    sa.text(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )
                )
        finally:
            await engine.dispose()
        return int(found or 0)

    async def body() -> None:
        store = SqlStore.open(postgres_database)
        try:
            await store.ensure_workspace(WS)
            await store.close()
            assert await connections() == 0
            with pytest.raises(StorageError):
                await store.wait_for_events(WS, uuid4(), after=-1, timeout=0.1)
            assert await connections() == 0
        finally:
            await store.close()

    runner.run(body())


def test_the_suite_is_collected_whole() -> None:
    # every test of the suite's classes runs through the subclass above: the 65 that
    # moved out of tests/storage into the suite, the suite's own check of the port, and
    # a key set twice in one turn (added with the one-statement turn on PostgreSQL)
    tests = [name for name in dir(TestStoreConformance) if name.startswith("test_")]
    assert len(tests) == 67
    assert "test_publish_creates_the_agent_at_version_one" in tests  # publishing
    assert "test_a_stale_expected_version_conflicts_and_writes_nothing" in tests  # turns
    assert "test_find_agent_sees_only_its_own_workspace" in tests  # tenancy
    assert "test_bad_turns_are_refused_and_write_nothing" in tests  # bad input
