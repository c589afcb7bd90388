"""Every ``expect`` key: a value that holds passes, a value that does not fails with a message.

One scenario serves them all: the clinic's booking journey at the step where the
day is given, which calls a tool, passes through three states, matches two
guidelines in priority order and writes nine events.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from parlant_runtime.testing import Outcome
from parlant_runtime.testing.expect import json_equal
from tests.testing.support import BOOK, CLINIC, EMERGENCY, one_case, run

SLOTS = {"free": True, "times": ["09:00", "11:30"]}
REPLY = "On Monday we have 09:00, 11:30 free. Which time would you like?"
EVENTS = [
    "customer_message",
    "variable_update",
    "journey_transition",
    "tool_call",
    "tool_result",
    "variable_update",
    "journey_transition",
    "journey_transition",
    "agent_message",
]

# key -> (a value that holds, a value that does not, a fragment of the failure message)
CASES: dict[str, tuple[object, object, str]] = {
    "journey": ("Book a visit", "Cancel a visit", 'expected "Cancel a visit", got "Book a visit"'),
    "state": ("offer_times", "confirm", 'expected "confirm", got "offer_times"'),
    "reply": (REPLY, "On Monday.", f'expected "On Monday.", got "{REPLY}"'),
    "reply_contains": ("11:30 free", "12:00", 'expected a reply containing "12:00", got "On'),
    "reply_matches": (r"^On \w+day we have", r"^Tuesday", "expected a reply matching /^Tuesday/"),
    "no_reply": (False, True, f'expected no reply, got "{REPLY}"'),
    "variables": (
        {"day": "Monday", "slots": SLOTS, "clinic_phone": "020 7946 0000"},
        {"day": "Tuesday"},
        'expected "Tuesday", got "Monday"',
    ),
    "tool_calls": (["check_slots"], [], 'expected [], got ["check_slots"]'),
    "guidelines": (
        ["emergency", "opening_hours"],
        ["opening_hours", "emergency"],
        'expected ["opening_hours", "emergency"], got ["emergency", "opening_hours"]',
    ),
    "events": (EVENTS, EVENTS[:3], 'expected ["customer_message", "variable_update"'),
}


def scenario(folder: Path, key: str, value: object) -> Path:
    expect = json.dumps({key: value})
    return one_case(
        folder,
        f"""
        variables: {{patient_name: Ada, department: dermatology}}
        tools:
          check_slots: {{returns: {json.dumps(SLOTS)}}}
        steps:
          - customer: "Book me in"
            holds: ["{BOOK}"]
          - customer: "Monday - and what are your opening hours?"
            holds: ["{EMERGENCY}"]
            set: {{day: Monday}}
            expect: {expect}
        """,
        bundle=CLINIC,
    )


@pytest.mark.parametrize("key", sorted(CASES))
def test_a_value_that_holds_passes(tmp_path: Path, key: str) -> None:
    result = run(scenario(tmp_path, key, CASES[key][0]))
    assert result.passed, result


@pytest.mark.parametrize("key", sorted(CASES))
def test_a_value_that_does_not_hold_fails_with_expected_and_got(tmp_path: Path, key: str) -> None:
    result = run(scenario(tmp_path, key, CASES[key][1]))
    (case,) = result.cases
    assert case.outcome is Outcome.FAILED
    assert case.failure is not None
    assert case.failure.step == 2
    assert case.failure.line == 10
    (mismatch,) = case.failure.mismatches
    assert mismatch.key.split(".")[0] == key
    assert mismatch.line == 13
    assert CASES[key][2] in mismatch.message


def test_null_journey_and_state_expect_no_journey(tmp_path: Path) -> None:
    result = run(scenario(tmp_path, "journey", None))
    (mismatch,) = result.cases[0].failure.mismatches  # type: ignore[union-attr]
    assert mismatch.message == 'expected null, got "Book a visit"'
    assert (mismatch.expected, mismatch.got) == (None, "Book a visit")


def test_reply_keys_fail_on_silence(tmp_path: Path) -> None:
    path = one_case(
        tmp_path,
        """
        steps:
          - customer: Hello
            expect:
              reply: Hi
              reply_contains: Hi
              reply_matches: H
              no_reply: false
        """,
    )
    failure = run(path).cases[0].failure
    assert failure is not None
    assert [m.message for m in failure.mismatches] == [
        'expected "Hi", got null',
        'expected a reply containing "Hi", got no reply',
        "expected a reply matching /H/, got no reply",
        "expected a reply, got no reply",
    ]


def test_variables_is_a_subset_that_sees_private_ones_and_reports_each_key(
    tmp_path: Path,
) -> None:
    path = one_case(
        tmp_path,
        """
        variables: {secret: 1}
        steps:
          - customer: Hello
            set: {flag: true}
            expect:
              variables: {flag: 1, secret: 1, missing: x}
        """,
    )
    failure = run(path).cases[0].failure
    assert failure is not None
    assert [(m.key, m.message) for m in failure.mismatches] == [
        ("variables.flag", "expected 1, got true"),
        ("variables.missing", 'expected "x", got nothing (not set)'),
    ]


@pytest.mark.parametrize(
    ("left", "right", "equal"),
    [
        (1, 1.0, True),
        (True, 1, False),
        (False, 0, False),
        (True, True, True),
        ({"a": [1, {"b": None}]}, {"a": [1, {"b": None}]}, True),
        ({"a": 1}, {"a": 1, "b": 2}, False),
        ([1, 2], [2, 1], False),
        ("1", 1, False),
        (None, None, True),
    ],
)
def test_values_compare_as_json(left: object, right: object, equal: bool) -> None:
    assert json_equal(left, right) is equal
    assert json_equal(right, left) is equal
