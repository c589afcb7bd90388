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
    AgentFields,
    AgentKnowledgeBaseFields,
    CannedResponseFields,
    GuidelineFields,
    JourneyFields,
    JourneyGuidelineFields,
    JourneyStateFields,
    JourneyTransitionFields,
    Model,
    StateType,
    TermFields,
    ToolFields,
    ToolIntegrationFields,
    VariableFields,
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


class AgentSpec(AgentFields):
    """The bundle's ``agent`` section."""

    id: UUID = NIL_ID


class GuidelineSpec(GuidelineFields):
    """One entry of ``guidelines``; ``tools`` name tools of the bundle."""

    id: UUID = NIL_ID
    tools: list[str] = Field(default_factory=list)


class CannedResponseSpec(CannedResponseFields):
    """One entry of ``cannedResponses``."""

    id: UUID = NIL_ID


class TermSpec(TermFields):
    """One entry of ``terms``."""

    id: UUID = NIL_ID


class ToolIntegrationSpec(ToolIntegrationFields):
    """One entry of a tool's ``integrations``."""

    id: UUID = NIL_ID


class ToolSpec(ToolFields):
    """One entry of ``tools``."""

    id: UUID = NIL_ID
    integrations: list[ToolIntegrationSpec] = Field(default_factory=list)


class VariableSpec(VariableFields):
    """One entry of ``variables``."""

    id: UUID = NIL_ID


class KnowledgeBaseLinkSpec(AgentKnowledgeBaseFields):
    """One entry of ``knowledgeBases``."""

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


class StateSpec(JourneyStateFields):
    """One state of a journey; ``tool`` names a tool of the bundle; ``collect`` lists the
    variables a chat state reads from the customer's words (a language model does)."""

    id: UUID = NIL_ID
    tool: str | None = None
    collect: list[CollectedVariableSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _collects_in_chat_states(self) -> Self:
        if self.collect and self.state_type is not StateType.CHAT:
            raise ValueError(
                f"state {self.name!r} is a {self.state_type.value} state; only chat states "
                "collect variables (move `collect` to the chat state that asks for them)"
            )
        _refuse_duplicates("collected variable", (c.name for c in self.collect))
        return self


class TransitionSpec(JourneyTransitionFields):
    """One transition of a journey, between two of its states named ``from`` and ``to``."""

    id: UUID = NIL_ID
    from_state: str = Field(alias="from", min_length=1)
    to_state: str = Field(alias="to", min_length=1)


class JourneyGuidelineSpec(JourneyGuidelineFields):
    """A journey's link to one of the agent's guidelines, named by ``guideline``."""

    id: UUID = NIL_ID
    guideline: str = Field(min_length=1)


class JourneySpec(JourneyFields):
    """One journey with its states, transitions and guideline links."""

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
