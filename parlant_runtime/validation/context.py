"""What the rules read: the bundle indexed once, each journey as a graph of plain dicts.

Rules never rebuild what another rule needs. One pass over the bundle analyses every
template and condition and notes what states set and call; per journey, that pass is
one loop over the states and one over the transitions, which also give everything the
journey rules read: names and positions, each state's distinct successors and
predecessors, the lowest and highest priority of its exits and whether one of them is
always true, and the few states and transitions a rule has to look at closely.
Reachability, the breadth-first tree of example paths (made only for a finding that
shows one) and the loops (Tarjan's components) come from those dicts; nothing is
copied into a graph library.

Most rules then look only at what may be wrong: a text rule at the texts whose
analysis may give it something to say (:attr:`BundleContext.checked_sites`), a
transition rule at the states whose exits may shadow one another or share a
priority, a state rule at the states that do not plainly fit their type. What they
report, and in which order, is what a rule over every part would report.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from operator import attrgetter
from typing import Any, NamedTuple

from jinja2 import Environment, nodes
from jinja2.exceptions import TemplateError

from parlant_runtime.bundle.schema import AgentBundle, JourneySpec, StateSpec, TransitionSpec
from parlant_runtime.bundle.source import FieldPath, SourceMap, did_you_mean, format_path
from parlant_runtime.model import StateType
from parlant_runtime.sandbox import (
    CONTEXT_ROOTS,
    Analysis,
    ConditionKind,
    analyse,
    condition_kind,
    expression_source,
    has_template_syntax,
)
from parlant_runtime.sandbox.analysis import analyse_condition, analyse_template, analyse_text
from parlant_runtime.sandbox.environment import MAX_SOURCE_CHARS
from parlant_runtime.validation.findings import Code, Finding

_PARSER = Environment(autoescape=False)
"""Parses only (the runtime's sandbox is what evaluates): for what a text means."""

_CONTEXT_WORD = re.compile(r"\b(?:" + "|".join(sorted(CONTEXT_ROOTS)) + r")\b")
"""A word naming part of the turn context: no expression over it can do without one."""

NAMES_A_FIELD = re.compile(r"\b(?:state|journey)\b")
"""What an expression that compares ``state.name`` and the like must contain."""

_ALWAYS_KIND, _EXPRESSION_KIND = ConditionKind.ALWAYS, ConditionKind.EXPRESSION
_UNSEEN = Analysis()
"""Marks a condition not analysed yet."""
_ALWAYS = Analysis(constant=True)
"""Marks a condition that is always true for lack of any text (never analysed)."""
_MIXED = Analysis(
    error="mixes text with `{{ }}`; an expression condition is one `{{ ... }}` "
    "and nothing else, a natural-language condition has no braces"
)

__all__ = [
    "NAMES_A_FIELD",
    "BundleContext",
    "JourneyContext",
    "Site",
    "SiteKind",
    "cycles",
    "is_always_true",
    "parse_expression",
    "reads_like_expression",
]


class SiteKind(StrEnum):
    """What a piece of text in the bundle is."""

    TEMPLATE = "template"
    """Text sent to the customer: a prompt, a canned response, the no-match reply."""
    ARGUMENT = "argument"
    """A templated tool argument: rendered like a template, never shown to the customer."""
    CONDITION = "condition"


_TEMPLATE, _ARGUMENT, _CONDITION = SiteKind.TEMPLATE, SiteKind.ARGUMENT, SiteKind.CONDITION


class Site(NamedTuple):
    """One template or condition in the bundle, where it is, and what analysis found."""

    kind: SiteKind
    text: str
    path: FieldPath
    journey: int | None
    states: tuple[str, ...]
    analysis: Analysis | None
    """``None`` for text that needs no parsing (plain prompts, natural-language conditions)."""

    @property
    def what(self) -> str:
        """A short name of the site for messages."""
        return format_path(self.path)


@functools.lru_cache(maxsize=4096)
def parse_expression(source: str) -> nodes.Node | None:
    """The single Jinja expression ``source`` is, or ``None`` when it is not one (only
    parsed, never run)."""
    if len(source) > MAX_SOURCE_CHARS or "{" in source or "}" in source:
        return None
    try:
        body = _PARSER.parse("{{ " + source + " }}").body
    except (TemplateError, RecursionError):
        return None
    if len(body) != 1 or not isinstance(body[0], nodes.Output) or len(body[0].nodes) != 1:
        return None
    node: nodes.Node = body[0].nodes[0]
    return node


def reads_like_expression(condition: str) -> bool:
    """Whether a condition without ``{{ }}`` is an expression over the turn context
    (``vars.day is defined``, ``state.name == 'x'``): plain words never parse as one
    that reads ``vars``, ``state``, ``journey``, ``tool``, ``session``, ``kb``,
    ``message`` or calls ``mentions``, and a lone word is not enough."""
    text = condition.strip()
    if condition_kind(text) is not ConditionKind.NATURAL or not _CONTEXT_WORD.search(text):
        return False  # the cheap test first: most sentences name no part of the context
    tree = parse_expression(text)
    if tree is None or isinstance(tree, nodes.Name):
        return False
    return bool({node.name for node in tree.find_all(nodes.Name)} & CONTEXT_ROOTS)


def is_always_true(condition: str | None) -> bool:
    """Whether a condition holds whatever the turn: empty, or a constant-true expression."""
    kind = condition_kind(condition)
    if kind is ConditionKind.ALWAYS:
        return True
    if kind is ConditionKind.EXPRESSION:
        assert condition is not None
        return analyse(expression_source(condition), expression=True).constant is True
    return False


class _Texts:
    """What the one pass over the bundle learns from its texts, keeping nothing per text.

    Every template and condition is analysed once (texts of one shape share their
    analysis), but only what the text rules start from is kept: each distinct
    analysis, which of them a customer-facing template uses, the natural-language
    conditions that name part of the turn context (they may read like expressions),
    whether an analysed condition mentions ``state`` or ``journey``, and each condition
    text's analysis. The sites themselves, with their field paths, are walked again
    (:meth:`BundleContext.walk`) only when a text rule has something to look at.
    """

    def __init__(self) -> None:
        self.analyses: dict[int, Analysis] = {}
        """Each distinct analysis by identity (held here, so that its id stays its own)."""
        self.in_templates: set[int] = set()
        """The ids of the analyses of customer-facing templates (not tool arguments)."""
        self.worded: list[str] = []
        """The natural-language conditions with a word naming part of the turn context."""
        self.naming = False
        """Whether an analysed condition has ``state`` or ``journey`` in its text."""
        self.conditions: dict[str, Analysis | None] = {}
        """Each condition text seen, with its analysis (``_ALWAYS``: always true)."""
        self.result_variables: list[str] = []
        self.state_tools: set[str] = set()

    def template(self, text: str | None, *, shown: bool = True) -> None:
        """Note a template (``shown``: sent to the customer, not a tool argument)."""
        analysis = analyse_template(text) if text is not None else None
        if analysis is not None:
            self.analyses[id(analysis)] = analysis
            if shown:
                self.in_templates.add(id(analysis))

    def tool_config(self, config: dict[str, Any]) -> None:
        """Note a tool state's ``toolConfig``: its result variable, its argument templates."""
        result = config.get("resultVariable")
        if isinstance(result, str):
            self.result_variables.append(result)
        arguments = config.get("arguments")
        if isinstance(arguments, dict):
            for value in arguments.values():
                if isinstance(value, str):
                    self.template(value, shown=False)

    def condition(self, text: str | None) -> None:
        """Note a condition."""
        if text is not None and text not in self.conditions:
            self.analyse(text)

    def analyse(self, text: str) -> Analysis | None:
        """A condition's analysis, classified as :func:`condition_kind` does: ``_ALWAYS``
        when it is empty, ``None`` for natural language (noted, and remembered)."""
        kind, analysis = analyse_condition(text)
        if kind is _ALWAYS_KIND:
            analysis = _ALWAYS
        elif kind is _EXPRESSION_KIND:
            assert analysis is not None
            self.analyses[id(analysis)] = analysis
            if "state" in text or "journey" in text:
                self.naming = True
        elif "{{" in text or "{%" in text or "{#" in text:
            analysis = _MIXED
            self.analyses[id(analysis)] = analysis
        else:
            analysis = None
            if _CONTEXT_WORD.search(text):
                self.worded.append(text)
        self.conditions[text] = analysis
        return analysis


@dataclass
class BundleContext:
    """The bundle, indexed for the rules."""

    bundle: AgentBundle
    source: SourceMap | None = None
    _reads_like: dict[str, bool] = field(default_factory=dict, init=False, repr=False)

    @cached_property
    def _scan(self) -> tuple[_Texts, list[JourneyContext]]:
        """The one pass over the bundle: its texts, and each journey's context."""
        texts = _Texts()
        bundle = self.bundle
        no_match = bundle.agent.no_match_response
        if no_match:
            texts.template(no_match)
        for guideline in bundle.guidelines:
            texts.condition(guideline.condition)
        for canned in bundle.canned_responses:
            texts.template(canned.template)
            for text in canned.conditions:
                texts.condition(text)
        journeys = [
            JourneyContext(self, journey, index, texts)
            for index, journey in enumerate(bundle.journeys)
        ]
        return texts, journeys

    def release(self) -> None:
        """Drop the journeys' contexts (they point back at this one), so that reference
        counting alone frees them; the context is not used after this."""
        self.__dict__.pop("_scan", None)

    @property
    def journeys(self) -> list[JourneyContext]:
        """Each journey's context, in file order."""
        return self._scan[1]

    def condition_analysis(self, condition: str) -> Analysis | None:
        """A condition's analysis (``None`` for natural language), made once."""
        texts = self._scan[0]
        known = texts.conditions
        return known[condition] if condition in known else texts.analyse(condition)

    def always_true(self, condition: str | None) -> bool:
        """:func:`is_always_true`, from the analysis the scan made (or makes now)."""
        if condition is None:
            return True
        analysis = self.condition_analysis(condition)
        return analysis is not None and analysis.constant is True

    def reads_like_expression(self, condition: str) -> bool:
        """:func:`reads_like_expression`, remembered for the rest of this validation."""
        known = self._reads_like.get(condition)
        if known is None:
            known = self._reads_like[condition] = reads_like_expression(condition)
        return known

    @cached_property
    def tool_names(self) -> frozenset[str]:
        """Names of the declared tools."""
        return frozenset(tool.name for tool in self.bundle.tools)

    @cached_property
    def tool_parameters(self) -> dict[str, object]:
        """Each declared tool's ``parameters.properties`` (the first tool of a name)."""
        declared: dict[str, object] = {}
        for tool in self.bundle.tools:
            declared.setdefault(tool.name, tool.parameters.get("properties"))
        return declared

    @cached_property
    def state_tools(self) -> frozenset[str]:
        """Names of the tools that some state calls (declared or not)."""
        return frozenset(self._scan[0].state_tools)

    @cached_property
    def guideline_names(self) -> frozenset[str]:
        """Names of the named guidelines."""
        return frozenset(g.name for g in self.bundle.guidelines if g.name is not None)

    @cached_property
    def term_words(self) -> frozenset[str]:
        """Glossary term names and synonyms, case-folded."""
        words = set()
        for term in self.bundle.terms:
            words.add(term.name.casefold())
            words.update(synonym.casefold() for synonym in term.synonyms)
        return frozenset(words)

    @cached_property
    def private_variables(self) -> frozenset[str]:
        """Keys of variables declared private."""
        return frozenset(v.key for v in self.bundle.variables if v.is_private)

    @property
    def sites(self) -> tuple[Site, ...]:
        """Every template and condition of the bundle, in file order."""
        return tuple(self.walk())

    def walk(self) -> Iterator[Site]:
        """Every template and condition of the bundle, in file order, with its analysis."""
        for site in self._walk():
            if site is not None:
                yield site

    def _walk(self) -> Iterator[Site | None]:
        bundle = self.bundle
        template, condition = self._template_site, self._condition_site
        if bundle.agent.no_match_response and has_template_syntax(bundle.agent.no_match_response):
            yield template(bundle.agent.no_match_response, ("agent", "noMatchResponse"), None)
        for i, guideline in enumerate(bundle.guidelines):
            yield condition(guideline.condition, ("guidelines", i, "condition"), None)
        for i, canned in enumerate(bundle.canned_responses):
            yield template(canned.template, ("cannedResponses", i, "template"), None)
            for k, text in enumerate(canned.conditions):
                yield condition(text, ("cannedResponses", i, "conditions", k), None)
        for j, journey in enumerate(bundle.journeys):
            here: FieldPath = ("journeys", j)
            for k, text in enumerate(journey.conditions):
                yield condition(text, (*here, "conditions", k), j)
            for i, state in enumerate(journey.states):
                at = (*here, "states", i)
                names = (state.name,)
                yield template(state.chat_prompt, (*at, "chatPrompt"), j, names)
                yield condition(state.condition, (*at, "condition"), j, names)
                arguments = state.tool_config.get("arguments")
                if isinstance(arguments, dict):
                    for key, value in arguments.items():
                        if isinstance(value, str) and has_template_syntax(value):
                            path = (*at, "toolConfig", "arguments", key)
                            yield template(value, path, j, names, _ARGUMENT)
            for i, transition in enumerate(journey.transitions):
                ends = (transition.from_state, transition.to_state)
                path = (*here, "transitions", i, "condition")
                yield condition(transition.condition, path, j, ends)
            for i, link in enumerate(journey.guidelines):
                path = (*here, "guidelines", i, "journeySpecificCondition")
                yield condition(link.journey_specific_condition, path, j)

    @staticmethod
    def _template_site(
        text: str | None,
        path: FieldPath,
        journey: int | None,
        states: tuple[str, ...] = (),
        kind: SiteKind = _TEMPLATE,
    ) -> Site | None:
        if text is None:
            return None
        analysis = analyse_text(text, expression=False) if has_template_syntax(text) else None
        return Site(kind, text, path, journey, states, analysis)

    def _condition_site(
        self, text: str | None, path: FieldPath, journey: int | None, states: tuple[str, ...] = ()
    ) -> Site | None:
        if text is None:
            return None
        analysis = self.condition_analysis(text)
        if analysis is _ALWAYS:
            return None
        return Site(_CONDITION, text, path, journey, states, analysis)

    @cached_property
    def _unbraced(self) -> list[str]:
        """The natural-language conditions that read like expressions."""
        return [text for text in self._scan[0].worded if self.reads_like_expression(text)]

    @cached_property
    def defined_variables(self) -> frozenset[str]:
        """Variables something defines: declared, set by a tool state, or tested for presence.

        A variable tested with ``is defined`` somewhere is taken as set from outside
        the bundle (by an extractor or the host), so the author knows it may be missing.
        """
        texts = self._scan[0]
        names = {variable.key for variable in self.bundle.variables}
        names.update(texts.result_variables)
        analyses = list(texts.analyses.values())
        for text in self._unbraced:
            # meant as an expression (unbraced_expression says so): count it as one
            analyses.append(analyse_text(text.strip(), expression=True))
        for analysis in analyses:
            names.update(read.name for read in analysis.variables if read.guarded)
        return frozenset(names)

    @cached_property
    def checked_sites(self) -> tuple[Site, ...]:
        """The sites, in file order, that some text rule may report on.

        Every other site is fine for every text rule: a plain text, a natural-language
        condition that does not read like an expression, or an analysis without error
        that reads only defined variables (and no private one, in a template), names no
        undeclared tool and no unknown term, and compares no ``state`` or ``journey``
        field. A rule still applies its own test to each site it is given. When the
        scan found none of these, the sites are not even walked.
        """
        texts = self._scan[0]
        flags = {key: self._may_report(analysis) for key, analysis in texts.analyses.items()}
        if not (
            self._unbraced
            or texts.naming
            or any(general for general, _ in flags.values())
            or any(flags[key][1] for key in texts.in_templates)
        ):
            return ()
        seen: dict[int, tuple[Analysis, tuple[bool, bool]]] = {}  # held: ids stay their own
        checked: list[Site] = []
        for site in self.walk():
            analysis = site.analysis
            if analysis is None:
                if site.kind is _CONDITION and self.reads_like_expression(site.text):
                    checked.append(site)
                continue
            known = seen.get(id(analysis))
            if known is None:
                known = seen[id(analysis)] = (analysis, self._may_report(analysis))
            general, private = known[1]
            if (
                general
                or (private and site.kind is _TEMPLATE)
                or (
                    site.kind is _CONDITION
                    and NAMES_A_FIELD.search(expression_source(site.text)) is not None
                )
            ):
                checked.append(site)
        return tuple(checked)

    def _may_report(self, analysis: Analysis) -> tuple[bool, bool]:
        """Whether an analysis may give a finding at any site, and whether it reads a
        private variable (a finding at a template)."""
        private = any(read.name in self.private_variables for read in analysis.variables)
        if analysis.error is not None or analysis.unknown_names:
            return True, private
        defined = self.defined_variables
        general = (
            any(not read.guarded and read.name not in defined for read in analysis.variables)
            or any(name not in self.tool_names for name in analysis.tools)
            or any(term.casefold() not in self.term_words for term in analysis.terms)
        )
        return general, private

    @cached_property
    def journeys_of_state(self) -> dict[str, tuple[str, ...]]:
        """For each state name, the titles of the journeys that have such a state."""
        owners: dict[str, list[str]] = {}
        for journey in self.bundle.journeys:
            for state in journey.states:
                owners.setdefault(state.name, []).append(journey.title)
        return {name: tuple(titles) for name, titles in owners.items()}

    def finding(
        self,
        code: Code,
        message: str,
        path: FieldPath,
        *,
        journey: str | None = None,
        states: Iterable[str] = (),
        example: Iterable[str] | None = None,
    ) -> Finding:
        """A finding at ``path``, with its line when the bundle came from a file."""
        return Finding(
            code=code,
            journey=journey,
            states=tuple(states),
            message=message,
            field=format_path(path),
            line=self.source.line_of(path) if self.source is not None else None,
            example=tuple(example) if example is not None else None,
        )


_CHAT, _TOOL, _DECISION, _FINAL = (
    StateType.CHAT,
    StateType.TOOL,
    StateType.DECISION,
    StateType.FINAL,
)
_STATE_FIELDS = attrgetter(
    "name",
    "state_type",
    "is_initial",
    "is_final",
    "chat_prompt",
    "condition",
    "tool",
    "tool_config",
)


class JourneyContext:
    """One journey as a graph: states are nodes, resolvable transitions are edges.

    Built in one pass over the states and one over the transitions, which also
    analyse and record the journey's texts (for the text rules). Edges are kept as
    networkx's ``DiGraph`` would keep them: once per pair of states, in the order of
    their first transition, which is the order the breadth-first tree (and so every
    example path) follows.
    """

    def __init__(
        self,
        bundle: BundleContext,
        journey: JourneySpec,
        index: int,
        texts: _Texts | None = None,
    ) -> None:
        self.bundle = bundle
        self.journey = journey
        self.index = index
        texts = texts if texts is not None else _Texts()
        for text in journey.conditions:
            texts.condition(text)
        names = self._states(journey.states, texts)
        # A transition with an end that names no state is one dangling_reference; the
        # path rules stay quiet about what follows from it (no dead_end at its source,
        # no unreachable_state behind it), as the fix may change all of that.
        self.guesses: dict[str, str] = {}
        """Transition ends that name no state, and the state each most likely means."""
        self._transitions(journey.transitions, names, texts)
        for link in journey.guidelines:
            texts.condition(link.journey_specific_condition)

    def _states(  # noqa: PLR0915 - one loop body; split into calls, a call per state
        self, states: list[StateSpec], texts: _Texts
    ) -> list[str]:
        """The one pass over the states: names, kinds, their texts, and which states the
        state rules need to look at."""
        condition, analyses, in_templates = texts.condition, texts.analyses, texts.in_templates
        names: list[str] = []
        position: dict[str, int] = {}
        initial: list[str] = []
        final: set[str] = set()
        waiting: set[str] = set()
        looked_at: list[int] = []
        tool_users: list[int] = []
        movers: list[int] = []
        moving: list[str] = []
        for i, (name, kind, is_initial, is_final, prompt, text, tool, config) in enumerate(
            map(_STATE_FIELDS, states)
        ):
            names.append(name)
            position.setdefault(name, i)
            ends = kind is _FINAL or is_final
            if is_initial:
                initial.append(name)
            if ends:
                final.add(name)
            if ends or kind is _CHAT:
                waiting.add(name)
            # whether the state plainly fits its type (else the state rule looks closely):
            # a chat state with a prompt, a decision state with a condition, a final state
            # not initial, none of them marked final or calling a tool; never a tool state
            if kind is _CHAT:
                fits = bool(prompt and prompt.strip()) and not is_final
            elif kind is _DECISION:
                fits = bool(text and text.strip()) and not is_final
                movers.append(i)
                if not is_final:
                    moving.append(name)
            elif kind is _FINAL:
                fits = not is_initial
            else:
                fits = False
                movers.append(i)
                if not is_final:
                    moving.append(name)
            if not fits or tool or config:
                looked_at.append(i)
            analysis = analyse_template(prompt) if prompt is not None else None
            if analysis is not None and id(analysis) not in in_templates:
                analyses[id(analysis)] = analysis
                in_templates.add(id(analysis))
            if text is not None:
                condition(text)
            if tool:
                tool_users.append(i)
                texts.state_tools.add(tool)
            if config:
                texts.tool_config(config)
        self.names = names
        """The states' names, in file order."""
        self.position = position
        """Each state's index."""
        self.initial_states: tuple[str, ...] = tuple(initial)
        """Names of the states marked initial."""
        self.final_states: frozenset[str] = frozenset(final)
        """Names of the states that end the journey."""
        self.waiting_states: frozenset[str] = frozenset(waiting)
        """Names of the states where the conversation waits for the customer."""
        self.looked_at = looked_at
        """Indexes of the states whose content may not fit their type (the others do)."""
        self.tool_users = tool_users
        """Indexes of the states that name a tool."""
        self.movers = movers
        """Indexes of the tool and decision states."""
        self.moving = list(dict.fromkeys(moving))
        """Names of the states that do not wait for the customer, in file order."""
        return names

    def _transitions(  # noqa: PLR0915 - one loop body; split into calls, a call per transition
        self, transitions: list[TransitionSpec], names: list[str], texts: _Texts
    ) -> None:
        """The one pass over the transitions: their conditions, the graph, each state's
        exits, and which states and transitions the transition rules need to look at."""
        known, analyse_condition = texts.conditions, texts.analyse
        successors: dict[str, dict[str, None]] = {name: {} for name in names}
        predecessors: dict[str, dict[str, None]] = {name: {} for name in names}
        always: list[bool] = []
        lowest: dict[str, int] = {}  # the priority of the exit tried last, so far
        highest: dict[str, int] = {}  # the priority of the exit tried first, so far
        sure: set[str] = set()  # states with an always-true exit
        shadowing: set[str] = set()
        sharing: set[str] = set()
        repeats: set[tuple[str, str]] = set()
        unresolved: set[tuple[str, str]] = set()
        self_loops: list[int] = []
        lost: set[str] = set()
        orphans: set[str] = set()
        for i, transition in enumerate(transitions):
            source, target, priority = (
                transition.from_state,
                transition.to_state,
                transition.priority,
            )
            text = transition.condition
            if text is None:
                flag = True
            else:
                analysis = known.get(text, _UNSEEN)
                if analysis is _UNSEEN:
                    analysis = analyse_condition(text)
                flag = analysis is not None and analysis.constant is True
            always.append(flag)
            low = lowest.get(source)
            if low is None:
                lowest[source] = highest[source] = priority
            elif priority <= low:
                # exits are tried by priority, then in file order: this one comes after
                # every earlier exit of equal or higher priority, before the others
                lowest[source] = priority
                if source in sure:
                    shadowing.add(source)  # an always-true exit is tried before it
                if priority == low:
                    sharing.add(source)
            else:
                if flag:
                    shadowing.add(source)  # tried before the exit that is tried last
                high = highest[source]
                if priority >= high:
                    highest[source] = priority
                    if priority == high:
                        sharing.add(source)
                else:
                    sharing.add(source)  # between the two: may equal another's, looked at later
            if flag:
                sure.add(source)
            out = successors.get(source)
            into = predecessors.get(target)
            if out is not None and into is not None:
                if target in out:
                    repeats.add((source, target))
                else:
                    out[target] = None
                    into[source] = None
                if source == target:
                    self_loops.append(i)
                continue
            if source == target:
                self_loops.append(i)
            if (source, target) in unresolved:
                repeats.add((source, target))
            unresolved.add((source, target))
            self._unresolved(
                source, target, names=names, successors=successors, lost=lost, orphans=orphans
            )
        self.successors = successors
        """Each state's distinct successors, in the order of their first transition."""
        self.predecessors = predecessors
        """Each state's distinct predecessors, in the order of their first transition."""
        self.sources: Mapping[str, int] = lowest
        """The names transitions leave (states or not), in the order of their first
        transition, each with the lowest priority of its exits."""
        self.always = always
        """For each transition, whether its condition is always true."""
        self.sure = sure
        """States with an always-true exit (a fallback)."""
        self.shadowing = shadowing
        """States with an always-true exit that is not the last one tried."""
        self.sharing = sharing
        """States with two exits of equal priority."""
        self.repeats = repeats
        """Pairs of ends that more than one transition joins."""
        self.self_loops = self_loops
        """Indexes of the transitions from a state to itself."""
        self.dangling = bool(unresolved)
        """Whether some transition names a state that does not exist."""
        self.lost: frozenset[str] = frozenset(lost)
        """States with a transition to a name that is no state of the journey."""
        self.orphans: frozenset[str] = frozenset(orphans)
        """States with a transition from a name that is no state of the journey."""

    def _unresolved(
        self,
        source: str,
        target: str,
        *,
        names: list[str],
        successors: Mapping[str, object],
        lost: set[str],
        orphans: set[str],
    ) -> None:
        """Note a transition with an end that names no state: the state each end most
        likely means, and the states the path rules then stay quiet about."""
        for name in (source, target):
            if name not in successors and name not in self.guesses:
                guess = did_you_mean(name, sorted(names))
                if guess is not None:
                    self.guesses[name] = guess
        if source in successors:
            lost.add(source)
        elif target in successors:
            orphans.add(target)
            if source in self.guesses:  # the state it most likely leaves lacks that exit
                lost.add(self.guesses[source])

    @property
    def title(self) -> str:
        """The journey's title."""
        return self.journey.title

    @cached_property
    def reachable(self) -> set[str]:
        """The states some path from an initial state reaches."""
        return _reach(self.initial_states, self.successors)

    @cached_property
    def parents(self) -> dict[str, str | None]:
        """Breadth-first tree from the initial states: each reachable state's parent
        (made only for example paths; :attr:`reachable` says what is reached)."""
        return _bfs(self.initial_states, self.successors)

    def is_reachable(self, state: str) -> bool:
        """Whether some path from an initial state reaches ``state``."""
        return state in self.reachable

    @cached_property
    def can_reach_final(self) -> set[str]:
        """States from which some final state can be reached."""
        return _reach(self.final_states, self.predecessors)

    def ancestors(self, state: str) -> set[str]:
        """The states from which some path leads to ``state`` (networkx's ``ancestors``)."""
        found = _reach((state,), self.predecessors)
        found.discard(state)  # networkx leaves it out, also when it lies on a loop
        return found

    @cached_property
    def by_source(self) -> dict[str, list[int]]:
        """Each state's transitions (indexes), in file order (made when a rule needs it)."""
        exits: dict[str, list[int]] = {}
        for index, transition in enumerate(self.journey.transitions):
            exits.setdefault(transition.from_state, []).append(index)
        return exits

    def tried(self, source: str) -> list[tuple[int, TransitionSpec]]:
        """A state's transitions (with their index) in the order they are tried.

        Higher priority first; among equal priorities, the order of the file.
        """
        transitions = self.journey.transitions
        ordered = [(i, transitions[i]) for i in self.by_source.get(source, ())]
        ordered.sort(key=_try_order)
        return ordered

    def path_to(self, state: str) -> tuple[str, ...]:
        """The shortest path from an initial state to ``state`` (which must be reachable)."""
        path = [state]
        parent = self.parents[state]
        while parent is not None:
            path.append(parent)
            parent = self.parents[parent]
        return tuple(reversed(path))

    def state_path(self, name: str) -> FieldPath:
        """The field path of the state called ``name``."""
        index = self.position.get(name)
        if index is not None:
            return ("journeys", self.index, "states", index)
        return ("journeys", self.index, "states")

    def transition_path(self, index: int) -> FieldPath:
        """The field path of transition ``index``."""
        return ("journeys", self.index, "transitions", index)

    def finding(
        self,
        code: Code,
        message: str,
        path: FieldPath,
        *,
        states: Iterable[str] = (),
        example: Iterable[str] | None = None,
    ) -> Finding:
        """A finding in this journey."""
        return self.bundle.finding(
            code, message, path, journey=self.title, states=states, example=example
        )


def _try_order(item: tuple[int, TransitionSpec]) -> tuple[int, int]:
    return -item[1].priority, item[0]


def _reach(starts: Iterable[str], neighbours: Mapping[str, Iterable[str]]) -> set[str]:
    """The nodes some path from ``starts`` reaches (``starts`` included), depth first."""
    seen = set(starts)
    todo = list(seen)
    add, push, pop = seen.add, todo.append, todo.pop
    while todo:
        for nxt in neighbours[pop()]:
            if nxt not in seen:
                add(nxt)
                push(nxt)
    return seen


def _bfs(starts: Iterable[str], neighbours: Mapping[str, Iterable[str]]) -> dict[str, str | None]:
    parents: dict[str, str | None] = {}
    queue: list[str] = []  # read in order while it grows: a queue without pops
    for start in starts:
        if start not in parents:
            parents[start] = None
            queue.append(start)
    push = queue.append
    for node in queue:
        for nxt in neighbours[node]:
            if nxt not in parents:
                parents[nxt] = node
                push(nxt)
    return parents


def cycles(
    successors: Mapping[str, Iterable[str]], nodes: Iterable[str], inside: frozenset[str] | None
) -> Iterator[tuple[str, ...]]:
    """One example cycle per strongly connected component that has a cycle.

    The graph is ``successors`` restricted to ``inside`` (every node when ``None``);
    ``nodes`` lists its nodes. Linear in the size of the graph: components come from
    Tarjan's algorithm, and one cycle is looked up inside each, never all simple
    cycles. The cycle is the one networkx's ``find_cycle`` finds in the component
    from its smallest node.
    """
    for component in _components(successors, nodes, inside):
        if len(component) == 1:
            (node,) = component
            if node in successors[node]:
                yield (node, node)
            continue
        members = frozenset(component)
        edges = _find_cycle(successors, members, min(component))
        yield (*(edge[0] for edge in edges), edges[-1][1])


def _components(
    successors: Mapping[str, Iterable[str]], nodes: Iterable[str], inside: frozenset[str] | None
) -> Iterator[list[str]]:
    """Tarjan's strongly connected components, without recursion."""
    number: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    for root in nodes:
        if root in number:
            continue
        number[root] = low[root] = len(number)
        stack.append(root)
        on_stack.add(root)
        work = [(root, iter(successors[root]))]
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if inside is not None and nxt not in inside:
                    continue
                if nxt not in number:
                    number[nxt] = low[nxt] = len(number)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(successors[nxt])))
                    break
                if nxt in on_stack and number[nxt] < low[node]:
                    low[node] = number[nxt]
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == number[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    yield component


def _find_cycle(
    successors: Mapping[str, Iterable[str]], members: frozenset[str], start: str
) -> list[tuple[str, str]]:
    """networkx's ``find_cycle(G.subgraph(members), source=start)``, step for step: the
    edges of a depth-first walk (each node's edges in the order of its successors)
    until one closes a loop on the active path, then the part of that path in the
    loop."""
    walks: dict[str, Iterator[str]] = {}
    stack = [start]
    path: list[tuple[str, str]] = []
    active = {start}
    previous: str | None = None
    while stack:
        tail = stack[-1]
        walk = walks.get(tail)
        if walk is None:
            walk = walks[tail] = iter([n for n in successors[tail] if n in members])
        head = next(walk, None)
        if head is None:
            stack.pop()
            continue
        stack.append(head)
        if previous is not None and tail != previous:  # backtracked: pop the active path
            while True:
                if not path:
                    active = {tail}
                    break
                active.remove(path.pop()[1])
                if path and path[-1][1] == tail:
                    break
        path.append((tail, head))
        if head in active:  # the loop closes: keep the path from where it starts
            first = next((i for i, (t, _) in enumerate(path) if t == head), len(path) - 1)
            return path[first:]
        active.add(head)
        previous = head
    raise AssertionError("a strongly connected component without a cycle")
