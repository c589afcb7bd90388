"""An agent compiled once per published version: machines, conditions, templates.

Compiling parses every condition and template once and builds one state machine
per journey; a turn then only evaluates. :class:`AgentCache` keeps the compiled
agent per workspace, agent and version, so a republish (a new version) is picked
up by the next turn and the old compilation is dropped.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from parlant_runtime.bundle.schema import (
    CannedResponseSpec,
    GuidelineSpec,
    JourneySpec,
    StateSpec,
    ToolSpec,
    TransitionSpec,
)
from parlant_runtime.engine._machine import Edge, JourneyMachine
from parlant_runtime.engine.batch import ConditionBatch
from parlant_runtime.engine.conditions import Condition, compile_condition
from parlant_runtime.engine.trace import ConditionTrace
from parlant_runtime.engine.usage import Counter, Entity, UsageKey
from parlant_runtime.errors import TemplateSandboxError
from parlant_runtime.model import StateType
from parlant_runtime.sandbox import CompiledTemplate, ConditionKind, compile_template
from parlant_runtime.storage.port import InvalidData, StoredAgent

DEFAULT_MAX_AGENTS = 256
"""How many compiled agents a runtime keeps. One 50-state journey with 100 guidelines
and 50 canned responses compiles to about 1 MB (tracemalloc), so a full cache of such
agents holds about 256 MB."""

__all__ = [
    "DEFAULT_MAX_AGENTS",
    "AgentCache",
    "CompiledAgent",
    "CompiledCanned",
    "CompiledGuideline",
    "CompiledJourney",
    "CompiledState",
    "CompiledTransition",
    "Template",
]


@dataclass(frozen=True, slots=True)
class Template:
    """A template compiled once; a broken one keeps its error (it is then never sent)."""

    source: str
    compiled: CompiledTemplate | None
    error: str | None = None

    @classmethod
    def of(cls, source: str) -> Template:
        try:
            return cls(source, compile_template(source))
        except TemplateSandboxError as exc:
            return cls(source, None, str(exc))


@dataclass(frozen=True, slots=True)
class CompiledState:
    """A state with its prompt compiled and its skip condition (``None``: never skipped)."""

    spec: StateSpec
    prompt: Template | None
    skip: Condition | None

    @property
    def name(self) -> str:
        return self.spec.name


@dataclass(frozen=True, slots=True)
class CompiledTransition:
    """A transition with its condition compiled."""

    spec: TransitionSpec
    condition: Condition
    used: UsageKey = field(init=False)
    """Its ``use_count``, moved when it is taken."""

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "used", UsageKey(Entity.TRANSITION, self.spec.id, Counter.USE_COUNT)
        )


@dataclass(frozen=True, slots=True)
class CompiledGuideline:
    """A guideline, or a journey's link to one (with its own condition and priority)."""

    spec: GuidelineSpec
    condition: Condition
    priority: int
    order: int
    link_id: UUID | None = None
    link_condition: Condition | None = None
    label: str = field(init=False)
    """How the trace names it (``guideline <name or position>``)."""
    matched: UsageKey = field(init=False)
    """The guideline's ``match_count``."""
    link_matched: UsageKey | None = field(init=False)
    """The journey link's ``match_count`` (a link only)."""

    def __post_init__(self) -> None:
        label = f"guideline {self.spec.name or self.order}"
        matched = UsageKey(Entity.GUIDELINE, self.spec.id, Counter.MATCH_COUNT)
        link = self.link_id
        link_matched = (
            None if link is None else UsageKey(Entity.JOURNEY_GUIDELINE, link, Counter.MATCH_COUNT)
        )
        object.__setattr__(self, "label", label)
        object.__setattr__(self, "matched", matched)
        object.__setattr__(self, "link_matched", link_matched)


