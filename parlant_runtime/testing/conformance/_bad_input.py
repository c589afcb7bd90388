"""Bad input to a turn: a clear :class:`InvalidData` and nothing written, on every adapter.

Each case starts from a session that already has a turn behind it (events, a
position, variables, usage) and checks afterwards that its version, events,
variables, position and the usage counters are exactly what they were.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

import pytest

from parlant_runtime.bundle.schema import AgentBundle
from parlant_runtime.model import EventType, Session, ValueType, VariableScope
from parlant_runtime.storage.checks import json_size
from parlant_runtime.storage.port import (
    MAX_EVENT_BYTES,
    MAX_EVENTS_PER_TURN,
    MAX_VARIABLE_BYTES,
    ConcurrentUpdate,
    DuplicateMessage,
    InvalidData,
    NewEvent,
    NotFound,
    SessionStart,
    StorageError,
    Store,
    TurnCommit,
    VariableChange,
)
from parlant_runtime.testing.conformance._support import (
    WS,
    Run,
    Snapshot,
    make_bundle,
    message,
    setup_agent,
    snapshot,
    turn,
    usage_key,
)


@dataclass(frozen=True)
class Scene:
    """A session of agent ``Clinic`` (journeys Book and Rebook) beside agent ``Other``."""

    agent: UUID
    bundle: AgentBundle
    other: AgentBundle
    session: Session


async def stage(store: Store, customer: str | None = "c1") -> Scene:
    agent = await setup_agent(
        store, make_bundle(guidelines={"greet": "Say hi."}, journeys=("Book", "Rebook"))
    )
    other = (await store.publish(WS, make_bundle(name="Other"))).agent_id
    bundle = (await store.load_agent(WS, agent)).bundle
    journey = bundle.journeys[0]
    session = await store.create_session(WS, SessionStart(agent_id=agent, customer_id=customer))
    session = await store.commit_turn(
        WS,
        turn(
            session,
            events=[message("hi", key="k-1")],
            variables=[VariableChange(key="day", value="tuesday")],
            current_journey_id=journey.id,
            current_state_id=journey.states[0].id,
            usage={usage_key("guideline", bundle.guidelines[0].id, "match_count"): 1},
        ),
    )
    return Scene(agent, bundle, (await store.load_agent(WS, other)).bundle, session)


async def state_of(store: Store, scene: Scene) -> tuple[Snapshot, dict[str, int]]:
    stored = await snapshot(store, [(WS, scene.session.id)], [(WS, scene.agent)])
    guideline = await store.usage(WS, "guideline", scene.bundle.guidelines[0].id)
    return stored, guideline


def _var(key: str, value: Any, value_type: ValueType = ValueType.STRING) -> dict[str, Any]:
    return {"variables": [VariableChange(key=key, value=value, value_type=value_type)]}


def _events(*events: NewEvent) -> dict[str, Any]:
    return {"events": list(events)}


def _content(content: dict[str, Any], **fields: Any) -> NewEvent:
    return NewEvent(event_type=EventType.AGENT_MESSAGE, content=content, **fields)


OK_EVENT = message("fine")


OK_VARIABLE = VariableChange(key="day", value="friday")


Case = Callable[[Scene], dict[str, Any]]


EVENTS: dict[str, tuple[Case, str | None]] = {
    "event-too-large": (
        lambda s: _events(OK_EVENT, _content({"text": "x" * MAX_EVENT_BYTES})),
        "bytes of JSON",
    ),
    "event-metadata-too-large": (
        lambda s: _events(_content({}, metadata={"blob": "x" * MAX_EVENT_BYTES})),
        "bytes of JSON",
    ),
    "too-many-events": (
        lambda s: _events(*[OK_EVENT] * (MAX_EVENTS_PER_TURN + 1)),
        "at most",
    ),
    "nan-in-an-event": (lambda s: _events(OK_EVENT, _content({"score": math.nan})), "not JSON"),
    "infinity-in-an-event": (
        lambda s: _events(_content({}, metadata={"score": -math.inf})),
        "not JSON",
    ),
    "bytes-in-an-event": (lambda s: _events(_content({"raw": b"\x01"})), "not JSON"),
    "key-repeated-in-one-turn": (
        lambda s: _events(message("a", key="k-2"), message("b", key="k-2")),
        "repeats in one turn",
    ),
}


VARIABLES: dict[str, tuple[Case, str | None]] = {
    "variable-too-large": (
        lambda s: {
            "variables": [OK_VARIABLE, VariableChange(key="note", value="x" * MAX_VARIABLE_BYTES)]
        },
        "bytes of JSON",
    ),
    "string-given-a-number": (lambda s: _var("day", 3), "not a string"),
    "number-given-text": (lambda s: _var("n", "3", ValueType.NUMBER), "not a number"),
    "number-given-a-boolean": (lambda s: _var("n", True, ValueType.NUMBER), "not a number"),
    "boolean-given-text": (lambda s: _var("b", "yes", ValueType.BOOLEAN), "not a boolean"),
    "object-given-a-list": (lambda s: _var("o", [1], ValueType.OBJECT), "not a object"),
    "array-given-an-object": (lambda s: _var("a", {"x": 1}, ValueType.ARRAY), "not a array"),
    "nan-variable": (lambda s: _var("n", math.nan, ValueType.NUMBER), "not a number"),
    "infinite-variable": (lambda s: _var("n", math.inf, ValueType.NUMBER), "not a number"),
    "nan-inside-an-object": (lambda s: _var("o", {"x": math.nan}, ValueType.OBJECT), "not JSON"),
    "key-with-a-space": (lambda s: _var("not a key", "x"), "not an identifier"),
    "key-with-a-dash": (lambda s: _var("day-name", "x"), "not an identifier"),
    "key-starting-with-a-digit": (lambda s: _var("1day", "x"), "not an identifier"),
    "empty-key": (lambda s: _var("", "x"), "not an identifier"),
    "non-ascii-key": (lambda s: _var("día", "x"), "not an identifier"),
    "global-variable": (
        lambda s: {"variables": [VariableChange(key="x", value="y", scope=VariableScope.GLOBAL)]},
        "global values are set by publishing",
    ),
}


POSITIONS: dict[str, tuple[Case, str | None]] = {
    "state-without-its-journey": (
        lambda s: {
            "current_journey_id": None,
            "current_state_id": s.bundle.journeys[0].states[1].id,
        },
        "journey too",
    ),
    "state-of-another-agent": (
        lambda s: {
            "current_journey_id": s.other.journeys[0].id,
            "current_state_id": s.other.journeys[0].states[1].id,
        },
        "not a state of",
    ),
    "own-journey-state-of-another-agent": (
        lambda s: {
            "current_journey_id": s.bundle.journeys[0].id,
            "current_state_id": s.other.journeys[0].states[1].id,
        },
        "not a state of",
    ),
    "state-of-another-journey": (
        lambda s: {
            "current_journey_id": s.bundle.journeys[0].id,
            "current_state_id": s.bundle.journeys[1].states[1].id,
        },
        "not a state of",
    ),
    "unknown-state": (
        lambda s: {"current_journey_id": s.bundle.journeys[0].id, "current_state_id": uuid4()},
        "not a state of",
    ),
    "unknown-journey": (lambda s: {"current_journey_id": uuid4(), "current_state_id": None}, None),
}


USAGE: dict[str, tuple[Case, str | None]] = {
    "unknown-usage-counter": (
        lambda s: {"usage": {usage_key("guideline", s.bundle.guidelines[0].id, "hits"): 1}},
        "no usage counter",
    ),
    "counter-of-another-kind": (
        lambda s: {"usage": {usage_key("guideline", s.bundle.guidelines[0].id, "use_count"): 1}},
        "no usage counter",
    ),
    "unknown-usage-entity": (
        lambda s: {"usage": {usage_key("planet", s.agent, "use_count"): 1}},
        "no usage counters",
    ),
    "usage-key-without-uuid": (lambda s: {"usage": {"guideline:x:match_count": 1}}, "usage key"),
    "usage-key-with-extra-part": (
        lambda s: {"usage": {usage_key("agent", s.agent, "total_sessions") + ":x": 1}},
        "usage key",
    ),
}


SESSION: dict[str, tuple[Case, str | None]] = {
    "metadata-too-large": (
        lambda s: {"metadata": {"blob": "x" * MAX_EVENT_BYTES}},
        "metadata is larger",
    ),
    "nan-in-metadata": (lambda s: {"metadata": {"score": math.nan}}, "not JSON"),
}


CASES = {
    "events": EVENTS,
    "variables": VARIABLES,
    "positions": POSITIONS,
    "usage": USAGE,
    "session": SESSION,
}


async def refused_and_unchanged(
    store: Store, scene: Scene, changes: dict[str, Any], error: str | None, case: str
) -> None:
    """Commit ``changes`` on top of the scene's session: refused, changing nothing."""
    before = await state_of(store, scene)
    base = {
        "events": [OK_EVENT],
        "variables": [OK_VARIABLE],
        "current_journey_id": scene.session.current_journey_id,
        "current_state_id": scene.session.current_state_id,
    }
    refused: InvalidData | None = None
    try:
        await store.commit_turn(WS, turn(scene.session, **{**base, **changes}))
    except InvalidData as exc:
        refused = exc
    except Exception as exc:
        raise AssertionError(f"{case}: {type(exc).__name__} instead of InvalidData") from exc
    if refused is None:
        pytest.fail(f"{case}: the turn was committed")
    assert str(refused), f"{case}: the error says nothing"
    assert error is None or re.search(error, str(refused)), f"{case}: {refused}"
    assert await state_of(store, scene) == before, f"{case}: the refused turn wrote something"


