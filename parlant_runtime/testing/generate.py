"""Conversation tests generated from the journey graph: skeletons that take every transition.

For each journey, :func:`generate_tests` works in five steps (steps 1 to 3 live in
:mod:`~parlant_runtime.testing._routes`, step 4 in :mod:`~parlant_runtime.testing._planner`
with :mod:`~parlant_runtime.testing._values`, step 5 and the file here):

1. **Graph.** The journey becomes a networkx multigraph: one node per state, one
   edge per transition (keyed by its position, so two transitions between the same
   two states stay two edges).
2. **Candidate paths** (:class:`Routes`). One breadth-first tree from the initial
   state gives, for every transition ``t`` it reaches, the shortest way to ``t``'s
   source, and the distances to the final states a way on from ``t``'s target.
   Among equally short ways the tree keeps the one through the transitions tried
   first (highest priority), which have no rival to get past. Alternatives (up to
   ``ALTERNATIVES`` ways, at most ``DETOUR`` transitions longer) are searched only
   for a transition whose first way fails. Linear in the journey,
   where enumerating paths per transition grew as ``states**4`` on dense journeys.
3. **Greedy set cover** (:func:`greedy_cover`). Repeatedly the candidate that
   takes the most transitions not yet taken (the shorter on ties, then file
   order) becomes a case, until every transition is taken or no candidate is
   left: the classic greedy approximation, within a factor ``ln(n)`` of the
   fewest cases, evaluated lazily on a heap. The chosen way is extended by a walk
   through transitions not taken yet (:meth:`Routes.extended`), so that one case
   takes many transitions of a dense journey.
4. **Planning** (:class:`Planner`). Each path is turned into steps: a step per
   customer turn (the first starts the journey; each later one leaves the chat
   state the session waits in), with ``holds`` listing the natural-language conditions the path
   needs and leaving out those of every transition that would win first; ``set``
   values and tool stubs built from the expression conditions it can read (``is
   defined``, comparisons with a constant, truthiness, ``not``/``and``/``or``,
   ``mentions('term')``) and from the tools' parameter and return schemas. A
   value set in a step holds for the whole step, so every expression the step
   decided is checked again after each one; a contradiction ("``score > 3``" and
   "not ``score > 2``" in one turn) makes the path unplannable. After ``t``, the
   way on to a final state is searched depth first (the suggested one first,
   then the others nearest a final state, within a bounded detour and budget),
   so that a way on that contradicts the path so far is replaced by one that
   does not.
5. **Checking** (:class:`_Checker`). The case is then **run** with the real runner
   (on one published agent when cases cannot see each other's values); only the
   transitions it really took count, and a case that does not pass (or does not
   take ``t``) is dropped and the next candidate tried. A transition no case
   took is reported with the reason.

Where a person must write something, the text says ``TODO``: each customer
message is a placeholder (``"TODO: ..."``, carrying a glossary term where a
``mentions()`` condition needs one) and each step has a ``# TODO`` comment for
the reply to expect. The generated file is valid as it stands and passes.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from parlant_runtime.bundle import LoadedBundle
from parlant_runtime.bundle.schema import AgentBundle, TransitionSpec
from parlant_runtime.bundle.source import SourceMap
from parlant_runtime.model import StateType
from parlant_runtime.testing._planner import Plan, PlannedStep, Planner, Unplannable
from parlant_runtime.testing._routes import Routes, greedy_cover, ordered_transitions
from parlant_runtime.testing.coverage import taken_transitions, transition_positions
from parlant_runtime.testing.loader import ConversationFile
from parlant_runtime.testing.runner import AgentHost, run_case
from parlant_runtime.testing.schema import ConversationSpec

__all__ = [
    "GeneratedCase",
    "GeneratedJourney",
    "GeneratedTests",
    "Uncovered",
    "generate_tests",
    "render_generated",
]


@dataclass(frozen=True, slots=True)
class Uncovered:
    """A transition no generated case takes, and why."""

    journey: str
    index: int
    line: int | None
    description: str
    reason: str


@dataclass(frozen=True, slots=True)
class GeneratedCase:
    """One case as conversation-test data, with the comments written beside its steps."""

    data: dict[str, Any]
    notes: tuple[tuple[str, ...], ...]
    """Per step, the comment lines (what the step takes, the TODO for the reply)."""
    covers: frozenset[int]
    """Positions of the transitions the case took when it was run."""


@dataclass(frozen=True, slots=True)
class GeneratedJourney:
    """The cases of one journey, and the transitions they leave out."""

    title: str
    transitions: int
    cases: tuple[GeneratedCase, ...]
    uncovered: tuple[Uncovered, ...]

    @property
    def covered(self) -> int:
        return self.transitions - len(self.uncovered)


@dataclass(frozen=True, slots=True)
class GeneratedTests:
    """Everything generated for one bundle."""

    bundle: str
    journeys: tuple[GeneratedJourney, ...]

    @property
    def cases(self) -> int:
        return sum(len(journey.cases) for journey in self.journeys)


# ---------------------------------------------------------------------------
# a plan as conversation-test data


def _message(step: PlannedStep, number: int) -> str:
    text = f"TODO: what the customer says (step {number})"
    if step.terms:
        text += " - mentions " + ", ".join(dict.fromkeys(step.terms))
    return text


def _stub(results: list[Any]) -> dict[str, Any]:
    """One result for every call when the calls need the same, else one per call."""
    if all(result == results[0] for result in results):
        return {"returns": results[0]}
    return {"calls": [{"returns": result} for result in results]}


def _case_data(name: str, plan: Plan) -> tuple[dict[str, Any], tuple[tuple[str, ...], ...]]:
    steps = []
    notes = []
    for number, step in enumerate(plan.steps, start=1):
        data: dict[str, Any] = {"customer": _message(step, number)}
        if step.holds:
            data["holds"] = list(step.holds)
        if step.sets:
            data["set"] = step.sets
        data["expect"] = {"journey": step.journey, "state": step.state}
        steps.append(data)
        comment = [f"takes {take}" for take in step.takes]
        if number == 1:
            comment.insert(0, "starts the journey")
        comment.append('TODO: expect the reply, e.g. reply: "..." or reply_contains: "..."')
        notes.append(tuple(comment))
    case: dict[str, Any] = {"name": name}
    if plan.start:
        case["variables"] = plan.start
    if plan.stubs:
        case["tools"] = {tool: _stub(results) for tool, results in sorted(plan.stubs.items())}
    case["steps"] = steps
    return case, tuple(notes)


# ---------------------------------------------------------------------------
# generating and checking


def _describe(spec: TransitionSpec) -> str:
    text = f"{spec.from_state} -> {spec.to_state}"
    if spec.condition:
        text += f" [{' '.join(spec.condition.split())}]"
    return text


class _Checker:
    """Runs planned cases with the real runner, on one event loop; where cases cannot
    see each other (see :meth:`AgentHost.shareable`) on one published agent too."""

    def __init__(self, bundle: AgentBundle, journey: int, positions: Mapping[str, Any]) -> None:
        self.bundle, self.journey, self.positions = bundle, journey, positions
        self.loop = asyncio.new_event_loop()
        self.host: AgentHost | None = None
        if AgentHost.shareable(bundle):
            self.host = self.loop.run_until_complete(AgentHost.publish(bundle))

    def run(self, case: dict[str, Any]) -> tuple[bool, set[int], str]:
        """Run one case: whether it passed, the transitions of the journey it took, and
        why not."""
        # as JSON data, which is what the rendered file says (a YAML round trip per case
        # cost more than running it)
        data = json.loads(json.dumps({"cases": [case]}))
        loaded = ConversationFile(ConversationSpec.model_validate(data), SourceMap(), None)
        result = self.loop.run_until_complete(run_case(loaded, 0, self.bundle, host=self.host))
        taken = {
            i
            for j, i in taken_transitions(self.bundle, result.traces, self.positions)
            if j == self.journey
        }
        why = ""
        if result.failure is not None and result.failure.mismatches:
            first = result.failure.mismatches[0]
            where = f"step {result.failure.step}: " if result.failure.step else ""
            errors = f" ({'; '.join(result.failure.errors)})" if result.failure.errors else ""
            why = f"{where}{first.key}: {first.message}{errors}"
        return result.passed, taken, why

    def close(self) -> None:
        self.loop.close()


def _journey_tests(loaded: LoadedBundle, index: int, tick: Callable[[], None]) -> GeneratedJourney:
    bundle = loaded.bundle
    journey = bundle.journeys[index]
    line_of = loaded.source.line_of
    total = len(journey.transitions)
    reasons: dict[int, str] = {}
    names = {state.name for state in journey.states}
    for i, t in enumerate(journey.transitions):
        if t.from_state not in names or t.to_state not in names:
            reasons[i] = "it names a state the journey does not have"
    initial = next((s.name for s in journey.states if s.is_initial), None)
    cases: list[GeneratedCase] = []
    covered: set[int] = set()
    if not journey.enabled:
        reasons.update({i: "the journey is disabled" for i in range(total) if i not in reasons})
    elif initial is None:
        reasons.update(
            {i: "the journey has no initial state" for i in range(total) if i not in reasons}
        )
    else:
        outgoing = ordered_transitions(journey)
        routes = Routes(journey, initial, outgoing)
        distance = routes.distance
        positions = transition_positions(bundle)
        reachable = routes.reachable()
        for i in range(total):
            if i not in reachable and i not in reasons:
                reasons[i] = "no path from the initial state reaches it"
        checker = _Checker(bundle, index, positions)
        chat = frozenset(s.name for s in journey.states if s.state_type is StateType.CHAT)
        try:
            for best in greedy_cover(routes, reachable, covered):
                tick()
                for route in routes.routes(best, covered, chat):
                    try:
                        plan, path = Planner(bundle, journey).plan(route, outgoing, distance)
                    except Unplannable as exc:
                        reasons.setdefault(best, str(exc))
                        continue
                    number = len(cases) + 1
                    shown = " -> ".join([initial, *(e.spec.to_state for e in path)])
                    name = f"{journey.title}: path {number} ({shown})"
                    data, notes = _case_data(name, plan)
                    passed, taken, why = checker.run(data)
                    if not passed:
                        reasons.setdefault(best, f"the planned case does not run as planned: {why}")
                        continue
                    if best not in taken:  # it ran, but went elsewhere: try the next path
                        reasons.setdefault(best, "the planned case ran but did not take it")
                        continue
                    covered |= taken
                    cases.append(GeneratedCase(data, notes, frozenset(taken)))
                    break
        finally:
            checker.close()
    uncovered = tuple(
        Uncovered(
            journey.title,
            i,
            line_of(("journeys", index, "transitions", i)),
            _describe(journey.transitions[i]),
            reasons.get(i, "no generated case takes it"),
        )
        for i in range(total)
        if i not in covered
    )
    return GeneratedJourney(journey.title, total, tuple(cases), uncovered)


def generate_tests(
    loaded: LoadedBundle,
    *,
    titles: Sequence[str] = (),
    progress: Callable[[Iterator[int]], Iterator[int]] | None = None,
) -> GeneratedTests:
    """Cases that together take every transition they can of each journey (see the module
    docstring); ``titles`` limits it to those journeys.

    ``progress`` wraps the iteration over journeys (e.g. a click progress bar).

    Raises:
        KeyError: a title names no journey of the bundle.
    """
    bundle = loaded.bundle
    known = [journey.title for journey in bundle.journeys]
    for title in titles:
        if title not in known:
            raise KeyError(title)
    indices = [i for i, title in enumerate(known) if not titles or title in titles]
    walk: Iterator[int] = iter(indices)
    if progress is not None:
        walk = progress(walk)
    journeys = [_journey_tests(loaded, index, lambda: None) for index in walk]
    return GeneratedTests(loaded.path or "bundle.yaml", tuple(journeys))


# ---------------------------------------------------------------------------
# the file


def _flow(value: Any) -> str:
    """A value as one line of YAML (JSON is YAML; keys of plain words stay bare)."""
    if isinstance(value, dict):
        parts = [f"{_key(k)}: {_flow(v)}" for k, v in value.items()]
        return "{" + ", ".join(parts) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def _key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key) else json.dumps(key)


def _comment(text: str) -> str:
    return " ".join(text.split())


def render_generated(tests: GeneratedTests, *, bundle_ref: str, command: str) -> str:
    """The conversation test file: a header that says what it covers and what it leaves
    out, then the cases with their TODO comments."""
    total = sum(journey.transitions for journey in tests.journeys)
    covered = sum(journey.covered for journey in tests.journeys)
    lines = [
        f"# Generated by `{_comment(command)}`.",
        "# Skeletons: replace each TODO with what a customer says and what the agent",
        "# should reply. As generated, every case passes; together they take",
        f"# {covered} of {total} transitions in {tests.cases} case(s).",
    ]
    uncovered = [u for journey in tests.journeys for u in journey.uncovered]
    if uncovered:
        lines.append("# Transitions no generated case takes (write these by hand):")
        for item in uncovered:
            where = f"{tests.bundle}:{item.line}" if item.line else tests.bundle
            lines.append(
                f"#   - {where} {_comment(item.journey)}: {_comment(item.description)}"
                f" - {_comment(item.reason)}"
            )
    lines.append(f"bundle: {json.dumps(bundle_ref, ensure_ascii=False)}")
    lines.append("cases:")
    if not tests.cases:
        lines[-1] = "cases: []  # nothing could be generated; see above"
    for journey in tests.journeys:
        for case in journey.cases:
            data = case.data
            lines.append(f"  - name: {json.dumps(data['name'], ensure_ascii=False)}")
            if "variables" in data:
                lines.append(f"    variables: {_flow(data['variables'])}")
            if "tools" in data:
                lines.append("    tools:")
                for tool, stub in data["tools"].items():
                    lines.append(f"      {_key(tool)}: {_flow(stub)}")
            lines.append("    steps:")
            for step, notes in zip(data["steps"], case.notes, strict=True):
                lines.append(
                    f"      - customer: {json.dumps(step['customer'], ensure_ascii=False)}"
                )
                for note in notes:
                    lines.append(f"        # {_comment(note)}")
                if "holds" in step:
                    lines.append(f"        holds: {_flow(step['holds'])}")
                if "set" in step:
                    lines.append(f"        set: {_flow(step['set'])}")
                lines.append(f"        expect: {_flow(step['expect'])}")
    return "\n".join(lines) + "\n"


def relative_bundle(bundle: str, folder: str) -> str:
    """The bundle path as a test file in ``folder`` names it (relative, with ``/``)."""
    return os.path.relpath(bundle, folder).replace(os.sep, "/")
