"""The compiled-agent cache: bounded, least recently used first out, versions respected."""

from __future__ import annotations

import asyncio
from uuid import UUID

import pytest

from parlant_runtime import MemoryStore, Runtime, bundle_from_data
from parlant_runtime.engine.compiled import AgentCache, CompiledAgent, compile_agent


def _agent_data(name: str, prompt: str = "Hello") -> dict[str, object]:
    return {
        "agent": {"name": name, "compositionMode": "fluid"},
        "journeys": [
            {
                "title": "Greet",
                "conditions": ["{{ true }}"],
                "states": [
                    {"name": "hello", "stateType": "chat", "isInitial": True, "chatPrompt": prompt},
                    {"name": "done", "stateType": "final"},
                ],
                "transitions": [{"from": "hello", "to": "done"}],
            }
        ],
    }


async def _compiled(store: MemoryStore, name: str, prompt: str = "Hello") -> CompiledAgent:
    agent_id = (await store.publish("w", bundle_from_data(_agent_data(name, prompt)))).agent_id
    return compile_agent(await store.load_agent("w", agent_id))


def _key(agent: CompiledAgent) -> tuple[str, UUID, int]:
    return agent.stored.workspace_id, agent.stored.agent_id, agent.version


def test_the_cache_holds_at_most_its_bound_and_drops_the_least_recently_used() -> None:
    async def scenario() -> None:
        store = MemoryStore()
        await store.ensure_workspace("w")
        first, second, third = [await _compiled(store, name) for name in ("a", "b", "c")]
        cache = AgentCache(max_agents=2)
        cache.put(first)
        cache.put(second)
        assert cache.get(*_key(first)) is first  # first is now the most recently used
        cache.put(third)
        assert len(cache) == 2
        assert cache.get(*_key(second)) is None  # the least recently used went
        assert cache.get(*_key(first)) is first
        assert cache.get(*_key(third)) is third

    asyncio.run(scenario())


def test_a_new_version_replaces_the_old_one_in_place() -> None:
    async def scenario() -> None:
        store = MemoryStore()
        await store.ensure_workspace("w")
        old = await _compiled(store, "a")
        new = await _compiled(store, "a", prompt="Hi there")
        assert new.version == old.version + 1
        cache = AgentCache(max_agents=2)
        cache.put(old)
        cache.put(new)
        assert len(cache) == 1
        assert cache.get(*_key(old)) is None
        assert cache.get(*_key(new)) is new

    asyncio.run(scenario())


def test_a_bound_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        AgentCache(max_agents=0)


def test_a_runtime_serving_more_agents_than_its_cache_still_answers_each() -> None:
    async def scenario() -> None:
        store = MemoryStore()
        await store.ensure_workspace("w")
        runtime = Runtime(store)
        runtime._cache = AgentCache(max_agents=2)  # a small bound to cross
        agents = []
        for index in range(5):
            data = _agent_data(f"agent {index}", prompt=f"Hello from {index}")
            agents.append((await store.publish("w", bundle_from_data(data))).agent_id)
        for _ in range(2):  # the second round compiles the dropped agents again
            for index, agent_id in enumerate(agents):
                session = await runtime.start_session("w", agent_id)
                turn = await runtime.process_message("w", session.id, "hi")
                assert turn.replies == (f"Hello from {index}",)
        assert len(runtime._cache) == 2

    asyncio.run(scenario())
