"""The in-memory store: publishing, workspace isolation, turns, variables, waiting, usage.

The tests speak only through the :class:`Store` protocol and a ``store`` fixture, so
that they can join the conformance suite every adapter runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Mapping, Sequence
from itertools import pairwise
from typing import Any, TypeVar
from uuid import UUID, uuid4

import pytest

from parlant_runtime.bundle.schema import AgentBundle
from parlant_runtime.model import EventType, Session, SessionStatus, ValueType, VariableScope
from parlant_runtime.storage.memory import MemoryStore
from parlant_runtime.storage.port import (
    MAX_EVENT_BYTES,
    MAX_EVENTS_PER_TURN,
    ConcurrentUpdate,
    DuplicateMessage,
    InvalidData,
    NewEvent,
    NotFound,
    PublishRefused,
    SessionStart,
    StorageError,
    Store,
    TurnCommit,
    VariableChange,
)

T = TypeVar("T")
WS = "ws-a"
OTHER_WS = "ws-b"


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


@pytest.fixture
def store() -> Store:
    return MemoryStore()


def make_bundle(
    states: Sequence[str] = ("ask", "confirm", "done"),
    guidelines: Mapping[str, str] | None = None,
) -> AgentBundle:
    """An agent with one journey through ``states`` (the last one final) and variables."""
    *chats, final = states
    return AgentBundle.model_validate(
        {
            "agent": {"name": "Clinic"},
            "guidelines": [{"name": n, "action": a} for n, a in (guidelines or {}).items()],
            "variables": [
                {"key": "day", "value": "monday"},
                {"key": "visits", "scope": "customer", "valueType": "number", "value": 0},
            ],
            "journeys": [
                {
                    "title": "Book",
                    "states": [
                        *(
                            {"name": s, "stateType": "chat", "isInitial": i == 0}
                            for i, s in enumerate(chats)
                        ),
                        {"name": final, "stateType": "final"},
                    ],
                    "transitions": [{"from": a, "to": b} for a, b in pairwise(states)],
                }
            ],
        }
    )


def version(session: Session) -> int:
    """The session's compare-and-set version (through the dump: see VersionedSession)."""
    return int(session.model_dump()["version"])


async def setup(store: Store, bundle: AgentBundle | None = None) -> UUID:
    await store.ensure_workspace(WS)
    await store.ensure_workspace(OTHER_WS)
    return (await store.publish(WS, bundle or make_bundle())).agent_id


async def state_ids(store: Store, agent_id: UUID, state: str) -> tuple[UUID, UUID]:
    journey = (await store.load_agent(WS, agent_id)).bundle.journey("Book")
    assert journey is not None
    found = journey.state(state)
    assert found is not None
    return journey.id, found.id


async def move_to(store: Store, session: Session, state: str) -> Session:
    journey_id, state_id = await state_ids(store, session.agent_id, state)
    turn = TurnCommit(
        session_id=session.id,
        expected_version=version(session),
        current_journey_id=journey_id,
        current_state_id=state_id,
    )
    return await store.commit_turn(WS, turn)


def message(text: str, key: str | None = None) -> NewEvent:
    return NewEvent(
        event_type=EventType.CUSTOMER_MESSAGE, content={"text": text}, idempotency_key=key
    )


def test_memory_store_is_a_store(store: Store) -> None:
    assert isinstance(store, Store)


# ------------------------------------------------------------------ publishing


def test_publish_creates_then_identical_republish_changes_nothing(store: Store) -> None:
    async def body() -> None:
        await store.ensure_workspace(WS)
        first = await store.publish(WS, make_bundle())
        assert (first.created, first.version, first.written) == (True, 1, True)
        assert first.changes.added["state"] == ("Book/ask", "Book/confirm", "Book/done")
        assert await store.find_agent(WS, "Clinic") == first.agent_id
        again = await store.publish(WS, make_bundle())
        assert (again.created, again.version, again.written) == (False, 1, False)
        assert again.changes.empty
        assert again.agent_id == first.agent_id
        assert (await store.load_agent(WS, first.agent_id)).version == 1

    run(body())


