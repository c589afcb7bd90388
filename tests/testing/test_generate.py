"""generate-tests: the generated files run as written and take every transition they claim."""

from __future__ import annotations

import asyncio
import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings

from parlant_runtime.bundle import LoadedBundle, bundle_from_data, read_bundle, reads_bundle
from parlant_runtime.bundle.source import SourceMap
from parlant_runtime.cli import cli
from parlant_runtime.testing import loads_conversation_file, render_text, run_case
from parlant_runtime.testing._values import example_for_pattern, example_for_schema
from parlant_runtime.testing.coverage import coverage_of, taken_transitions
from parlant_runtime.testing.generate import generate_tests, render_generated
from parlant_runtime.testing.results import FileResult
from tests.strategies import arbitrary_journeys, valid_journeys
from tests.testing.support import EXAMPLES

EXAMPLE_BUNDLES = sorted(EXAMPLES.glob("*.yaml"))


def run_generated(loaded: LoadedBundle, bundle_ref: str) -> tuple[str, FileResult]:
    """Generate, render, read back and run every case, as the command does."""
    tests = generate_tests(loaded)
    text = render_generated(tests, bundle_ref=bundle_ref, command="test")
    conversation = loads_conversation_file(text, filename="generated.conversation.yaml")

    async def work() -> FileResult:
        cases = [
            await run_case(conversation, i, loaded.bundle)
            for i in range(len(conversation.spec.cases))
        ]
        return FileResult("generated", loaded.path, tuple(cases))

    return text, asyncio.run(work())


@pytest.mark.parametrize("path", EXAMPLE_BUNDLES, ids=[p.name for p in EXAMPLE_BUNDLES])
def test_generated_tests_take_every_transition_of_each_example(path: Path) -> None:
    loaded = read_bundle(path)
    text, result = run_generated(loaded, str(path))
    assert result.passed, render_text([result])
    (measured,) = coverage_of([result]).bundles
    covered, total = measured.transitions
    assert covered == total > 0, text
    assert "Transitions no generated case takes" not in text


def test_fewer_cases_than_transitions_on_the_examples() -> None:
    for path in EXAMPLE_BUNDLES:
        tests = generate_tests(read_bundle(path))
        transitions = sum(journey.transitions for journey in tests.journeys)
        assert 0 < tests.cases < transitions, path


def test_the_generated_file_shape() -> None:
    loaded = read_bundle(EXAMPLES / "minimal.yaml")
    text, _ = run_generated(loaded, "../minimal.yaml")
    data = yaml.safe_load(text)
    assert data["bundle"] == "../minimal.yaml"
    (case,) = data["cases"]
    assert case["name"] == "Book a visit: path 1 (ask_day -> confirm -> done)"
    steps = case["steps"]
    assert [s["expect"] for s in steps] == [
        {"journey": "Book a visit", "state": "ask_day"},
        {"journey": "Book a visit", "state": "confirm"},
        {"journey": None, "state": None},
    ]
    assert steps[0]["holds"] == ["customer wants to book an appointment"]
    assert steps[1]["set"] == {"day": "TODO day"}  # `vars.day is defined` needs a day
    assert all(step["customer"].startswith("TODO") for step in steps)
    assert text.count("# TODO: expect the reply") == 3
    assert "# takes ask_day -> confirm [{{ vars.day is defined }}]" in text


