"""Running cases: fresh sessions, scripted conditions, tool stubs, and what a failure reports."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from parlant_runtime.testing import (
    Outcome,
    StepRecord,
    ToolStub,
    ToolStubError,
    failure_text,
    render_text,
    stub_registry,
    to_json_data,
)
from tests.testing.support import BOOK, CLINIC, RETURNS, one_case, run, write


def test_a_failing_expectation_reports_step_expected_got_and_the_path(tmp_path: Path) -> None:
    path = one_case(
        tmp_path,
        f"""
        steps:
          - customer: "I'd like to book an appointment"
            holds: ["{BOOK}"]
            expect: {{state: ask_day}}
          - customer: "Monday"
            expect:
              state: confirm
              tool_calls: []
          - customer: "never reached"
        """,
    )
    (case,) = run(path).cases
    assert case.outcome is Outcome.FAILED
    assert case.steps_run == 2
    failure = case.failure
    assert failure is not None
    assert (failure.step, failure.customer, failure.line) == (2, "Monday", 8)
    (mismatch,) = failure.mismatches
    assert (mismatch.key, mismatch.expected, mismatch.got) == ("state", "confirm", "ask_day")
    assert failure_text(failure) == (
        '  step 2 (line 8): customer says "Monday"\n'
        '    state (line 10): expected "confirm", got "ask_day"\n'
        "  path so far:\n"
        '    1. "I\'d like to book an appointment" -> Book a visit/ask_day\n'
        '    2. "Monday" -> stayed at Book a visit/ask_day'
    )


def test_holds_apply_to_their_step_only_and_ignore_case_and_spacing(tmp_path: Path) -> None:
    path = one_case(
        tmp_path,
        """
        steps:
          - customer: "Hello"
            expect: {journey: null}
          - customer: "book please"
            holds: ["Customer  wants to BOOK an appointment"]
            expect: {journey: Book a visit}
          - customer: "book please, again"
            expect: {state: ask_day, journey: Book a visit}
        """,
    )
    assert run(path).passed


def test_holds_that_the_agent_never_asks_fail_the_step_with_a_suggestion(tmp_path: Path) -> None:
    path = one_case(
        tmp_path,
        """
        steps:
          - customer: "book please"
            holds: ["customer wants to book"]
        """,
    )
    failure = run(path).cases[0].failure
    assert failure is not None
    (mismatch,) = failure.mismatches
    assert mismatch.key == "holds"
    assert mismatch.line == 6
    assert mismatch.message == (
        "'customer wants to book' is not a natural-language condition of the agent; "
        "did you mean 'customer wants to book an appointment'?"
    )
    assert failure.path == ()


def test_a_stub_for_a_tool_the_bundle_lacks_fails_before_the_first_step(tmp_path: Path) -> None:
    path = one_case(
        tmp_path,
        """
        tools:
          check_slot: {returns: {free: true}}
        steps:
          - customer: hi
        """,
        bundle=CLINIC,
    )
    (case,) = run(path).cases
    assert case.outcome is Outcome.FAILED
    assert case.steps_run == 0
    assert case.failure is not None
    assert case.failure.step is None
    (mismatch,) = case.failure.mismatches
    assert mismatch.key == "tools.check_slot"
    assert mismatch.line == 5
    assert "did you mean 'check_slots'?" in mismatch.message
    assert failure_text(case.failure).startswith("  before the first step:\n")


def test_stubs_return_a_fresh_copy_or_raise() -> None:
    registry = stub_registry(
        {
            "a": ToolStub.model_validate({"returns": {"times": ["09:00"]}}),
            "b": ToolStub.model_validate({"raises": "service down"}),
            "c": ToolStub.model_validate({"returns": None}),
        }
    )

    async def calls() -> None:
        a, b, c = registry.get("a"), registry.get("b"), registry.get("c")
        assert a is not None
        assert b is not None
        assert c is not None
        first = await a({})
        first["times"].append("10:00")
        assert await a({}) == {"times": ["09:00"]}
        assert await c({}) is None
        with pytest.raises(ToolStubError, match="service down"):
            await b({})

    asyncio.run(calls())
    assert registry.get("missing") is None


def booking(tools: str) -> str:
    return f"""
        variables: {{patient_name: Ada, department: dermatology}}
        tools:
          check_slots: {{returns: {{free: true, times: ["09:00"]}}}}
          {tools}
        steps:
          - customer: book
            holds: ["{BOOK}"]
          - customer: Monday
            set: {{day: Monday}}
          - customer: "9:00"
            set: {{time: "09:00"}}
            expect: {{state: confirm}}
        """


def test_a_raising_stub_shows_in_the_turn_errors(tmp_path: Path) -> None:
    path = one_case(tmp_path, booking('book_appointment: {raises: "booking down"}'), bundle=CLINIC)
    failure = run(path).cases[0].failure
    assert failure is not None
    assert failure.mismatches[0].got == "offer_times"
    assert failure.errors == ("raised ToolStubError: booking down (1 attempt)",)
    assert failure.path[-1].describe() == "Book a visit/book (back at Book a visit/offer_times)"
    assert "errors the turn recorded:\n    - raised ToolStubError: booking down" in failure_text(
        failure
    )


def test_a_tool_without_a_stub_has_no_function(tmp_path: Path) -> None:
    path = one_case(tmp_path, booking(""), bundle=CLINIC)
    failure = run(path).cases[0].failure
    assert failure is not None
    (error,) = failure.errors
    assert "no function is registered for tool 'book_appointment'" in error


def test_a_turn_that_raises_is_an_error_not_a_crash(tmp_path: Path) -> None:
    path = one_case(
        tmp_path,
        """
        steps:
          - customer: hi
            set: {return_window_days: thirty}
        """,
        bundle=RETURNS,
    )
    (case,) = run(path).cases
    assert case.outcome is Outcome.ERROR
    assert case.failure is not None
    (mismatch,) = case.failure.mismatches
    assert mismatch.key == "turn"
    assert mismatch.message.startswith("the turn raised InvalidData: variable 'return_window_days'")


def test_bad_starting_variables_are_an_error_before_the_first_step(tmp_path: Path) -> None:
    path = one_case(
        tmp_path,
        """
        variables: {return_window_days: thirty}
        steps:
          - customer: hi
        """,
        bundle=RETURNS,
    )
    (case,) = run(path).cases
    assert case.outcome is Outcome.ERROR
    assert case.steps_run == 0
    assert case.failure is not None
    assert case.failure.step is None
    (mismatch,) = case.failure.mismatches
    assert (mismatch.key, mismatch.line) == ("variables", 4)
    assert mismatch.message.startswith("the session could not start: InvalidData")


def test_every_case_gets_a_fresh_session(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""
        bundle: {CLINIC}
        cases:
          - name: sets a variable
            steps:
              - customer: hi
                set: {{department: dermatology}}
                expect: {{variables: {{department: dermatology}}}}
          - name: does not see it
            steps:
              - customer: book
                holds: ["{BOOK}"]
                expect: {{state: ask_department}}
        """,
    )
    result = run(path)
    assert [case.outcome for case in result.cases] == [Outcome.PASSED, Outcome.PASSED]