def test_changed_republish_reports_added_removed_and_changed(store: Store) -> None:
    async def body() -> None:
        await store.ensure_workspace(WS)
        await store.publish(WS, make_bundle(guidelines={"a": "Say hi.", "b": "Say bye."}))
        new = make_bundle(guidelines={"a": "Say hello.", "c": "Say thanks."})
        dry = await store.publish(WS, new, dry_run=True)
        assert (dry.version, dry.written) == (2, False)
        assert (await store.load_agent(WS, dry.agent_id)).version == 1
        report = await store.publish(WS, new)
        assert (report.created, report.version, report.written) == (False, 2, True)
        assert report.changes.added == {"guideline": ("c",)}
        assert report.changes.removed == {"guideline": ("b",)}
        assert report.changes.changed == {"guideline": ("a",)}
        stored = await store.load_agent(WS, report.agent_id)
        assert stored.version == 2
        assert [g.action for g in stored.bundle.guidelines] == ["Say hello.", "Say thanks."]

    run(body())


def test_stranded_sessions_are_refused_then_mapped_then_forced(store: Store) -> None:
    async def body() -> None:
        agent_id = await setup(store)
        session = await move_to(
            store, await store.create_session(WS, SessionStart(agent_id=agent_id)), "confirm"
        )
        done = await move_to(
            store, await store.create_session(WS, SessionStart(agent_id=agent_id)), "confirm"
        )
        await store.commit_turn(
            WS,
            TurnCommit(
                session_id=done.id,
                expected_version=version(done),
                current_journey_id=done.current_journey_id,
                current_state_id=done.current_state_id,
                status=SessionStatus.COMPLETED,
            ),
        )
        renamed = make_bundle(("ask", "check", "done"))
        with pytest.raises(PublishRefused) as refused:
            await store.publish(WS, renamed)
        assert refused.value.report is not None
        assert refused.value.report.stranded_sessions == {"Book/confirm": 1}  # active only
        assert (await store.load_agent(WS, agent_id)).version == 1
        assert await store.get_session(WS, session.id) == session
        with pytest.raises(PublishRefused):
            await store.publish(WS, renamed, state_mapping={"Book": {"confirm": "nowhere"}})

        mapped = await store.publish(WS, renamed, state_mapping={"Book": {"confirm": "check"}})
        assert (mapped.version, mapped.moved_sessions, mapped.written) == (2, 1, True)
        moved = await store.get_session(WS, session.id)
        assert (moved.current_journey_id, moved.current_state_id) == await state_ids(
            store, agent_id, "check"
        )
        assert version(moved) == version(session) + 1
        with pytest.raises(ConcurrentUpdate):  # a turn computed before the move is stale
            await store.commit_turn(
                WS, TurnCommit(session_id=session.id, expected_version=version(session))
            )
        ended = await store.get_session(WS, done.id)  # not moved, but its state is gone
        assert (ended.current_journey_id, ended.current_state_id) == (done.current_journey_id, None)

        forced = await store.publish(WS, make_bundle(("ask", "done")), force=True)
        assert (forced.version, forced.moved_sessions) == (3, 1)
        assert forced.stranded_sessions == {"Book/check": 1}
        left = await store.get_session(WS, session.id)
        assert (left.current_journey_id, left.current_state_id) == (None, None)
        assert version(left) == version(moved) + 1

    run(body())


def test_publish_needs_a_known_workspace(store: Store) -> None:
    with pytest.raises(NotFound):
        run(store.publish("nowhere", make_bundle()))


# ------------------------------------------------------------------ workspaces


