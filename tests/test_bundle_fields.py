"""The field rules of each bundle entry (``*Spec``): defaults, ranges, enums, spellings.

Each entity's fields are defined once, on its ``*Spec`` class; these tests check the
rules on the classes themselves, one entry at a time (the whole-file behaviour, with
lines and suggestions, is in ``tests/test_bundle_loading.py``).
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from parlant_runtime.bundle.schema import (
    AgentSpec,
    CannedResponseSpec,
    CollectedVariableSpec,
    GuidelineSpec,
    JourneyGuidelineSpec,
    JourneySpec,
    KnowledgeBaseLinkSpec,
    StateSpec,
    TermSpec,
    ToolIntegrationSpec,
    ToolSpec,
    TransitionSpec,
    VariableSpec,
)
from parlant_runtime.model import (
    NIL_ID,
    AgentStatus,
    CompositionMode,
    Model,
    StateType,
    ToolType,
    ValueType,
    VariableScope,
)

MINIMAL: dict[type[Model], dict[str, Any]] = {
    AgentSpec: {"name": "Clinic desk"},
    GuidelineSpec: {"action": "Offer the earliest slot"},
    CannedResponseSpec: {"template": "Hello!"},
    TermSpec: {"name": "GP"},
    ToolSpec: {"name": "find_slots"},
    ToolIntegrationSpec: {"integrationType": "custom_tool", "targetId": "ct_1"},
    VariableSpec: {"key": "patient_name"},
    KnowledgeBaseLinkSpec: {"knowledgeBaseId": "kb_1"},
    JourneySpec: {"title": "Book a visit"},
    StateSpec: {"name": "ask", "stateType": "chat"},
    TransitionSpec: {"from": "ask", "to": "done"},
    JourneyGuidelineSpec: {"guideline": "parking"},
    CollectedVariableSpec: {"name": "day", "schema": {"type": "string"}},
}


def _with(cls: type[Model], **changes: Any) -> dict[str, Any]:
    return {**MINIMAL[cls], **changes}


@pytest.mark.parametrize("cls", list(MINIMAL), ids=lambda cls: cls.__name__)
def test_minimal_entry_is_valid(cls: type[Model]) -> None:
    model = cls.model_validate(MINIMAL[cls])
    dumped = model.model_dump(by_alias=True)
    for key, value in MINIMAL[cls].items():
        assert dumped[key] == value
    if "id" in cls.model_fields:
        assert dumped["id"] == NIL_ID  # the bundle derives it


@pytest.mark.parametrize("cls", list(MINIMAL), ids=lambda cls: cls.__name__)
def test_unknown_key_is_refused(cls: type[Model]) -> None:
    with pytest.raises(ValidationError, match="extra_forbidden"):
        cls.model_validate(_with(cls, interruptionPolicy="never"))


# ------------------------------------------------------------------- defaults


def test_agent_defaults() -> None:
    agent = AgentSpec.model_validate(MINIMAL[AgentSpec])
    assert agent.status is AgentStatus.ACTIVE
    assert agent.composition_mode is CompositionMode.FLUID
    assert agent.temperature == 70
    assert agent.max_tokens is None
    assert agent.no_match_response is None


def test_journey_defaults() -> None:
    journey = JourneySpec.model_validate(MINIMAL[JourneySpec])
    assert journey.allow_skipping is True
    assert journey.allow_revisiting is True
    assert journey.enabled is True
    assert journey.conditions == []
    assert (journey.states, journey.transitions, journey.guidelines) == ([], [], [])


def test_state_defaults() -> None:
    state = StateSpec.model_validate(MINIMAL[StateSpec])
    assert state.allow_skip is True
    assert state.is_initial is False
    assert state.is_final is False
    assert state.tool_config == {}
    assert state.metadata == {}
    assert state.tool is None
    assert state.collect == []


@pytest.mark.parametrize(
    ("cls", "attribute"),
    [
        pytest.param(GuidelineSpec, "priority", id="guideline"),
        pytest.param(TransitionSpec, "priority", id="transition"),
        pytest.param(CannedResponseSpec, "priority", id="canned_response"),
        pytest.param(KnowledgeBaseLinkSpec, "priority", id="knowledge_base_link"),
        pytest.param(TermSpec, "importance", id="term_importance"),
    ],
)
def test_priority_defaults_to_100(cls: type[Model], attribute: str) -> None:
    assert getattr(cls.model_validate(MINIMAL[cls]), attribute) == 100


def test_journey_guideline_link_has_no_priority_override_by_default() -> None:
    link = JourneyGuidelineSpec.model_validate(MINIMAL[JourneyGuidelineSpec])
    assert link.priority_override is None
    assert link.enabled is True
    assert link.journey_specific_condition is None


def test_behaviour_defaults() -> None:
    guideline = GuidelineSpec.model_validate(MINIMAL[GuidelineSpec])
    assert guideline.enabled is True
    assert guideline.condition is None
    assert guideline.name is None
    assert guideline.tools == []
    canned = CannedResponseSpec.model_validate(MINIMAL[CannedResponseSpec])
    assert canned.enabled is True
    assert canned.requires_exact_match is False
    assert canned.conditions == []
    assert canned.tags == []
    term = TermSpec.model_validate(MINIMAL[TermSpec])
    assert term.synonyms == []
    assert term.examples == []
    assert term.description == ""


def test_tool_defaults() -> None:
    tool = ToolSpec.model_validate(MINIMAL[ToolSpec])
    assert tool.tool_type is ToolType.CUSTOM
    assert tool.parameters == {"type": "object"}
    assert tool.return_schema is None
    assert tool.enabled is True
    assert tool.integrations == []
    integration = ToolIntegrationSpec.model_validate(MINIMAL[ToolIntegrationSpec])
    assert integration.enabled is True
    assert integration.configuration == {}


def test_knowledge_base_link_defaults() -> None:
    link = KnowledgeBaseLinkSpec.model_validate(MINIMAL[KnowledgeBaseLinkSpec])
    assert link.search_threshold == 70
    assert link.max_results == 5
    assert link.enabled is True


def test_variable_defaults() -> None:
    variable = VariableSpec.model_validate(MINIMAL[VariableSpec])
    assert variable.scope is VariableScope.SESSION
    assert variable.value_type is ValueType.STRING
    assert variable.value is None
    assert variable.is_private is False


def test_mutable_defaults_are_not_shared_between_instances() -> None:
    first = ToolSpec.model_validate(MINIMAL[ToolSpec])
    second = ToolSpec.model_validate(MINIMAL[ToolSpec])
    first.parameters["required"] = ["date"]
    assert second.parameters == {"type": "object"}
    one = StateSpec.model_validate(MINIMAL[StateSpec])
    two = StateSpec.model_validate(MINIMAL[StateSpec])
    one.tool_config["a"] = 1
    assert two.tool_config == {}


# --------------------------------------------------------------------- ranges

PRIORITY_FIELDS = [
    pytest.param(GuidelineSpec, "priority", id="guideline"),
    pytest.param(TransitionSpec, "priority", id="transition"),
    pytest.param(CannedResponseSpec, "priority", id="canned_response"),
    pytest.param(KnowledgeBaseLinkSpec, "priority", id="knowledge_base_link"),
    pytest.param(TermSpec, "importance", id="term_importance"),
    pytest.param(JourneyGuidelineSpec, "priorityOverride", id="priority_override"),
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
    pytest.param(AgentSpec, "temperature", id="temperature"),
    pytest.param(KnowledgeBaseLinkSpec, "searchThreshold", id="search_threshold"),
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


@pytest.mark.parametrize(
    ("cls", "alias", "value"),
    [
        pytest.param(AgentSpec, "maxTokens", 0, id="max_tokens_zero"),
        pytest.param(KnowledgeBaseLinkSpec, "maxResults", 0, id="max_results_zero"),
        pytest.param(KnowledgeBaseLinkSpec, "maxResults", 101, id="max_results_101"),
        pytest.param(KnowledgeBaseLinkSpec, "knowledgeBaseId", "", id="empty_kb_id"),
        pytest.param(AgentSpec, "name", "", id="empty_agent_name"),
        pytest.param(AgentSpec, "name", "n" * 201, id="agent_name_201_chars"),
        pytest.param(GuidelineSpec, "name", "", id="empty_guideline_name"),
        pytest.param(CannedResponseSpec, "name", "n" * 201, id="canned_name_201_chars"),
        pytest.param(TermSpec, "name", "", id="empty_term_name"),
        pytest.param(ToolSpec, "name", "", id="empty_tool_name"),
        pytest.param(JourneySpec, "title", "", id="empty_journey_title"),
        pytest.param(StateSpec, "name", "", id="empty_state_name"),
        pytest.param(GuidelineSpec, "action", "", id="empty_guideline_action"),
        pytest.param(CannedResponseSpec, "template", "", id="empty_template"),
        pytest.param(ToolIntegrationSpec, "targetId", "", id="empty_target_id"),
        pytest.param(TransitionSpec, "from", "", id="empty_from"),
        pytest.param(JourneyGuidelineSpec, "guideline", "", id="empty_guideline_link"),
    ],
)
def test_other_out_of_range_values_are_refused(cls: type[Model], alias: str, value: Any) -> None:
    with pytest.raises(ValidationError, match=alias):
        cls.model_validate(_with(cls, **{alias: value}))


@pytest.mark.parametrize(
    ("cls", "alias", "value"),
    [
        pytest.param(AgentSpec, "status", "deleted", id="agent_status"),
        pytest.param(AgentSpec, "compositionMode", "canned_strict", id="composition_mode"),
        pytest.param(StateSpec, "stateType", "end", id="state_type"),
        pytest.param(VariableSpec, "scope", "user", id="variable_scope"),
        pytest.param(VariableSpec, "valueType", "integer", id="value_type"),
        pytest.param(ToolSpec, "toolType", "mcp", id="tool_type"),
        pytest.param(ToolIntegrationSpec, "integrationType", "webhook", id="integration_type"),
    ],
)
def test_value_outside_enum_is_refused(cls: type[Model], alias: str, value: str) -> None:
    with pytest.raises(ValidationError, match=alias):
        cls.model_validate(_with(cls, **{alias: value}))


@pytest.mark.parametrize(
    ("cls", "alias", "value"),
    [
        pytest.param(AgentSpec, "temperature", "70", id="temperature_as_text"),
        pytest.param(AgentSpec, "maxTokens", 10.0, id="max_tokens_as_float"),
        pytest.param(GuidelineSpec, "enabled", "off", id="enabled_as_text"),
        pytest.param(TermSpec, "importance", True, id="importance_as_bool"),
        pytest.param(StateSpec, "isInitial", 1, id="flag_as_int"),
    ],
)
def test_numbers_and_flags_are_strict(cls: type[Model], alias: str, value: Any) -> None:
    with pytest.raises(ValidationError, match=alias):
        cls.model_validate(_with(cls, **{alias: value}))


# -------------------------------------------------------------------- aliases


@pytest.mark.parametrize(
    ("cls", "camel", "snake"),
    [
        pytest.param(
            StateSpec,
            {
                "name": "ask",
                "stateType": "chat",
                "chatPrompt": "When would you like to come?",
                "isInitial": True,
                "allowSkip": False,
                "toolConfig": {"a": 1},
            },
            {
                "name": "ask",
                "state_type": "chat",
                "chat_prompt": "When would you like to come?",
                "is_initial": True,
                "allow_skip": False,
                "tool_config": {"a": 1},
            },
            id="state",
        ),
        pytest.param(
            AgentSpec,
            {"name": "A", "compositionMode": "strict", "maxTokens": 9, "noMatchResponse": "x"},
            {"name": "A", "composition_mode": "strict", "max_tokens": 9, "no_match_response": "x"},
            id="agent",
        ),
        pytest.param(
            CannedResponseSpec,
            {"template": "Hi", "requiresExactMatch": True},
            {"template": "Hi", "requires_exact_match": True},
            id="canned_response",
        ),
        pytest.param(
            JourneySpec,
            {"title": "T", "allowSkipping": False},
            {"title": "T", "allow_skipping": False},
            id="journey",
        ),
    ],
)
def test_camel_case_and_snake_case_give_equal_entries(
    cls: type[Model], camel: dict[str, Any], snake: dict[str, Any]
) -> None:
    from_camel = cls.model_validate(camel)
    from_snake = cls.model_validate(snake)
    assert from_camel == from_snake
    assert cls.model_validate(from_camel.model_dump()) == from_camel


def test_keyword_construction_uses_snake_case_names() -> None:
    by_keyword = StateSpec(name="ask", state_type=StateType.CHAT, chat_prompt="Hi", is_initial=True)
    by_alias = StateSpec.model_validate(
        {"name": "ask", "stateType": "chat", "chatPrompt": "Hi", "isInitial": True}
    )
    assert by_keyword == by_alias


@pytest.mark.parametrize(
    ("cls", "data", "alias"),
    [
        pytest.param(StateSpec, _with(StateSpec, chatPrompt="Hi"), "chatPrompt", id="chat"),
        pytest.param(AgentSpec, _with(AgentSpec, maxTokens=5), "maxTokens", id="maxTokens"),
        pytest.param(
            CannedResponseSpec,
            _with(CannedResponseSpec, requiresExactMatch=True),
            "requiresExactMatch",
            id="requiresExactMatch",
        ),
        pytest.param(ToolSpec, MINIMAL[ToolSpec], "usageGuidelines", id="usageGuidelines"),
    ],
)
def test_dump_uses_camel_case_names(cls: type[Model], data: dict[str, Any], alias: str) -> None:
    model = cls.model_validate(data)
    dumped = model.model_dump(by_alias=True)
    assert alias in dumped
    assert dumped[alias] == data.get(alias, dumped[alias])
    assert all("_" not in key for key in dumped), sorted(dumped)
    assert model.model_dump() == dumped  # camelCase is also the default output


def test_the_same_field_in_both_spellings_is_refused() -> None:
    with pytest.raises(ValidationError, match="extra_forbidden"):
        StateSpec.model_validate(_with(StateSpec, chatPrompt="a", chat_prompt="b"))


# ------------------------------------------------------------------ states


@pytest.mark.parametrize(
    ("state_type", "is_final", "ends", "stops"),
    [
        pytest.param("chat", False, False, True, id="chat"),
        pytest.param("tool", False, False, False, id="tool"),
        pytest.param("decision", False, False, False, id="decision"),
        pytest.param("final", False, True, True, id="final"),
        pytest.param("tool", True, True, True, id="tool_marked_final"),
    ],
)
def test_which_states_end_the_journey_and_stop_the_turn(
    state_type: str, is_final: bool, ends: bool, stops: bool
) -> None:
    state = StateSpec.model_validate({"name": "s", "stateType": state_type, "isFinal": is_final})
    assert state.ends_journey is ends
    assert state.stops_turn is stops