KEYS_SQL_ACCEPTS = {
    "key-with-a-trailing-newline": "day\n",
    "key-longer-than-200": "k" * 201,
}


SQL_ACCEPTS = {
    "journey-of-another-agent": lambda s: {
        "current_journey_id": s.other.journeys[0].id,
        "current_state_id": None,
    },
    "event-journey-of-another-agent": lambda s: _events(
        NewEvent(event_type=EventType.JOURNEY_TRANSITION, journey_id=s.other.journeys[0].id)
    ),
    "event-state-of-another-agent": lambda s: _events(
        NewEvent(
            event_type=EventType.JOURNEY_TRANSITION,
            journey_id=s.bundle.journeys[0].id,
            state_id=s.other.journeys[0].states[1].id,
        )
    ),
}


STARTS: dict[str, tuple[dict[str, Any], str]] = {
    # name: (start fields, what the error says)
    "nan-in-metadata": ({"metadata": {"score": math.nan}}, "not JSON"),
    "bytes-in-metadata": ({"metadata": {"raw": b"\x01"}}, "not JSON"),
    "metadata-too-large": ({"metadata": {"blob": "x" * MAX_EVENT_BYTES}}, "larger than"),
    "nul-in-metadata": ({"metadata": {"note": ["a\x00b"]}}, r"metadata\.note\[0\].*NUL"),
    "nul-in-a-metadata-key": ({"metadata": {"a\x00": 1}}, "a key.*NUL"),
    "nul-in-title": ({"title": "a\x00b"}, "title.*NUL"),
    "nul-in-customer-id": ({"customer_id": "c\x00"}, "customer id.*NUL"),
    "unknown-user": ({"user_id": "nobody"}, "not a user of the host database"),
}