@dataclass(frozen=True, slots=True)
class CompiledCanned:
    """A canned response with its template and conditions compiled."""

    spec: CannedResponseSpec
    template: Template
    conditions: tuple[Condition, ...]
    order: int
    fields: tuple[str, ...] = ()
    """The ``fields.<name>`` the template reads: values only a language model fills."""
    label: str = field(init=False)
    """How the trace and the response generator name it (``canned <name or position>``)."""
    used: UsageKey = field(init=False)
    """Its ``use_count``, moved when it is sent."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "label", f"canned {self.spec.name or self.order}")
        object.__setattr__(
            self, "used", UsageKey(Entity.CANNED_RESPONSE, self.spec.id, Counter.USE_COUNT)
        )


@dataclass
class CompiledJourney:
    """A journey: its states, transitions in the order tried, machine and guideline links."""

    spec: JourneySpec
    order: int
    initial: str | None
    states: dict[str, CompiledState]
    by_id: dict[UUID, str]
    outgoing: dict[str, list[CompiledTransition]]
    activation: tuple[Condition, ...]
    guidelines: tuple[CompiledGuideline, ...]
    machine: JourneyMachine | None
    finished: UsageKey = field(init=False)
    """Its ``total_sessions``, moved when a session reaches a final state."""

    def __post_init__(self) -> None:
        self.finished = UsageKey(Entity.JOURNEY, self.spec.id, Counter.TOTAL_SESSIONS)

    @property
    def title(self) -> str:
        return self.spec.title


@dataclass
class CompiledAgent:
    """Everything a turn needs of an agent, parsed and compiled."""

    stored: StoredAgent
    journeys: list[CompiledJourney]
    guidelines: list[CompiledGuideline]
    canned: list[CompiledCanned]
    tools: dict[str, ToolSpec]
    no_match: Template | None
    conditions: list[Condition] = field(default_factory=list)
    """Every condition of the agent, for the turn's one batch of natural-language ones."""
    guideline_batch: ConditionBatch = field(default_factory=lambda: ConditionBatch(()))
    """The expression conditions of guidelines and journey links, decided together."""
    canned_batch: ConditionBatch = field(default_factory=lambda: ConditionBatch(()))
    """The expression conditions of canned responses, decided together (fluid agents)."""
    canned_by_priority: list[CompiledCanned] = field(default_factory=list)
    """The canned responses in the order composition tries them (priority, then file)."""
    memo: dict[Any, Any] = field(default_factory=dict)
    """What turns derive from this version alone (the natural-language texts to ask,
    the variables to collect), kept for the next turn; bounded by the agent's size."""
    trace_rows: dict[tuple[str, Condition, bool], ConditionTrace] = field(default_factory=dict)
    """The trace rows of conditions decided in a batch, by where, condition and result;
    at most two per condition and place."""
    messages: UsageKey = field(init=False)
    """The agent's ``total_messages``."""

    def __post_init__(self) -> None:
        self.messages = UsageKey(Entity.AGENT, self.stored.agent_id, Counter.TOTAL_MESSAGES)

    @property
    def version(self) -> int:
        return self.stored.version

    def journey_by_id(self, journey_id: UUID | None) -> CompiledJourney | None:
        for journey in self.journeys:
            if journey.spec.id == journey_id:
                return journey
        return None


_SKIPPABLE = frozenset({StateType.CHAT, StateType.TOOL})
"""State types whose ``condition`` is a skip condition (a decision's names its question;
a final state ends the journey whatever holds)."""


def _compile_journey(
    spec: JourneySpec, order: int, guidelines: dict[str, CompiledGuideline]
) -> CompiledJourney:
    states = {
        s.name: CompiledState(
            s,
            Template.of(s.chat_prompt) if s.chat_prompt else None,
            compile_condition(s.condition)
            if s.allow_skip and s.condition and s.state_type in _SKIPPABLE
            else None,
        )
        for s in spec.states
    }
    outgoing: dict[str, list[CompiledTransition]] = {}
    ordered = sorted(enumerate(spec.transitions), key=lambda item: (-item[1].priority, item[0]))
    for _, transition in ordered:
        if transition.from_state in states and transition.to_state in states:
            outgoing.setdefault(transition.from_state, []).append(
                CompiledTransition(transition, compile_condition(transition.condition))
            )
    initials = [s.name for s in spec.states if s.is_initial]
    initial = initials[0] if initials else None
    machine = None
    if initial is not None:
        edges = [
            Edge(t.spec.id, source, t.spec.to_state)
            for source, transitions in outgoing.items()
            for t in transitions
        ]
        machine = JourneyMachine(list(states), initial, edges)
    links = []
    for link in spec.guidelines:
        base = guidelines.get(link.guideline)
        if base is None or not link.enabled:
            continue
        links.append(
            CompiledGuideline(
                base.spec,
                base.condition,
                link.priority_override or base.spec.priority,
                base.order,
                link.id,
                compile_condition(link.journey_specific_condition),
            )
        )
    return CompiledJourney(
        spec=spec,
        order=order,
        initial=initial,
        states=states,
        by_id={s.spec.id: name for name, s in states.items()},
        outgoing=outgoing,
        activation=tuple(compile_condition(c) for c in spec.conditions),
        guidelines=tuple(links),
        machine=machine,
    )


_FIELD = re.compile(r"\bfields\.([A-Za-z_][A-Za-z0-9_]*)")
"""A field of a canned response's template (``{{ fields.party }}``)."""