def test_runs_are_deterministic(tmp_path: Path) -> None:
    path = one_case(tmp_path, booking('book_appointment: {raises: "down"}'), bundle=CLINIC)
    first, second = to_json_data([run(path)]), to_json_data([run(path)])
    assert first == second
    assert first["summary"]["failed"] == 1


@pytest.mark.parametrize(
    ("record", "text"),
    [
        (StepRecord(1, "x", (), None, None, ()), "no journey"),
        (StepRecord(1, "x", (), "J", "s", ()), "stayed at J/s"),
        (StepRecord(1, "x", ("J/a", "J/b"), "J", "b", ()), "J/a -> J/b"),
        (StepRecord(1, "x", ("J/done",), None, None, ()), "J/done (journey ended)"),
        (StepRecord(1, "x", ("J/t",), "J", "a", ()), "J/t (back at J/a)"),
    ],
)
def test_the_path_says_where_each_step_went(record: StepRecord, text: str) -> None:
    assert record.describe() == text


DECLARED = """
agent: {name: Declared, compositionMode: fluid}
variables:
  - {key: day, scope: session, valueType: string, isPrivate: true}
journeys:
  - title: Book
    conditions: ["start"]
    states:
      - name: ask_day
        stateType: chat
        isInitial: true
        chatPrompt: Which day?
        condition: "{{ vars.day is defined }}"
      - {name: confirm, stateType: chat, chatPrompt: Booked.}
    transitions:
      - {from: ask_day, to: confirm, condition: "{{ vars.day is defined }}"}
"""


def test_a_declared_variable_without_a_value_is_not_set_in_a_case(tmp_path: Path) -> None:
    agent = write(tmp_path, DECLARED, "declared.yaml")
    path = one_case(
        tmp_path,
        """
        steps:
          - customer: "book"
            holds: ["start"]
            expect: {state: ask_day, variables: {day: null}}
          - customer: "Monday"
            set: {day: Monday}
            expect: {state: confirm, variables: {day: Monday}}
        """,
        bundle=agent,
    )
    result = run(path)
    assert result.passed, [case.failure for case in result.cases]


