"""What a store reads back is exactly what validation would give.

The SQL adapter builds models from its own rows without validating them again
(:mod:`parlant_runtime.storage.sql.trusted`). These tests validate every model a
store answers with from its own data and compare: the same values of the same
types (enums, UUIDs, datetimes), the same fields set, at every depth. On the memory
adapter they check the reference the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from pydantic import BaseModel

from parlant_runtime import load_bundle
from parlant_runtime.model import (
    EventType,
    Session,
    SessionMode,
    SessionStatus,
    ValueType,
    VariableScope,
)
from parlant_runtime.storage.port import NewEvent, SessionStart, Store, VariableChange
from parlant_runtime.storage.sql.trusted import Trusted
from tests.storage.support import (
    EXAMPLES,
    WS,
    Run,
    make_bundle,
    message,
    publish,
    setup_agent,
    state_ids,
    turn,
)


def same(built: Any, validated: Any, path: str = "") -> None:
    """``built`` and ``validated`` hold equal values of the very same types."""
    assert type(built) is type(validated), f"{path}: {type(built)} vs {type(validated)}"
    if isinstance(built, BaseModel):
        assert built.model_fields_set == validated.model_fields_set, path
        assert list(built.__dict__) == list(validated.__dict__), path
        for name in type(built).model_fields:
            same(getattr(built, name), getattr(validated, name), f"{path}.{name}")
    elif isinstance(built, list | tuple):
        assert len(built) == len(validated), path
        for index, (a, b) in enumerate(zip(built, validated, strict=True)):
            same(a, b, f"{path}[{index}]")
    elif isinstance(built, dict):
        assert list(built) == list(validated), path
        for key in built:
            same(built[key], validated[key], f"{path}.{key}")
    else:
        assert built == validated, path


def as_validated(model: BaseModel) -> None:
    """The model equals the validation of its own data (the fields it has set)."""
    data = model.model_dump(by_alias=False, exclude_unset=True)
    same(model, type(model).model_validate(data), type(model).__name__)


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda path: Path(path).stem)
def test_a_loaded_bundle_is_what_validation_gives(store: Store, run: Run, path: Path) -> None:
    async def body() -> None:
        await setup_agent(store)
        report = await publish(store, WS, load_bundle(path))
        as_validated((await store.load_agent(WS, report.agent_id)).bundle)

    run(body())


def test_a_big_bundle_with_every_kind_of_row_is_what_validation_gives(
    store: Store, run: Run
) -> None:
    bundle = make_bundle(
        ("ask", "check", "confirm", "done"),
        {"greet": "Say hi.", "close": "Say bye."},
        journeys=("Book", "Cancel", "Move"),
    )

    async def body() -> None:
        agent_id = await setup_agent(store, bundle)
        stored = (await store.load_agent(WS, agent_id)).bundle
        assert stored.tools
        assert stored.variables
        assert stored.journeys[0].guidelines
        as_validated(stored)

    run(body())


def test_sessions_events_and_variables_are_what_validation_gives(store: Store, run: Run) -> None:
    async def body() -> None:
        agent_id = await setup_agent(store)
        journey, state = await state_ids(store, agent_id, "confirm")
        created = await store.create_session(
            WS,
            SessionStart(
                agent_id=agent_id, customer_id="c1", title="T", metadata={"a": [1, {"b": None}]}
            ),
        )
        committed = await store.commit_turn(
            WS,
            turn(
                created,
                events=[
                    message("hi", key="k1"),
                    NewEvent(
                        event_type=EventType.JOURNEY_TRANSITION,
                        journey_id=journey,
                        state_id=state,
                        metadata={"x": 1.5},
                    ),
                ],
                current_journey_id=journey,
                current_state_id=state,
                mode=SessionMode.MANUAL,
                status=SessionStatus.COMPLETED,
                metadata={"m": "n"},
                variables=[
                    VariableChange(key="day", value="friday"),
                    VariableChange(
                        key="visits",
                        value=3,
                        scope=VariableScope.CUSTOMER,
                        value_type=ValueType.NUMBER,
                    ),
                ],
            ),
        )
        for session in (
            created,
            committed,
            await store.get_session(WS, created.id),
            *await store.list_sessions(WS, agent_id),
        ):
            as_validated(session)
        events = await store.list_events(WS, created.id)
        assert len(events) == 2
        for event in events:
            as_validated(event)
        found = await store.find_message(WS, created.id, "k1")
        assert found is not None
        as_validated(found)
        variables = await store.get_variables(WS, created.id)
        assert {v.key for v in variables} == {"day", "visits"}
        for variable in variables:
            as_validated(variable)

    run(body())


class _AsyncpgLikeUUID(UUID):
    """A UUID subclass, as asyncpg answers with."""


def test_trusted_converts_enums_keeps_other_values_and_fills_defaults() -> None:
    build = Trusted(Session)
    raw = _AsyncpgLikeUUID("12345678-1234-5678-1234-567812345678")
    session = build({"agent_id": raw, "workspace_id": "w", "mode": "manual", "status": None})
    validated = Session.model_validate({"agent_id": raw, "workspace_id": "w"})
    assert type(validated.agent_id) is _AsyncpgLikeUUID  # validation keeps the subclass
    assert session.agent_id is raw  # and so does Trusted
    assert session.mode is SessionMode.MANUAL
    # NULL where the field cannot be empty (a host's looser column): the field's default
    assert session.status is SessionStatus.ACTIVE
    assert "status" not in session.model_fields_set
    assert session.metadata == {}
    assert session.tags == []
    assert session.model_fields_set == {"agent_id", "workspace_id", "mode"}
    other = build({"agent_id": raw, "workspace_id": "w"})
    assert other.metadata is not session.metadata  # defaults are not shared
    with pytest.raises(KeyError):
        build({"workspace_id": "w"})  # a required field is missing