def with_activation(data: dict[str, Any]) -> dict[str, Any]:
    data = copy.deepcopy(data)
    data["journeys"][0]["conditions"] = ["customer wants to start"]
    return data


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(valid_journeys())
def test_generated_tests_take_every_transition_of_random_journeys(data: dict[str, Any]) -> None:
    bundle = bundle_from_data(with_activation(data))
    loaded = LoadedBundle(bundle, read_bundle(EXAMPLES / "minimal.yaml").source, "random.yaml")
    tests = generate_tests(loaded)
    uncovered = [u for journey in tests.journeys for u in journey.uncovered]
    assert uncovered == []
    text, result = run_generated(loaded, "random.yaml")
    assert result.passed, render_text([result]) + text
    taken = set().union(*(case.covers for j in tests.journeys for case in j.cases))
    assert taken == set(range(len(bundle.journeys[0].transitions)))


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(arbitrary_journeys())
def test_on_any_journey_each_transition_is_taken_or_reported_never_both(
    data: dict[str, Any],
) -> None:
    bundle = bundle_from_data(with_activation(data))
    loaded = LoadedBundle(bundle, read_bundle(EXAMPLES / "minimal.yaml").source, "any.yaml")
    tests = generate_tests(loaded)
    (journey,) = tests.journeys
    taken = set().union(*(case.covers for case in journey.cases))
    reported = {item.index: item.reason for item in journey.uncovered}
    assert taken | set(reported) == set(range(len(bundle.journeys[0].transitions)))
    assert not taken & set(reported)
    assert all(reason for reason in reported.values())
    if tests.cases:
        _, result = run_generated(loaded, "any.yaml")
        assert result.passed, render_text([result])
        traces = [trace for case in result.cases for trace in case.traces]
        assert {i for _, i in taken_transitions(bundle, traces)} == taken


def generated(text: str) -> Any:
    return generate_tests(reads_bundle(text, filename="b.yaml"))


def reasons(text: str) -> list[tuple[int | None, str, str]]:
    tests = generated(text)
    return [(u.line, u.description, u.reason) for j in tests.journeys for u in j.uncovered]


def test_a_journey_nothing_starts_is_reported_not_pretended() -> None:
    found = reasons(
        """\
agent: {name: A}
journeys:
  - title: J
    states:
      - {name: a, stateType: chat, isInitial: true, chatPrompt: "?"}
      - {name: z, stateType: final, isFinal: true}
    transitions:
      - {from: a, to: z}
"""
    )
    assert found == [
        (8, "a -> z", "the journey has no activation condition, so no message starts it")
    ]


def test_a_loop_in_a_journey_that_forbids_revisiting_is_reported() -> None:
    found = reasons(
        """\
agent: {name: A}
journeys:
  - title: J
    conditions: [go]
    allowRevisiting: false
    states:
      - {name: a, stateType: chat, isInitial: true, chatPrompt: "?"}
      - {name: b, stateType: chat, chatPrompt: "?"}
      - {name: z, stateType: final, isFinal: true}
    transitions:
      - {from: a, to: b, condition: next}
      - {from: b, to: a, condition: back}
      - {from: b, to: z, condition: stop}
"""
    )
    assert len(found) == 1
    line, description, reason = found[0]
    assert (line, description) == (12, "b -> a [back]")
    assert "forbids revisiting" in reason


def test_an_expression_the_generator_cannot_read_is_reported_with_its_text() -> None:
    found = reasons(
        """\
agent: {name: A}
journeys:
  - title: J
    conditions: [go]
    states:
      - {name: a, stateType: chat, isInitial: true, chatPrompt: "?"}
      - {name: z, stateType: final, isFinal: true}
    transitions:
      - {from: a, to: z, condition: "{{ (message | length) > 3 }}"}
"""
    )
    assert len(found) == 1
    assert "cannot choose values" in found[0][2]
    assert "message | length" in found[0][2]


def test_an_unreachable_transition_is_reported() -> None:
    found = reasons(
        """\
agent: {name: A}
journeys:
  - title: J
    conditions: [go]
    states:
      - {name: a, stateType: chat, isInitial: true, chatPrompt: "?"}
      - {name: island, stateType: chat, chatPrompt: "?"}
      - {name: z, stateType: final, isFinal: true}
    transitions:
      - {from: a, to: z}
      - {from: island, to: z}
"""
    )
    assert found == [(11, "island -> z", "no path from the initial state reaches it")]