def test_expecting_a_value_of_a_variable_that_has_none_says_it_is_not_set(
    tmp_path: Path,
) -> None:
    agent = write(tmp_path, DECLARED, "declared.yaml")
    path = one_case(
        tmp_path,
        """
        steps:
          - customer: "book"
            holds: ["start"]
            expect: {variables: {day: Monday}}
        """,
        bundle=agent,
    )
    failure = run(path).cases[0].failure
    assert failure is not None
    (mismatch,) = failure.mismatches
    assert mismatch.message == 'expected "Monday", got nothing (not set)'


LOOKUP = """
agent: {name: Lookup, compositionMode: fluid}
variables:
  - {key: pin, scope: session, valueType: string, isPrivate: true}
tools:
  - name: check
    parameters:
      type: object
      properties: {day: {type: string}, pin: {type: string}}
      required: [day]
    returnSchema: {type: object, properties: {free: {type: boolean}}, required: [free]}
journeys:
  - title: Book
    conditions: ["start"]
    states:
      - {name: ask_day, stateType: chat, isInitial: true, chatPrompt: "Which day?"}
      - name: lookup
        stateType: tool
        tool: check
        toolConfig:
          arguments: {day: "{{ vars.day }}", pin: "{{ vars.pin }}"}
          resultVariable: slot
      - {name: booked, stateType: chat, chatPrompt: Booked.}
      - {name: done, stateType: final}
    transitions:
      - {from: ask_day, to: lookup, condition: "{{ vars.day is defined }}"}
      - {from: lookup, to: booked, condition: "{{ vars.slot.free }}", priority: 200}
      - {from: lookup, to: ask_day}
      - {from: booked, to: done}
"""


def lookup_case(tmp_path: Path, body: str) -> Path:
    return one_case(tmp_path, body, bundle=write(tmp_path, LOOKUP, "lookup.yaml"))


def test_a_stub_with_calls_answers_each_call_in_turn(tmp_path: Path) -> None:
    path = lookup_case(
        tmp_path,
        """
        variables: {pin: "1234"}
        tools:
          check:
            calls:
              - {returns: {free: false}}
              - {raises: "calendar down"}
              - {returns: {free: true}}
        steps:
          - customer: "book"
            holds: ["start"]
            expect: {state: ask_day}
          - customer: "Monday"
            set: {day: Monday}
            expect:
              state: ask_day
              tool_calls: [{tool: check, arguments: {day: Monday, pin: "[private]"}}]
          - customer: "Tuesday"
            set: {day: Tuesday}
            expect: {state: ask_day, tool_calls: [check]}
          - customer: "Wednesday"
            set: {day: Wednesday}
            expect: {state: booked, tool_calls: [{tool: check, arguments: {day: Wednesday}}]}
        """,
    )
    result = run(path)
    assert result.passed, render_text([result])


def test_a_call_past_the_last_listed_result_fails_and_says_so(tmp_path: Path) -> None:
    path = lookup_case(
        tmp_path,
        """
        variables: {pin: "1234"}
        tools:
          check: {calls: [{returns: {free: false}}]}
        steps:
          - customer: "book"
            holds: ["start"]
          - customer: "Monday"
            set: {day: Monday}
            expect: {state: ask_day}
          - customer: "Tuesday"
            set: {day: Tuesday}
            expect: {state: booked}
        """,
    )
    failure = run(path).cases[0].failure
    assert failure is not None
    assert failure.step == 3
    assert any("lists 1 call(s) and this is call 2" in error for error in failure.errors)


def test_an_argument_that_differs_is_a_mismatch_naming_the_call(tmp_path: Path) -> None:
    path = lookup_case(
        tmp_path,
        """
        variables: {pin: "1234"}
        tools:
          check: {returns: {free: true}}
        steps:
          - customer: "book"
            holds: ["start"]
          - customer: "Monday"
            set: {day: Monday}
            expect: {tool_calls: [{tool: check, arguments: {day: Tuesday, week: 3}}]}
        """,
    )
    failure = run(path).cases[0].failure
    assert failure is not None
    assert [(m.key, m.message) for m in failure.mismatches] == [
        (
            "tool_calls[0].arguments.day",
            'call 1 (check): expected argument day = "Tuesday", got "Monday"',
        ),
        (
            "tool_calls[0].arguments.week",
            "call 1 (check): expected argument week = 3, got nothing (not set)",
        ),
    ]


def test_expected_calls_by_name_still_compare_names_first(tmp_path: Path) -> None:
    path = lookup_case(
        tmp_path,
        """
        tools:
          check: {returns: {free: true}}
        steps:
          - customer: "book"
            holds: ["start"]
            expect: {tool_calls: [{tool: check, arguments: {day: Monday}}]}
        """,
    )
    (mismatch,) = run(path).cases[0].failure.mismatches  # type: ignore[union-attr]
    assert (mismatch.key, mismatch.expected, mismatch.got) == ("tool_calls", ["check"], [])
