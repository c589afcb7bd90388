"""Coverage of conversation tests: counts known by construction, lines, JSON, diagrams, CLI."""

from __future__ import annotations

import json
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import click
from click.testing import CliRunner, Result

from parlant_runtime.bundle import read_bundle
from parlant_runtime.cli import test_command
from parlant_runtime.diagram import build_diagram, mark_coverage, to_dot, to_mermaid
from parlant_runtime.diagram.mermaid import COVERED_MARK, UNCOVERED_MARK, escape_mermaid
from parlant_runtime.testing.coverage import (
    COVERAGE_FORMAT,
    coverage_diagrams,
    coverage_of,
    coverage_to_json,
    render_coverage_text,
)
from tests.testing.support import EXAMPLE_TESTS, run, write

# Two transitions from `ask` to `done` that differ only in their condition, a third
# to `other`, a guideline, and two canned responses (strict composition).
BUNDLE = """\
agent: {name: Shop, compositionMode: strict}
guidelines:
  - {name: polite, condition: customer is rude, action: Stay calm.}
  - {name: unused, condition: customer sings, action: Applaud.}
cannedResponses:
  - {name: hello, template: "Hello!", conditions: ["customer greets"]}
  - {name: bye, template: "Bye!", conditions: ["customer leaves"]}
  - {name: fallback, template: "Sorry?", priority: 1}
journeys:
  - title: Order
    conditions: ["customer wants to order"]
    states:
      - {name: ask, stateType: chat, isInitial: true, chatPrompt: "What?"}
      - {name: done, stateType: final, isFinal: true}
      - {name: other, stateType: chat, chatPrompt: "Other?"}
    transitions:
      - {from: ask, to: done, condition: customer says yes}
      - {from: ask, to: done, condition: customer says ok}
      - {from: ask, to: other, condition: customer hesitates}
"""
# lines of the bundle above (1-based)
LINE_YES, LINE_OK, LINE_OTHER = 17, 18, 19
LINE_OTHER_STATE = 15
LINE_UNUSED = 4
LINE_BYE = 7


def bundle_file(folder: Path) -> Path:
    path = folder / "shop.yaml"
    path.write_text(BUNDLE, encoding="utf-8")
    return path


def case_file(folder: Path, body: str) -> Path:
    bundle = bundle_file(folder)
    text = f"bundle: {bundle.name}\ncases:\n" + textwrap.indent(textwrap.dedent(body), "  ")
    return write(folder, text)


TAKES_YES = """
- name: says yes
  steps:
    - customer: "I want to order"
      holds: ["customer wants to order", "customer greets"]
      expect: {state: ask}
    - customer: "yes"
      holds: ["customer says yes", "customer is rude"]
      expect: {journey: null}
"""


def test_the_lines_named_here_are_the_bundle_lines() -> None:
    lines = BUNDLE.splitlines()
    assert "customer says yes" in lines[LINE_YES - 1]
    assert "customer says ok" in lines[LINE_OK - 1]
    assert "customer hesitates" in lines[LINE_OTHER - 1]
    assert "name: other" in lines[LINE_OTHER_STATE - 1]
    assert "name: unused" in lines[LINE_UNUSED - 1]
    assert "name: bye" in lines[LINE_BYE - 1]


def test_transitions_between_the_same_states_are_told_apart(tmp_path: Path) -> None:
    report = coverage_of([run(case_file(tmp_path, TAKES_YES))])
    journey = report.journey("Order")
    taken = {t.condition: t.taken for t in journey.transitions}
    assert taken == {"customer says yes": 1, "customer says ok": 0, "customer hesitates": 0}
    assert journey.transitions_covered == 1
    never = [t for t in journey.transitions if not t.covered]
    assert [(t.line, t.source, t.target) for t in never] == [
        (LINE_OK, "ask", "done"),
        (LINE_OTHER, "ask", "other"),
    ]


