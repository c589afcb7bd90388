"""Coverage of conversation tests: which states, transitions, guidelines and canned
responses the cases reached, and which they never did, each with its bundle line.

Coverage is read from the traces the runner keeps for every step that ran (passing
and failing cases alike; what a failing case reached before it failed was reached):

- a **state** is visited when a step entered it (``trace.path``; the initial state
  counts when the journey starts);
- a **transition** is covered when a step took it (a ``taken`` entry of
  ``trace.transitions``). Transitions are told apart by their id, so two
  transitions between the same two states with different conditions are two
  lines of the report;
- a **guideline** is covered when a step matched it (``trace.guidelines``; a
  journey's link to a guideline counts for the guideline);
- a **canned response** is covered when a step sent it (``trace.reply``). Whether
  one was a candidate is not counted: strict composition stops at the first
  canned response that fits, so the others are never tried.

Disabled guidelines and canned responses can never be reached and are left out.
Files that ran against the same bundle (same resolved path) add up into one
:class:`BundleCoverage`. :func:`coverage_to_json` is the stable JSON form
(``"format": "parlant-runtime-coverage/1"``; documented in ``docs/testing.md``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from parlant_runtime.bundle import LoadedBundle, read_bundle
from parlant_runtime.bundle.ids import NAMESPACE, rebase_ids, workspace_root
from parlant_runtime.bundle.schema import AgentBundle, JourneySpec
from parlant_runtime.diagram import build_diagram, mark_coverage
from parlant_runtime.diagram.model import JourneyDiagram
from parlant_runtime.engine.trace import Trace
from parlant_runtime.errors import BundleError
from parlant_runtime.testing.results import FileResult
from parlant_runtime.testing.runner import WORKSPACE

__all__ = [
    "COVERAGE_FORMAT",
    "BundleCoverage",
    "CannedCoverage",
    "CoverageReport",
    "GuidelineCoverage",
    "JourneyCoverage",
    "StateCoverage",
    "TransitionCoverage",
    "coverage_diagrams",
    "coverage_of",
    "coverage_to_json",
    "diagram_file_stem",
    "render_coverage_text",
    "taken_transitions",
    "transition_positions",
]

COVERAGE_FORMAT = "parlant-runtime-coverage/1"
"""The ``format`` of the JSON coverage report; a breaking change would be ``/2``."""


def _percent(covered: int, total: int) -> float | None:
    return round(100.0 * covered / total, 1) if total else None


@dataclass(frozen=True, slots=True)
class StateCoverage:
    """One state and how many steps entered it."""

    name: str
    state_type: str
    line: int | None
    visits: int

    @property
    def covered(self) -> bool:
        return self.visits > 0


@dataclass(frozen=True, slots=True)
class TransitionCoverage:
    """One transition (by its position in the journey) and how many steps took it."""

    index: int
    source: str
    target: str
    condition: str | None
    priority: int
    line: int | None
    taken: int

    @property
    def covered(self) -> bool:
        return self.taken > 0

    def describe(self) -> str:
        """``a -> b [condition] (p=200)`` as people read it."""
        text = f"{self.source} -> {self.target}"
        if self.condition:
            text += f" [{' '.join(self.condition.split())}]"
        if self.priority != 100:
            text += f" (p={self.priority})"
        return text


@dataclass(frozen=True, slots=True)
class JourneyCoverage:
    """One journey: its states and transitions, each with its count."""

    title: str
    index: int
    line: int | None
    enabled: bool
    states: tuple[StateCoverage, ...]
    transitions: tuple[TransitionCoverage, ...]

    @property
    def states_visited(self) -> int:
        return sum(1 for state in self.states if state.covered)

    @property
    def transitions_covered(self) -> int:
        return sum(1 for transition in self.transitions if transition.covered)

    @property
    def complete(self) -> bool:
        """Every state visited and every transition taken."""
        return self.states_visited == len(self.states) and self.transitions_covered == len(
            self.transitions
        )


@dataclass(frozen=True, slots=True)
class GuidelineCoverage:
    """One enabled guideline and how many steps matched it."""

    name: str
    line: int | None
    matched: int


@dataclass(frozen=True, slots=True)
class CannedCoverage:
    """One enabled canned response and how many steps sent it."""

    name: str
    line: int | None
    chosen: int


@dataclass(frozen=True, slots=True)
class BundleCoverage:
    """Everything the cases run against one bundle reached."""

    bundle: str
    files: tuple[str, ...]
    cases: int
    journeys: tuple[JourneyCoverage, ...]
    guidelines: tuple[GuidelineCoverage, ...]
    canned_responses: tuple[CannedCoverage, ...]

    @property
    def transitions(self) -> tuple[int, int]:
        """(covered, total) over every journey."""
        return (
            sum(j.transitions_covered for j in self.journeys),
            sum(len(j.transitions) for j in self.journeys),
        )

    @property
    def states(self) -> tuple[int, int]:
        """(visited, total) over every journey."""
        return (
            sum(j.states_visited for j in self.journeys),
            sum(len(j.states) for j in self.journeys),
        )


@dataclass(frozen=True, slots=True)
class CoverageReport:
    """Coverage per bundle, plus bundles that could not be read again to be measured."""

    bundles: tuple[BundleCoverage, ...]
    problems: tuple[str, ...] = field(default=())

    def journey(self, title: str, bundle: str | None = None) -> JourneyCoverage:
        """The coverage of the journey titled ``title`` (of ``bundle`` when given).

        Raises:
            KeyError: no such journey was measured.
        """
        for measured in self.bundles:
            if bundle is not None and measured.bundle != bundle:
                continue
            for journey in measured.journeys:
                if journey.title == title:
                    return journey
        raise KeyError(title)


# ---------------------------------------------------------------------------
# measuring


class _Counter:
    """Counts for one bundle, keyed by what the traces name."""

    def __init__(self, loaded: LoadedBundle) -> None:
        bundle = loaded.bundle
        self.loaded = loaded
        # the cases ran on a store that rebased the ids into the test workspace
        self.transition_at = transition_positions(bundle)
        self.states: dict[tuple[int, str], int] = {}
        self.transitions: dict[tuple[int, int], int] = {}
        self.guidelines: dict[str, int] = {}
        self.chosen: dict[str, int] = {}
        self.cases = 0
        self.files: list[str] = []

    def add(self, trace: Trace) -> None:
        for entered in trace.path:
            where = _state_of(self.loaded.bundle, entered)
            if where is not None:
                self.states[where] = self.states.get(where, 0) + 1
        for transition in trace.transitions:
            if transition.outcome != "taken" or transition.transition_id is None:
                continue
            at = self.transition_at.get(transition.transition_id)
            if at is not None:
                self.transitions[at] = self.transitions.get(at, 0) + 1
        for name in trace.guidelines:
            self.guidelines[name] = self.guidelines.get(name, 0) + 1
        reply = trace.reply
        if reply is not None and reply.source == "canned_response" and reply.chosen is not None:
            self.chosen[reply.chosen] = self.chosen.get(reply.chosen, 0) + 1

    def result(self, shown: str) -> BundleCoverage:
        bundle, source = self.loaded.bundle, self.loaded.source
        journeys = tuple(
            _journey(journey, j, self, source.line_of) for j, journey in enumerate(bundle.journeys)
        )
        guidelines = tuple(
            GuidelineCoverage(
                g.name or g.action,
                source.line_of(("guidelines", i)),
                self.guidelines.get(g.name or g.action, 0),
            )
            for i, g in enumerate(bundle.guidelines)
            if g.enabled
        )
        canned = tuple(
            CannedCoverage(
                c.name or f"#{i}",
                source.line_of(("cannedResponses", i)),
                self.chosen.get(_canned_label(c.name, i), 0),
            )
            for i, c in enumerate(bundle.canned_responses)
            if c.enabled
        )
        return BundleCoverage(shown, tuple(self.files), self.cases, journeys, guidelines, canned)


def transition_positions(bundle: AgentBundle) -> dict[str, tuple[int, int]]:
    """``(journey index, transition index)`` by transition id, as the conversation-test
    runner publishes ``bundle`` (its ids rebased into the test workspace)."""
    published = rebase_ids(bundle, NAMESPACE, workspace_root(WORKSPACE))
    return {
        str(t.id): (j, i)
        for j, journey in enumerate(published.journeys)
        for i, t in enumerate(journey.transitions)
    }


def taken_transitions(
    bundle: AgentBundle,
    traces: Iterable[Trace],
    positions: Mapping[str, tuple[int, int]] | None = None,
) -> set[tuple[int, int]]:
    """``(journey index, transition index)`` of every transition the traces took, for a
    bundle run by the conversation-test runner; ``positions`` is
    :func:`transition_positions` of the bundle, when already known."""
    at = transition_positions(bundle) if positions is None else positions
    return {
        at[t.transition_id]
        for trace in traces
        for t in trace.transitions
        if t.outcome == "taken" and t.transition_id is not None and t.transition_id in at
    }


def _canned_label(name: str | None, order: int) -> str:
    # the label the engine's trace gives a canned response (CompiledCanned.label)
    return f"canned {name or order}"


def _state_of(bundle: AgentBundle, entered: str) -> tuple[int, str] | None:
    """``(journey index, state)`` of a ``title/state`` path entry (titles may hold ``/``)."""
    for index, journey in enumerate(bundle.journeys):
        prefix = journey.title + "/"
        if entered.startswith(prefix) and journey.state(entered[len(prefix) :]) is not None:
            return index, entered[len(prefix) :]
    return None


def _journey(journey: JourneySpec, j: int, counter: _Counter, line_of: Any) -> JourneyCoverage:
    states = tuple(
        StateCoverage(
            s.name,
            s.state_type.value,
            line_of(("journeys", j, "states", i)),
            counter.states.get((j, s.name), 0),
        )
        for i, s in enumerate(journey.states)
    )
    transitions = tuple(
        TransitionCoverage(
            i,
            t.from_state,
            t.to_state,
            t.condition,
            t.priority,
            line_of(("journeys", j, "transitions", i)),
            counter.transitions.get((j, i), 0),
        )
        for i, t in enumerate(journey.transitions)
    )
    return JourneyCoverage(
        journey.title, j, line_of(("journeys", j)), journey.enabled, states, transitions
    )


def coverage_of(files: Iterable[FileResult]) -> CoverageReport:
    """The coverage the runs in ``files`` reached, per bundle (read again for its lines).

    Unreadable files add nothing. A bundle that can no longer be read (it changed
    since the run) is named in ``problems``.
    """
    counters: dict[Path, tuple[str, _Counter]] = {}
    problems: list[str] = []
    for result in files:
        if not result.readable or result.bundle is None:
            continue
        key = Path(result.bundle).resolve()
        if key not in counters:
            try:
                loaded = read_bundle(result.bundle)
            except BundleError as exc:
                problems.append(f"{result.bundle}: cannot be read for coverage: {exc}")
                continue
            counters[key] = (os.path.normpath(result.bundle), _Counter(loaded))
        counter = counters[key][1]
        counter.files.append(result.path)
        for case in result.cases:
            counter.cases += 1
            for trace in case.traces:
                counter.add(trace)
    bundles = tuple(counter.result(shown) for shown, counter in counters.values())
    return CoverageReport(bundles, tuple(problems))


# ---------------------------------------------------------------------------
# reports


def _ratio(covered: int, total: int) -> str:
    percent = _percent(covered, total)
    return f"{covered}/{total}" + (f" ({percent:g}%)" if percent is not None else "")


def render_coverage_text(report: CoverageReport) -> str:
    """Coverage for people: per bundle and journey, totals, then each thing never reached
    as ``file:line``, so that an editor can jump to it."""
    lines: list[str] = []
    for measured in report.bundles:
        case_word = "case" if measured.cases == 1 else "cases"
        file_word = "file" if len(measured.files) == 1 else "files"
        lines.append(
            click.style(f"coverage of {measured.bundle}", bold=True)
            + f" ({measured.cases} {case_word} in {len(measured.files)} {file_word})"
        )
        for journey in measured.journeys:
            colour = "green" if journey.complete else "yellow"
            flag = "" if journey.enabled else " (disabled)"
            lines.append(
                f"  journey {journey.title!r}{flag}: states "
                + click.style(_ratio(journey.states_visited, len(journey.states)), fg=colour)
                + ", transitions "
                + click.style(
                    _ratio(journey.transitions_covered, len(journey.transitions)), fg=colour
                )
            )
            for state in journey.states:
                if not state.covered:
                    lines.append(
                        f"    never visited: {_where(measured.bundle, state.line)} "
                        f"state {state.name} ({state.state_type})"
                    )
            for transition in journey.transitions:
                if not transition.covered:
                    lines.append(
                        f"    never taken:   {_where(measured.bundle, transition.line)} "
                        f"transition {transition.describe()}"
                    )
        matched = sum(1 for g in measured.guidelines if g.matched)
        lines.append(f"  guidelines matched: {_ratio(matched, len(measured.guidelines))}")
        for guideline in measured.guidelines:
            if not guideline.matched:
                where = _where(measured.bundle, guideline.line)
                lines.append(f"    never matched: {where} guideline {guideline.name}")
        chosen = sum(1 for c in measured.canned_responses if c.chosen)
        lines.append(f"  canned responses chosen: {_ratio(chosen, len(measured.canned_responses))}")
        for canned in measured.canned_responses:
            if not canned.chosen:
                where = _where(measured.bundle, canned.line)
                lines.append(f"    never chosen:  {where} canned response {canned.name}")
        covered, total = measured.transitions
        visited, states = measured.states
        lines.append(
            f"  total: states {_ratio(visited, states)}, transitions {_ratio(covered, total)}"
        )
    lines.extend(report.problems)
    return "\n".join(lines) + "\n"


def _where(bundle: str, line: int | None) -> str:
    return f"{bundle}:{line}" if line is not None else bundle


def _counts(covered: int, total: int) -> dict[str, Any]:
    return {"covered": covered, "total": total, "percent": _percent(covered, total)}


def coverage_to_json(report: CoverageReport) -> dict[str, Any]:
    """The stable JSON form of a coverage report (see ``docs/testing.md``)."""
    bundles = []
    for measured in report.bundles:
        bundles.append(
            {
                "bundle": measured.bundle,
                "files": list(measured.files),
                "cases": measured.cases,
                "journeys": [_journey_json(journey) for journey in measured.journeys],
                "guidelines": {
                    **_counts(
                        sum(1 for g in measured.guidelines if g.matched),
                        len(measured.guidelines),
                    ),
                    "items": [
                        {"name": g.name, "line": g.line, "matched": g.matched}
                        for g in measured.guidelines
                    ],
                },
                "canned_responses": {
                    **_counts(
                        sum(1 for c in measured.canned_responses if c.chosen),
                        len(measured.canned_responses),
                    ),
                    "items": [
                        {"name": c.name, "line": c.line, "chosen": c.chosen}
                        for c in measured.canned_responses
                    ],
                },
                "states": _counts(*measured.states),
                "transitions": _counts(*measured.transitions),
            }
        )
    return {"format": COVERAGE_FORMAT, "bundles": bundles, "problems": list(report.problems)}


def _journey_json(journey: JourneyCoverage) -> dict[str, Any]:
    return {
        "title": journey.title,
        "index": journey.index,
        "line": journey.line,
        "enabled": journey.enabled,
        "states": {
            **_counts(journey.states_visited, len(journey.states)),
            "items": [
                {"name": s.name, "type": s.state_type, "line": s.line, "visits": s.visits}
                for s in journey.states
            ],
        },
        "transitions": {
            **_counts(journey.transitions_covered, len(journey.transitions)),
            "items": [
                {
                    "index": t.index,
                    "from": t.source,
                    "to": t.target,
                    "condition": t.condition,
                    "priority": t.priority,
                    "line": t.line,
                    "taken": t.taken,
                }
                for t in journey.transitions
            ],
        },
    }


# ---------------------------------------------------------------------------
# diagrams


def coverage_diagrams(
    measured: BundleCoverage, bundle: AgentBundle
) -> list[tuple[JourneyCoverage, JourneyDiagram]]:
    """One diagram per journey of ``bundle``, states and transitions marked covered or not."""
    drawings = []
    for journey in measured.journeys:
        spec = bundle.journeys[journey.index]
        drawing = build_diagram(spec, journey.index, ())
        visited = {state.name for state in journey.states if state.covered}
        taken = {t.index for t in journey.transitions if t.covered}
        drawings.append((journey, mark_coverage(drawing, visited, taken)))
    return drawings


_SLUG = re.compile(r"[^0-9A-Za-z]+")


def diagram_file_stem(bundle: str, journey: JourneyCoverage, taken: Sequence[str] = ()) -> str:
    """``<bundle stem>.<journey slug>``, made unique against ``taken``."""
    slug = _SLUG.sub("-", journey.title).strip("-").lower() or f"journey-{journey.index}"
    stem = f"{Path(bundle).stem}.{slug}"
    candidate, counter = stem, 1
    while candidate in taken:
        counter += 1
        candidate = f"{stem}-{counter}"
    return candidate
