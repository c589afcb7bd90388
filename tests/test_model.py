"""The domain model: enum values, defaults, ranges, aliases and host-database rows."""

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
    Agent,
    AgentKnowledgeBase,
    AgentStatus,
    AgentTool,
    CannedResponse,
    CompositionMode,
    CustomTool,
    Event,
    EventType,
    Guideline,
    IntegrationType,
    Journey,
    JourneyGuideline,
    JourneyState,
    JourneyStateFields,
    JourneyTransition,
    KnowledgeBase,
    Model,
    Session,
    SessionMode,
    SessionStatus,
    StateType,
    Term,
    Tool,
    ToolIntegration,
    ToolType,
    User,
    ValueType,
    Variable,
    VariableFields,
    VariableScope,
    Workspace,
    value_fits_type,
)

AGENT_ID = UUID("7b0f4a52-3c51-4f0e-9d2a-0c1f6c8e9a01")
SESSION_ID = UUID("0d6c1e7a-8f0b-4a47-b0b1-2f3e4d5c6b02")
JOURNEY_ID = UUID("a1e2c3d4-5b6a-4c7d-8e9f-0a1b2c3d4e03")
STATE_A = UUID("b2f3d4e5-6c7b-4d8e-9fa0-1b2c3d4e5f04")
STATE_B = UUID("c3a4e5f6-7d8c-4e9f-a0b1-2c3d4e5f6a05")
GUIDELINE_ID = UUID("d4b5f6a7-8e9d-4fa0-b1c2-3d4e5f6a7b06")
TOOL_ID = UUID("e5c6a7b8-9fae-4ab1-82d3-4e5f6a7b8c07")
ROW_ID = UUID("f6d7b8c9-a0bf-4bc2-93e4-5f6a7b8c9d08")
WORKSPACE = "ws_2Yk9p8VQ"
USER = "usr_Hq7tLm3x"
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
    Agent: {"name": "Clinic desk", "workspaceId": WORKSPACE},
    Session: {"agentId": AGENT_ID, "workspaceId": WORKSPACE},
    Event: {"sessionId": SESSION_ID, "offset": 0, "eventType": "customer_message"},
    Guideline: {"agentId": AGENT_ID, "action": "Offer the earliest slot"},
    CannedResponse: {"agentId": AGENT_ID, "template": "Hello!"},
    Term: {"agentId": AGENT_ID, "name": "GP"},
    Journey: {"agentId": AGENT_ID, "title": "Book a visit"},
    JourneyState: {"journeyId": JOURNEY_ID, "name": "ask", "stateType": "chat"},
    JourneyTransition: {"journeyId": JOURNEY_ID, "fromStateId": STATE_A, "toStateId": STATE_B},
    Tool: {"workspaceId": WORKSPACE, "name": "find_slots"},
    ToolIntegration: {
        "parlantToolId": TOOL_ID,
        "integrationType": "custom_tool",
        "targetId": "ct_1",
    },
    Variable: {"agentId": AGENT_ID, "key": "patient_name"},
    AgentTool: {"agentId": AGENT_ID, "toolId": TOOL_ID},
    JourneyGuideline: {"journeyId": JOURNEY_ID, "guidelineId": GUIDELINE_ID},
    AgentKnowledgeBase: {"agentId": AGENT_ID, "knowledgeBaseId": "kb_1"},
    Workspace: {"id": WORKSPACE, "name": "Clinic"},
    User: {"id": USER, "name": "Dana", "email": "dana@example.com"},
    KnowledgeBase: {"id": "kb_1", "name": "FAQ"},
    CustomTool: {"id": "ct_1", "title": "Find slots"},
}


def _with(cls: type[Model], **changes: Any) -> dict[str, Any]:
    return {**MINIMAL[cls], **changes}


@pytest.mark.parametrize("cls", list(MINIMAL), ids=lambda cls: cls.__name__)
def test_minimal_row_is_valid(cls: type[Model]) -> None:
    model = cls.model_validate(MINIMAL[cls])
    dumped = model.model_dump(by_alias=True)
    for key, value in MINIMAL[cls].items():
        assert dumped[key] == value


# ------------------------------------------------------------------- defaults