def test_rivals_are_made_false_and_comparisons_get_values() -> None:
    tests = generated(
        """\
agent: {name: A}
journeys:
  - title: J
    conditions: ["{{ mentions('refund') }}"]
    states:
      - {name: a, stateType: chat, isInitial: true, chatPrompt: "?"}
      - {name: z, stateType: final, isFinal: true}
      - {name: y, stateType: final, isFinal: true}
    transitions:
      - {from: a, to: z, condition: "{{ vars.count > 2 and vars.kind == 'gold' }}", priority: 200}
      - {from: a, to: y, condition: "{{ not vars.blocked }}"}
"""
    )
    (journey,) = tests.journeys
    assert journey.uncovered == ()
    steps = [case.data["steps"] for case in journey.cases]
    assert all("refund" in case[0]["customer"] for case in steps)
    sets = sorted(str(case[1].get("set")) for case in steps)
    assert sets == ["{'blocked': False}", "{'count': 3, 'kind': 'gold'}"]


@pytest.mark.parametrize(
    ("pattern", "example"),
    [
        ("^CL-[0-9]{4}$", "CL-0000"),
        (r"^\d{3}-\d+$", "111-1"),
        ("^NW-[A-Z]{2}[0-9]?$", "NW-AA"),
        ("^(a|b)$", None),  # groups are beyond it: no example rather than a wrong one
    ],
)
def test_examples_for_simple_patterns(pattern: str, example: str | None) -> None:
    assert example_for_pattern(pattern) == example
    if example is not None:
        assert re.search(pattern, example)


def test_examples_for_schemas() -> None:
    schema = {
        "type": "object",
        "required": ["a", "b", "c"],
        "properties": {
            "a": {"type": "string", "enum": ["x", "y"]},
            "b": {"type": "integer", "minimum": 5},
            "c": {"type": "boolean"},
            "d": {"type": "string"},
        },
    }
    assert example_for_schema(schema, "r") == {"a": "x", "b": 5, "c": True}


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def test_cli_writes_a_file_that_passes_with_full_coverage(tmp_path: Path) -> None:
    result = invoke("generate-tests", EXAMPLES / "clinic.yaml", "-o", tmp_path, "--no-progress")
    assert result.exit_code == 0, result.output
    written = tmp_path / "clinic.generated.conversation.yaml"
    assert "take 21 of 21 transitions" in result.stderr
    ran = invoke("test", written, "--coverage", "--no-color")
    assert ran.exit_code == 0, ran.output
    assert "transitions 21/21 (100%)" in ran.output


def test_cli_journey_option_and_stdout(tmp_path: Path) -> None:
    result = invoke("generate-tests", EXAMPLES / "clinic.yaml", "--journey", "Cancel a visit")
    assert result.exit_code == 0, result.output
    data = yaml.safe_load(result.stdout)
    assert {case["name"].split(":")[0] for case in data["cases"]} == {"Cancel a visit"}
    assert "take 7 of 7 transitions" in result.stderr


def test_cli_reports_what_it_cannot_cover_and_exits_1(tmp_path: Path) -> None:
    bundle = tmp_path / "b.yaml"
    bundle.write_text(
        "agent: {name: A}\njourneys:\n  - title: J\n    conditions: [go]\n    states:\n"
        '      - {name: a, stateType: chat, isInitial: true, chatPrompt: "?"}\n'
        "      - {name: z, stateType: final, isFinal: true}\n    transitions:\n"
        "      - {from: a, to: z, condition: ok}\n"
        '      - {from: a, to: z, condition: "{{ message | length > 3 }}", priority: 1}\n',
        encoding="utf-8",
    )
    result = invoke("generate-tests", bundle, "-o", tmp_path)
    assert result.exit_code == 1
    assert f"not covered: {bundle}:10 J: a -> z" in result.stderr
    assert "take 1 of 2 transitions" in result.stderr
    assert (tmp_path / "b.generated.conversation.yaml").exists()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["missing.yaml"], "no such file"),
        ([str(EXAMPLES)], "is a folder"),
        ([str(EXAMPLES / "clinic.yaml"), "--journey", "Nope"], "no journey titled 'Nope'"),
    ],
)
def test_cli_bad_input_exits_2_without_a_traceback(arguments: list[str], message: str) -> None:
    result = invoke("generate-tests", *arguments)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_cli_never_replaces_a_file_without_force(tmp_path: Path) -> None:
    target = tmp_path / "minimal.generated.conversation.yaml"
    target.write_text("mine", encoding="utf-8")
    refused = invoke("generate-tests", EXAMPLES / "minimal.yaml", "-o", tmp_path)
    assert refused.exit_code == 2
    assert "--force" in refused.output
    assert target.read_text(encoding="utf-8") == "mine"
    forced = invoke("generate-tests", EXAMPLES / "minimal.yaml", "-o", tmp_path, "--force")
    assert forced.exit_code == 0
    assert target.read_text(encoding="utf-8").startswith("# Generated by")