def test_ids_of_another_workspace_are_not_found(store: Store) -> None:
    async def body() -> None:
        agent_id = await setup(store)
        session = await store.create_session(WS, SessionStart(agent_id=agent_id))
        sid = session.id
        calls: list[Coroutine[Any, Any, object]] = [
            store.load_agent(OTHER_WS, agent_id),
            store.create_session(OTHER_WS, SessionStart(agent_id=agent_id)),
            store.list_sessions(OTHER_WS, agent_id),
            store.get_session(OTHER_WS, sid),
            store.list_events(OTHER_WS, sid),
            store.find_message(OTHER_WS, sid, "k"),
            store.get_variables(OTHER_WS, sid),
            store.commit_turn(OTHER_WS, TurnCommit(session_id=sid, expected_version=0)),
            store.wait_for_events(OTHER_WS, sid, after=-1, timeout=0),
            store.usage(OTHER_WS, "agent", agent_id),
        ]
        for call in calls:
            with pytest.raises(NotFound):
                await call
        assert await store.find_agent(OTHER_WS, "Clinic") is None
        assert await store.get_session(WS, sid) == session  # nothing was written
        other = await store.publish(OTHER_WS, make_bundle())
        assert other.created
        assert other.agent_id != agent_id  # each workspace derives its own ids

    run(body())


# ------------------------------------------------------------------ turns


def test_turns_append_contiguous_offsets_and_count(store: Store) -> None:
    async def body() -> None:
        agent_id = await setup(store)
        session = await store.create_session(WS, SessionStart(agent_id=agent_id))
        assert (version(session), session.event_count) == (0, 0)
        reply = NewEvent(event_type=EventType.AGENT_MESSAGE, content={"text": "Which day?"})
        first = await store.commit_turn(
            WS,
            TurnCommit(session_id=session.id, expected_version=0, events=[message("hi"), reply]),
        )
        tool = NewEvent(event_type=EventType.TOOL_CALL, tool_call_id="t1")
        second = await store.commit_turn(
            WS,
            TurnCommit(
                session_id=session.id,
                expected_version=version(first),
                events=[message("monday"), tool, reply],
                status=SessionStatus.COMPLETED,
            ),
        )
        assert (version(second), second.event_count, second.message_count) == (2, 5, 4)
        assert second.status is SessionStatus.COMPLETED
        assert second.ended_at is not None
        events = await store.list_events(WS, session.id)
        assert [e.offset for e in events] == [0, 1, 2, 3, 4]
        assert [e.offset for e in await store.list_events(WS, session.id, after=1, limit=2)] == [
            2,
            3,
        ]
        assert await store.get_session(WS, session.id) == second

    run(body())


def test_stale_version_conflicts_and_writes_nothing(store: Store) -> None:
    async def body() -> None:
        agent_id = await setup(store)
        session = await store.create_session(WS, SessionStart(agent_id=agent_id))
        turn = TurnCommit(session_id=session.id, expected_version=0, events=[message("a")])
        after_first = await store.commit_turn(WS, turn)
        with pytest.raises(ConcurrentUpdate):
            await store.commit_turn(WS, turn.model_copy(update={"events": [message("b")]}))
        assert await store.get_session(WS, session.id) == after_first
        assert len(await store.list_events(WS, session.id)) == 1

    run(body())


def test_duplicate_idempotency_key_is_refused_and_writes_nothing(store: Store) -> None:
    async def body() -> None:
        agent_id = await setup(store)
        session = await store.create_session(WS, SessionStart(agent_id=agent_id))
        done = await store.commit_turn(
            WS,
            TurnCommit(
                session_id=session.id,
                expected_version=0,
                events=[message("a"), message("b", key="m-1")],
            ),
        )
        retry = TurnCommit(
            session_id=session.id,
            expected_version=1,
            events=[message("b", key="m-1")],
            variables=[VariableChange(key="day", value="friday")],
        )
        with pytest.raises(DuplicateMessage) as duplicate:
            await store.commit_turn(WS, retry)
        assert duplicate.value.offset == 1
        found = await store.find_message(WS, session.id, "m-1")
        assert found is not None
        assert (found.offset, found.content) == (1, {"text": "b"})
        assert await store.find_message(WS, session.id, "m-2") is None
        assert await store.get_session(WS, session.id) == done
        assert {v.key: v.value for v in await store.get_variables(WS, session.id)}["day"] == (
            "monday"
        )
        twice = TurnCommit(
            session_id=session.id,
            expected_version=1,
            events=[message("c", key="m-2"), message("c", key="m-2")],
        )
        with pytest.raises(InvalidData):
            await store.commit_turn(WS, twice)
        assert await store.find_message(WS, session.id, "m-2") is None

    run(body())