def test_agent_defaults() -> None:
    agent = Agent.model_validate(MINIMAL[Agent])
    assert agent.status is AgentStatus.ACTIVE
    assert agent.composition_mode is CompositionMode.FLUID
    assert agent.temperature == 70
    assert agent.max_tokens is None
    assert agent.id == NIL_ID
    assert agent.deleted_at is None
    counters = (agent.total_sessions, agent.total_messages, agent.total_tokens_used)
    assert counters == (0, 0, 0)
    assert agent.total_cost == 0


def test_session_defaults() -> None:
    session = Session.model_validate(MINIMAL[Session])
    assert session.mode is SessionMode.AUTO
    assert session.status is SessionStatus.ACTIVE
    assert session.current_journey_id is None
    assert session.current_state_id is None
    assert session.variables == {}
    assert session.metadata == {}
    assert session.tags == []
    assert (session.event_count, session.message_count, session.tokens_used) == (0, 0, 0)
    assert session.cost == 0


def test_journey_defaults() -> None:
    journey = Journey.model_validate(MINIMAL[Journey])
    assert journey.allow_skipping is True
    assert journey.allow_revisiting is True
    assert journey.enabled is True
    assert journey.conditions == []
    assert journey.completion_rate == 0


def test_journey_state_defaults() -> None:
    state = JourneyState.model_validate(MINIMAL[JourneyState])
    assert state.allow_skip is True
    assert state.is_initial is False
    assert state.is_final is False
    assert state.tool_config == {}
    assert state.tool_id is None


@pytest.mark.parametrize(
    ("cls", "attribute"),
    [
        pytest.param(Guideline, "priority", id="guideline"),
        pytest.param(JourneyTransition, "priority", id="transition"),
        pytest.param(CannedResponse, "priority", id="canned_response"),
        pytest.param(AgentTool, "priority", id="agent_tool"),
        pytest.param(AgentKnowledgeBase, "priority", id="agent_knowledge_base"),
        pytest.param(Term, "importance", id="term_importance"),
    ],
)
def test_priority_defaults_to_100(cls: type[Model], attribute: str) -> None:
    assert getattr(cls.model_validate(MINIMAL[cls]), attribute) == 100


def test_journey_guideline_has_no_priority_override_by_default() -> None:
    link = JourneyGuideline.model_validate(MINIMAL[JourneyGuideline])
    assert link.priority_override is None
    assert link.enabled is True


def test_behaviour_defaults() -> None:
    guideline = Guideline.model_validate(MINIMAL[Guideline])
    assert guideline.enabled is True
    assert guideline.condition is None
    assert guideline.tool_ids == []
    canned = CannedResponse.model_validate(MINIMAL[CannedResponse])
    assert canned.enabled is True
    assert canned.requires_exact_match is False
    assert canned.conditions == []
    term = Term.model_validate(MINIMAL[Term])
    assert term.synonyms == []
    assert term.description == ""


def test_tool_defaults() -> None:
    tool = Tool.model_validate(MINIMAL[Tool])
    assert tool.success_rate == 100
    assert tool.tool_type is ToolType.CUSTOM
    assert tool.parameters == {"type": "object"}
    assert tool.enabled is True
    assert tool.is_public is False
    assert tool.use_count == 0
    integration = ToolIntegration.model_validate(MINIMAL[ToolIntegration])
    assert integration.enabled is True
    assert integration.error_count == 0


def test_agent_knowledge_base_defaults() -> None:
    link = AgentKnowledgeBase.model_validate(MINIMAL[AgentKnowledgeBase])
    assert link.search_threshold == 70
    assert link.max_results == 5
    assert link.enabled is True


def test_variable_defaults() -> None:
    variable = Variable.model_validate(MINIMAL[Variable])
    assert variable.scope is VariableScope.SESSION
    assert variable.value_type is ValueType.STRING
    assert variable.value is None
    assert variable.is_private is False
    assert variable.session_id is None


def test_mutable_defaults_are_not_shared_between_instances() -> None:
    first = Tool.model_validate(MINIMAL[Tool])
    second = Tool.model_validate(MINIMAL[Tool])
    first.parameters["required"] = ["date"]
    assert second.parameters == {"type": "object"}
    one = Session.model_validate(MINIMAL[Session])
    two = Session.model_validate(MINIMAL[Session])
    one.tags.append("vip")
    one.variables["x"] = 1
    assert two.tags == []
    assert two.variables == {}


# --------------------------------------------------------------------- ranges

