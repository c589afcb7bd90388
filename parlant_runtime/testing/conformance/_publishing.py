"""The conformance tests of publishing: creating, republishing, dry runs, stranded sessions."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID, uuid4

import pytest

from parlant_runtime.model import (
    Event,
    EventType,
    SessionStatus,
)
from parlant_runtime.storage.port import (
    ConcurrentUpdate,
    NewEvent,
    NotFound,
    PublishRefused,
    SessionStart,
    Store,
)
from parlant_runtime.storage.publishing import from_workspace
from parlant_runtime.testing.conformance._support import (
    REPLY,
    WS,
    Run,
    make_bundle,
    setup_agent,
    state_ids,
    turn,
)


def _position_from_log(events: Sequence[Event]) -> tuple[UUID | None, UUID | None]:
    """Where the log says the session is: its last ``journey_transition`` event."""
    moves = [e for e in events if e.event_type is EventType.JOURNEY_TRANSITION]
    if not moves:
        return None, None
    return moves[-1].journey_id, moves[-1].state_id


class PublishingConformance:
    """Publishing agents and loading them back: ``publish``, ``load_agent``, ``find_agent``,
    ``agent_version``."""

    def test_publish_creates_the_agent_at_version_one(self, store: Store, run: Run) -> None:
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
            assert (stored.workspace_id, stored.agent_id, stored.version) == (
                WS,
                report.agent_id,
                1,
            )

        run(body())

    def test_identical_republish_writes_nothing_and_keeps_the_version(
        self, store: Store, run: Run
    ) -> None:
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
        self, store: Store, run: Run
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

    def test_dry_run_reports_the_publish_without_writing_it(self, store: Store, run: Run) -> None:
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

    def test_agent_version_follows_the_publishes_that_write(self, store: Store, run: Run) -> None:
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

    def test_publish_needs_a_known_workspace(self, store: Store, run: Run) -> None:
        with pytest.raises(NotFound):
            run(store.publish("nowhere", make_bundle()))

    def test_stranded_sessions_are_refused_then_mapped_then_forced(
        self, store: Store, run: Run
    ) -> None:
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
            assert dict(refused.value.report.stranded_sessions) == {
                "Book/confirm": 1
            }  # active only
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
        self, store: Store, run: Run
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

    def test_the_event_log_alone_gives_the_position_after_publishes_move_sessions(
        self, store: Store, run: Run
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
                WS,
                make_bundle(("ask", "check", "done")),
                state_mapping={"Book": {"confirm": "check"}},
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

    def test_load_agent_gives_ten_journeys_in_their_order(self, store: Store, run: Run) -> None:
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
