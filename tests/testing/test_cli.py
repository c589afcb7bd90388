"""The ``test`` command: exit codes, text, JSON and JUnit XML, folders and ``--bundle``."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from parlant_runtime.cli import test_command
from tests.testing.support import (
    BOOK,
    EXAMPLE_TESTS,
    MALFORMED_BUNDLE,
    MINIMAL,
    RETURNS,
    one_case,
    write,
)


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(test_command.test, [str(arg) for arg in args], catch_exceptions=False)


def passing(folder: Path) -> Path:
    return write(
        folder,
        f"""
        bundle: {MINIMAL}
        cases:
          - name: passes
            steps:
              - customer: book
                holds: ["{BOOK}"]
                expect: {{state: ask_day}}
        """,
        "pass.conversation.yaml",
    )


def failing(folder: Path) -> Path:
    return write(
        folder,
        f"""
        bundle: {MINIMAL}
        cases:
          - name: passes too
            steps:
              - {{customer: hi, expect: {{no_reply: true}}}}
          - name: fails
            steps:
              - customer: book
                holds: ["{BOOK}"]
                expect: {{state: confirm, reply: "Which day?"}}
        """,
        "fail.conversation.yaml",
    )


def unreadable(folder: Path) -> Path:
    return write(folder, "cases:\n  - name: a\n    stpes: []\n", "bad.conversation.yaml")


def test_all_passing_exits_0_with_one_line_per_case() -> None:
    result = invoke("--no-color", EXAMPLE_TESTS)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert re.fullmatch(r"(\d+) cases in 4 files: \1 passed, 0 failed", lines[-1])
    assert all(line.startswith("PASS ") for line in lines[:-1])
    assert f"PASS {EXAMPLE_TESTS / 'minimal.conversation.yaml'}:5 books a visit on Monday" in lines


def test_a_failing_case_exits_1_with_the_details(tmp_path: Path) -> None:
    path = failing(tmp_path)
    result = invoke("--no-color", path)
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"PASS {path}:3 passes too",
        f"FAIL {path}:6 fails",
        '  step 1 (line 8): customer says "book"',
        '    state (line 10): expected "confirm", got "ask_day"',
        '    reply (line 10): expected "Which day?", got "Which day suits you?"',
        "  path so far:",
        '    1. "book" -> Book a visit/ask_day',
        "2 cases in 1 file: 1 passed, 1 failed",
    ]


def test_an_unreadable_file_exits_2_with_its_line_even_next_to_failures(tmp_path: Path) -> None:
    bad = unreadable(tmp_path)
    result = invoke("--no-color", failing(tmp_path), bad)
    assert result.exit_code == 2
    assert f"{bad}: cannot read" in result.output
    assert f"  {bad}:3: cases[0].stpes: unknown key 'stpes'; did you mean 'steps'?" in result.output
    assert result.output.splitlines()[-1] == "2 cases in 2 files: 1 passed, 1 failed, 1 unreadable"
    assert "Traceback" not in result.output


def test_a_turn_that_raises_is_an_error_in_text_and_junit(tmp_path: Path) -> None:
    path = one_case(
        tmp_path,
        """
        steps:
          - customer: hi
            set: {return_window_days: thirty}
        """,
        bundle=RETURNS,
    )
    report = tmp_path / "junit.xml"
    result = invoke("--no-color", "--junit", report, path)
    assert result.exit_code == 1
    assert f"ERROR {path}:3 it" in result.output
    assert "the turn raised InvalidData" in result.output
    assert result.output.splitlines()[-1] == "1 case in 1 file: 0 passed, 0 failed, 1 error"
    root = ET.parse(report).getroot()
    assert (root.get("failures"), root.get("errors")) == ("0", "1")
    error = root.find("testsuite/testcase/error")
    assert error is not None
    assert error.get("type") == "error"


def test_missing_paths_and_empty_folders_exit_2(tmp_path: Path) -> None:
    result = invoke(tmp_path / "nowhere.conversation.yaml")
    assert result.exit_code == 2
    assert "no such file; check the path" in result.output
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "bundle.yaml").write_text("agent: {name: x}\n")
    result = invoke(empty)
    assert result.exit_code == 2
    assert "no conversation test files (*.conversation.yaml) in" in result.stderr


def test_no_path_is_a_usage_error() -> None:
    assert invoke().exit_code == 2


def test_folders_are_searched_for_conversation_files_only(tmp_path: Path) -> None:
    passing(tmp_path)
    (tmp_path / "notes.yaml").write_text("not: a test\n")
    hidden = tmp_path / ".cache"
    hidden.mkdir()
    unreadable(hidden)
    result = invoke("--no-color", tmp_path)
    assert result.exit_code == 0, result.output
    assert "1 case in 1 file" in result.output
    assert test_command.expand_test_paths([str(tmp_path), str(tmp_path / "x.yaml")]) == [
        str(tmp_path / "pass.conversation.yaml"),
        str(tmp_path / "x.yaml"),
    ]


def test_bundle_overrides_the_files_bundle(tmp_path: Path) -> None:
    path = write(tmp_path, "bundle: nowhere.yaml\ncases: [{name: a, steps: [{customer: hi}]}]\n")
    assert invoke(path).exit_code == 2
    assert invoke("--bundle", MINIMAL, path).exit_code == 0


def test_an_unreadable_bundle_option_exits_2_once(tmp_path: Path) -> None:
    result = invoke("--bundle", MALFORMED_BUNDLE, passing(tmp_path), failing(tmp_path))
    assert result.exit_code == 2
    assert result.stderr.count("cannot read") == 1
    assert f"{MALFORMED_BUNDLE}:" in result.stderr


def test_colour_is_used_only_when_asked(tmp_path: Path) -> None:
    path = failing(tmp_path)
    assert "\x1b[" in invoke("--color", path).output
    assert "\x1b[" not in invoke("--no-color", path).output


def json_output(*args: str | Path) -> tuple[int, dict[str, Any]]:
    result = invoke("--format", "json", *args)
    return result.exit_code, json.loads(result.output)


def test_json_output_carries_every_case_and_failure(tmp_path: Path) -> None:
    status, data = json_output(failing(tmp_path), unreadable(tmp_path))
    assert status == 2
    assert data["summary"] == {
        "files": 2,
        "unreadable": 1,
        "cases": 2,
        "passed": 1,
        "failed": 1,
        "error": 0,
        "exit_status": 2,
    }
    good, bad = data["files"]
    assert good["readable"]
    assert good["bundle"] == str(MINIMAL)
    assert [c["outcome"] for c in good["cases"]] == ["passed", "failed"]
    failure = good["cases"][1]["failure"]
    assert failure["step"] == 1
    assert failure["line"] == 8
    assert failure["mismatches"][0] == {
        "key": "state",
        "expected": "confirm",
        "got": "ask_day",
        "message": 'expected "confirm", got "ask_day"',
        "line": 10,
    }
    assert failure["path"] == [
        {
            "step": 1,
            "customer": "book",
            "entered": ["Book a visit/ask_day"],
            "journey": "Book a visit",
            "state": "ask_day",
            "replies": ["Which day suits you?"],
        }
    ]
    assert not bad["readable"]
    assert bad["cases"] == []
    assert any(p["line"] == 3 and p["field"] == "cases[0].stpes" for p in bad["problems"])


def test_json_output_of_a_passing_run_exits_0(tmp_path: Path) -> None:
    status, data = json_output(passing(tmp_path))
    assert status == 0
    assert data["files"][0]["cases"][0]["failure"] is None


def test_junit_xml_parses_back_with_one_suite_per_file(tmp_path: Path) -> None:
    report = tmp_path / "out" / "junit.xml"
    report.parent.mkdir()
    fail, bad = failing(tmp_path), unreadable(tmp_path)
    result = invoke("--junit", report, passing(tmp_path), fail, bad)
    assert result.exit_code == 2
    root = ET.parse(report).getroot()
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("4", "1", "1")
    suites = {suite.get("name"): suite for suite in root.findall("testsuite")}
    assert len(suites) == 3
    failed_suite = suites[str(fail)]
    assert (failed_suite.get("tests"), failed_suite.get("failures")) == ("2", "1")
    cases = failed_suite.findall("testcase")
    assert [case.get("name") for case in cases] == ["passes too", "fails"]
    assert cases[0].find("failure") is None
    failure = cases[1].find("failure")
    assert failure is not None
    assert failure.get("message") == 'step 1: state: expected "confirm", got "ask_day"'
    assert "path so far:" in (failure.text or "")
    assert cases[1].get("line") == "6"
    error = suites[str(bad)].find("testcase/error")
    assert error is not None
    assert "unknown key 'stpes'" in (error.text or "")
    assert "time" not in failed_suite.attrib  # the same bytes on every run


def test_junit_xml_survives_control_characters(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""
        bundle: {MINIMAL}
        cases:
          - name: "bell \\a and escape \\e"
            steps:
              - {{customer: hi, expect: {{reply: x}}}}
        """,
    )
    report = tmp_path / "junit.xml"
    assert invoke("--junit", report, path).exit_code == 1
    case = ET.parse(report).getroot().find("testsuite/testcase")
    assert case is not None
    assert case.get("name") == "bell \ufffd and escape \ufffd"


def test_an_unwritable_junit_path_exits_2(tmp_path: Path) -> None:
    result = invoke("--junit", tmp_path / "missing" / "junit.xml", passing(tmp_path))
    assert result.exit_code == 2
    assert "cannot write" in result.stderr


def test_the_command_is_registered_as_test() -> None:
    from parlant_runtime.cli import cli

    assert cli.commands.get("test") is test_command.test