def test_states_guidelines_and_canned_responses(tmp_path: Path) -> None:
    report = coverage_of([run(case_file(tmp_path, TAKES_YES))])
    (measured,) = report.bundles
    journey = measured.journeys[0]
    assert {s.name: s.visits for s in journey.states} == {"ask": 1, "done": 1, "other": 0}
    assert {g.name: g.matched for g in measured.guidelines} == {"polite": 1, "unused": 0}
    canned = {c.name: c.chosen for c in measured.canned_responses}
    # step 1: hello (its condition holds); step 2: fallback (no other fits)
    assert canned == {"hello": 1, "bye": 0, "fallback": 1}
    assert measured.cases == 1
    assert measured.transitions == (1, 3)
    assert measured.states == (2, 3)


def test_files_on_one_bundle_add_up_and_reach_everything(tmp_path: Path) -> None:
    first = case_file(tmp_path, TAKES_YES)
    second = tmp_path / "more.conversation.yaml"
    second.write_text(
        "bundle: shop.yaml\ncases:\n"
        + textwrap.indent(
            textwrap.dedent("""
            - name: says ok
              steps:
                - {customer: order, holds: ["customer wants to order"]}
                - {customer: ok, holds: ["customer says ok", "customer sings"]}
            - name: hesitates
              steps:
                - {customer: order, holds: ["customer wants to order", "customer leaves"]}
                - {customer: hmm, holds: ["customer hesitates"], expect: {state: other}}
            """),
            "  ",
        ),
        encoding="utf-8",
    )
    report = coverage_of([run(first), run(second)])
    (measured,) = report.bundles
    assert measured.cases == 3
    assert len(measured.files) == 2
    assert measured.journeys[0].complete
    assert all(g.matched for g in measured.guidelines)
    assert all(c.chosen for c in measured.canned_responses)


def test_a_failing_case_counts_what_it_reached_before_failing(tmp_path: Path) -> None:
    path = case_file(
        tmp_path,
        """
        - name: fails at step 2
          steps:
            - {customer: order, holds: ["customer wants to order"]}
            - {customer: hmm, holds: ["customer hesitates"], expect: {state: ask}}
        """,
    )
    result = run(path)
    assert not result.passed
    journey = coverage_of([result]).journey("Order")
    assert [t.taken for t in journey.transitions] == [0, 0, 1]


def test_unreadable_files_add_nothing(tmp_path: Path) -> None:
    broken = write(tmp_path, "cases: [", "broken.conversation.yaml")
    assert coverage_of([run(broken)]).bundles == ()


def test_text_names_every_miss_with_file_and_line(tmp_path: Path) -> None:
    report = coverage_of([run(case_file(tmp_path, TAKES_YES))])
    text = click.unstyle(render_coverage_text(report))
    bundle = str(tmp_path / "shop.yaml")
    assert "journey 'Order': states 2/3 (66.7%), transitions 1/3 (33.3%)" in text
    assert f"never taken:   {bundle}:{LINE_OK} transition ask -> done [customer says ok]" in text
    assert f"never visited: {bundle}:{LINE_OTHER_STATE} state other (chat)" in text
    assert f"never matched: {bundle}:{LINE_UNUSED} guideline unused" in text
    assert f"never chosen:  {bundle}:{LINE_BYE} canned response bye" in text
    assert f"{bundle}:{LINE_YES}" not in text


def test_json_shape(tmp_path: Path) -> None:
    report = coverage_of([run(case_file(tmp_path, TAKES_YES))])
    data = json.loads(json.dumps(coverage_to_json(report)))
    assert data["format"] == COVERAGE_FORMAT
    assert data["problems"] == []
    (bundle,) = data["bundles"]
    assert set(bundle) == {
        "bundle",
        "files",
        "cases",
        "journeys",
        "guidelines",
        "canned_responses",
        "states",
        "transitions",
    }
    assert bundle["transitions"] == {"covered": 1, "total": 3, "percent": 33.3}
    (journey,) = bundle["journeys"]
    assert journey["title"] == "Order"
    assert journey["transitions"]["items"][1] == {
        "index": 1,
        "from": "ask",
        "to": "done",
        "condition": "customer says ok",
        "priority": 100,
        "line": LINE_OK,
        "taken": 0,
    }
    assert journey["states"]["items"][2] == {
        "name": "other",
        "type": "chat",
        "line": LINE_OTHER_STATE,
        "visits": 0,
    }
    assert bundle["guidelines"]["items"][1] == {"name": "unused", "line": LINE_UNUSED, "matched": 0}
    assert bundle["canned_responses"]["items"][0] == {"name": "hello", "line": 6, "chosen": 1}


