"""Hostile caller values at the API boundary: one library error, the same on every store.

Lone surrogates, values nested 100,000 deep, ``10**5000`` and ids or keys of 8,000
characters used to escape as ``UnicodeEncodeError``, ``RecursionError``,
``OverflowError`` or (on PostgreSQL only) a ``StorageError`` from the index. Each
is now :class:`InvalidData` for a write (nothing changes) and "not found" for a
read, on the memory store, SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Coroutine
from typing import Any
from uuid import UUID

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parlant_runtime.engine.runtime import Runtime
from parlant_runtime.model import EventType, Session, ValueType
from parlant_runtime.storage.checks import _plainly_fine, _walk
from parlant_runtime.storage.port import (
    MAX_ID_LENGTH,
    MAX_TITLE_LENGTH,
    MAX_VALUE_DEPTH,
    InvalidData,
    NewEvent,
    NotFound,
    Store,
    VariableChange,
)
from tests.storage.support import WS, Run, make_bundle, setup_agent, snapshot, turn


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth - 1):
        value = [value]
    return value


DEEP = nested(100_000)
HUGE = 10**5000
LONE = "\ud800"
LONG = "k" * 8_000

Call = Callable[[Runtime, UUID, Session], Coroutine[Any, Any, Any]]

TURNS: dict[str, tuple[Call, str]] = {
    "surrogate-in-text": (
        lambda rt, a, s: rt.process_message(WS, s.id, f"hi {LONE}"),
        "the message text contains a lone surrogate",
    ),
    "surrogate-in-key": (
        lambda rt, a, s: rt.process_message(WS, s.id, "hi", idempotency_key=f"k{LONE}"),
        "idempotency key.*surrogate",
    ),
    "long-key": (
        lambda rt, a, s: rt.process_message(WS, s.id, "hi", idempotency_key=LONG),
        f"idempotency key is 8,000 characters long, at most {MAX_ID_LENGTH}",
    ),
    "deep-variable": (
        lambda rt, a, s: rt.process_message(WS, s.id, "hi", variables={"x": DEEP}),
        f"variable 'x' is nested deeper than {MAX_VALUE_DEPTH} levels",
    ),
    "huge-number": (
        lambda rt, a, s: rt.process_message(WS, s.id, "hi", variables={"x": HUGE}),
        "variable 'x' is a number beyond",
    ),
    "surrogate-in-a-variable-key": (
        lambda rt, a, s: rt.process_message(WS, s.id, "hi", variables={"x": {LONE: 1}}),
        r"variable 'x'.*\(a key\).*surrogate",
    ),
    "surrogate-in-a-variable-name": (
        lambda rt, a, s: rt.process_message(WS, s.id, "hi", variables={LONE: 1}),
        "not an identifier",
    ),
}


@pytest.mark.parametrize("case", list(TURNS))
def test_a_hostile_message_is_refused_and_changes_nothing(
    store: Store, run: Run, case: str
) -> None:
    call, error = TURNS[case]

    async def body() -> None:
        agent = await setup_agent(store)
        runtime = Runtime(store)
        session = await runtime.start_session(WS, agent)
        await runtime.process_message(WS, session.id, "hello", idempotency_key="k-1")
        session = await store.get_session(WS, session.id)
        before = await snapshot(store, [(WS, session.id)], [(WS, agent)])
        with pytest.raises(InvalidData) as caught:
            await call(runtime, agent, session)
        assert re.search(error, str(caught.value)), str(caught.value)
        assert await snapshot(store, [(WS, session.id)], [(WS, agent)]) == before

    run(body())


STARTS: dict[str, tuple[dict[str, Any], str]] = {
    "surrogate-customer": ({"customer_id": LONE}, "customer id.*surrogate"),
    "long-customer": ({"customer_id": LONG}, f"customer id is 8,000 characters.*{MAX_ID_LENGTH}"),
    "surrogate-title": ({"title": f"a{LONE}"}, "title.*surrogate"),
    "long-title": (
        {"title": "t" * (MAX_TITLE_LENGTH + 1)},
        f"title is {MAX_TITLE_LENGTH + 1:,} characters",
    ),
    "deep-metadata": ({"metadata": {"a": DEEP}}, "session metadata is nested deeper"),
    "huge-metadata-number": ({"metadata": {"n": -HUGE}}, r"metadata\.n is a number beyond"),
    "huge-variable": ({"variables": {"x": HUGE}}, "variable 'x' is a number beyond"),
    "deep-variable": ({"variables": {"x": DEEP}}, "variable 'x' is nested deeper"),
    "surrogate-variable": ({"variables": {"x": [LONE]}}, r"variable 'x'\[0\].*surrogate"),
}


@pytest.mark.parametrize("case", list(STARTS))
def test_a_hostile_session_start_is_refused_and_creates_nothing(
    store: Store, run: Run, case: str
) -> None:
    fields, error = STARTS[case]

    async def body() -> None:
        agent = await setup_agent(store)
        runtime = Runtime(store)
        before = await store.list_sessions(WS, agent)
        with pytest.raises(InvalidData) as caught:
            await runtime.start_session(WS, agent, **fields)
        assert re.search(error, str(caught.value)), str(caught.value)
        assert await store.list_sessions(WS, agent) == before

    run(body())


def test_workspace_ids_and_names_have_the_same_limits_on_every_store(
    store: Store, run: Run
) -> None:
    async def body() -> None:
        for workspace, name in [(LONG, None), (f"w{LONE}", None), ("w", LONG), ("w", LONE)]:
            with pytest.raises(InvalidData):
                await store.ensure_workspace(workspace, name)
        with pytest.raises(NotFound):  # never created, so nothing was
            await store.publish("w", make_bundle())
        await store.ensure_workspace("w" * MAX_ID_LENGTH, "n" * MAX_ID_LENGTH)  # the limit fits
        await store.publish("w" * MAX_ID_LENGTH, make_bundle())

    run(body())


def test_reads_with_values_no_store_can_hold_find_nothing(store: Store, run: Run) -> None:
    async def body() -> None:
        agent = await setup_agent(store)
        runtime = Runtime(store)
        session = await runtime.start_session(WS, agent)
        for workspace in (f"w{LONE}", LONG):
            with pytest.raises(NotFound):
                await store.get_session(workspace, session.id)
            with pytest.raises(NotFound):
                await store.list_events(workspace, session.id)
            with pytest.raises(NotFound):
                await store.load_agent(workspace, agent)
        assert await store.find_agent(WS, LONE) is None
        assert await store.find_agent(WS, LONG) is None
        assert await store.find_message(WS, session.id, LONE) is None
        assert await store.find_message(WS, session.id, LONG) is None

    run(body())


def test_the_store_itself_checks_what_a_turn_carries(store: Store, run: Run) -> None:
    async def body() -> None:
        agent = await setup_agent(store)
        session = await Runtime(store).start_session(WS, agent)
        before = await snapshot(store, [(WS, session.id)], [(WS, agent)])
        bad = [
            NewEvent(event_type=EventType.TOOL_RESULT, content={"x": DEEP}),
            NewEvent(event_type=EventType.TOOL_RESULT, content={"x": HUGE}),
            NewEvent(event_type=EventType.TOOL_RESULT, metadata={LONE: 1}),
            NewEvent(event_type=EventType.TOOL_RESULT, tool_call_id=LONG),
            NewEvent(event_type=EventType.TOOL_RESULT, tool_call_id=LONE),
        ]
        for event in bad:
            with pytest.raises(InvalidData):
                await store.commit_turn(WS, turn(session, events=[event]))
        assert await snapshot(store, [(WS, session.id)], [(WS, agent)]) == before

    run(body())


def test_values_at_the_limits_are_stored_alike(store: Store, run: Run) -> None:
    async def body() -> None:
        agent = await setup_agent(store)
        runtime = Runtime(store)
        session = await runtime.start_session(
            WS,
            agent,
            customer_id="c" * MAX_ID_LENGTH,
            title="t" * MAX_TITLE_LENGTH,
            metadata={"deep": nested(MAX_VALUE_DEPTH - 1), "big": 2**63 - 1, "neg": -(2**63)},
        )
        key = "k" * MAX_ID_LENGTH
        result = await runtime.process_message(
            WS, session.id, "hi \U0001f600", idempotency_key=key, variables={"x": nested(10)}
        )
        again = await runtime.process_message(WS, session.id, "hi \U0001f600", idempotency_key=key)
        assert again.duplicate
        assert again.events[0].offset == result.events[0].offset
        stored = await store.get_session(WS, session.id)
        assert stored.metadata["big"] == 2**63 - 1

    run(body())


# ---------------------------------------------------------------------- the fast path

texts = st.text(alphabet=st.characters(blacklist_categories=()), max_size=6)  # surrogates too
leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    texts,
)
values = st.recursive(
    leaves,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(texts, inner, max_size=3)),
    max_leaves=20,
)


def nest(value: Any, depth: int) -> Any:
    for _ in range(depth):
        value = [value]
    return value


@settings(max_examples=300, deadline=None)
@given(value=values, extra_depth=st.sampled_from([0, 0, MAX_VALUE_DEPTH - 3, MAX_VALUE_DEPTH]))
def test_the_fast_path_passes_only_what_the_walk_passes(value: Any, extra_depth: int) -> None:
    """``check_value`` trusts its fast path when it says "fine"; on JSON data the fast
    path and the walk (which names faults) must agree exactly."""
    value = nest(value, extra_depth)
    try:
        _walk(value, "value", models=False)
    except InvalidData:
        walk_passes = False
    else:
        walk_passes = True
    bound = _plainly_fine(value)
    assert (bound is not None) == walk_passes
    if bound is not None:  # a bound of the JSON's bytes, never below them
        assert bound >= len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def test_a_private_value_that_cannot_be_stored_is_not_echoed(store: Store, run: Run) -> None:
    async def body() -> None:
        agent = await setup_agent(store)
        session = await Runtime(store).start_session(WS, agent)
        for value in ({"hunter2\x00": 1}, {"hunter2": HUGE}, ["hunter2" + LONE]):
            secret = VariableChange(
                key="secret", value=value, value_type=ValueType.OBJECT, is_private=True
            )
            with pytest.raises(InvalidData) as caught:
                await store.commit_turn(WS, turn(session, variables=[secret]))
            assert "hunter2" not in str(caught.value)
            assert "private" in str(caught.value)

    run(body())
