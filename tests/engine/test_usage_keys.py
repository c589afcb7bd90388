"""Usage keys are typed inside the engine and spelled the store's way at the commit."""

from __future__ import annotations

from uuid import UUID

from parlant_runtime.engine.usage import Counter, Entity, UsageKey, wire
from parlant_runtime.storage.checks import USAGE_COUNTERS, parse_usage_key


def test_the_entities_and_counters_are_the_stores() -> None:
    assert {e.value for e in Entity} == set(USAGE_COUNTERS)
    assert {c.value for c in Counter} == set().union(*USAGE_COUNTERS.values())


def test_a_key_is_spelled_as_the_store_parses_it() -> None:
    key = UsageKey(Entity.JOURNEY_GUIDELINE, UUID(int=5), Counter.MATCH_COUNT)
    (text,) = wire({key: 2})
    assert parse_usage_key(text) == ("journey_guideline", UUID(int=5), "match_count")
    assert wire({key: 2}) == {text: 2}


def test_keys_of_one_counter_are_one_key() -> None:
    first = UsageKey(Entity.TOOL, UUID(int=1), Counter.USE_COUNT)
    again = UsageKey(Entity.TOOL, UUID(int=1), Counter.USE_COUNT)
    other = UsageKey(Entity.TOOL, UUID(int=2), Counter.USE_COUNT)
    assert first == again
    assert hash(first) == hash(again)
    assert len({first: 1, again: 1, other: 1}) == 2
