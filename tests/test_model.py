"""The stored records (sessions, events, variable values) and the enums of the host database.

The bundle's definitions (``*Spec``) have their field rules tested in
``tests/test_bundle_fields.py``.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

import pytest
from pydantic import ValidationError

from parlant_runtime.model import (
    NIL_ID,
    AgentStatus,
    CompositionMode,
    Event,
    EventType,
    IntegrationType,
    Model,
    Session,
    SessionMode,
    SessionStatus,
    StateType,
    ToolType,
    ValueType,
    Variable,
    VariableScope,
    VariableSpec,
    value_fits_type,
)

AGENT_ID = UUID("7b0f4a52-3c51-4f0e-9d2a-0c1f6c8e9a01")
SESSION_ID = UUID("0d6c1e7a-8f0b-4a47-b0b1-2f3e4d5c6b02")
JOURNEY_ID = UUID("a1e2c3d4-5b6a-4c7d-8e9f-0a1b2c3d4e03")
STATE_A = UUID("b2f3d4e5-6c7b-4d8e-9fa0-1b2c3d4e5f04")
STATE_B = UUID("c3a4e5f6-7d8c-4e9f-a0b1-2c3d4e5f6a05")
ROW_ID = UUID("f6d7b8c9-a0bf-4bc2-93e4-5f6a7b8c9d08")
WORKSPACE = "ws_2Yk9p8VQ"
CREATED = datetime(2025, 9, 14, 8, 30, 12, 345000, tzinfo=UTC)
UPDATED = datetime(2025, 9, 15, 17, 2, 45, 120000, tzinfo=UTC)


# --------------------------------------------------------------------------- enums


@pytest.mark.parametrize(
    ("enum", "values"),
    [
        pytest.param(AgentStatus, {"active", "inactive", "archived"}, id="agent_status"),
        pytest.param(SessionMode, {"auto", "manual", "paused"}, id="session_mode"),
        pytest.param(SessionStatus, {"active", "completed", "abandoned"}, id="session_status"),
        pytest.param(
            EventType,
            {
                "customer_message",
                "agent_message",
                "tool_call",
                "tool_result",
                "status_update",
                "journey_transition",
                "variable_update",
            },
            id="event_type",
        ),
        pytest.param(StateType, {"chat", "tool", "decision", "final"}, id="journey_state_type"),
        pytest.param(CompositionMode, {"fluid", "strict"}, id="composition_mode"),
        pytest.param(VariableScope, {"session", "customer", "global"}, id="variable_scope"),
        pytest.param(
            ValueType, {"string", "number", "boolean", "object", "array"}, id="value_type"
        ),
        pytest.param(ToolType, {"sim_native", "custom", "external"}, id="tool_type"),
        pytest.param(
            IntegrationType, {"custom_tool", "workflow_block", "mcp_server"}, id="integration_type"
        ),
    ],
)
def test_enum_has_exactly_the_host_database_values(enum: type[StrEnum], values: set[str]) -> None:
    found = [member.value for member in enum]
    assert len(found) == len(values)
    assert set(found) == values
    for value in values:
        assert enum(value).value == value


# ---------------------------------------------------------------- minimal rows

MINIMAL: dict[type[Model], dict[str, Any]] = {
    Session: {"agentId": AGENT_ID, "workspaceId": WORKSPACE},
    Event: {"sessionId": SESSION_ID, "offset": 0, "eventType": "customer_message"},
    Variable: {"agentId": AGENT_ID, "key": "patient_name"},
}


def _with(cls: type[Model], **changes: Any) -> dict[str, Any]:
    return {**MINIMAL[cls], **changes}


@pytest.mark.parametrize("cls", list(MINIMAL), ids=lambda cls: cls.__name__)
def test_minimal_row_is_valid(cls: type[Model]) -> None:
    model = cls.model_validate(MINIMAL[cls])
    dumped = model.model_dump(by_alias=True)
    for key, value in MINIMAL[cls].items():
        assert dumped[key] == value


def test_session_defaults() -> None:
    session = Session.model_validate(MINIMAL[Session])
    assert session.id == NIL_ID
    assert session.mode is SessionMode.AUTO
    assert session.status is SessionStatus.ACTIVE
    assert session.current_journey_id is None
    assert session.current_state_id is None
    assert session.variables == {}
    assert session.metadata == {}
    assert session.tags == []
    assert (session.event_count, session.message_count, session.tokens_used) == (0, 0, 0)
    assert session.cost == 0
    assert session.version == 0


def test_variable_defaults() -> None:
    variable = Variable.model_validate(MINIMAL[Variable])
    assert variable.scope is VariableScope.SESSION
    assert variable.value_type is ValueType.STRING
    assert variable.value is None
    assert variable.is_private is False
    assert variable.session_id is None
    assert variable.customer_id is None


def test_the_variable_row_is_the_bundle_entry_plus_where_it_is_stored() -> None:
    # one definition: the row adds only its owner and timestamps to the entry's fields
    entry_fields = list(VariableSpec.model_fields)
    row_fields = list(Variable.model_fields)
    assert row_fields[: len(entry_fields)] == entry_fields
    assert set(row_fields) - set(entry_fields) == {
        "agent_id",
        "session_id",
        "customer_id",
        "created_at",
        "updated_at",
    }


def test_mutable_defaults_are_not_shared_between_instances() -> None:
    one = Session.model_validate(MINIMAL[Session])
    two = Session.model_validate(MINIMAL[Session])
    one.tags.append("vip")
    one.variables["x"] = 1
    one.metadata["y"] = 2
    assert two.tags == []
    assert two.variables == {}
    assert two.metadata == {}


# ---------------------------------------------------------- ranges and enums

COUNTER_FIELDS = [
    *(
        pytest.param(Session, alias, id=f"session.{alias}")
        for alias in (
            "eventCount",
            "messageCount",
            "tokensUsed",
            "cost",
            "averageResponseTime",
            "version",
        )
    ),
    pytest.param(Event, "offset", id="event.offset"),
]


@pytest.mark.parametrize(("cls", "alias"), COUNTER_FIELDS)
def test_negative_counter_is_refused(cls: type[Model], alias: str) -> None:
    with pytest.raises(ValidationError, match=alias):
        cls.model_validate(_with(cls, **{alias: -1}))


@pytest.mark.parametrize(("cls", "alias"), COUNTER_FIELDS)
def test_zero_counter_is_accepted(cls: type[Model], alias: str) -> None:
    model = cls.model_validate(_with(cls, **{alias: 0}))
    assert model.model_dump(by_alias=True)[alias] == 0


@pytest.mark.parametrize(
    ("cls", "alias", "value"),
    [
        pytest.param(Session, "mode", "automatic", id="session_mode"),
        pytest.param(Session, "status", "closed", id="session_status"),
        pytest.param(Event, "eventType", "message", id="event_type"),
        pytest.param(Variable, "scope", "user", id="variable_scope"),
        pytest.param(Variable, "valueType", "integer", id="value_type"),
    ],
)
def test_value_outside_enum_is_refused(cls: type[Model], alias: str, value: str) -> None:
    with pytest.raises(ValidationError, match=alias):
        cls.model_validate(_with(cls, **{alias: value}))


@pytest.mark.parametrize(
    ("cls", "alias", "value"),
    [
        pytest.param(Session, "eventCount", "3", id="counter_as_text"),
        pytest.param(Session, "satisfactionScore", 4.5, id="score_as_float"),
        pytest.param(Event, "offset", True, id="offset_as_bool"),
        pytest.param(Variable, "isPrivate", "yes", id="flag_as_text"),
    ],
)
def test_types_are_strict(cls: type[Model], alias: str, value: Any) -> None:
    with pytest.raises(ValidationError, match=alias):
        cls.model_validate(_with(cls, **{alias: value}))


# -------------------------------------------------------------------- aliases


@pytest.mark.parametrize(
    ("cls", "camel", "snake"),
    [
        pytest.param(
            Event,
            {
                "sessionId": SESSION_ID,
                "offset": 3,
                "eventType": "tool_call",
                "toolCallId": "call_1",
            },
            {
                "session_id": SESSION_ID,
                "offset": 3,
                "event_type": "tool_call",
                "tool_call_id": "call_1",
            },
            id="event",
        ),
        pytest.param(
            Session,
            {"agentId": AGENT_ID, "workspaceId": WORKSPACE, "customerId": "c-9"},
            {"agent_id": AGENT_ID, "workspace_id": WORKSPACE, "customer_id": "c-9"},
            id="session",
        ),
        pytest.param(
            Variable,
            {"agentId": AGENT_ID, "key": "k", "valueType": "number", "isPrivate": True},
            {"agent_id": AGENT_ID, "key": "k", "value_type": "number", "is_private": True},
            id="variable",
        ),
    ],
)
def test_camel_case_and_snake_case_give_equal_models(
    cls: type[Model], camel: dict[str, Any], snake: dict[str, Any]
) -> None:
    from_camel = cls.model_validate(camel)
    from_snake = cls.model_validate(snake)
    assert from_camel == from_snake
    assert cls.model_validate(from_camel.model_dump()) == from_camel


@pytest.mark.parametrize(
    ("cls", "data", "alias"),
    [
        pytest.param(Event, _with(Event, toolCallId="call_7"), "toolCallId", id="toolCallId"),
        pytest.param(Session, _with(Session, customerId="c-1"), "customerId", id="customerId"),
        pytest.param(Variable, _with(Variable, isPrivate=True), "isPrivate", id="isPrivate"),
    ],
)
def test_dump_uses_the_seed_camel_case_names(
    cls: type[Model], data: dict[str, Any], alias: str
) -> None:
    model = cls.model_validate(data)
    dumped = model.model_dump(by_alias=True)
    assert alias in dumped
    assert dumped[alias] == data.get(alias, dumped[alias])
    assert all("_" not in key for key in dumped), sorted(dumped)
    assert model.model_dump() == dumped  # camelCase is also the default output


@pytest.mark.parametrize("cls", list(MINIMAL), ids=lambda cls: cls.__name__)
def test_unknown_key_is_refused(cls: type[Model]) -> None:
    with pytest.raises(ValidationError, match="extra_forbidden"):
        cls.model_validate(_with(cls, interruptionPolicy="never"))


def test_the_same_field_in_both_spellings_is_refused() -> None:
    with pytest.raises(ValidationError, match="extra_forbidden"):
        Session.model_validate(_with(Session, customerId="a", customer_id="b"))


def _columns(names: str) -> set[str]:
    return set(names.split())


# Every column of the seed, table by table; the records use exactly these names
# (plus the documented extensions of the seed).
SEED_COLUMNS: dict[type[Model], set[str]] = {
    Session: _columns(
        "id agentId workspaceId userId customerId mode status title metadata "
        "currentJourneyId currentStateId variables eventCount messageCount tokensUsed "
        "cost averageResponseTime satisfactionScore sessionType tags userAgent ipAddress "
        "referrer locale timezone startedAt lastActivityAt endedAt createdAt updatedAt"
    ),
    Event: _columns(
        "id sessionId offset eventType content metadata toolCallId journeyId stateId createdAt"
    ),
    Variable: _columns(
        "id agentId sessionId key scope value valueType isPrivate description createdAt updatedAt"
    ),
}
SEED_EXTENSIONS: dict[type[Model], set[str]] = {
    Session: {"version"},
    Event: {"idempotencyKey"},
    Variable: {"customerId"},
}


@pytest.mark.parametrize("cls", list(SEED_COLUMNS), ids=lambda cls: cls.__name__)
def test_record_aliases_are_the_seed_columns(cls: type[Model]) -> None:
    aliases = {field.alias or name for name, field in cls.model_fields.items()}
    assert aliases == SEED_COLUMNS[cls] | SEED_EXTENSIONS.get(cls, set())


# ---------------------------------------------------------------- variables


@pytest.mark.parametrize(
    ("value_type", "value"),
    [
        pytest.param("string", "Dana", id="string"),
        pytest.param("string", "", id="empty_string"),
        pytest.param("number", 42, id="int"),
        pytest.param("number", -3.5, id="float"),
        pytest.param("number", 0, id="zero"),
        pytest.param("boolean", True, id="true"),
        pytest.param("boolean", False, id="false"),
        pytest.param("object", {"city": "Oslo", "zip": [1, 2]}, id="object"),
        pytest.param("object", {}, id="empty_object"),
        pytest.param("array", [1, "two", None], id="array"),
        pytest.param("array", [], id="empty_array"),
        *(pytest.param(vt, None, id=f"none_{vt}") for vt in ValueType),
    ],
)
def test_variable_value_that_fits_its_type_is_accepted(value_type: str, value: Any) -> None:
    variable = Variable.model_validate(_with(Variable, valueType=value_type, value=value))
    assert variable.value == value
    assert variable.value_type is ValueType(value_type)
    assert value_fits_type(value, ValueType(value_type))


@pytest.mark.parametrize(
    ("value_type", "value"),
    [
        pytest.param("string", 1, id="string_gets_int"),
        pytest.param("string", ["a"], id="string_gets_list"),
        pytest.param("number", True, id="number_gets_true"),
        pytest.param("number", False, id="number_gets_false"),
        pytest.param("number", "42", id="number_gets_string"),
        pytest.param("number", math.nan, id="number_gets_nan"),
        pytest.param("number", math.inf, id="number_gets_inf"),
        pytest.param("number", -math.inf, id="number_gets_minus_inf"),
        pytest.param("boolean", 0, id="boolean_gets_0"),
        pytest.param("boolean", 1, id="boolean_gets_1"),
        pytest.param("boolean", "true", id="boolean_gets_string"),
        pytest.param("object", [], id="object_gets_array"),
        pytest.param("object", "{}", id="object_gets_string"),
        pytest.param("array", {}, id="array_gets_object"),
        pytest.param("array", "[]", id="array_gets_string"),
        pytest.param("array", (1, 2), id="array_gets_tuple"),
    ],
)
def test_variable_value_that_does_not_fit_its_type_is_refused(value_type: str, value: Any) -> None:
    assert not value_fits_type(value, ValueType(value_type))
    with pytest.raises(ValidationError, match=f"is not a {value_type}"):
        Variable.model_validate(_with(Variable, valueType=value_type, value=value))


def test_variable_value_type_defaults_to_string_and_is_checked() -> None:
    with pytest.raises(ValidationError, match="is not a string"):
        VariableSpec.model_validate({"key": "age", "value": 42})


@pytest.mark.parametrize(
    "key",
    ["patient_name", "_private", "A1", "x", "k" * 200],
    ids=["snake", "leading_underscore", "digit_after_letter", "one_letter", "200_chars"],
)
def test_identifier_like_variable_key_is_accepted(key: str) -> None:
    assert VariableSpec.model_validate({"key": key}).key == key


@pytest.mark.parametrize(
    "key",
    ["", "1abc", "order-id", "a b", "vars.x", "naïve", "abc\n", " abc", "k" * 201, "{{x}}"],
    ids=[
        "empty",
        "leading_digit",
        "dash",
        "space",
        "dot",
        "non_ascii",
        "trailing_newline",
        "leading_space",
        "201_chars",
        "braces",
    ],
)
def test_variable_key_that_is_not_an_identifier_is_refused(key: str) -> None:
    with pytest.raises(ValidationError, match="key"):
        VariableSpec.model_validate({"key": key})


# ------------------------------------------------------- realistic host rows

ROWS: dict[type[Model], dict[str, Any]] = {
    Session: {
        "id": SESSION_ID,
        "agentId": AGENT_ID,
        "workspaceId": WORKSPACE,
        "userId": None,
        "customerId": "cust_8812",
        "mode": "auto",
        "status": "active",
        "title": "Booking for Friday",
        "metadata": {"channel": "web", "ab": {"variant": "b"}},
        "currentJourneyId": JOURNEY_ID,
        "currentStateId": STATE_A,
        "variables": {"patient_name": "Sam", "visits": 2},
        "eventCount": 7,
        "messageCount": 4,
        "tokensUsed": 5120,
        "cost": 3,
        "averageResponseTime": 840,
        "satisfactionScore": 5,
        "sessionType": "chat",
        "tags": ["booking", "returning"],
        "userAgent": "Mozilla/5.0 (X11; Linux x86_64)",
        "ipAddress": "203.0.113.17",
        "referrer": "https://northside.example/contact",
        "locale": "en-GB",
        "timezone": "Europe/London",
        "startedAt": CREATED,
        "lastActivityAt": UPDATED,
        "endedAt": None,
        "createdAt": CREATED,
        "updatedAt": UPDATED,
    },
    Event: {
        "id": ROW_ID,
        "sessionId": SESSION_ID,
        "offset": 4,
        "eventType": "tool_result",
        "content": {"result": {"slots": ["09:00", "11:30"]}},
        "metadata": {"durationMs": 212},
        "toolCallId": "call_9f2",
        "journeyId": JOURNEY_ID,
        "stateId": STATE_B,
        "createdAt": UPDATED,
    },
    Variable: {
        "id": ROW_ID,
        "agentId": AGENT_ID,
        "sessionId": SESSION_ID,
        "key": "insurance",
        "scope": "customer",
        "value": {"provider": "Acme", "number": "AC-1193"},
        "valueType": "object",
        "isPrivate": True,
        "description": "Insurance details; never shown in replies",
        "createdAt": CREATED,
        "updatedAt": UPDATED,
    },
}


def test_every_record_has_a_realistic_row() -> None:
    assert set(ROWS) == set(SEED_COLUMNS) == set(MINIMAL)


@pytest.mark.parametrize("cls", list(ROWS), ids=lambda cls: cls.__name__)
def test_host_database_row_validates_and_round_trips(cls: type[Model]) -> None:
    row = ROWS[cls]
    model = cls.model_validate(row)
    dumped = model.model_dump(by_alias=True)
    # every column is read, and written back by its name (extensions come with defaults)
    assert set(dumped) == set(row) | SEED_EXTENSIONS.get(cls, set())
    assert cls.model_validate(dumped) == model
    for key, value in row.items():
        expected = value.value if isinstance(value, StrEnum) else value
        got = dumped[key]
        assert (got.value if isinstance(got, StrEnum) else got) == expected, key


@pytest.mark.parametrize("cls", list(ROWS), ids=lambda cls: cls.__name__)
def test_row_round_trips_through_json(cls: type[Model]) -> None:
    model = cls.model_validate(ROWS[cls])
    as_json = model.model_dump(mode="json", by_alias=True)
    assert cls.model_validate(as_json) == model
    assert cls.model_validate_json(model.model_dump_json(by_alias=True)) == model


def test_row_with_text_ids_and_iso_timestamps_is_accepted() -> None:
    # Some drivers return uuids and timestamps as text.
    row = {
        **ROWS[Event],
        "id": str(ROW_ID),
        "sessionId": str(SESSION_ID),
        "createdAt": "2025-09-14T08:30:12.345+00:00",
    }
    event = Event.model_validate(row)
    assert event.id == ROW_ID
    assert event.session_id == SESSION_ID
    assert event.created_at == CREATED