FRIDAY = VariableChange(key="day", value="friday")


@pytest.mark.parametrize(
    ("change", "error"),
    [
        pytest.param({"events": [message("x" * MAX_EVENT_BYTES)]}, "bytes of JSON", id="big"),
        pytest.param({"events": [message("a")] * (MAX_EVENTS_PER_TURN + 1)}, "at most", id="many"),
        pytest.param(
            {"variables": [FRIDAY, VariableChange(key="day", value=3)]}, "not a string", id="type"
        ),
        pytest.param(
            {"variables": [VariableChange(key="n", value="3", value_type=ValueType.NUMBER)]},
            "not a number",
            id="number-as-text",
        ),
        pytest.param(
            {"variables": [FRIDAY, VariableChange(key="not a key", value="x")]},
            "not an identifier",
            id="key",
        ),
        pytest.param(
            {"variables": [FRIDAY, VariableChange(key="k" * 201, value="x")]},
            "is not an identifier",
            id="long-key",
        ),
        pytest.param(
            {
                "variables": [
                    FRIDAY,
                    VariableChange(
                        key="vip",
                        value=True,
                        value_type=ValueType.BOOLEAN,
                        scope=VariableScope.CUSTOMER,
                    ),
                ]
            },
            "has no customer",
            id="no-customer",
        ),
        pytest.param(
            {"variables": [VariableChange(key="x", value="y", scope=VariableScope.GLOBAL)]},
            "global values are set by publishing",
            id="global",
        ),
        pytest.param({"current_state_id": uuid4()}, "must set its journey too", id="state"),
        pytest.param({"current_journey_id": uuid4()}, "not a journey", id="journey"),
        pytest.param({"usage": {"guideline:x:match_count": 1}}, "usage key", id="usage-key"),
        pytest.param({"usage": {f"guideline:{uuid4()}:hits": 1}}, "no usage counter", id="counter"),
    ],
)
def test_invalid_turns_are_refused_and_write_nothing(
    store: Store, change: dict[str, Any], error: str
) -> None:
    async def body() -> None:
        agent_id = await setup(store)
        session = await store.create_session(WS, SessionStart(agent_id=agent_id))
        turn = TurnCommit(
            session_id=session.id, expected_version=0, events=[message("ok")], variables=[FRIDAY]
        )
        with pytest.raises(InvalidData, match=error):
            await store.commit_turn(WS, turn.model_copy(update=change))
        assert await store.get_session(WS, session.id) == session
        assert await store.list_events(WS, session.id) == []
        variables = await store.get_variables(WS, session.id)
        assert {v.key: v.value for v in variables} == {"day": "monday", "visits": 0}

    run(body())


def test_returned_objects_are_copies(store: Store) -> None:
    async def body() -> None:
        agent_id = await setup(store)
        session = await store.create_session(WS, SessionStart(agent_id=agent_id))
        await store.commit_turn(
            WS, TurnCommit(session_id=session.id, expected_version=0, events=[message("a")])
        )
        (event,) = await store.list_events(WS, session.id)
        event.content["text"] = "changed"
        got = await store.get_session(WS, session.id)
        got.metadata["x"] = 1
        stored = await store.load_agent(WS, agent_id)
        stored.bundle.guidelines.clear()
        stored.bundle.agent.name = "Other"
        assert (await store.list_events(WS, session.id))[0].content == {"text": "a"}
        assert (await store.get_session(WS, session.id)).metadata == {}
        assert (await store.load_agent(WS, agent_id)).bundle.agent.name == "Clinic"

    run(body())


# ------------------------------------------------------------------ variables