def test_diagrams_colour_what_was_reached(tmp_path: Path) -> None:
    path = case_file(tmp_path, TAKES_YES)
    report = coverage_of([run(path)])
    bundle = read_bundle(tmp_path / "shop.yaml").bundle
    ((_, drawing),) = coverage_diagrams(report.bundles[0], bundle)
    assert {n.name: n.covered for n in drawing.nodes} == {"ask": True, "done": True, "other": False}
    assert [e.covered for e in drawing.edges] == [True, False, False]
    dot = to_dot(drawing)
    assert '"s_ask" -> "s_done" [label="customer says yes", color="green4"' in dot
    assert '"s_ask" -> "s_done" [label="customer says ok", color="red3"' in dot
    assert 'style="rounded,dashed"' in dot  # the chat state never visited
    mermaid = to_mermaid(drawing)
    assert f"s_ask --> s_done : {COVERED_MARK}customer says yes" in mermaid
    assert f"s_ask --> s_done : {escape_mermaid(UNCOVERED_MARK)}customer says ok" in mermaid
    assert "class s_ask,s_done covered" in mermaid
    assert "class s_other uncovered" in mermaid


def test_diagrams_without_coverage_are_unchanged() -> None:
    journey = read_bundle(EXAMPLE_TESTS.parent / "minimal.yaml").bundle.journeys[0]
    plain = build_diagram(journey, 0, ())
    assert "covered" not in to_mermaid(plain)
    assert "green4" not in to_dot(plain)
    marked = mark_coverage(plain, [], [])
    assert all(node.covered is False for node in marked.nodes)


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(test_command.test, [str(a) for a in args], catch_exceptions=False)


def test_cli_text_json_and_diagrams(tmp_path: Path) -> None:
    path = case_file(tmp_path, TAKES_YES)
    text = invoke(path, "--coverage", "--no-color")
    assert text.exit_code == 0, text.output
    assert "1 case in 1 file: 1 passed, 0 failed" in text.output
    assert "transitions 1/3 (33.3%)" in text.output

    as_json = invoke(path, "--coverage", "--format", "json")
    data: dict[str, Any] = json.loads(as_json.stdout)
    assert data["summary"]["passed"] == 1
    assert data["coverage"]["format"] == COVERAGE_FORMAT
    without = json.loads(invoke(path, "--format", "json").stdout)
    assert "coverage" not in without

    folder = tmp_path / "drawn"
    drawn = invoke(path, "--coverage-diagram", folder, "--no-color")
    assert drawn.exit_code == 0, drawn.output
    assert sorted(p.name for p in folder.iterdir()) == ["shop.order.dot", "shop.order.mmd"]
    assert "transitions 1/3" in drawn.stdout  # implies --coverage


def test_cli_coverage_does_not_change_junit_or_exit_status(tmp_path: Path) -> None:
    path = case_file(
        tmp_path,
        TAKES_YES
        + """
- name: fails
  steps:
    - {customer: order, holds: ["customer wants to order"], expect: {state: other}}
""",
    )
    junit = tmp_path / "junit.xml"
    result = invoke(path, "--coverage", "--junit", junit, "--no-color")
    assert result.exit_code == 1
    root = ET.parse(junit).getroot()
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("2", "1", "0")
    assert "transitions 1/3" in result.output


def test_cli_diagram_folder_that_cannot_be_written(tmp_path: Path) -> None:
    path = case_file(tmp_path, TAKES_YES)
    blocker = tmp_path / "file"
    blocker.write_text("", encoding="utf-8")
    result = invoke(path, "--coverage-diagram", blocker / "sub")
    assert result.exit_code == 2
    assert "--coverage-diagram" in result.output
    assert "Traceback" not in result.output


def test_every_example_bundle_reaches_full_transition_coverage() -> None:
    files = sorted(EXAMPLE_TESTS.glob("*.conversation.yaml"))
    report = coverage_of([run(path) for path in files])
    assert len(report.bundles) == len(files) == 4
    for measured in report.bundles:
        covered, total = measured.transitions
        assert covered == total, render_coverage_text(report)
        visited, states = measured.states
        assert visited == states, render_coverage_text(report)