def test_cli_malformed_bundle_lists_its_problems(tmp_path: Path) -> None:
    bundle = tmp_path / "bad.yaml"
    bundle.write_text("agent: {name: A, compositionMode: loud}\n", encoding="utf-8")
    result = invoke("generate-tests", bundle)
    assert result.exit_code == 2
    assert f"{bundle}:1" in result.output
    assert "Traceback" not in result.output


def test_cli_a_bundle_without_journeys_writes_nothing(tmp_path: Path) -> None:
    bundle = tmp_path / "empty.yaml"
    bundle.write_text("agent: {name: A}\n", encoding="utf-8")
    result = invoke("generate-tests", bundle, "-o", tmp_path)
    assert result.exit_code == 1
    assert "has no journeys" in result.output
    assert not (tmp_path / "empty.generated.conversation.yaml").exists()


def dense_bundle(size: int, **journey: Any) -> LoadedBundle:
    """A journey where every state but the final one leads to every other but the first,
    each transition on its own natural-language condition."""
    names = [f"s{i}" for i in range(size)]
    states: list[dict[str, Any]] = [
        {"name": name, "stateType": "chat", "chatPrompt": f"{name}?"} for name in names[:-1]
    ]
    states[0]["isInitial"] = True
    states.append({"name": names[-1], "stateType": "final"})
    transitions = [
        {"from": names[i], "to": names[j], "condition": f"customer picks {j} at {i}"}
        for i in range(size - 1)
        for j in range(1, size)
        if i != j
    ]
    data = {
        "agent": {"name": "Dense"},
        "journeys": [
            {
                "title": "Dense",
                "conditions": ["customer starts"],
                "states": states,
                "transitions": transitions,
                **journey,
            }
        ],
    }
    return LoadedBundle(bundle_from_data(data), SourceMap(), "dense.yaml")


def taken(loaded: LoadedBundle, result: FileResult) -> int:
    traces = [trace for case in result.cases for trace in case.traces]
    return len(taken_transitions(loaded.bundle, traces))


def test_a_dense_journey_is_covered_by_few_cases_that_walk_many_transitions() -> None:
    # every transition must be taken; a case per transition (the cover of shortest
    # ways alone) would need about as many cases as transitions and four times the steps
    loaded = dense_bundle(12)
    _, result = run_generated(loaded, "dense.yaml")
    assert result.passed, render_text([result])
    total = len(loaded.bundle.journeys[0].transitions)
    assert taken(loaded, result) == total == 111
    cases = result.cases
    assert len(cases) <= 2 * 12, len(cases)
    assert sum(case.steps_run for case in cases) <= total + 3 * len(cases)


def test_a_dense_journey_that_forbids_revisiting_is_still_covered() -> None:
    loaded = dense_bundle(8, allowRevisiting=False)
    text, result = run_generated(loaded, "dense.yaml")
    assert result.passed, render_text([result])
    assert taken(loaded, result) == len(loaded.bundle.journeys[0].transitions), text