def test_customer_variables_follow_the_customer(store: Store) -> None:
    async def body() -> None:
        agent_id = await setup(store)
        first = await store.create_session(WS, SessionStart(agent_id=agent_id, customer_id="c1"))
        await store.commit_turn(
            WS,
            TurnCommit(
                session_id=first.id,
                expected_version=0,
                variables=[
                    VariableChange(
                        key="visits",
                        value=2,
                        value_type=ValueType.NUMBER,
                        scope=VariableScope.CUSTOMER,
                    ),
                    VariableChange(key="day", value="tuesday"),
                ],
            ),
        )
        again = await store.create_session(WS, SessionStart(agent_id=agent_id, customer_id="c1"))
        stranger = await store.create_session(WS, SessionStart(agent_id=agent_id, customer_id="c2"))

        async def values(session: Session) -> dict[str, Any]:
            variables = await store.get_variables(WS, session.id)
            assert [v.key for v in variables] == sorted(v.key for v in variables)
            return {v.key: v.value for v in variables}

        assert await values(first) == {"day": "tuesday", "visits": 2}
        assert await values(again) == {"day": "monday", "visits": 2}
        assert await values(stranger) == {"day": "monday", "visits": 0}

    run(body())


# ------------------------------------------------------------------ waiting


def test_wait_for_events_wakes_on_a_commit(store: Store) -> None:
    async def body() -> None:
        agent_id = await setup(store)
        session = await store.create_session(WS, SessionStart(agent_id=agent_id))
        waiter = asyncio.create_task(store.wait_for_events(WS, session.id, after=-1, timeout=5))
        await asyncio.sleep(0.01)
        assert not waiter.done()
        await store.commit_turn(
            WS, TurnCommit(session_id=session.id, expected_version=0, events=[message("hi")])
        )
        events = await asyncio.wait_for(waiter, 1)
        assert [e.content for e in events] == [{"text": "hi"}]
        ready = await store.wait_for_events(WS, session.id, after=-1, timeout=5)
        assert len(ready) == 1  # already there: no waiting

    run(body())


def test_wait_for_events_times_out_empty(store: Store) -> None:
    async def body() -> None:
        agent_id = await setup(store)
        session = await store.create_session(WS, SessionStart(agent_id=agent_id))
        assert await store.wait_for_events(WS, session.id, after=-1, timeout=0.05) == []

    run(body())


# ------------------------------------------------------------------ usage


def test_usage_counts_pending_deltas_and_rolls_them_up(store: Store) -> None:
    async def body() -> None:
        agent_id = await setup(store, make_bundle(guidelines={"greet": "Say hi."}))
        guideline = (await store.load_agent(WS, agent_id)).bundle.guidelines[0].id
        session = await store.create_session(WS, SessionStart(agent_id=agent_id))
        key = f"guideline:{guideline}:match_count"
        for expected in (0, 1):
            await store.commit_turn(
                WS, TurnCommit(session_id=session.id, expected_version=expected, usage={key: 2})
            )
        assert await store.usage(WS, "guideline", guideline) == {"match_count": 4}
        assert (await store.usage(WS, "agent", agent_id))["total_sessions"] == 1
        assert await store.roll_up_usage() == 3  # two matches and one session start
        assert await store.usage(WS, "guideline", guideline) == {"match_count": 4}
        assert await store.roll_up_usage() == 0
        with pytest.raises(NotFound):
            await store.usage(WS, "guideline", uuid4())
        with pytest.raises(InvalidData):
            await store.usage(WS, "planet", guideline)

    run(body())


# ------------------------------------------------------------------ odds and ends


def test_an_explicit_agent_id_cannot_cross_workspaces(store: Store) -> None:
    async def body() -> None:
        await store.ensure_workspace(WS)
        await store.ensure_workspace(OTHER_WS)
        # an explicit agent id; the other ids derive from it (ids derived from another
        # one would be version-5 ids no workspace derives from this bundle: refused)
        data = {"agent": {"name": "Clinic", "id": str(uuid4())}}
        explicit = AgentBundle.model_validate(data)
        agent_id = (await store.publish(WS, explicit)).agent_id
        assert agent_id == explicit.agent.id  # explicit ids are kept
        with pytest.raises(InvalidData, match="taken"):
            await store.publish(OTHER_WS, explicit)
        with pytest.raises(InvalidData, match="already has an agent named"):
            await store.publish(WS, make_bundle())  # same name, another id
        assert await store.find_agent(OTHER_WS, "Clinic") is None

    run(body())


