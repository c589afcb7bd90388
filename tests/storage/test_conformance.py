"""The conformance suite: the same tests, through the :class:`Store` protocol, for every adapter.

Each test runs on the memory store, SQLite and PostgreSQL (the ``store`` fixture).
Where an adapter breaks the contract the test is marked as an expected failure for
that adapter only, with the reason.
"""

from __future__ import annotations

import asyncio
import gc
import warnings
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from uuid import UUID, uuid4

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from parlant_runtime import load_bundle
from parlant_runtime.bundle.schema import AgentBundle
from parlant_runtime.model import (
    Event,
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
    PublishRefused,
    SessionStart,
    StorageError,
    Store,
    TurnCommit,
    VariableChange,
)
from parlant_runtime.storage.publishing import from_workspace
from parlant_runtime.storage.sql.store import SqlStore
from tests.storage.support import (
    EXAMPLES,
    OTHER_WS,
    WS,
    Run,
    make_bundle,
    message,
    publish,
    setup_agent,
    snapshot,
    state_ids,
    turn,
    usage_key,
)

REPLY = NewEvent(event_type=EventType.AGENT_MESSAGE, content={"text": "Which day?"})


def test_every_adapter_is_a_store(store: Store) -> None:
    assert isinstance(store, Store)


# ------------------------------------------------------------------ publishing


def test_publish_creates_the_agent_at_version_one(store: Store, run: Run) -> None:
    async def body() -> None:
        await store.ensure_workspace(WS)
        report = await store.publish(WS, make_bundle(guidelines={"greet": "Say hi."}))
        assert (report.created, report.version, report.written) == (True, 1, True)
        assert (report.moved_sessions, dict(report.stranded_sessions)) == (0, {})
        assert report.changes.added["journey"] == ("Book",)
        assert report.changes.added["state"] == ("Book/ask", "Book/confirm", "Book/done")
        assert report.changes.added["guideline"] == ("greet",)
        assert not report.changes.removed
        assert not report.changes.changed
        assert await store.find_agent(WS, "Clinic") == report.agent_id
        stored = await store.load_agent(WS, report.agent_id)
        assert (stored.workspace_id, stored.agent_id, stored.version) == (WS, report.agent_id, 1)

    run(body())


def test_identical_republish_writes_nothing_and_keeps_the_version(store: Store, run: Run) -> None:
    async def body() -> None:
        await store.ensure_workspace(WS)
        first = await store.publish(WS, make_bundle(guidelines={"greet": "Say hi."}))
        before = await store.load_agent(WS, first.agent_id)
        again = await store.publish(WS, make_bundle(guidelines={"greet": "Say hi."}))
        assert (again.agent_id, again.created, again.version, again.written) == (
            first.agent_id,
            False,
            1,
            False,
        )
        assert again.changes.empty
        assert await store.load_agent(WS, first.agent_id) == before

    run(body())


def test_changed_republish_lists_changes_by_kind_and_bumps_the_version(
    store: Store, run: Run
) -> None:
    async def body() -> None:
        await store.ensure_workspace(WS)
        old = make_bundle(guidelines={"a": "Say hi.", "b": "Say bye."})
        first = await store.publish(WS, old)
        new = make_bundle(("ask", "check", "done"), {"a": "Say hello.", "c": "Say thanks."})
        report = await store.publish(WS, new)
        assert (report.agent_id, report.created, report.version, report.written) == (
            first.agent_id,
            False,
            2,
            True,
        )
        assert report.changes.added == {
            "guideline": ("c",),
            "state": ("Book/check",),
            "transition": ("Book/ask->check", "Book/check->done"),
        }
        assert report.changes.removed == {
            "guideline": ("b",),
            "state": ("Book/confirm",),
            "transition": ("Book/ask->confirm", "Book/confirm->done"),
        }
        assert report.changes.changed == {"guideline": ("a",)}
        stored = await store.load_agent(WS, report.agent_id)
        assert stored.version == 2
        assert [g.action for g in stored.bundle.guidelines] == ["Say hello.", "Say thanks."]
        assert from_workspace(stored.bundle, WS) == new

    run(body())