Fault = Callable[[Scene], TurnCommit]


def _unknown_with_bad_variable(s: Scene) -> TurnCommit:
    return TurnCommit(
        session_id=uuid4(), expected_version=99, variables=[VariableChange(key="x y", value="1")]
    )


def _unknown_and_stale(s: Scene) -> TurnCommit:
    return TurnCommit(session_id=uuid4(), expected_version=99)


def _stale_with_foreign_state(s: Scene) -> TurnCommit:
    journey = s.other.journeys[0]
    return turn(
        s.session,
        expected_version=0,
        current_journey_id=journey.id,
        current_state_id=journey.states[0].id,
    )


def _duplicate_without_customer(s: Scene) -> TurnCommit:
    change = VariableChange(
        key="visits", value=1, value_type=ValueType.NUMBER, scope=VariableScope.CUSTOMER
    )
    return turn(s.session, events=[message("again", key="k-1")], variables=[change])


def _duplicate_with_unknown_journey(s: Scene) -> TurnCommit:
    event = NewEvent(
        event_type=EventType.CUSTOMER_MESSAGE, journey_id=uuid4(), idempotency_key="k-1"
    )
    return turn(s.session, events=[event])


FAULTS: dict[str, tuple[Fault, type[StorageError], str | None]] = {
    # name: (turn, the error the reference order gives, customer of the session)
    "bad-variable-before-not-found": (_unknown_with_bad_variable, InvalidData, "c1"),
    "not-found-before-conflict": (_unknown_and_stale, NotFound, "c1"),
    "conflict-before-foreign-state": (_stale_with_foreign_state, ConcurrentUpdate, "c1"),
    "scope-before-duplicate": (_duplicate_without_customer, InvalidData, None),
    "ids-before-duplicate": (_duplicate_with_unknown_journey, InvalidData, "c1"),
}


