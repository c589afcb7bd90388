"""The agent bundle: one agent with everything it needs, as people write it.

A bundle holds the same data as the database rows, but refers to things by name
(a transition's ``from`` and ``to`` name states, a state's ``tool`` names a tool, a
journey's guideline link names a guideline) instead of by id. Ids may be given; the
ones that are not are derived from names (:mod:`parlant_runtime.bundle.ids`), so
the same bundle always yields the same ids and two bundles that mean the same
compare equal.

Names must be unique where something refers to them; a name that points nowhere is
a validation finding (``dangling_reference``), not a load error, so that every
problem of a journey is reported together with its line.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any, Self
from uuid import UUID

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from pydantic import Field, field_validator, model_validator

from parlant_runtime.bundle.ids import derive_ids
from parlant_runtime.model import (
    NIL_ID,
    AgentStatus,
    CompositionMode,
    Flag,
    Integer,
    IntegrationType,
    JsonObject,
    Model,
    Name,
    Percent,
    Priority,
    StateType,
    ToolType,
    VariableSpec,
)

__all__ = [
    "AgentBundle",
    "AgentSpec",
    "CannedResponseSpec",
    "CollectedVariableSpec",
    "GuidelineSpec",
    "JourneyGuidelineSpec",
    "JourneySpec",
    "KnowledgeBaseLinkSpec",
    "StateSpec",
    "TermSpec",
    "ToolIntegrationSpec",
    "ToolSpec",
    "TransitionSpec",
    "VariableSpec",
]


class AgentSpec(Model):
    """The bundle's ``agent`` section."""

    name: Name
    description: str | None = None
    status: AgentStatus = AgentStatus.ACTIVE
    composition_mode: CompositionMode = CompositionMode.FLUID
    system_prompt: str | None = None
    model_provider: str | None = None
    model_name: str | None = None
    temperature: Percent = 70
    max_tokens: Integer | None = Field(default=None, ge=1)
    no_match_response: str | None = None
    """Extension of the seed: the reply of a strict agent when no canned response fits."""
    id: UUID = NIL_ID


class GuidelineSpec(Model):
    """One entry of ``guidelines``; ``tools`` name tools of the bundle."""

    # when (condition), what (action)
    name: Name | None = None
    """Extension of the seed: lets journeys link a guideline by name."""
    condition: str | None = None
    action: str = Field(min_length=1)
    priority: Priority = 100
    enabled: Flag = True
    id: UUID = NIL_ID
    tools: list[str] = Field(default_factory=list)


class CannedResponseSpec(Model):
    """One entry of ``cannedResponses``."""

    # an approved template and when to use it
    name: Name | None = None
    """Extension of the seed: a stable handle for traces, coverage and tests."""
    template: str = Field(min_length=1)
    category: str | None = None
    tags: list[str] = Field(default_factory=list)
    conditions: list[str] = Field(default_factory=list)
    priority: Priority = 100
    enabled: Flag = True
    requires_exact_match: Flag = False
    id: UUID = NIL_ID


class TermSpec(Model):
    """One entry of ``terms``."""

    # a glossary term: a word of the business, its meaning and its synonyms
    name: Name
    description: str = ""
    synonyms: list[str] = Field(default_factory=list)
    category: str | None = None
    examples: list[str] = Field(default_factory=list)
    importance: Priority = 100
    id: UUID = NIL_ID


class ToolIntegrationSpec(Model):
    """One entry of a tool's ``integrations``."""

    # where a tool's calls really go
    integration_type: IntegrationType
    target_id: str = Field(min_length=1)
    configuration: JsonObject = Field(default_factory=dict)
    enabled: Flag = True
    parameter_mapping: JsonObject = Field(default_factory=dict)
    response_mapping: JsonObject = Field(default_factory=dict)
    id: UUID = NIL_ID


class ToolSpec(Model):
    """One entry of ``tools``."""

    # its name and its contract
    name: Name
    display_name: str | None = None
    description: str | None = None
    tool_type: ToolType = ToolType.CUSTOM
    parameters: JsonObject = Field(default_factory=lambda: {"type": "object"})
    """JSON Schema of the arguments."""
    return_schema: JsonObject | None = None
    """JSON Schema of the result, when the tool promises one."""
    usage_guidelines: str | None = None
    error_handling: JsonObject = Field(default_factory=dict)
    enabled: Flag = True
    id: UUID = NIL_ID
    integrations: list[ToolIntegrationSpec] = Field(default_factory=list)


class KnowledgeBaseLinkSpec(Model):
    """One entry of ``knowledgeBases``."""

    # how an agent searches one knowledge base
    knowledge_base_id: str = Field(min_length=1)
    enabled: Flag = True
    search_threshold: Percent = 70
    """Minimum relevance (0-100) of a result to be used."""
    max_results: Integer = Field(default=5, ge=1, le=100)
    priority: Priority = 100
    id: UUID = NIL_ID


_VARIABLE_KEY = r"^[A-Za-z_][A-Za-z0-9_]{0,199}$"