def test_dry_run_reports_the_publish_without_writing_it(store: Store, run: Run) -> None:
    async def body() -> None:
        await store.ensure_workspace(WS)
        new_agent = await store.publish(WS, make_bundle(), dry_run=True)
        assert (new_agent.created, new_agent.version, new_agent.written) == (True, 1, False)
        assert new_agent.changes.added["journey"] == ("Book",)
        assert await store.find_agent(WS, "Clinic") is None
        with pytest.raises(NotFound):
            await store.load_agent(WS, new_agent.agent_id)

        await store.publish(WS, make_bundle())
        before = await store.load_agent(WS, new_agent.agent_id)
        changed = await store.publish(WS, make_bundle(day="friday"), dry_run=True)
        assert (changed.created, changed.version, changed.written) == (False, 2, False)
        assert changed.changes.changed == {"variable": ("day (session)",)}
        assert await store.load_agent(WS, new_agent.agent_id) == before

    run(body())


def test_agent_version_follows_the_publishes_that_write(store: Store, run: Run) -> None:
    async def body() -> None:
        agent_id = await setup_agent(store)
        assert await store.agent_version(WS, agent_id) == 1
        await store.publish(WS, make_bundle())  # identical: not written
        assert await store.agent_version(WS, agent_id) == 1
        await store.publish(WS, make_bundle(day="friday"), dry_run=True)
        assert await store.agent_version(WS, agent_id) == 1
        await store.publish(WS, make_bundle(day="friday"))
        assert await store.agent_version(WS, agent_id) == 2
        assert (await store.load_agent(WS, agent_id)).version == 2
        with pytest.raises(NotFound):
            await store.agent_version(WS, uuid4())

    run(body())


def test_publish_needs_a_known_workspace(store: Store, run: Run) -> None:
    with pytest.raises(NotFound):
        run(store.publish("nowhere", make_bundle()))


def test_stranded_sessions_are_refused_then_mapped_then_forced(store: Store, run: Run) -> None:
    async def body() -> None:
        agent_id = await setup_agent(store)
        journey_id, confirm = await state_ids(store, agent_id, "confirm")
        live = await store.create_session(WS, SessionStart(agent_id=agent_id))
        live = await store.commit_turn(
            WS, turn(live, current_journey_id=journey_id, current_state_id=confirm)
        )
        ended = await store.create_session(WS, SessionStart(agent_id=agent_id))
        ended = await store.commit_turn(
            WS,
            turn(
                ended,
                current_journey_id=journey_id,
                current_state_id=confirm,
                status=SessionStatus.COMPLETED,
            ),
        )
        renamed = make_bundle(("ask", "check", "done"))
        with pytest.raises(PublishRefused) as refused:
            await store.publish(WS, renamed)
        assert refused.value.report is not None
        assert dict(refused.value.report.stranded_sessions) == {"Book/confirm": 1}  # active only
        assert not refused.value.report.written
        assert (await store.load_agent(WS, agent_id)).version == 1
        assert await store.get_session(WS, live.id) == live
        with pytest.raises(PublishRefused):  # a mapping to a state the new version lacks
            await store.publish(WS, renamed, state_mapping={"Book": {"confirm": "nowhere"}})
        assert (await store.load_agent(WS, agent_id)).version == 1

        mapped = await store.publish(WS, renamed, state_mapping={"Book": {"confirm": "check"}})
        assert (mapped.version, mapped.moved_sessions, mapped.written) == (2, 1, True)
        assert dict(mapped.stranded_sessions) == {"Book/confirm": 1}
        moved = await store.get_session(WS, live.id)
        assert (moved.current_journey_id, moved.current_state_id) == await state_ids(
            store, agent_id, "check"
        )
        assert moved.version == live.version + 1
        with pytest.raises(ConcurrentUpdate):  # a turn computed before the move is stale
            await store.commit_turn(WS, turn(live))
        after_end = await store.get_session(WS, ended.id)  # not moved; its state is gone
        assert (after_end.current_journey_id, after_end.current_state_id) == (journey_id, None)

        forced = await store.publish(WS, make_bundle(("ask", "done")), force=True)
        assert (forced.version, forced.moved_sessions, forced.written) == (3, 1, True)
        assert dict(forced.stranded_sessions) == {"Book/check": 1}
        left = await store.get_session(WS, live.id)
        assert (left.current_journey_id, left.current_state_id) == (None, None)
        assert left.version == moved.version + 1

    run(body())