class BadInputConformance:
    """Bad input to a turn or a session start: :class:`InvalidData` and nothing written."""

    @pytest.mark.parametrize("group", list(CASES))
    def test_bad_turns_are_refused_and_write_nothing(
        self, store: Store, run: Run, group: str
    ) -> None:
        # One scene for the whole group: each refusal must leave it exactly as it was.
        async def body() -> None:
            scene = await stage(store)
            for case, (changes_of, error) in CASES[group].items():
                await refused_and_unchanged(store, scene, changes_of(scene), error, case)

        run(body())

    @pytest.mark.parametrize("case", list(KEYS_SQL_ACCEPTS))
    def test_a_key_the_variable_model_refuses_is_refused_and_writes_nothing(
        self, store: Store, run: Run, case: str
    ) -> None:

        async def body() -> None:
            scene = await stage(store)
            await refused_and_unchanged(store, scene, _var(KEYS_SQL_ACCEPTS[case], "x"), None, case)

        run(body())

    @pytest.mark.parametrize("case", list(SQL_ACCEPTS))
    def test_a_journey_or_state_of_another_agent_is_refused_and_writes_nothing(
        self, store: Store, run: Run, case: str
    ) -> None:

        async def body() -> None:
            scene = await stage(store)
            await refused_and_unchanged(store, scene, SQL_ACCEPTS[case](scene), None, case)

        run(body())

    def test_a_customer_variable_needs_a_customer(self, store: Store, run: Run) -> None:
        async def body() -> None:
            scene = await stage(store, customer=None)
            change = VariableChange(
                key="visits", value=1, value_type=ValueType.NUMBER, scope=VariableScope.CUSTOMER
            )
            await refused_and_unchanged(
                store, scene, {"variables": [change]}, "no customer", "scope"
            )

        run(body())

    @pytest.mark.parametrize("where", ["content", "variable", "idempotency-key"])
    def test_a_nul_character_is_refused_alike_everywhere(
        self, store: Store, run: Run, where: str
    ) -> None:
        async def body() -> None:
            scene = await stage(store)
            changes = {
                "content": _events(_content({"text": "a\x00b"})),
                "variable": _var("note", "a\x00b"),
                "idempotency-key": _events(message("x", key="k\x00")),
            }[where]
            await refused_and_unchanged(store, scene, changes, "NUL character", where)

        run(body())

    @pytest.mark.parametrize("case", list(STARTS))
    def test_a_bad_session_start_is_refused_and_creates_nothing(
        self, store: Store, run: Run, case: str
    ) -> None:
        fields, error = STARTS[case]

        async def body() -> None:
            scene = await stage(store)
            before = await store.list_sessions(WS, scene.agent)
            usage = await store.usage(WS, "agent", scene.agent)
            start = SessionStart.model_validate({"agent_id": scene.agent, **fields})
            refused: InvalidData | None = None
            try:
                await store.create_session(WS, start)
            except InvalidData as exc:
                refused = exc
            except Exception as exc:
                raise AssertionError(f"{type(exc).__name__} instead of InvalidData") from exc
            assert refused is not None, "the session was created"
            assert re.search(error, str(refused)), str(refused)
            assert await store.list_sessions(WS, scene.agent) == before
            assert await store.usage(WS, "agent", scene.agent) == usage

        run(body())

    def test_a_nul_character_in_a_workspace_id_is_refused_alike(
        self, store: Store, run: Run
    ) -> None:
        async def body() -> None:
            with pytest.raises(InvalidData):
                await store.ensure_workspace("ws\x00")
            with pytest.raises(NotFound):
                await store.publish("ws\x00", make_bundle())

        run(body())

    def test_a_nul_character_in_an_agent_name_is_refused_alike(
        self, store: Store, run: Run
    ) -> None:
        async def body() -> None:
            await setup_agent(store)
            with pytest.raises(InvalidData):
                await store.publish(WS, make_bundle(name="N\x00"))
            assert await store.find_agent(WS, "N\x00") is None

        run(body())

    def test_an_event_at_exactly_the_size_limit_is_accepted(self, store: Store, run: Run) -> None:
        async def body() -> None:
            scene = await stage(store)
            padding = MAX_EVENT_BYTES - json_size({"content": {"text": ""}, "metadata": {}})
            event = _content({"text": "x" * padding})
            assert (
                json_size({"content": event.content, "metadata": event.metadata}) == MAX_EVENT_BYTES
            )
            after = await store.commit_turn(WS, turn(scene.session, events=[event]))
            assert after.event_count == scene.session.event_count + 1
            (stored,) = await store.list_events(WS, scene.session.id, after=0)
            assert stored.content == event.content

            big = VariableChange(key="note", value="x" * (MAX_VARIABLE_BYTES - 2))
            after = await store.commit_turn(WS, turn(after, variables=[big]))
            values = {v.key: v.value for v in await store.get_variables(WS, scene.session.id)}
            assert values["note"] == big.value

        run(body())

    def test_a_negative_limit_is_refused(self, store: Store, run: Run) -> None:
        async def body() -> None:
            scene = await stage(store)
            with pytest.raises(InvalidData):
                await store.list_events(WS, scene.session.id, limit=-1)

        run(body())

    @pytest.mark.parametrize("case", list(FAULTS))
    def test_a_turn_with_several_faults_gets_the_first_in_the_documented_order(
        self, store: Store, run: Run, case: str
    ) -> None:
        make_turn, expected, customer = FAULTS[case]

        async def body() -> None:
            scene = await stage(store, customer=customer)
            before = await state_of(store, scene)
            with pytest.raises(StorageError) as refused:
                await store.commit_turn(WS, make_turn(scene))
            assert type(refused.value) is expected
            assert not isinstance(refused.value, DuplicateMessage)
            assert await state_of(store, scene) == before

        run(body())