def test_create_session_with_a_given_id_is_idempotent(store: Store) -> None:
    async def body() -> None:
        agent_id = await setup(store)
        start = SessionStart(agent_id=agent_id, session_id=uuid4(), metadata={"a": [1]})
        first = await store.create_session(WS, start)
        assert first.id == start.session_id
        assert await store.create_session(WS, start) == first
        assert [s.id for s in await store.list_sessions(WS, agent_id)] == [first.id]
        second = await store.create_session(WS, SessionStart(agent_id=agent_id))
        listed = await store.list_sessions(WS, agent_id, status=SessionStatus.ACTIVE)
        assert [s.id for s in listed] == [first.id, second.id]  # oldest first
        assert await store.list_sessions(WS, agent_id, status=SessionStatus.COMPLETED) == []

    run(body())


def test_stored_events_do_not_follow_the_callers_objects(store: Store) -> None:
    async def body() -> None:
        agent_id = await setup(store)
        session = await store.create_session(WS, SessionStart(agent_id=agent_id))
        event = NewEvent(event_type=EventType.TOOL_RESULT, content={"rows": [1, 2]})
        await store.commit_turn(
            WS, TurnCommit(session_id=session.id, expected_version=0, events=[event])
        )
        event.content["rows"].append(3)
        assert (await store.list_events(WS, session.id))[0].content == {"rows": [1, 2]}

    run(body())


def test_a_closed_store_refuses_work(store: Store) -> None:
    async def body() -> None:
        agent_id = await setup(store)
        await store.close()
        with pytest.raises(StorageError):
            await store.load_agent(WS, agent_id)

    run(body())


def test_nothing_mutable_is_shared_with_callers_at_any_depth(store: Store) -> None:
    """Copies are cheap (immutable leaves are shared) but share no container or model."""

    async def body() -> None:
        agent_id = await setup(store)
        start_metadata: dict[str, Any] = {"tags": ["a"]}
        session = await store.create_session(
            WS, SessionStart(agent_id=agent_id, customer_id="c1", metadata=start_metadata)
        )
        start_metadata["tags"].append("caller")
        value: dict[str, Any] = {"items": [{"n": 1}]}
        metadata: dict[str, Any] = {"deep": {"list": [1]}}
        event = NewEvent(event_type=EventType.TOOL_RESULT, content={"rows": [{"n": 1}]})
        committed = await store.commit_turn(
            WS,
            TurnCommit(
                session_id=session.id,
                expected_version=0,
                events=[event],
                metadata=metadata,
                variables=[VariableChange(key="cart", value=value, value_type=ValueType.OBJECT)],
            ),
        )
        # the caller's objects after the commit, and the objects it got back
        value["items"][0]["n"] = 2
        metadata["deep"]["list"].append(2)
        event.content["rows"][0]["n"] = 2
        committed.metadata["deep"]["list"].append(3)
        (stored_event,) = await store.list_events(WS, session.id)
        stored_event.content["rows"].append({"n": 3})
        (variable,) = [v for v in await store.get_variables(WS, session.id) if v.key == "cart"]
        variable.value["items"].clear()
        bundle = (await store.load_agent(WS, agent_id)).bundle
        bundle.journeys[0].states[0].metadata["x"] = 1
        bundle.journeys[0].states.pop()

        again = await store.get_session(WS, session.id)
        assert again.metadata == {"deep": {"list": [1]}}
        assert (await store.list_events(WS, session.id))[0].content == {"rows": [{"n": 1}]}
        (variable,) = [v for v in await store.get_variables(WS, session.id) if v.key == "cart"]
        assert variable.value == {"items": [{"n": 1}]}
        journey = (await store.load_agent(WS, agent_id)).bundle.journeys[0]
        assert len(journey.states) == 3
        assert journey.states[0].metadata == {}
        first = (await store.list_sessions(WS, agent_id))[0]
        assert first.id == session.id
        assert session.metadata == {"tags": ["a"]}  # the copy it was given at creation

    run(body())