def test_a_required_result_field_filled_with_a_placeholder_yields_to_a_condition() -> None:
    # the stub's placeholder for `status` (required by the returnSchema) is no reason
    # for "two different results": the condition that needs `confirmed` replaces it
    loaded = reads_bundle(
        """
agent: {name: Shop}
tools:
  - name: book
    parameters: {type: object, properties: {day: {type: string}}, required: [day]}
    returnSchema:
      type: object
      properties: {status: {type: string}, code: {type: string}}
      required: [status, code]
journeys:
  - title: Order
    conditions: ["customer wants to order"]
    states:
      - {name: ask_day, stateType: chat, isInitial: true, chatPrompt: "Which day?"}
      - name: booking
        stateType: tool
        tool: book
        toolConfig: {arguments: {day: "{{ vars.day }}"}, resultVariable: booked}
      - {name: ok, stateType: chat, chatPrompt: "Booked, code {{ vars.booked.code }}."}
      - {name: failed, stateType: chat, chatPrompt: "Could not book."}
      - {name: done, stateType: final}
    transitions:
      - {from: ask_day, to: booking, condition: "{{ vars.day is defined }}"}
      - {from: booking, to: ok, condition: "{{ vars.booked.status == 'confirmed' }}",
         priority: 200}
      - {from: booking, to: failed}
      - {from: ok, to: done}
      - {from: failed, to: done}
""",
        filename="shop.yaml",
    )
    text, result = run_generated(loaded, "shop.yaml")
    assert result.passed, render_text([result])
    assert "two different results" not in text
    assert taken(loaded, result) == 5, text


def test_two_conditions_that_need_different_results_name_both_values() -> None:
    loaded = reads_bundle(
        """
agent: {name: Shop}
tools:
  - {name: check, returnSchema: {type: object, properties: {n: {type: integer}}}}
journeys:
  - title: Order
    conditions: ["customer wants to order"]
    states:
      - {name: a, stateType: chat, isInitial: true, chatPrompt: "A?"}
      - {name: t, stateType: tool, tool: check, toolConfig: {resultVariable: r}}
      - {name: d, stateType: decision, condition: "Which?"}
      - {name: b, stateType: chat, chatPrompt: "B?"}
      - {name: done, stateType: final}
    transitions:
      - {from: a, to: t}
      - {from: t, to: d, condition: "{{ vars.r.n == 1 }}"}
      - {from: d, to: b, condition: "{{ vars.r.n == 2 }}"}
      - {from: d, to: done}
      - {from: b, to: done}
""",
        filename="two.yaml",
    )
    tests = generate_tests(loaded)
    reasons = {u.description: u.reason for u in tests.journeys[0].uncovered}
    reason = reasons["d -> b [{{ vars.r.n == 2 }}]"]
    assert "n is 1 for an earlier condition and 2 for" in reason, reasons


def test_a_tool_that_runs_twice_gets_a_result_per_call() -> None:
    loaded = reads_bundle(
        """
agent: {name: Clinic}
tools:
  - name: check
    returnSchema: {type: object, properties: {free: {type: boolean}}, required: [free]}
journeys:
  - title: Book
    conditions: ["customer wants to book"]
    states:
      - {name: ask_day, stateType: chat, isInitial: true, chatPrompt: "Which day?"}
      - {name: lookup, stateType: tool, tool: check, toolConfig: {resultVariable: slot}}
      - {name: other_day, stateType: chat, chatPrompt: "Full. Another day?"}
      - {name: lookup_again, stateType: tool, tool: check, toolConfig: {resultVariable: slot}}
      - {name: booked, stateType: final}
      - {name: gave_up, stateType: final}
    transitions:
      - {from: ask_day, to: lookup}
      - {from: lookup, to: other_day, condition: "{{ not vars.slot.free }}", priority: 200}
      - {from: lookup, to: booked}
      - {from: other_day, to: lookup_again}
      - {from: lookup_again, to: booked, condition: "{{ vars.slot.free }}", priority: 200}
      - {from: lookup_again, to: gave_up}
""",
        filename="loop.yaml",
    )
    text, result = run_generated(loaded, "loop.yaml")
    assert result.passed, render_text([result])
    assert taken(loaded, result) == 6, text
    assert "check: {calls: [{returns: {free: false}}, {returns: {free: true}}]}" in text