PRIORITY_FIELDS = [
    pytest.param(Guideline, "priority", id="guideline"),
    pytest.param(JourneyTransition, "priority", id="transition"),
    pytest.param(CannedResponse, "priority", id="canned_response"),
    pytest.param(AgentTool, "priority", id="agent_tool"),
    pytest.param(AgentKnowledgeBase, "priority", id="agent_knowledge_base"),
    pytest.param(Term, "importance", id="term_importance"),
    pytest.param(JourneyGuideline, "priorityOverride", id="priority_override"),
]


@pytest.mark.parametrize(("cls", "alias"), PRIORITY_FIELDS)
@pytest.mark.parametrize("value", [0, 1001, -1], ids=["zero", "1001", "negative"])
def test_priority_outside_1_to_1000_is_refused(cls: type[Model], alias: str, value: int) -> None:
    with pytest.raises(ValidationError, match=alias):
        cls.model_validate(_with(cls, **{alias: value}))


@pytest.mark.parametrize(("cls", "alias"), PRIORITY_FIELDS)
@pytest.mark.parametrize("value", [1, 1000], ids=["1", "1000"])
def test_priority_boundaries_are_accepted(cls: type[Model], alias: str, value: int) -> None:
    model = cls.model_validate(_with(cls, **{alias: value}))
    assert model.model_dump(by_alias=True)[alias] == value


PERCENT_FIELDS = [
    pytest.param(Agent, "temperature", id="temperature"),
    pytest.param(AgentKnowledgeBase, "searchThreshold", id="search_threshold"),
    pytest.param(Tool, "successRate", id="success_rate"),
    pytest.param(Journey, "completionRate", id="completion_rate"),
]


@pytest.mark.parametrize(("cls", "alias"), PERCENT_FIELDS)
@pytest.mark.parametrize("value", [-1, 101], ids=["-1", "101"])
def test_percentage_outside_0_to_100_is_refused(cls: type[Model], alias: str, value: int) -> None:
    with pytest.raises(ValidationError, match=alias):
        cls.model_validate(_with(cls, **{alias: value}))


@pytest.mark.parametrize(("cls", "alias"), PERCENT_FIELDS)
@pytest.mark.parametrize("value", [0, 100], ids=["0", "100"])
def test_percentage_boundaries_are_accepted(cls: type[Model], alias: str, value: int) -> None:
    model = cls.model_validate(_with(cls, **{alias: value}))
    assert model.model_dump(by_alias=True)[alias] == value


COUNTER_FIELDS = (
    [
        pytest.param(Agent, alias, id=f"agent.{alias}")
        for alias in ("totalSessions", "totalMessages", "totalTokensUsed", "totalCost")
    ]
    + [
        pytest.param(Session, alias, id=f"session.{alias}")
        for alias in ("eventCount", "messageCount", "tokensUsed", "cost", "averageResponseTime")
    ]
    + [
        pytest.param(Event, "offset", id="event.offset"),
        pytest.param(Guideline, "matchCount", id="guideline.matchCount"),
        pytest.param(CannedResponse, "useCount", id="canned_response.useCount"),
        pytest.param(Journey, "totalSessions", id="journey.totalSessions"),
        pytest.param(JourneyTransition, "useCount", id="transition.useCount"),
        pytest.param(Tool, "useCount", id="tool.useCount"),
        pytest.param(ToolIntegration, "errorCount", id="tool_integration.errorCount"),
        pytest.param(AgentTool, "useCount", id="agent_tool.useCount"),
        pytest.param(JourneyGuideline, "matchCount", id="journey_guideline.matchCount"),
        pytest.param(AgentKnowledgeBase, "searchCount", id="agent_knowledge_base.searchCount"),
        pytest.param(KnowledgeBase, "tokenCount", id="knowledge_base.tokenCount"),
    ]
)


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
        pytest.param(Agent, "maxTokens", 0, id="max_tokens_zero"),
        pytest.param(AgentKnowledgeBase, "maxResults", 0, id="max_results_zero"),
        pytest.param(AgentKnowledgeBase, "maxResults", 101, id="max_results_101"),
        pytest.param(Agent, "name", "", id="empty_agent_name"),
        pytest.param(Agent, "name", "n" * 201, id="agent_name_201_chars"),
        pytest.param(Journey, "title", "", id="empty_journey_title"),
        pytest.param(Guideline, "action", "", id="empty_guideline_action"),
        pytest.param(CannedResponse, "template", "", id="empty_template"),
        pytest.param(ToolIntegration, "targetId", "", id="empty_target_id"),
        pytest.param(Workspace, "id", "", id="empty_workspace_id"),
    ],
)
def test_other_out_of_range_values_are_refused(cls: type[Model], alias: str, value: Any) -> None:
    with pytest.raises(ValidationError, match=alias):
        cls.model_validate(_with(cls, **{alias: value}))