def test_the_agent_id_find_agent_gives_starts_sessions_and_publishes(
    store: Store, run: Run
) -> None:
    """On PostgreSQL ``find_agent`` gives the driver's own UUID type; every statement
    that takes an agent id must accept it (the agent's lock once refused it)."""

    async def body() -> None:
        await setup_agent(store)
        found = await store.find_agent(WS, "Clinic")
        assert found is not None
        session = await store.create_session(WS, SessionStart(agent_id=found))
        assert session.agent_id == found
        assert (await store.agent_version(WS, found)) == 1

    run(body())


def _position_from_log(events: Sequence[Event]) -> tuple[UUID | None, UUID | None]:
    """Where the log says the session is: its last ``journey_transition`` event."""
    moves = [e for e in events if e.event_type is EventType.JOURNEY_TRANSITION]
    if not moves:
        return None, None
    return moves[-1].journey_id, moves[-1].state_id


def test_the_event_log_alone_gives_the_position_after_publishes_move_sessions(
    store: Store, run: Run
) -> None:
    """A mapped or forced publish writes a ``journey_transition`` for each session it
    moves, and the events written before keep the (removed) state they name."""

    async def body() -> None:
        agent_id = await setup_agent(store)
        journey_id, confirm = await state_ids(store, agent_id, "confirm")
        live = await store.create_session(WS, SessionStart(agent_id=agent_id))
        entered = NewEvent(
            event_type=EventType.JOURNEY_TRANSITION,
            content={"journey": "Book", "from": None, "to": "confirm"},
            journey_id=journey_id,
            state_id=confirm,
        )
        live = await store.commit_turn(
            WS,
            turn(
                live,
                events=[
                    entered,
                    REPLY.model_copy(update={"journey_id": journey_id, "state_id": confirm}),
                ],
                current_journey_id=journey_id,
                current_state_id=confirm,
            ),
        )
        await store.publish(
            WS, make_bundle(("ask", "check", "done")), state_mapping={"Book": {"confirm": "check"}}
        )
        check = await state_ids(store, agent_id, "check")
        events = await store.list_events(WS, live.id)
        session = await store.get_session(WS, live.id)
        assert (session.current_journey_id, session.current_state_id) == check
        assert _position_from_log(events) == check
        move = events[-1]
        assert move.content == {
            "journey": "Book",
            "from": "confirm",
            "to": "check",
            "republished": 2,
        }
        assert [e.offset for e in events] == list(range(session.event_count))
        assert [e.state_id for e in events[:2]] == [confirm, confirm]  # not cleared
        assert [e.journey_id for e in events[:2]] == [journey_id, journey_id]

        await store.publish(WS, make_bundle(("ask", "done")), force=True)
        events = await store.list_events(WS, live.id)
        assert _position_from_log(events) == (None, None)
        assert events[-1].content == {
            "journey": "Book",
            "from": "check",
            "to": None,
            "republished": 3,
        }
        assert [e.state_id for e in events] == [confirm, confirm, check[1], None]
        session = await store.get_session(WS, live.id)
        assert session.event_count == len(events) == 4

    run(body())


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