def compile_agent(stored: StoredAgent) -> CompiledAgent:
    """Compile a stored agent (see the module docstring).

    Raises:
        InvalidData: the host platform wrote some of the agent's rows and the agent
            they make has validation errors (a publish would have refused it).
    """
    if stored.host_written:
        _refuse_invalid(stored)
    bundle = stored.bundle
    guidelines = [
        CompiledGuideline(g, compile_condition(g.condition), g.priority, order)
        for order, g in enumerate(bundle.guidelines)
    ]
    named = {g.spec.name: g for g in guidelines if g.spec.name is not None}
    journeys = [_compile_journey(j, order, named) for order, j in enumerate(bundle.journeys)]
    canned = [
        CompiledCanned(
            c,
            Template.of(c.template),
            tuple(compile_condition(x) for x in c.conditions),
            order,
            tuple(dict.fromkeys(_FIELD.findall(c.template))),
        )
        for order, c in enumerate(bundle.canned_responses)
    ]
    agent = CompiledAgent(
        stored=stored,
        journeys=journeys,
        guidelines=[g for g in guidelines if g.spec.enabled],
        canned=[c for c in canned if c.spec.enabled],
        tools={tool.name: tool for tool in bundle.tools},
        no_match=Template.of(bundle.agent.no_match_response)
        if bundle.agent.no_match_response
        else None,
    )
    agent.conditions = _all_conditions(agent)
    links = [
        c
        for journey in journeys
        for g in journey.guidelines
        for c in (g.condition, g.link_condition)
        if c is not None
    ]
    agent.guideline_batch = ConditionBatch([g.condition for g in agent.guidelines] + links)
    agent.canned_batch = ConditionBatch([c for x in agent.canned for c in x.conditions])
    agent.canned_by_priority = sorted(agent.canned, key=lambda c: (-c.spec.priority, c.order))
    return agent


def _refuse_invalid(stored: StoredAgent) -> None:
    """Validate an agent that the platform wrote rows of, as a publish validates a bundle.

    The runtime's own publishes were validated before they were stored; rows written by
    the platform never were, and a graph with no initial state or a dead end would fail
    customers mid-conversation. Once per agent version (the compiled agent is cached).
    """
    # the validator is loaded on this path only
    from parlant_runtime.validation import validate_bundle  # noqa: PLC0415

    errors = validate_bundle(stored.bundle).errors
    if errors:
        listed = "\n".join(
            f"  {finding.code} at {finding.field}: {finding.message}" for finding in errors
        )
        raise InvalidData(
            f"agent {stored.agent_id} in workspace {stored.workspace_id!r} has rows written by "
            f"the platform that do not form a valid agent ({len(errors)} error(s)):\n{listed}\n"
            "fix them in the platform (`parlant-runtime export` then `parlant-runtime "
            "validate` shows the same findings); the runtime does not run it until then"
        )


def _all_conditions(agent: CompiledAgent) -> list[Condition]:
    found: list[Condition] = []
    for journey in agent.journeys:
        found.extend(journey.activation)
        found.extend(s.skip for s in journey.states.values() if s.skip is not None)
        found.extend(t.condition for ts in journey.outgoing.values() for t in ts)
        found.extend(g.link_condition for g in journey.guidelines if g.link_condition)
    found.extend(g.condition for g in agent.guidelines)
    found.extend(c for canned in agent.canned for c in canned.conditions)
    return found


def natural_texts(conditions: Sequence[Condition]) -> list[str]:
    """The distinct natural-language texts among ``conditions``, in first-seen order."""
    texts: dict[str, None] = {}
    for condition in conditions:
        if condition.kind is ConditionKind.NATURAL and condition.text:
            texts.setdefault(condition.text, None)
    return list(texts)


class AgentCache:
    """Compiled agents by (workspace, agent), replaced when the version moves on.

    A process that serves many tenants would otherwise keep every agent it ever
    ran: the cache holds at most ``max_agents`` and drops the one used least
    recently. A dropped agent is compiled again on its next turn, which costs time
    and changes nothing else.
    """

    def __init__(self, max_agents: int = DEFAULT_MAX_AGENTS) -> None:
        if max_agents < 1:
            raise ValueError(f"max_agents must be at least 1, not {max_agents}")
        self.max_agents = max_agents
        self._agents: OrderedDict[tuple[str, UUID], CompiledAgent] = OrderedDict()

    def __len__(self) -> int:
        return len(self._agents)

    def get(self, workspace_id: str, agent_id: UUID, version: int) -> CompiledAgent | None:
        key = (workspace_id, agent_id)
        agent = self._agents.get(key)
        if agent is None or agent.version != version:
            return None
        self._agents.move_to_end(key)
        return agent

    def put(self, agent: CompiledAgent) -> CompiledAgent:
        key = (agent.stored.workspace_id, agent.stored.agent_id)
        self._agents[key] = agent
        self._agents.move_to_end(key)
        while len(self._agents) > self.max_agents:
            self._agents.popitem(last=False)
        return agent
