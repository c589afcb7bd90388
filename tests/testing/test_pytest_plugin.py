"""The pytest plugin: ``*.conversation.yaml`` files become one item per case.

Each test runs pytest in-process on a temporary folder (the ``pytester`` fixture).
The plugin is passed with ``-p`` unless the installed package already registers it
through its ``pytest11`` entry point.
"""

from __future__ import annotations

import json
from importlib.metadata import entry_points

import pytest

from tests.testing.support import BOOK, MALFORMED_BUNDLE, MINIMAL

pytest_plugins = ["pytester"]

PLUGIN = "parlant_runtime.testing.pytest_plugin"

CASES = f"""
bundle: {MINIMAL}
cases:
  - name: passes
    steps:
      - customer: book
        holds: ["{BOOK}"]
        expect: {{state: ask_day}}
  - name: fails
    steps:
      - customer: book
        holds: ["{BOOK}"]
        expect: {{state: confirm}}
"""


def plugin_args() -> list[str]:
    registered = any(point.value == PLUGIN for point in entry_points(group="pytest11"))
    return [] if registered else ["-p", PLUGIN]


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    # a fresh process, as users run it: in-process, pytest would warn that the plugin's
    # package was imported before it could rewrite its assertions
    return pytester.runpytest_subprocess(*plugin_args(), "-p", "no:cacheprovider", *args)


def test_each_case_is_an_item_and_a_failure_shows_the_report(pytester: pytest.Pytester) -> None:
    (pytester.path / "booking.conversation.yaml").write_text(CASES)
    result = run(pytester, "-rf")
    result.assert_outcomes(passed=1, failed=1)
    assert "conversation test coverage" not in result.stdout.str()  # only when asked
    result.stdout.fnmatch_lines(
        [
            "*_ case: fails _*",
            'step 1: state: expected "confirm", got "ask_day"',
            "*booking.conversation.yaml:9: case 'fails'",
            '  step 1 (line 11): customer says "book"',
            '    state (line 13): expected "confirm", got "ask_day"',
            "  path so far:",
            '    1. "book" -> Book a visit/ask_day',
            "FAILED booking.conversation.yaml::fails - step 1: state: expected*",
        ]
    )
    assert "Traceback" not in result.stdout.str()


def test_items_are_named_after_their_cases(pytester: pytest.Pytester) -> None:
    (pytester.path / "booking.conversation.yaml").write_text(CASES)
    result = run(pytester, "--collect-only", "-q")
    result.stdout.fnmatch_lines(
        ["booking.conversation.yaml::passes", "booking.conversation.yaml::fails"]
    )
    run(pytester, "-k", "passes").assert_outcomes(passed=1, deselected=1)


def test_an_unreadable_file_is_a_collection_error_with_its_line(
    pytester: pytest.Pytester,
) -> None:
    (pytester.path / "bad.conversation.yaml").write_text("cases:\n  - name: a\n    stpes: []\n")
    result = run(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*bad.conversation.yaml:3 cases?0?.stpes: unknown key 'stpes'; did you mean 'steps'?"]
    )
    assert "Traceback" not in result.stdout.str()


def test_only_conversation_files_are_collected(pytester: pytest.Pytester) -> None:
    (pytester.path / "notes.yaml").write_text("cases: [oops\n")
    (pytester.path / "test_cases.yaml").write_text("cases: []\n")
    result = run(pytester)
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED


def test_the_bundle_option_overrides_every_file(pytester: pytest.Pytester) -> None:
    (pytester.path / "booking.conversation.yaml").write_text(
        CASES.replace(str(MINIMAL), "nowhere.yaml")
    )
    run(pytester).assert_outcomes(errors=1)
    run(pytester, "--conversation-bundle", str(MINIMAL)).assert_outcomes(passed=1, failed=1)
    result = run(pytester, "--conversation-bundle", str(MALFORMED_BUNDLE))
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*bad_enum.yaml:*stateType*"])


def test_strict_settings_and_warnings_as_errors_are_not_disturbed(
    pytester: pytest.Pytester,
) -> None:
    (pytester.path / "booking.conversation.yaml").write_text(CASES)
    pytester.makepyfile(test_plain="def test_plain() -> None:\n    assert True\n")
    pytester.makeini(
        "[pytest]\naddopts = --strict-markers --strict-config\nfilterwarnings = error\n"
    )
    result = run(pytester, "-k", "passes or plain")
    result.assert_outcomes(passed=2, deselected=1, warnings=0)


def test_coverage_in_the_terminal_summary_and_as_json(pytester: pytest.Pytester) -> None:
    (pytester.path / "booking.conversation.yaml").write_text(CASES)
    result = run(pytester, "--conversation-coverage", "--conversation-coverage-json=cov.json")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*conversation test coverage*",
            f"coverage of {MINIMAL} (2 cases in 1 file)",
            "  journey 'Book a visit': states 1/3 (33.3%), transitions 0/2 (0%)",
            "    never taken:   *minimal.yaml:*transition ask_day -> confirm*",
        ]
    )
    data = json.loads((pytester.path / "cov.json").read_text())
    assert data["format"] == "parlant-runtime-coverage/1"
    assert data["bundles"][0]["transitions"] == {"covered": 0, "total": 2, "percent": 0.0}
