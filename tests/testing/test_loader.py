"""Reading conversation test files: every problem reported with its file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from parlant_runtime.errors import ParlantRuntimeError
from parlant_runtime.testing import (
    ConversationFileError,
    loads_conversation_file,
    read_conversation_file,
    resolve_bundle,
)
from tests.testing.support import MALFORMED_BUNDLE, MINIMAL, run, write


def problems_of(text: str) -> list[tuple[int | None, str, str]]:
    with pytest.raises(ConversationFileError) as caught:
        loads_conversation_file(text, filename="t.conversation.yaml")
    assert all(p.file == "t.conversation.yaml" for p in caught.value.problems)
    return [(p.line, p.field, p.message) for p in caught.value.problems]


def test_a_good_file_keeps_its_lines() -> None:
    loaded = loads_conversation_file(
        "bundle: b.yaml\n"
        "cases:\n"
        "  - name: one\n"
        "    steps:\n"
        "      - customer: hi\n"
        "        expect:\n"
        "          journey: null\n"
    )
    assert loaded.spec.bundle == "b.yaml"
    step = loaded.spec.cases[0].steps[0]
    assert step.expect.given() == ["journey"]
    assert step.holds == []
    assert step.set == {}
    assert loaded.line_of("cases", 0) == 3
    assert loaded.line_of("cases", 0, "steps", 0, "expect", "journey") == 7


def test_unknown_keys_are_refused_with_a_suggestion_at_their_line() -> None:
    found = problems_of(
        "bundel: b.yaml\n"
        "cases:\n"
        "  - name: one\n"
        "    tools:\n"
        "      check_slots: {retuns: 1}\n"
        "    steps:\n"
        "      - customer: hi\n"
        "        hold: []\n"
        "        expect: {reply_contain: x}\n"
    )
    assert found == [
        (1, "bundel", "unknown key 'bundel'; did you mean 'bundle'?"),
        (5, "cases[0].tools.check_slots.retuns", "unknown key 'retuns'; did you mean 'returns'?"),
        (8, "cases[0].steps[0].hold", "unknown key 'hold'; did you mean 'holds'?"),
        (
            9,
            "cases[0].steps[0].expect.reply_contain",
            "unknown key 'reply_contain'; did you mean 'reply_contains'?",
        ),
    ]


def test_an_unknown_key_with_no_close_match_lists_the_known_ones() -> None:
    (found,) = problems_of("cases:\n  - name: a\n    zzz: 1\n    steps: [{customer: hi}]\n")
    assert found[0] == 3
    assert found[2] == "unknown key 'zzz'; known keys here: name, steps, tools, variables"


@pytest.mark.parametrize(
    ("body", "field", "fragment"),
    [
        ("customer: 1234", "customer", "expected a valid string, got 1234; quote it"),
        ("customer: hi\nset: {dob: 1990-04-12}", "set", "dob is a YAML date, not JSON data"),
        ("customer: hi\nexpect: {reply: null}", "expect.reply", "cannot be null"),
        ("customer: hi\nexpect: {no_reply: maybe}", "expect.no_reply", "a valid boolean"),
        ("customer: hi\nexpect: {reply_matches: '(['}", "expect.reply_matches", "regular"),
        ("customer: hi\nexpect: {events: [journey_transtion]}", "expect.events[0]", "one of"),
        ("customer: hi\nholds: one condition", "holds", "expected a valid list"),
        ("customer: hi\nexpect: {variables: [a]}", "expect.variables", "a valid dictionary"),
    ],
)
def test_bad_step_values_name_the_field(body: str, field: str, fragment: str) -> None:
    step = body.replace("\n", "\n      ")
    (found,) = problems_of(f"cases:\n  - name: a\n    steps:\n    - {step}\n")
    line, where, message = found
    assert where == f"cases[0].steps[0].{field}"
    assert fragment in message
    assert line is not None
    assert line >= 4


@pytest.mark.parametrize(
    ("stub", "fragment"),
    [
        ("{returns: 1, raises: boom}", "exactly one of `returns`, `raises` or `calls`"),
        ("{}", "exactly one of `returns`, `raises` or `calls`"),
        ("{raises: ''}", "needs the error message"),
        ("{returns: {when: 2024-01-01}}", "when is a YAML date"),
        ("{returns: 1, calls: [{returns: 2}]}", "exactly one of `returns`, `raises` or `calls`"),
        ("{calls: []}", "give at least one"),
        ("{calls: [{returns: 1, raises: boom}]}", "a call result gives exactly one"),
        ("{calls: [{retruns: 1}]}", "did you mean 'returns'?"),
    ],
)
def test_tool_stubs_give_exactly_one_behaviour(stub: str, fragment: str) -> None:
    (found,) = problems_of(
        f"cases:\n  - name: a\n    tools:\n      t: {stub}\n    steps: [{{customer: hi}}]\n"
    )
    assert found[0] == 4
    assert found[1].startswith("cases[0].tools.t")
    assert fragment in found[2]


def test_a_null_journey_is_an_expectation_but_a_missing_one_is_not() -> None:
    loaded = loads_conversation_file(
        "cases:\n  - name: a\n    steps:\n"
        "      - {customer: hi, expect: {journey: null}}\n"
        "      - {customer: hi, expect: {state: s}}\n"
    )
    first, second = (step.expect for step in loaded.spec.cases[0].steps)
    assert first.given() == ["journey"]
    assert second.given() == ["state"]


def test_cases_and_steps_must_not_be_empty_and_names_are_unique() -> None:
    found = problems_of(
        "cases:\n"
        "  - name: a\n    steps: [{customer: hi}]\n"
        "  - name: a\n    steps: []\n"
        "  - steps: [{customer: hi}]\n"
    )
    assert found == [
        (4, "cases[1].name", "duplicate case name 'a', already used by cases[0]"),
        (5, "cases[1].steps", "must not be empty; give at least one"),
        (6, "cases[2].name", "required key 'name' is missing; add it"),
    ]
    assert problems_of("cases: []\n") == [(1, "cases", "must not be empty; give at least one")]


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("cases: [\n", 2, "not valid YAML"),
        ("", None, "the file is empty"),
        ("- a\n- b\n", 1, "not a list"),
        ("cases:\n  - name: a\n    name: b\n    steps: [{customer: hi}]\n", 3, "duplicate key"),
    ],
)
def test_unreadable_text_is_reported_with_its_line(
    text: str, line: int | None, fragment: str
) -> None:
    found = problems_of(text)
    assert any(where == line and fragment in message for where, _, message in found), found


def test_read_reports_missing_files_folders_and_bad_encoding(tmp_path: Path) -> None:
    cases = {
        tmp_path / "missing.conversation.yaml": "no such file",
        tmp_path: "is a folder",
    }
    binary = tmp_path / "latin1.conversation.yaml"
    binary.write_bytes(b"cases: \xff\n")
    cases[binary] = "is not UTF-8 text"
    for path, fragment in cases.items():
        with pytest.raises(ConversationFileError) as caught:
            read_conversation_file(path)
        assert fragment in str(caught.value)
        assert isinstance(caught.value, ParlantRuntimeError)


def test_the_bundle_is_relative_to_the_file_and_the_override_wins(tmp_path: Path) -> None:
    path = write(tmp_path, "bundle: ../b.yaml\ncases: [{name: a, steps: [{customer: hi}]}]\n")
    loaded = read_conversation_file(path)
    assert resolve_bundle(loaded) == tmp_path / ".." / "b.yaml"
    assert resolve_bundle(loaded, "other.yaml") == Path("other.yaml")


def test_a_file_without_a_bundle_needs_the_override(tmp_path: Path) -> None:
    path = write(tmp_path, "cases: [{name: a, steps: [{customer: hi}]}]\n")
    result = run(path)
    assert not result.readable
    assert "no bundle: add `bundle: path/to/bundle.yaml` or pass --bundle" in str(
        result.problems[0]
    )
    assert run(path, bundle=MINIMAL).passed


def test_a_bundle_that_cannot_be_loaded_is_reported_with_its_own_lines(tmp_path: Path) -> None:
    path = write(
        tmp_path, f"bundle: {MALFORMED_BUNDLE}\ncases: [{{name: a, steps: [{{customer: hi}}]}}]\n"
    )
    result = run(path)
    heading, *details = result.problems
    assert (heading.file, heading.line, heading.field) == (str(path), 1, "bundle")
    assert "cannot be loaded" in heading.message
    assert details
    assert all(p.file == str(MALFORMED_BUNDLE) and p.line for p in details)