@pytest.mark.parametrize(
    ("cls", "alias", "value"),
    [
        pytest.param(Agent, "status", "deleted", id="agent_status"),
        pytest.param(Agent, "compositionMode", "canned_strict", id="composition_mode"),
        pytest.param(Session, "mode", "automatic", id="session_mode"),
        pytest.param(Session, "status", "closed", id="session_status"),
        pytest.param(Event, "eventType", "message", id="event_type"),
        pytest.param(JourneyState, "stateType", "end", id="state_type"),
        pytest.param(Variable, "scope", "user", id="variable_scope"),
        pytest.param(Variable, "valueType", "integer", id="value_type"),
        pytest.param(Tool, "toolType", "mcp", id="tool_type"),
        pytest.param(ToolIntegration, "integrationType", "webhook", id="integration_type"),
    ],
)
def test_value_outside_enum_is_refused(cls: type[Model], alias: str, value: str) -> None:
    with pytest.raises(ValidationError, match=alias):
        cls.model_validate(_with(cls, **{alias: value}))


# -------------------------------------------------------------------- aliases


@pytest.mark.parametrize(
    ("cls", "camel", "snake"),
    [
        pytest.param(
            JourneyState,
            {
                "journeyId": JOURNEY_ID,
                "name": "ask",
                "stateType": "chat",
                "chatPrompt": "When would you like to come?",
                "isInitial": True,
                "allowSkip": False,
                "toolConfig": {"a": 1},
            },
            {
                "journey_id": JOURNEY_ID,
                "name": "ask",
                "state_type": "chat",
                "chat_prompt": "When would you like to come?",
                "is_initial": True,
                "allow_skip": False,
                "tool_config": {"a": 1},
            },
            id="journey_state",
        ),
        pytest.param(
            Agent,
            {"name": "A", "workspaceId": WORKSPACE, "compositionMode": "strict", "maxTokens": 9},
            {"name": "A", "workspace_id": WORKSPACE, "composition_mode": "strict", "max_tokens": 9},
            id="agent",
        ),
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
            CannedResponse,
            {"agentId": AGENT_ID, "template": "Hi", "requiresExactMatch": True},
            {"agent_id": AGENT_ID, "template": "Hi", "requires_exact_match": True},
            id="canned_response",
        ),
        pytest.param(
            CustomTool,
            {"id": "ct", "title": "T", "userId": USER, "schema": {"type": "object"}},
            {"id": "ct", "title": "T", "user_id": USER, "schema_": {"type": "object"}},
            id="custom_tool_schema",
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


def test_keyword_construction_uses_snake_case_names() -> None:
    by_keyword = JourneyStateFields(
        name="ask", state_type=StateType.CHAT, chat_prompt="Hi", is_initial=True
    )
    by_alias = JourneyStateFields.model_validate(
        {"name": "ask", "stateType": "chat", "chatPrompt": "Hi", "isInitial": True}
    )
    assert by_keyword == by_alias


@pytest.mark.parametrize(
    ("cls", "data", "alias"),
    [
        pytest.param(JourneyState, _with(JourneyState, chatPrompt="Hi"), "chatPrompt", id="chat"),
        pytest.param(JourneyState, _with(JourneyState, isInitial=True), "isInitial", id="initial"),
        pytest.param(Agent, MINIMAL[Agent], "workspaceId", id="workspaceId"),
        pytest.param(
            CannedResponse,
            _with(CannedResponse, requiresExactMatch=True),
            "requiresExactMatch",
            id="requiresExactMatch",
        ),
        pytest.param(Event, _with(Event, toolCallId="call_7"), "toolCallId", id="toolCallId"),
        pytest.param(Session, _with(Session, customerId="c-1"), "customerId", id="customerId"),
        pytest.param(Tool, MINIMAL[Tool], "successRate", id="successRate"),
        pytest.param(CustomTool, MINIMAL[CustomTool], "schema", id="schema"),
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
        JourneyState.model_validate(_with(JourneyState, chatPrompt="a", chat_prompt="b"))


def _columns(names: str) -> set[str]:
    return set(names.split())


# Every column of the seed, table by table; row classes must use exactly these names
# (plus the documented extensions of the seed).
SEED_COLUMNS: dict[type[Model], set[str]] = {
    Workspace: _columns("id name ownerId createdAt updatedAt"),
    User: _columns("id name email emailVerified image createdAt updatedAt"),
    KnowledgeBase: _columns("id userId workspaceId name description tokenCount"),
    CustomTool: _columns("id userId title schema code"),
    Agent: _columns(
        "id workspaceId createdBy name description status compositionMode systemPrompt "
        "modelProvider modelName temperature maxTokens totalSessions totalMessages "
        "totalTokensUsed totalCost lastActiveAt createdAt updatedAt deletedAt"
    ),
    Session: _columns(
        "id agentId workspaceId userId customerId mode status title metadata "
        "currentJourneyId currentStateId variables eventCount messageCount tokensUsed "
        "cost averageResponseTime satisfactionScore sessionType tags userAgent ipAddress "
        "referrer locale timezone startedAt lastActivityAt endedAt createdAt updatedAt"
    ),
    Event: _columns(
        "id sessionId offset eventType content metadata toolCallId journeyId stateId createdAt"
    ),
    Guideline: _columns(
        "id agentId condition action priority enabled toolIds matchCount lastMatchedAt "
        "createdAt updatedAt"
    ),
    CannedResponse: _columns(
        "id agentId template category tags conditions priority enabled "
        "requiresExactMatch useCount lastUsedAt createdAt updatedAt"
    ),
    Term: _columns(
        "id agentId name description synonyms category examples importance createdAt updatedAt"
    ),
    Journey: _columns(
        "id agentId title description conditions enabled allowSkipping allowRevisiting "
        "totalSessions completionRate lastUsedAt createdAt updatedAt"
    ),
    JourneyState: _columns(
        "id journeyId name stateType chatPrompt toolId toolConfig condition isInitial "
        "isFinal allowSkip metadata createdAt updatedAt"
    ),
    JourneyTransition: _columns(
        "id journeyId fromStateId toStateId condition priority useCount lastUsedAt createdAt"
    ),
    Tool: _columns(
        "id workspaceId name displayName description simToolId toolType parameters "
        "returnSchema usageGuidelines errorHandling enabled isPublic useCount "
        "successRate lastUsedAt createdAt updatedAt"
    ),
    ToolIntegration: _columns(
        "id parlantToolId integrationType targetId configuration enabled "
        "parameterMapping responseMapping lastHealthCheck healthStatus errorCount "
        "lastError createdAt updatedAt"
    ),
    Variable: _columns(
        "id agentId sessionId key scope value valueType isPrivate description createdAt updatedAt"
    ),
    AgentTool: _columns(
        "id agentId toolId configuration enabled priority useCount lastUsedAt createdAt updatedAt"
    ),
    JourneyGuideline: _columns(
        "id journeyId guidelineId priorityOverride enabled journeySpecificCondition "
        "matchCount lastMatchedAt createdAt updatedAt"
    ),
    AgentKnowledgeBase: _columns(
        "id agentId knowledgeBaseId enabled searchThreshold maxResults priority "
        "searchCount lastSearchedAt createdAt updatedAt"
    ),
}
SEED_EXTENSIONS: dict[type[Model], set[str]] = {
    Agent: {"noMatchResponse"},
    Guideline: {"name"},
    CannedResponse: {"name"},
    Session: {"version"},
    Event: {"idempotencyKey"},
    Variable: {"customerId"},
}


@pytest.mark.parametrize("cls", list(SEED_COLUMNS), ids=lambda cls: cls.__name__)
def test_row_class_aliases_are_the_seed_columns(cls: type[Model]) -> None:
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
        VariableFields.model_validate({"key": "age", "value": 42})


@pytest.mark.parametrize(
    "key",
    ["patient_name", "_private", "A1", "x", "k" * 200],
    ids=["snake", "leading_underscore", "digit_after_letter", "one_letter", "200_chars"],
)
def test_identifier_like_variable_key_is_accepted(key: str) -> None:
    assert VariableFields.model_validate({"key": key}).key == key


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
        VariableFields.model_validate({"key": key})


# ------------------------------------------------------- realistic host rows

ROWS: dict[type[Model], dict[str, Any]] = {
    Workspace: {
        "id": WORKSPACE,
        "name": "Northside Clinic",
        "ownerId": USER,
        "createdAt": CREATED,
        "updatedAt": UPDATED,
    },
    User: {
        "id": USER,
        "name": "Dana Okafor",
        "email": "dana@northside.example",
        "emailVerified": True,
        "image": "https://cdn.example/avatars/dana.png",
        "createdAt": CREATED,
        "updatedAt": UPDATED,
    },
    KnowledgeBase: {
        "id": "kb_faq_01",
        "userId": USER,
        "workspaceId": WORKSPACE,
        "name": "Clinic FAQ",
        "description": "Opening hours, parking, insurance",
        "tokenCount": 48213,
    },
    CustomTool: {
        "id": "ct_find_slots",
        "userId": USER,
        "title": "Find free slots",
        "schema": {
            "type": "function",
            "function": {
                "name": "find_slots",
                "parameters": {"type": "object", "properties": {"date": {"type": "string"}}},
            },
        },
        "code": "return await fetch(`/slots?date=${date}`).then(r => r.json())",
    },
    Agent: {
        "id": AGENT_ID,
        "workspaceId": WORKSPACE,
        "createdBy": USER,
        "name": "Front desk",
        "description": "Books and moves appointments",
        "status": "active",
        "compositionMode": "strict",
        "systemPrompt": "You are the clinic's front desk.",
        "modelProvider": "anthropic",
        "modelName": "claude-sonnet-4",
        "temperature": 20,
        "maxTokens": 1024,
        "totalSessions": 310,
        "totalMessages": 2291,
        "totalTokensUsed": 1830444,
        "totalCost": 1287,
        "lastActiveAt": UPDATED,
        "createdAt": CREATED,
        "updatedAt": UPDATED,
        "deletedAt": None,
        "noMatchResponse": "Let me get a colleague to help you.",
    },
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
    Guideline: {
        "id": GUIDELINE_ID,
        "agentId": AGENT_ID,
        "condition": "The customer asks about parking",
        "action": "Explain that the car park is behind the building",
        "priority": 250,
        "enabled": True,
        "toolIds": [TOOL_ID],
        "matchCount": 17,
        "lastMatchedAt": UPDATED,
        "createdAt": CREATED,
        "updatedAt": UPDATED,
        "name": "parking",
    },
    CannedResponse: {
        "id": ROW_ID,
        "agentId": AGENT_ID,
        "template": "Your visit is booked for {{ vars.slot }}.",
        "category": "booking",
        "tags": ["confirmation"],
        "conditions": ["{{ vars.slot is defined }}"],
        "priority": 300,
        "enabled": True,
        "requiresExactMatch": True,
        "useCount": 88,
        "lastUsedAt": UPDATED,
        "createdAt": CREATED,
        "updatedAt": UPDATED,
        "name": "booked",
    },
    Term: {
        "id": ROW_ID,
        "agentId": AGENT_ID,
        "name": "GP",
        "description": "General practitioner",
        "synonyms": ["family doctor", "general practitioner"],
        "category": "staff",
        "examples": ["Can I see my GP on Monday?"],
        "importance": 500,
        "createdAt": CREATED,
        "updatedAt": UPDATED,
    },
    Journey: {
        "id": JOURNEY_ID,
        "agentId": AGENT_ID,
        "title": "Book a visit",
        "description": "From request to confirmed slot",
        "conditions": ["The customer wants an appointment", "{{ mentions('booking') }}"],
        "enabled": True,
        "allowSkipping": False,
        "allowRevisiting": True,
        "totalSessions": 120,
        "completionRate": 64,
        "lastUsedAt": UPDATED,
        "createdAt": CREATED,
        "updatedAt": UPDATED,
    },
    JourneyState: {
        "id": STATE_B,
        "journeyId": JOURNEY_ID,
        "name": "look_up_slots",
        "stateType": "tool",
        "chatPrompt": None,
        "toolId": "find_slots",
        "toolConfig": {"arguments": {"date": "{{ vars.date }}"}},
        "condition": None,
        "isInitial": False,
        "isFinal": False,
        "allowSkip": False,
        "metadata": {"x": 120, "y": 40},
        "createdAt": CREATED,
        "updatedAt": UPDATED,
    },
    JourneyTransition: {
        "id": ROW_ID,
        "journeyId": JOURNEY_ID,
        "fromStateId": STATE_A,
        "toStateId": STATE_B,
        "condition": "{{ vars.date is defined }}",
        "priority": 200,
        "useCount": 45,
        "lastUsedAt": UPDATED,
        "createdAt": CREATED,
    },
    Tool: {
        "id": TOOL_ID,
        "workspaceId": WORKSPACE,
        "name": "find_slots",
        "displayName": "Find slots",
        "description": "Free appointment slots on a date",
        "simToolId": "sim_cal_lookup",
        "toolType": "sim_native",
        "parameters": {
            "type": "object",
            "properties": {"date": {"type": "string", "format": "date"}},
            "required": ["date"],
        },
        "returnSchema": {"type": "object", "properties": {"slots": {"type": "array"}}},
        "usageGuidelines": "Only for dates within 60 days",
        "errorHandling": {"retries": 2, "fallback": "apologise"},
        "enabled": True,
        "isPublic": False,
        "useCount": 902,
        "successRate": 97,
        "lastUsedAt": UPDATED,
        "createdAt": CREATED,
        "updatedAt": UPDATED,
    },
    ToolIntegration: {
        "id": ROW_ID,
        "parlantToolId": TOOL_ID,
        "integrationType": "mcp_server",
        "targetId": "mcp_calendar",
        "configuration": {"url": "https://mcp.example/calendar", "timeoutMs": 5000},
        "enabled": True,
        "parameterMapping": {"date": "day"},
        "responseMapping": {"slots": "$.free"},
        "lastHealthCheck": UPDATED,
        "healthStatus": "healthy",
        "errorCount": 2,
        "lastError": "timeout after 5000 ms",
        "createdAt": CREATED,
        "updatedAt": UPDATED,
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
    AgentTool: {
        "id": ROW_ID,
        "agentId": AGENT_ID,
        "toolId": TOOL_ID,
        "configuration": {"maxCallsPerTurn": 2},
        "enabled": True,
        "priority": 150,
        "useCount": 311,
        "lastUsedAt": UPDATED,
        "createdAt": CREATED,
        "updatedAt": UPDATED,
    },
    JourneyGuideline: {
        "id": ROW_ID,
        "journeyId": JOURNEY_ID,
        "guidelineId": GUIDELINE_ID,
        "priorityOverride": 900,
        "enabled": True,
        "journeySpecificCondition": "{{ state.name == 'look_up_slots' }}",
        "matchCount": 3,
        "lastMatchedAt": UPDATED,
        "createdAt": CREATED,
        "updatedAt": UPDATED,
    },
    AgentKnowledgeBase: {
        "id": ROW_ID,
        "agentId": AGENT_ID,
        "knowledgeBaseId": "kb_faq_01",
        "enabled": True,
        "searchThreshold": 55,
        "maxResults": 8,
        "priority": 120,
        "searchCount": 1044,
        "lastSearchedAt": UPDATED,
        "createdAt": CREATED,
        "updatedAt": UPDATED,
    },
}


def test_every_table_has_a_realistic_row() -> None:
    parlant_tables: set[type[Model]] = {Agent, Session, Event, Guideline, CannedResponse, Term}
    parlant_tables |= {Journey, JourneyState, JourneyTransition, JourneyGuideline}
    parlant_tables |= {Tool, ToolIntegration, Variable, AgentTool, AgentKnowledgeBase}
    host_tables = {Workspace, User, KnowledgeBase, CustomTool}
    assert len(parlant_tables) == 15
    assert set(ROWS) == parlant_tables | host_tables
    assert set(SEED_COLUMNS) == set(ROWS)


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
        **ROWS[JourneyTransition],
        "id": str(ROW_ID),
        "fromStateId": str(STATE_A),
        "createdAt": "2025-09-14T08:30:12.345+00:00",
    }
    transition = JourneyTransition.model_validate(row)
    assert transition.id == ROW_ID
    assert transition.from_state_id == STATE_A
    assert transition.created_at == CREATED
