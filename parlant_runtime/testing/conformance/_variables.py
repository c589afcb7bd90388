"""The conformance tests of variables, waiting for events, usage counters and closing."""

from __future__ import annotations

import asyncio
import gc
import warnings
from collections.abc import Awaitable, Callable, Sequence
from uuid import UUID, uuid4

import pytest

from parlant_runtime.model import (
    Event,
    ValueType,
    VariableScope,
)
from parlant_runtime.storage.port import (
    InvalidData,
    NotFound,
    SessionStart,
    StorageError,
    Store,
    VariableChange,
)
from parlant_runtime.testing.conformance._support import (
    OTHER_WS,
    REPLY,
    WS,
    Run,
    make_bundle,
    message,
    publish,
    setup_agent,
    turn,
    usage_key,
)


def _customer(key: str, value: object, value_type: ValueType) -> VariableChange:
    return VariableChange(key=key, value=value, value_type=value_type, scope=VariableScope.CUSTOMER)


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


class VariableEventUsageConformance:
    """Variables by scope (``get_variables``), ``wait_for_events``, usage counters
    (``usage``, ``roll_up_usage``) and ``close``."""

    def test_customer_variables_are_shared_by_the_customers_sessions_only(
        self, store: Store, run: Run
    ) -> None:
        async def body() -> None:
            agent_id = await setup_agent(store)
            other_agent = (await store.publish(WS, make_bundle(name="Other"))).agent_id
            first = await store.create_session(
                WS, SessionStart(agent_id=agent_id, customer_id="c1")
            )
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
            again = await store.create_session(
                WS, SessionStart(agent_id=agent_id, customer_id="c1")
            )
            stranger = await store.create_session(
                WS, SessionStart(agent_id=agent_id, customer_id="c2")
            )
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
        self, store: Store, run: Run
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
                return [
                    (v.key, v.value, v.scope) for v in await store.get_variables(WS, session_id)
                ]

            session, customer = VariableScope.SESSION, VariableScope.CUSTOMER
            assert await merged(mine.id) == [("day", "tuesday", customer), ("visits", 5, session)]
            assert await merged(sibling.id) == [
                ("day", "tuesday", customer),
                ("visits", 0, customer),
            ]
            assert await merged(anonymous.id) == [
                ("day", "monday", session),
                ("visits", 0, customer),
            ]

            mine = await store.commit_turn(
                WS, turn(mine, variables=[VariableChange(key="day", value="friday")])
            )
            assert await merged(mine.id) == [("day", "friday", session), ("visits", 5, session)]
            assert await merged(sibling.id) == [
                ("day", "tuesday", customer),
                ("visits", 0, customer),
            ]
            await store.commit_turn(
                WS, turn(mine, variables=[VariableChange(key="day", value="saturday")])
            )
            assert await merged(mine.id) == [("day", "saturday", session), ("visits", 5, session)]

        run(body())

    def test_a_turn_that_sets_a_key_twice_keeps_the_last_value(
        self, store: Store, run: Run
    ) -> None:
        async def body() -> None:
            agent_id = await setup_agent(store)
            start = SessionStart(agent_id=agent_id, customer_id="c1")
            session = await store.create_session(WS, start)
            await store.commit_turn(
                WS,
                turn(
                    session,
                    variables=[
                        VariableChange(key="day", value="tuesday"),
                        _customer("visits", 1, ValueType.NUMBER),
                        VariableChange(key="day", value="friday"),
                        _customer("visits", 2, ValueType.NUMBER),
                    ],
                ),
            )
            found = {v.key: (v.value, v.scope) for v in await store.get_variables(WS, session.id)}
            assert found == {
                "day": ("friday", VariableScope.SESSION),
                "visits": (2, VariableScope.CUSTOMER),
            }

        run(body())

    def test_customer_scoped_values_name_their_customer(self, store: Store, run: Run) -> None:

        async def body() -> None:
            agent_id = await setup_agent(store)
            session = await store.create_session(
                WS, SessionStart(agent_id=agent_id, customer_id="c1")
            )
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

    def test_wait_for_events_returns_at_once_when_events_exist(
        self, store: Store, run: Run
    ) -> None:
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

    def test_wait_for_events_wakes_when_another_task_commits(self, store: Store, run: Run) -> None:
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

    def test_wait_for_events_returns_nothing_after_the_timeout(
        self, store: Store, run: Run
    ) -> None:
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

    def test_usage_counts_pending_deltas_and_roll_up_folds_them_in(
        self, store: Store, run: Run
    ) -> None:
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
                **{
                    kind: {counter: 4} for kind, (_, counter) in entities.items() if kind != "agent"
                },
            }
            for kind, (id_, _) in entities.items():
                assert await store.usage(WS, kind, id_) == expected[kind], kind
            assert await store.roll_up_usage() == 2 + 2 * len(deltas)
            for kind, (id_, _) in entities.items():
                assert await store.usage(WS, kind, id_) == expected[kind], kind
            assert await store.roll_up_usage() == 0

        run(body())

    def test_a_sessions_tokens_and_cost_roll_up_into_its_row(self, store: Store, run: Run) -> None:
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
        self, store: Store, run: Run
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

    def test_usage_of_an_unknown_id_is_not_found(self, store: Store, run: Run) -> None:
        async def body() -> None:
            await setup_agent(store)
            for kind in ("agent", "guideline", "journey", "tool"):
                with pytest.raises(NotFound):
                    await store.usage(WS, kind, uuid4())

        run(body())

    @pytest.mark.parametrize("kind", ["planet", "state", ""])
    def test_usage_of_a_kind_without_counters_is_invalid(
        self, store: Store, run: Run, kind: str
    ) -> None:

        async def body() -> None:
            agent_id = await setup_agent(store)
            with pytest.raises(InvalidData, match="no usage counters"):
                await store.usage(WS, kind, agent_id)

        run(body())

    def test_a_closed_store_refuses_every_operation(self, store: Store, run: Run) -> None:
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
                "wait_for_events": lambda: store.wait_for_events(
                    WS, session.id, after=-1, timeout=0.1
                ),
            }
            for name, call in calls.items():
                try:
                    await call()
                except StorageError:
                    continue
                pytest.fail(f"{name} worked on a closed store")

        run(body())

    def test_close_releases_pending_waiters(self, store: Store, run: Run) -> None:
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
        self, store: Store, run: Run
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

    def test_a_tool_the_agent_drops_keeps_its_counters(self, store: Store, run: Run) -> None:
        async def body() -> None:
            bundle = make_bundle()
            agent_id = await setup_agent(store, bundle)
            tool = (await store.load_agent(WS, agent_id)).bundle.tools[0].id
            session = await store.create_session(WS, SessionStart(agent_id=agent_id))
            await store.commit_turn(
                WS, turn(session, usage={usage_key("tool", tool, "use_count"): 2})
            )
            await store.roll_up_usage()
            await publish(store, WS, bundle.model_copy(update={"tools": []}))
            assert (await store.usage(WS, "tool", tool))["use_count"] == 2  # the workspace's tool
            with pytest.raises(NotFound):  # but not another workspace's
                await store.usage(OTHER_WS, "tool", tool)
            again = await store.get_session(WS, session.id)
            await store.commit_turn(
                WS, turn(again, usage={usage_key("tool", tool, "use_count"): 1})
            )
            await store.roll_up_usage()
            assert (await store.usage(WS, "tool", tool))["use_count"] == 3

        run(body())