class CollectedVariableSpec(Model):
    """A variable a chat state reads out of the customer's words (with a language model).

    ``schema`` is the JSON Schema (Draft 2020-12) the value must satisfy: a value that
    does not is not stored, and the state asks again.
    """

    name: str = Field(pattern=_VARIABLE_KEY)
    value_schema: dict[str, Any] = Field(alias="schema")
    description: str | None = None

    @field_validator("value_schema")
    @classmethod
    def _is_a_json_schema(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            Draft202012Validator.check_schema(value)
        except SchemaError as exc:
            raise ValueError(f"not a valid JSON Schema: {exc.message}") from None
        return value


class StateSpec(Model):
    """One state of a journey; ``tool`` names a tool of the bundle; ``collect`` lists the
    variables a chat state reads from the customer's words (a language model does)."""

    name: Name
    state_type: StateType
    chat_prompt: str | None = None
    tool_config: JsonObject = Field(default_factory=dict)
    condition: str | None = None
    """The skip condition; on a decision state, the question the state decides."""
    is_initial: Flag = False
    is_final: Flag = False
    allow_skip: Flag = True
    metadata: JsonObject = Field(default_factory=dict)
    id: UUID = NIL_ID
    tool: str | None = None
    collect: list[CollectedVariableSpec] = Field(default_factory=list)

    @property
    def ends_journey(self) -> bool:
        """Whether entering this state ends the journey."""
        return self.state_type is StateType.FINAL or self.is_final

    @property
    def stops_turn(self) -> bool:
        """Whether a turn that enters this state ends there (chat and final states);
        tool and decision states move on within the turn."""
        return self.state_type is StateType.CHAT or self.ends_journey

    @model_validator(mode="after")
    def _collects_in_chat_states(self) -> Self:
        if self.collect and self.state_type is not StateType.CHAT:
            raise ValueError(
                f"state {self.name!r} is a {self.state_type.value} state; only chat states "
                "collect variables (move `collect` to the chat state that asks for them)"
            )
        _refuse_duplicates("collected variable", (c.name for c in self.collect))
        return self


class TransitionSpec(Model):
    """One transition of a journey, between two of its states named ``from`` and ``to``."""

    condition: str | None = None
    priority: Priority = 100
    id: UUID = NIL_ID
    from_state: str = Field(alias="from", min_length=1)
    to_state: str = Field(alias="to", min_length=1)


class JourneyGuidelineSpec(Model):
    """A journey's link to one of the agent's guidelines, named by ``guideline``."""

    # how the journey applies that guideline
    priority_override: Priority | None = None
    enabled: Flag = True
    journey_specific_condition: str | None = None
    id: UUID = NIL_ID
    guideline: str = Field(min_length=1)


class JourneySpec(Model):
    """One journey with its states, transitions and guideline links."""

    title: Name
    description: str | None = None
    conditions: list[str] = Field(default_factory=list)
    """Activation conditions: the journey is a candidate when any one of them holds."""
    enabled: Flag = True
    allow_skipping: Flag = True
    allow_revisiting: Flag = True
    id: UUID = NIL_ID
    states: list[StateSpec] = Field(default_factory=list)
    transitions: list[TransitionSpec] = Field(default_factory=list)
    guidelines: list[JourneyGuidelineSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _state_names_are_unique(self) -> Self:
        _refuse_duplicates("state name", (state.name for state in self.states))
        _refuse_duplicates("guideline link", (link.guideline for link in self.guidelines))
        return self

    def state(self, name: str) -> StateSpec | None:
        """The state called ``name``, or ``None``."""
        for state in self.states:
            if state.name == name:
                return state
        return None


class AgentBundle(Model):
    """Everything one agent needs, as one file holds it."""

    agent: AgentSpec
    guidelines: list[GuidelineSpec] = Field(default_factory=list)
    canned_responses: list[CannedResponseSpec] = Field(default_factory=list)
    terms: list[TermSpec] = Field(default_factory=list)
    tools: list[ToolSpec] = Field(default_factory=list)
    variables: list[VariableSpec] = Field(default_factory=list)
    knowledge_bases: list[KnowledgeBaseLinkSpec] = Field(default_factory=list)
    journeys: list[JourneySpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _names_are_unique_and_ids_set(self) -> Self:
        _refuse_duplicates("journey title", (journey.title for journey in self.journeys))
        _refuse_duplicates(
            "guideline name", (g.name for g in self.guidelines if g.name is not None)
        )
        _refuse_duplicates(
            "canned response name", (c.name for c in self.canned_responses if c.name)
        )
        _refuse_duplicates("term name", (term.name for term in self.terms))
        _refuse_duplicates("tool name", (tool.name for tool in self.tools))
        # one namespace: templates read every scope as vars.<key>
        _refuse_duplicates("variable key", (v.key for v in self.variables))
        _refuse_duplicates(
            "knowledge base link", (kb.knowledge_base_id for kb in self.knowledge_bases)
        )
        derive_ids(self)
        return self

    def journey(self, title: str) -> JourneySpec | None:
        """The journey titled ``title``, or ``None``."""
        for journey in self.journeys:
            if journey.title == title:
                return journey
        return None


def _refuse_duplicates(what: str, names: Iterable[str]) -> None:
    repeated = sorted(name for name, count in Counter(names).items() if count > 1)
    if repeated:
        listed = ", ".join(repr(name) for name in repeated)
        raise ValueError(f"duplicate {what}: {listed}; each must be unique")