def test_load_agent_gives_ten_journeys_in_their_order(store: Store, run: Run) -> None:
    titles = [f"Journey {n}" for n in (7, 2, 9, 0, 5, 1, 8, 3, 6, 4)]
    states = ("zulu", "alpha", "mike", "bravo")
    guidelines = {"zeta": "Last name first.", "alpha": "Then this.", "mid": "And this."}
    bundle = make_bundle(states, guidelines, journeys=titles)

    async def body() -> None:
        agent_id = await setup_agent(store, bundle)
        stored = (await store.load_agent(WS, agent_id)).bundle
        assert [j.title for j in stored.journeys] == titles
        for journey in stored.journeys:
            assert [s.name for s in journey.states] == list(states)
            assert [(t.from_state, t.to_state) for t in journey.transitions] == [
                ("zulu", "alpha"),
                ("alpha", "mike"),
                ("mike", "bravo"),
            ]
        assert [g.name for g in stored.guidelines] == ["zeta", "alpha", "mid"]
        assert from_workspace(stored, WS) == bundle

    run(body())


# ------------------------------------------------------------------ sessions


def test_sessions_are_created_got_and_listed_oldest_first(store: Store, run: Run) -> None:
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


def test_create_session_with_a_given_id_is_idempotent(store: Store, run: Run) -> None:
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


def test_list_sessions_of_an_unknown_agent_is_not_found(store: Store, run: Run) -> None:
    async def body() -> None:
        agent_id = await setup_agent(store)
        with pytest.raises(NotFound):
            await store.list_sessions(WS, uuid4())
        with pytest.raises(NotFound):  # another workspace's agent: the same answer
            await store.list_sessions(OTHER_WS, agent_id)
        assert await store.list_sessions(WS, agent_id) == []  # known, without sessions

    run(body())


# ------------------------------------------------------------------ turns


