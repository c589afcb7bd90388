"""Hostile publishes across workspaces: squatting derived ids, linking others' knowledge.

Derived ids are predictable (a hash of the workspace id and the names), so another
workspace could publish first under them as explicit ids and block the owner's
publish. A version-5 id is therefore the library's own: a publish may give one only
if it is the id its own workspace derives. And an agent links only knowledge bases
of its own workspace; another workspace's is refused exactly like an unknown one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any
from uuid import UUID, uuid4, uuid5

import pytest

from parlant_runtime.bundle.schema import AgentBundle
from parlant_runtime.engine.knowledge import KnowledgeQuery, Passage
from parlant_runtime.engine.runtime import Runtime
from parlant_runtime.storage import publishing
from parlant_runtime.storage.port import InvalidData, Store
from parlant_runtime.testing.conformance._support import OTHER_WS, WS, Run, make_bundle


def with_knowledge(bundle: AgentBundle, *ids: str) -> AgentBundle:
    data = bundle.model_dump(by_alias=True, mode="json")
    data["knowledgeBases"] = [{"knowledgeBaseId": kb} for kb in ids]
    return AgentBundle.model_validate(data)


def without_ids(data: Any) -> Any:
    """Bundle data with every id left out (to be derived again)."""
    if isinstance(data, dict):
        return {key: without_ids(value) for key, value in data.items() if key != "id"}
    if isinstance(data, list):
        return [without_ids(item) for item in data]
    return data


async def workspaces(store: Store) -> None:
    await store.ensure_workspace(WS)
    await store.ensure_workspace(OTHER_WS)


class Recording:
    """A retriever that remembers what it was asked."""

    def __init__(self) -> None:
        self.queries: list[KnowledgeQuery] = []

    async def retrieve(self, queries: Sequence[KnowledgeQuery]) -> Sequence[Sequence[Passage]]:
        self.queries.extend(queries)
        return [[] for _ in queries]


class TenancyIdConformance:
    """Hostile publishes across workspaces: squatted derived ids, another workspace's
    knowledge bases."""

    def test_the_derived_ids_of_another_workspace_cannot_be_squatted(
        self, store: Store, run: Run
    ) -> None:
        async def body() -> None:
            await workspaces(store)
            victims = publishing.for_workspace(make_bundle(), WS)  # anyone can compute these
            with pytest.raises(InvalidData, match="version-5 id"):
                await store.publish(OTHER_WS, victims)
            # only the states' ids, under an agent id of the attacker's own
            data = without_ids(make_bundle().model_dump(by_alias=True, mode="json"))
            data["agent"]["id"] = str(uuid4())
            for mine, theirs in zip(
                data["journeys"][0]["states"], victims.journeys[0].states, strict=True
            ):
                mine["id"] = str(theirs.id)
            states_only = AgentBundle.model_validate(data)
            with pytest.raises(InvalidData, match=r"journeys\[0\]\.states\[0\].*version-5 id"):
                await store.publish(OTHER_WS, states_only)
            assert await store.find_agent(OTHER_WS, "Clinic") is None
            report = await store.publish(WS, make_bundle())  # the owner publishes undisturbed
            assert report.agent_id == victims.agent.id

        run(body())

    def test_a_version_5_id_of_the_callers_own_derivation_is_its_own(
        self, store: Store, run: Run
    ) -> None:
        async def body() -> None:
            await workspaces(store)
            first = await store.publish(WS, make_bundle())
            stored = (await store.load_agent(WS, first.agent_id)).bundle
            again = await store.publish(WS, stored)  # its own derived ids: the same agent
            assert again.agent_id == first.agent_id
            assert not again.written
            other = without_ids(make_bundle(name="Other").model_dump(by_alias=True, mode="json"))
            other["agent"]["id"] = str(uuid5(uuid4(), "the host's own derivation"))
            with pytest.raises(InvalidData, match=r"^agent has .*version-5 id"):
                await store.publish(WS, AgentBundle.model_validate(other))
            other["agent"]["id"] = str(explicit := uuid4())  # a random id is kept as given
            assert (await store.publish(WS, AgentBundle.model_validate(other))).agent_id == explicit

        run(body())

    def test_another_workspaces_knowledge_base_is_refused_like_an_unknown_one(
        self, store: Store, run: Run
    ) -> None:
        async def body() -> None:
            await workspaces(store)
            await store.ensure_knowledge_bases(WS, ["kb-of-a"])
            # the attacker tries to claim the id for itself first: it stays A's
            await store.ensure_knowledge_bases(OTHER_WS, ["kb-of-a", "kb-of-b"])
            errors = []
            for kb in ("kb-of-a", "kb-unknown"):
                with pytest.raises(InvalidData) as caught:
                    await store.publish(OTHER_WS, with_knowledge(make_bundle(), "kb-of-b", kb))
                errors.append(str(caught.value).replace(kb, "<id>"))
            assert errors[0] == errors[1], errors
            assert re.search(
                r"knowledge base\(s\) '<id>', which workspace 'ws-b' does not", errors[0]
            )
            assert await store.find_agent(OTHER_WS, "Clinic") is None
            assert (await store.publish(OTHER_WS, with_knowledge(make_bundle(), "kb-of-b"))).written
            assert (await store.publish(WS, with_knowledge(make_bundle(), "kb-of-a"))).written

        run(body())

    def test_a_knowledge_query_names_its_workspace(self, store: Store, run: Run) -> None:
        async def body() -> None:
            await workspaces(store)
            retriever = Recording()
            for workspace, kb in ((WS, "kb-of-a"), (OTHER_WS, "kb-of-b")):
                await store.ensure_knowledge_bases(workspace, [kb])
                agent: UUID = (
                    await store.publish(workspace, with_knowledge(make_bundle(), kb))
                ).agent_id
                runtime = Runtime(store, retriever=retriever)
                session = await runtime.start_session(workspace, agent)
                await runtime.process_message(workspace, session.id, "hello")
            assert [(q.workspace_id, q.knowledge_base) for q in retriever.queries] == [
                (WS, "kb-of-a"),
                (OTHER_WS, "kb-of-b"),
            ]

        run(body())
