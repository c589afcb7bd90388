"""The conformance tests of sessions and turns: creation, listing, compare-and-set, idempotency."""

from __future__ import annotations

from uuid import uuid4

import pytest

from parlant_runtime.model import (
    EventType,
    SessionMode,
    SessionStatus,
    ValueType,
    VariableScope,
)
from parlant_runtime.storage.port import (
    ConcurrentUpdate,
    DuplicateMessage,
    InvalidData,
    NewEvent,
    NotFound,
    SessionStart,
    Store,
    TurnCommit,
    VariableChange,
)
from parlant_runtime.testing.conformance._support import (
    OTHER_WS,
    REPLY,
    WS,
    Run,
    make_bundle,
    message,
    setup_agent,
    snapshot,
    state_ids,
    turn,
    usage_key,
)


class SessionConformance:
    """Sessions (``create_session``, ``get_session``, ``list_sessions``) and turns
    (``commit_turn``: contiguous offsets, compare-and-set on the version, idempotency
    keys, ``find_message``)."""

    def test_sessions_are_created_got_and_listed_oldest_first(self, store: Store, run: Run) -> None:
        async def body() -> None:
            agent_id = await setup_agent(store)
            start = SessionStart(
                agent_id=agent_id,
                customer_id="c1",
                mode=SessionMode.MANUAL,
                title="Booking",
                metadata={"channel": "web", "ids": [1, 2]},
            )
            first = await store.create_session(WS, start)
            assert (first.workspace_id, first.agent_id, first.customer_id) == (WS, agent_id, "c1")
            assert (first.mode, first.status, first.title) == (
                SessionMode.MANUAL,
                SessionStatus.ACTIVE,
                "Booking",
            )
            assert first.metadata == {"channel": "web", "ids": [1, 2]}
            assert (first.version, first.event_count, first.message_count) == (0, 0, 0)
            assert (first.current_journey_id, first.current_state_id, first.ended_at) == (
                None,
                None,
                None,
            )
            assert first.started_at is not None
            assert await store.get_session(WS, first.id) == first

            second = await store.create_session(WS, SessionStart(agent_id=agent_id))
            assert (second.customer_id, second.mode) == (None, SessionMode.AUTO)
            third = await store.create_session(WS, SessionStart(agent_id=agent_id))
            await store.commit_turn(WS, turn(second, status=SessionStatus.COMPLETED))
            everyone = await store.list_sessions(WS, agent_id)
            assert [s.id for s in everyone] == [first.id, second.id, third.id]
            active = await store.list_sessions(WS, agent_id, status=SessionStatus.ACTIVE)
            assert [s.id for s in active] == [first.id, third.id]
            done = await store.list_sessions(WS, agent_id, status=SessionStatus.COMPLETED)
            assert [s.id for s in done] == [second.id]
            assert await store.list_sessions(WS, agent_id, status=SessionStatus.ABANDONED) == []
            with pytest.raises(NotFound):
                await store.get_session(WS, uuid4())

        run(body())

    def test_create_session_with_a_given_id_is_idempotent(self, store: Store, run: Run) -> None:
        async def body() -> None:
            agent_id = await setup_agent(store)
            other_agent = (await store.publish(WS, make_bundle(name="Other"))).agent_id
            start = SessionStart(agent_id=agent_id, session_id=uuid4(), metadata={"a": [1]})
            first = await store.create_session(WS, start)
            assert first.id == start.session_id
            assert await store.create_session(WS, start) == first
            assert [s.id for s in await store.list_sessions(WS, agent_id)] == [first.id]
            with pytest.raises(InvalidData):  # the id is another agent's session
                await store.create_session(
                    WS, SessionStart(agent_id=other_agent, session_id=start.session_id)
                )
            assert await store.list_sessions(WS, other_agent) == []

        run(body())

    def test_list_sessions_of_an_unknown_agent_is_not_found(self, store: Store, run: Run) -> None:
        async def body() -> None:
            agent_id = await setup_agent(store)
            with pytest.raises(NotFound):
                await store.list_sessions(WS, uuid4())
            with pytest.raises(NotFound):  # another workspace's agent: the same answer
                await store.list_sessions(OTHER_WS, agent_id)
            assert await store.list_sessions(WS, agent_id) == []  # known, without sessions

        run(body())

    def test_turns_append_contiguous_offsets_and_count_events_and_messages(
        self, store: Store, run: Run
    ) -> None:
        async def body() -> None:
            agent_id = await setup_agent(store)
            session = await store.create_session(WS, SessionStart(agent_id=agent_id))
            first = await store.commit_turn(WS, turn(session, events=[message("hi"), REPLY]))
            assert (first.version, first.event_count, first.message_count) == (1, 2, 2)
            tools = [
                NewEvent(event_type=EventType.TOOL_CALL, tool_call_id="t1", content={"n": 1}),
                NewEvent(event_type=EventType.TOOL_RESULT, tool_call_id="t1", metadata={"ms": 3}),
            ]
            second = await store.commit_turn(
                WS, turn(first, events=[message("monday"), *tools, REPLY])
            )
            assert (second.version, second.event_count, second.message_count) == (2, 6, 4)
            third = await store.commit_turn(WS, turn(second))  # a turn without events
            assert (third.version, third.event_count, third.message_count) == (3, 6, 4)
            assert await store.get_session(WS, session.id) == third

            events = await store.list_events(WS, session.id)
            assert [e.offset for e in events] == list(range(6))
            assert {e.session_id for e in events} == {session.id}
            assert [e.event_type for e in events] == [
                EventType.CUSTOMER_MESSAGE,
                EventType.AGENT_MESSAGE,
                EventType.CUSTOMER_MESSAGE,
                EventType.TOOL_CALL,
                EventType.TOOL_RESULT,
                EventType.AGENT_MESSAGE,
            ]
            assert [e.content for e in events[:3]] == [
                {"text": "hi"},
                {"text": "Which day?"},
                {"text": "monday"},
            ]
            assert (events[3].tool_call_id, events[3].content) == ("t1", {"n": 1})
            assert events[4].metadata == {"ms": 3}
            page = await store.list_events(WS, session.id, after=1, limit=2)
            assert [e.offset for e in page] == [2, 3]
            assert await store.list_events(WS, session.id, after=5) == []
            assert await store.list_events(WS, session.id, limit=0) == []

        run(body())

    def test_a_turn_sets_and_clears_the_current_journey_and_state(
        self, store: Store, run: Run
    ) -> None:
        async def body() -> None:
            agent_id = await setup_agent(store)
            journey_id, ask = await state_ids(store, agent_id, "ask")
            _, confirm = await state_ids(store, agent_id, "confirm")
            session = await store.create_session(WS, SessionStart(agent_id=agent_id))
            at_ask = await store.commit_turn(
                WS, turn(session, current_journey_id=journey_id, current_state_id=ask)
            )
            assert (at_ask.current_journey_id, at_ask.current_state_id) == (journey_id, ask)
            at_confirm = await store.commit_turn(
                WS, turn(at_ask, current_journey_id=journey_id, current_state_id=confirm)
            )
            assert (at_confirm.current_journey_id, at_confirm.current_state_id) == (
                journey_id,
                confirm,
            )
            assert await store.get_session(WS, session.id) == at_confirm
            journey_only = await store.commit_turn(
                WS, turn(at_confirm, current_journey_id=journey_id)
            )
            assert (journey_only.current_journey_id, journey_only.current_state_id) == (
                journey_id,
                None,
            )
            cleared = await store.commit_turn(WS, turn(journey_only))
            assert (cleared.current_journey_id, cleared.current_state_id) == (None, None)
            assert await store.get_session(WS, session.id) == cleared

        run(body())

    def test_a_turn_replaces_the_session_metadata_or_keeps_it(self, store: Store, run: Run) -> None:
        async def body() -> None:
            agent_id = await setup_agent(store)
            start = SessionStart(agent_id=agent_id, metadata={"channel": "web"})
            session = await store.create_session(WS, start)
            kept = await store.commit_turn(WS, turn(session, events=[message("hi")]))
            assert kept.metadata == {"channel": "web"}
            replaced = await store.commit_turn(WS, turn(kept, metadata={"lang": "fr", "n": [1]}))
            assert replaced.metadata == {"lang": "fr", "n": [1]}
            emptied = await store.commit_turn(WS, turn(replaced, metadata={}))
            assert emptied.metadata == {}
            assert await store.get_session(WS, session.id) == emptied

        run(body())

    @pytest.mark.parametrize("ended", [SessionStatus.COMPLETED, SessionStatus.ABANDONED])
    def test_a_turn_changes_mode_and_status_and_ending_sets_ended_at(
        self, store: Store, run: Run, ended: SessionStatus
    ) -> None:
        async def body() -> None:
            agent_id = await setup_agent(store)
            session = await store.create_session(WS, SessionStart(agent_id=agent_id))
            manual = await store.commit_turn(WS, turn(session, mode=SessionMode.MANUAL))
            assert (manual.mode, manual.status, manual.ended_at) == (
                SessionMode.MANUAL,
                SessionStatus.ACTIVE,
                None,
            )
            kept = await store.commit_turn(WS, turn(manual))  # None keeps mode and status
            assert (kept.mode, kept.status) == (SessionMode.MANUAL, SessionStatus.ACTIVE)
            paused = await store.commit_turn(WS, turn(kept, mode=SessionMode.PAUSED))
            assert paused.mode is SessionMode.PAUSED
            finished = await store.commit_turn(WS, turn(paused, status=ended))
            assert (finished.status, finished.mode) == (ended, SessionMode.PAUSED)
            assert finished.ended_at is not None
            assert await store.get_session(WS, session.id) == finished

        run(body())

    def test_a_stale_expected_version_conflicts_and_writes_nothing(
        self, store: Store, run: Run
    ) -> None:
        async def body() -> None:
            agent_id = await setup_agent(store, make_bundle(guidelines={"greet": "Hi."}))
            guideline = (await store.load_agent(WS, agent_id)).bundle.guidelines[0].id
            journey_id, ask = await state_ids(store, agent_id, "ask")
            session = await store.create_session(
                WS, SessionStart(agent_id=agent_id, customer_id="c")
            )
            await store.commit_turn(WS, turn(session, events=[message("a", key="k-1")]))
            before = await snapshot(store, [(WS, session.id)], [(WS, agent_id)])
            before_usage = await store.usage(WS, "guideline", guideline)
            everything = {
                "events": [message("b", key="k-2"), REPLY],
                "variables": [
                    VariableChange(key="day", value="friday"),
                    VariableChange(
                        key="visits",
                        value=3,
                        value_type=ValueType.NUMBER,
                        scope=VariableScope.CUSTOMER,
                    ),
                ],
                "current_journey_id": journey_id,
                "current_state_id": ask,
                "mode": SessionMode.MANUAL,
                "status": SessionStatus.COMPLETED,
                "usage": {usage_key("guideline", guideline, "match_count"): 1},
            }
            for stale in (0, 2, 7):
                with pytest.raises(ConcurrentUpdate):
                    await store.commit_turn(
                        WS,
                        TurnCommit.model_validate(
                            {"session_id": session.id, "expected_version": stale, **everything}
                        ),
                    )
            assert await snapshot(store, [(WS, session.id)], [(WS, agent_id)]) == before
            assert await store.usage(WS, "guideline", guideline) == before_usage
            assert await store.find_message(WS, session.id, "k-2") is None

        run(body())

    def test_a_duplicate_idempotency_key_is_refused_with_its_offset_and_writes_nothing(
        self, store: Store, run: Run
    ) -> None:
        async def body() -> None:
            agent_id = await setup_agent(store)
            journey_id, ask = await state_ids(store, agent_id, "ask")
            session = await store.create_session(WS, SessionStart(agent_id=agent_id))
            done = await store.commit_turn(
                WS, turn(session, events=[message("a"), message("b", key="m-1")])
            )
            before = await snapshot(store, [(WS, session.id)], [(WS, agent_id)])
            retry = turn(
                done,
                events=[message("c", key="m-2"), message("b", key="m-1")],
                variables=[VariableChange(key="day", value="friday")],
                current_journey_id=journey_id,
                current_state_id=ask,
            )
            with pytest.raises(DuplicateMessage) as duplicate:
                await store.commit_turn(WS, retry)
            assert duplicate.value.offset == 1
            assert await snapshot(store, [(WS, session.id)], [(WS, agent_id)]) == before
            assert await store.find_message(WS, session.id, "m-2") is None

            twice = turn(done, events=[message("d", key="m-3"), message("d", key="m-3")])
            with pytest.raises(InvalidData):
                await store.commit_turn(WS, twice)
            assert await snapshot(store, [(WS, session.id)], [(WS, agent_id)]) == before

            other = await store.create_session(WS, SessionStart(agent_id=agent_id))
            elsewhere = await store.commit_turn(WS, turn(other, events=[message("b", key="m-1")]))
            assert elsewhere.event_count == 1  # keys are per session

        run(body())

    def test_find_message_gives_the_recorded_message(self, store: Store, run: Run) -> None:
        async def body() -> None:
            agent_id = await setup_agent(store)
            session = await store.create_session(WS, SessionStart(agent_id=agent_id))
            await store.commit_turn(
                WS, turn(session, events=[message("a"), message("b", key="m-1"), REPLY])
            )
            found = await store.find_message(WS, session.id, "m-1")
            assert found is not None
            assert (found.offset, found.event_type, found.content, found.session_id) == (
                1,
                EventType.CUSTOMER_MESSAGE,
                {"text": "b"},
                session.id,
            )
            assert await store.find_message(WS, session.id, "m-2") is None
            assert await store.find_message(WS, session.id, "") is None

        run(body())

    def test_recorded_events_keep_their_idempotency_key(self, store: Store, run: Run) -> None:

        async def body() -> None:
            agent_id = await setup_agent(store)
            session = await store.create_session(WS, SessionStart(agent_id=agent_id))
            await store.commit_turn(WS, turn(session, events=[message("a", key="m-1"), REPLY]))
            found = await store.find_message(WS, session.id, "m-1")
            assert found is not None
            assert found.idempotency_key == "m-1"
            listed = await store.list_events(WS, session.id)
            assert [e.idempotency_key for e in listed] == ["m-1", None]

        run(body())