def test_turns_append_contiguous_offsets_and_count_events_and_messages(
    store: Store, run: Run
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
        second = await store.commit_turn(WS, turn(first, events=[message("monday"), *tools, REPLY]))
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


def test_a_turn_sets_and_clears_the_current_journey_and_state(store: Store, run: Run) -> None:
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
        journey_only = await store.commit_turn(WS, turn(at_confirm, current_journey_id=journey_id))
        assert (journey_only.current_journey_id, journey_only.current_state_id) == (
            journey_id,
            None,
        )
        cleared = await store.commit_turn(WS, turn(journey_only))
        assert (cleared.current_journey_id, cleared.current_state_id) == (None, None)
        assert await store.get_session(WS, session.id) == cleared

    run(body())


def test_a_turn_replaces_the_session_metadata_or_keeps_it(store: Store, run: Run) -> None:
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
    store: Store, run: Run, ended: SessionStatus
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


def test_a_stale_expected_version_conflicts_and_writes_nothing(store: Store, run: Run) -> None:
    async def body() -> None:
        agent_id = await setup_agent(store, make_bundle(guidelines={"greet": "Hi."}))
        guideline = (await store.load_agent(WS, agent_id)).bundle.guidelines[0].id
        journey_id, ask = await state_ids(store, agent_id, "ask")
        session = await store.create_session(WS, SessionStart(agent_id=agent_id, customer_id="c"))
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
    store: Store, run: Run
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


def test_find_message_gives_the_recorded_message(store: Store, run: Run) -> None:
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


def test_recorded_events_keep_their_idempotency_key(
    store: Store, run: Run, backend: str, request: pytest.FixtureRequest
) -> None:

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


# ------------------------------------------------------------------ variables


def _customer(key: str, value: object, value_type: ValueType) -> VariableChange:
    return VariableChange(key=key, value=value, value_type=value_type, scope=VariableScope.CUSTOMER)


def test_customer_variables_are_shared_by_the_customers_sessions_only(
    store: Store, run: Run
) -> None:
    async def body() -> None:
        agent_id = await setup_agent(store)
        other_agent = (await store.publish(WS, make_bundle(name="Other"))).agent_id
        first = await store.create_session(WS, SessionStart(agent_id=agent_id, customer_id="c1"))
        await store.commit_turn(
            WS,
            turn(
                first,
                variables=[
                    _customer("visits", 2, ValueType.NUMBER),
                    VariableChange(key="day", value="tuesday"),
                ],
            ),
        )
        again = await store.create_session(WS, SessionStart(agent_id=agent_id, customer_id="c1"))
        stranger = await store.create_session(WS, SessionStart(agent_id=agent_id, customer_id="c2"))
        anonymous = await store.create_session(WS, SessionStart(agent_id=agent_id))
        elsewhere = await store.create_session(
            WS, SessionStart(agent_id=other_agent, customer_id="c1")
        )

        async def values(session_id: UUID) -> dict[str, object]:
            variables = await store.get_variables(WS, session_id)
            return {v.key: v.value for v in variables}

        assert await values(first.id) == {"day": "tuesday", "visits": 2}
        assert await values(again.id) == {"day": "monday", "visits": 2}
        assert await values(stranger.id) == {"day": "monday", "visits": 0}
        assert await values(anonymous.id) == {"day": "monday", "visits": 0}
        assert await values(elsewhere.id) == {"day": "monday", "visits": 0}

        await store.commit_turn(
            WS, turn(again, variables=[_customer("visits", 3, ValueType.NUMBER)])
        )
        assert (await values(first.id))["visits"] == 3  # written by the other session

    run(body())


def test_get_variables_merges_definitions_then_customer_then_session(
    store: Store, run: Run
) -> None:
    async def body() -> None:
        agent_id = await setup_agent(store)
        start = SessionStart(agent_id=agent_id, customer_id="c1")
        mine = await store.create_session(WS, start)
        sibling = await store.create_session(WS, start)
        anonymous = await store.create_session(WS, SessionStart(agent_id=agent_id))
        mine = await store.commit_turn(
            WS,
            turn(
                mine,
                variables=[
                    _customer("day", "tuesday", ValueType.STRING),
                    VariableChange(key="visits", value=5, value_type=ValueType.NUMBER),
                ],
            ),
        )

        async def merged(session_id: UUID) -> list[tuple[str, object, VariableScope]]:
            return [(v.key, v.value, v.scope) for v in await store.get_variables(WS, session_id)]

        session, customer = VariableScope.SESSION, VariableScope.CUSTOMER
        assert await merged(mine.id) == [("day", "tuesday", customer), ("visits", 5, session)]
        assert await merged(sibling.id) == [("day", "tuesday", customer), ("visits", 0, customer)]
        assert await merged(anonymous.id) == [("day", "monday", session), ("visits", 0, customer)]

        mine = await store.commit_turn(
            WS, turn(mine, variables=[VariableChange(key="day", value="friday")])
        )
        assert await merged(mine.id) == [("day", "friday", session), ("visits", 5, session)]
        assert await merged(sibling.id) == [("day", "tuesday", customer), ("visits", 0, customer)]
        await store.commit_turn(
            WS, turn(mine, variables=[VariableChange(key="day", value="saturday")])
        )
        assert await merged(mine.id) == [("day", "saturday", session), ("visits", 5, session)]

    run(body())


def test_customer_scoped_values_name_their_customer(
    store: Store, run: Run, backend: str, request: pytest.FixtureRequest
) -> None:

    async def body() -> None:
        agent_id = await setup_agent(store)
        session = await store.create_session(WS, SessionStart(agent_id=agent_id, customer_id="c1"))
        await store.commit_turn(
            WS, turn(session, variables=[_customer("visits", 4, ValueType.NUMBER)])
        )
        (visits,) = [v for v in await store.get_variables(WS, session.id) if v.key == "visits"]
        assert (visits.value, visits.scope, visits.customer_id, visits.session_id) == (
            4,
            VariableScope.CUSTOMER,
            "c1",
            None,
        )

    run(body())


# ------------------------------------------------------------------ waiting


def test_wait_for_events_returns_at_once_when_events_exist(store: Store, run: Run) -> None:
    async def body() -> None:
        agent_id = await setup_agent(store)
        session = await store.create_session(WS, SessionStart(agent_id=agent_id))
        await store.commit_turn(WS, turn(session, events=[message("hi"), REPLY]))
        loop = asyncio.get_running_loop()
        started = loop.time()
        events = await store.wait_for_events(WS, session.id, after=-1, timeout=30)
        assert [e.offset for e in events] == [0, 1]
        later = await store.wait_for_events(WS, session.id, after=0, timeout=30)
        assert [e.offset for e in later] == [1]
        assert loop.time() - started < 15  # did not sit out the timeout

    run(body())


def test_wait_for_events_wakes_when_another_task_commits(store: Store, run: Run) -> None:
    async def body() -> None:
        agent_id = await setup_agent(store)
        session = await store.create_session(WS, SessionStart(agent_id=agent_id))
        session = await store.commit_turn(WS, turn(session, events=[message("hi")]))
        waiter = asyncio.create_task(store.wait_for_events(WS, session.id, after=0, timeout=30))
        await asyncio.sleep(0.1)
        assert not waiter.done()
        committer = asyncio.create_task(
            store.commit_turn(WS, turn(session, events=[REPLY, message("monday")]))
        )
        events = await asyncio.wait_for(waiter, 10)
        await committer
        assert [e.offset for e in events] == [1, 2]
        assert events[0].content == {"text": "Which day?"}

    run(body())


def test_wait_for_events_returns_nothing_after_the_timeout(store: Store, run: Run) -> None:
    async def body() -> None:
        agent_id = await setup_agent(store)
        session = await store.create_session(WS, SessionStart(agent_id=agent_id))
        await store.commit_turn(WS, turn(session, events=[message("hi")]))
        loop = asyncio.get_running_loop()
        started = loop.time()
        assert await store.wait_for_events(WS, session.id, after=0, timeout=0.2) == []
        assert loop.time() - started >= 0.15  # it did wait
        assert await store.wait_for_events(WS, session.id, after=0, timeout=0) == []

    run(body())


# ------------------------------------------------------------------ usage


def test_usage_counts_pending_deltas_and_roll_up_folds_them_in(store: Store, run: Run) -> None:
    async def body() -> None:
        agent_id = await setup_agent(store, make_bundle(guidelines={"greet": "Say hi."}))
        bundle = (await store.load_agent(WS, agent_id)).bundle
        journey = bundle.journeys[0]
        entities = {
            "guideline": (bundle.guidelines[0].id, "match_count"),
            "canned_response": (bundle.canned_responses[0].id, "use_count"),
            "journey": (journey.id, "total_sessions"),
            "transition": (journey.transitions[0].id, "use_count"),
            "journey_guideline": (journey.guidelines[0].id, "match_count"),
            "tool": (bundle.tools[0].id, "use_count"),
            "agent": (agent_id, "total_messages"),
        }
        deltas = {usage_key(kind, id_, counter): 2 for kind, (id_, counter) in entities.items()}
        session = await store.create_session(WS, SessionStart(agent_id=agent_id))
        await store.create_session(WS, SessionStart(agent_id=agent_id))
        session = await store.commit_turn(WS, turn(session, usage=deltas))
        await store.commit_turn(WS, turn(session, usage=deltas))

        expected = {
            "agent": {
                "total_messages": 4,
                "total_sessions": 2,
                "total_tokens_used": 0,
                "total_cost": 0,
            },
            **{kind: {counter: 4} for kind, (_, counter) in entities.items() if kind != "agent"},
        }
        for kind, (id_, _) in entities.items():
            assert await store.usage(WS, kind, id_) == expected[kind], kind
        assert await store.roll_up_usage() == 2 + 2 * len(deltas)
        for kind, (id_, _) in entities.items():
            assert await store.usage(WS, kind, id_) == expected[kind], kind
        assert await store.roll_up_usage() == 0

    run(body())


def test_a_sessions_tokens_and_cost_roll_up_into_its_row(store: Store, run: Run) -> None:
    async def body() -> None:
        agent_id = await setup_agent(store, make_bundle())
        session = await store.create_session(WS, SessionStart(agent_id=agent_id))
        other = await store.create_session(WS, SessionStart(agent_id=agent_id))
        deltas = {
            usage_key("session", session.id, "tokens_used"): 120,
            usage_key("session", session.id, "cost"): 1,
            usage_key("agent", agent_id, "total_tokens_used"): 120,
            usage_key("agent", agent_id, "total_cost"): 1,
        }
        await store.commit_turn(WS, turn(session, usage=deltas))
        assert await store.usage(WS, "session", session.id) == {"tokens_used": 120, "cost": 1}
        await store.roll_up_usage()
        row = await store.get_session(WS, session.id)
        assert (row.tokens_used, row.cost) == (120, 1)
        assert (await store.get_session(WS, other.id)).tokens_used == 0
        totals = await store.usage(WS, "agent", agent_id)
        assert (totals["total_tokens_used"], totals["total_cost"]) == (120, 1)

    run(body())


def test_counters_of_a_removed_entity_start_from_zero_when_it_returns(
    store: Store, run: Run
) -> None:
    async def body() -> None:
        agent_id = await setup_agent(store, make_bundle(guidelines={"greet": "Hi."}))
        guideline = (await store.load_agent(WS, agent_id)).bundle.guidelines[0].id
        session = await store.create_session(WS, SessionStart(agent_id=agent_id))
        key = usage_key("guideline", guideline, "match_count")
        await store.commit_turn(WS, turn(session, usage={key: 3}))
        await store.roll_up_usage()
        assert await store.usage(WS, "guideline", guideline) == {"match_count": 3}
        await store.publish(WS, make_bundle())
        with pytest.raises(NotFound):
            await store.usage(WS, "guideline", guideline)
        await store.publish(WS, make_bundle(guidelines={"greet": "Hi."}))
        assert await store.usage(WS, "guideline", guideline) == {"match_count": 0}

    run(body())


def test_usage_of_an_unknown_id_is_not_found(store: Store, run: Run) -> None:
    async def body() -> None:
        await setup_agent(store)
        for kind in ("agent", "guideline", "journey", "tool"):
            with pytest.raises(NotFound):
                await store.usage(WS, kind, uuid4())

    run(body())


@pytest.mark.parametrize("kind", ["planet", "state", ""])
def test_usage_of_a_kind_without_counters_is_invalid(
    store: Store, run: Run, kind: str, backend: str, request: pytest.FixtureRequest
) -> None:

    async def body() -> None:
        agent_id = await setup_agent(store)
        with pytest.raises(InvalidData, match="no usage counters"):
            await store.usage(WS, kind, agent_id)

    run(body())


# ------------------------------------------------------------------ closing


def test_a_closed_store_refuses_every_operation(store: Store, run: Run) -> None:
    async def body() -> None:
        agent_id = await setup_agent(store)
        session = await store.create_session(WS, SessionStart(agent_id=agent_id))
        await store.close()
        await store.close()  # closing twice is harmless
        calls: dict[str, Callable[[], Awaitable[object]]] = {
            "ensure_workspace": lambda: store.ensure_workspace("ws-c"),
            "publish": lambda: store.publish(WS, make_bundle(day="sunday")),
            "load_agent": lambda: store.load_agent(WS, agent_id),
            "agent_version": lambda: store.agent_version(WS, agent_id),
            "find_agent": lambda: store.find_agent(WS, "Clinic"),
            "create_session": lambda: store.create_session(WS, SessionStart(agent_id=agent_id)),
            "get_session": lambda: store.get_session(WS, session.id),
            "list_sessions": lambda: store.list_sessions(WS, agent_id),
            "list_events": lambda: store.list_events(WS, session.id),
            "find_message": lambda: store.find_message(WS, session.id, "k"),
            "get_variables": lambda: store.get_variables(WS, session.id),
            "commit_turn": lambda: store.commit_turn(WS, turn(session, events=[message("x")])),
            "usage": lambda: store.usage(WS, "agent", agent_id),
            "roll_up_usage": store.roll_up_usage,
            "wait_for_events": lambda: store.wait_for_events(WS, session.id, after=-1, timeout=0.1),
        }
        for name, call in calls.items():
            try:
                await call()
            except StorageError:
                continue
            pytest.fail(f"{name} worked on a closed store")

    run(body())


async def start_waiters(store: Store, count: int) -> list[asyncio.Task[Sequence[Event]]]:
    """``count`` tasks waiting (5 s at most) for events of new sessions."""
    agent_id = await setup_agent(store)
    waiters = []
    for _ in range(count):
        session = await store.create_session(WS, SessionStart(agent_id=agent_id))
        waiting = store.wait_for_events(WS, session.id, after=-1, timeout=5)
        waiters.append(asyncio.create_task(waiting))
    await asyncio.sleep(0.1)
    return waiters


async def collect_leaks() -> None:
    """Finalise leaked connections while the loop still runs (their driver threads call
    back into it), so that their warnings land in this test and not in a later one."""
    gc.collect()
    await asyncio.sleep(0.05)


def test_close_releases_pending_waiters(store: Store, run: Run) -> None:
    async def body() -> None:
        waiters = await start_waiters(store, 3)
        await store.close()
        done, pending = await asyncio.wait(waiters, timeout=1)
        for waiter in pending:
            waiter.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        assert not pending, "a waiter was still waiting a second after close()"
        for waiter in done:
            with pytest.raises(StorageError):
                waiter.result()
        await collect_leaks()

    with warnings.catch_warnings(record=True):  # leaks: see the next test
        warnings.simplefilter("always", ResourceWarning)
        run(body())


def test_close_with_pending_waiters_leaves_no_connection_behind(
    store: Store, run: Run, backend: str, request: pytest.FixtureRequest
) -> None:
    async def body() -> None:
        waiters = await start_waiters(store, 3)
        await store.close()
        await asyncio.gather(*waiters, return_exceptions=True)
        await collect_leaks()

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        run(body())
    leaks = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert leaks == []


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


def test_a_tool_the_agent_drops_keeps_its_counters(store: Store, run: Run) -> None:
    async def body() -> None:
        bundle = make_bundle()
        agent_id = await setup_agent(store, bundle)
        tool = (await store.load_agent(WS, agent_id)).bundle.tools[0].id
        session = await store.create_session(WS, SessionStart(agent_id=agent_id))
        await store.commit_turn(WS, turn(session, usage={usage_key("tool", tool, "use_count"): 2}))
        await store.roll_up_usage()
        await publish(store, WS, bundle.model_copy(update={"tools": []}))
        assert (await store.usage(WS, "tool", tool))["use_count"] == 2  # the workspace's tool
        with pytest.raises(NotFound):  # but not another workspace's
            await store.usage(OTHER_WS, "tool", tool)
        again = await store.get_session(WS, session.id)
        await store.commit_turn(WS, turn(again, usage={usage_key("tool", tool, "use_count"): 1}))
        await store.roll_up_usage()
        assert (await store.usage(WS, "tool", tool))["use_count"] == 3

    run(body())
