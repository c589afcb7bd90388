"""The ``validate`` command: output formats, exit codes, folders, progress, no tracebacks."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from parlant_runtime import Code
from parlant_runtime.cli import cli

TESTS = Path(__file__).parent
EXAMPLES = TESTS.parent / "examples"
BROKEN = TESTS / "bundles" / "broken"
MALFORMED = TESTS / "bundles" / "malformed"


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, [str(arg) for arg in args], catch_exceptions=False)


def as_json(*args: str | Path) -> tuple[int, dict[str, Any]]:
    result = run("validate", "--format", "json", *args)
    return result.exit_code, json.loads(result.stdout)


def test_valid_examples_exit_0() -> None:
    result = run("validate", EXAMPLES)
    assert result.exit_code == 0, result.output
    assert "5 files checked: 0 errors, 0 warnings, 0 infos" in result.output


def test_a_folder_is_searched_for_bundles_and_conversation_tests_are_left_out() -> None:
    code, report = as_json(EXAMPLES)
    assert code == 0
    checked = {Path(entry["path"]).relative_to(EXAMPLES).as_posix() for entry in report["files"]}
    assert checked == {
        "bank_card.yaml",
        "clinic.yaml",
        "minimal.yaml",
        "returns.yaml",
        "web/agent.yaml",  # a subfolder is searched too
    }


def test_errors_exit_1_and_name_file_line_and_code() -> None:
    result = run("validate", "--no-color", BROKEN / "dead_end.yaml")
    assert result.exit_code == 1
    assert f"{BROKEN / 'dead_end.yaml'}:87: error dead_end [Book a visit]" in result.output
    assert "e.g. ask_department -> ask_day" in result.output


def test_warnings_pass_unless_strict() -> None:
    assert run("validate", BROKEN / "self_transition.yaml").exit_code == 0
    assert run("validate", "--strict", BROKEN / "self_transition.yaml").exit_code == 1


def test_infos_never_fail_even_when_strict() -> None:
    assert run("validate", "--strict", BROKEN / "unused_tool.yaml").exit_code == 0


@pytest.mark.parametrize("name", sorted(p.name for p in MALFORMED.iterdir()))
def test_unreadable_input_exits_2_with_the_reason(name: str) -> None:
    result = run("validate", "--no-color", MALFORMED / name)
    assert result.exit_code == 2
    assert f"{MALFORMED / name}: cannot read" in result.output
    assert "Traceback" not in result.output


def test_unreadable_wins_over_errors_and_every_file_is_still_checked() -> None:
    code, data = as_json(BROKEN / "dead_end.yaml", MALFORMED / "not_yaml.yaml", EXAMPLES)
    assert code == 2
    assert len(data["files"]) == 2 + 5  # the two named files and the five examples
    assert data["summary"]["unreadable"] == 1
    assert data["summary"]["errors"] == 1


def test_missing_file_exits_2() -> None:
    result = run("validate", "no/such/bundle.yaml")
    assert result.exit_code == 2
    assert "no such file" in result.output


def test_json_output_follows_the_contract() -> None:
    code, data = as_json(BROKEN / "dead_end.yaml")
    assert code == 1
    assert set(data) == {"files", "summary"}
    assert data["summary"] == {"errors": 1, "warnings": 0, "infos": 0, "unreadable": 0}
    (entry,) = data["files"]
    assert entry["path"] == str(BROKEN / "dead_end.yaml")
    (finding,) = entry["findings"]
    assert finding["code"] == "dead_end"
    assert finding["severity"] == "error"
    assert finding["journey"] == "Book a visit"
    assert finding["states"] == ["join_waitlist"]
    assert finding["path"] == {"field": "journeys[0].states[12]", "line": 87}
    assert finding["example"][-1] == "join_waitlist"
    assert finding["message"]


def test_json_lists_the_problems_of_unreadable_files() -> None:
    code, data = as_json(MALFORMED / "bad_enum.yaml")
    assert code == 2
    (entry,) = data["files"]
    assert entry["readable"] is False
    assert entry["problems"] == [
        {
            "path": {"field": "journeys[0].states[2].stateType", "line": 13},
            "message": "'chatt' is not one of chat, tool, decision, final",
        }
    ]


def test_sarif_output_is_sarif_2_1_0_with_one_rule_per_code() -> None:
    result = run(
        "validate", "--format", "sarif", BROKEN / "dead_end.yaml", BROKEN / "unused_tool.yaml"
    )
    assert result.exit_code == 1
    log = json.loads(result.stdout)
    assert log["version"] == "2.1.0"
    assert log["$schema"].endswith("sarif-2.1.0.json")
    (run_,) = log["runs"]
    rules = run_["tool"]["driver"]["rules"]
    assert [rule["id"] for rule in rules] == [code.value for code in Code]
    by_rule = {r["ruleId"]: r for r in run_["results"]}
    dead_end = by_rule["dead_end"]
    assert rules[dead_end["ruleIndex"]]["id"] == "dead_end"
    assert dead_end["level"] == "error"
    location = dead_end["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"].endswith("dead_end.yaml")
    assert location["region"] == {"startLine": 87}
    assert by_rule["unused_tool"]["level"] == "note"
    assert run_["invocations"][0]["executionSuccessful"] is True


def test_sarif_reports_unreadable_files_as_notifications() -> None:
    result = run("validate", "--format", "sarif", MALFORMED / "bad_enum.yaml")
    assert result.exit_code == 2
    invocation = json.loads(result.stdout)["runs"][0]["invocations"][0]
    assert invocation["executionSuccessful"] is False
    (note,) = invocation["toolExecutionNotifications"]
    assert note["locations"][0]["physicalLocation"]["region"] == {"startLine": 13}


def test_folders_are_searched_for_bundle_files(tmp_path: Path) -> None:
    nested = tmp_path / "agents" / "deep"
    nested.mkdir(parents=True)
    shutil.copy(EXAMPLES / "minimal.yaml", nested / "one.yml")
    shutil.copy(TESTS / "bundles" / "valid" / "clinic.json", tmp_path / "agents" / "two.json")
    (tmp_path / "agents" / "notes.txt").write_text("not a bundle")
    hidden = tmp_path / "agents" / ".cache"
    hidden.mkdir()
    (hidden / "junk.yaml").write_text(": not yaml :")
    code, data = as_json(tmp_path / "agents")
    assert code == 0
    assert sorted(Path(f["path"]).name for f in data["files"]) == ["one.yml", "two.json"]


def test_progress_bar_is_drawn_on_request_and_not_by_default() -> None:
    quiet = CliRunner().invoke(cli, ["validate", str(EXAMPLES)])
    assert "Validating" not in quiet.stderr
    shown = CliRunner().invoke(cli, ["validate", "--progress", str(EXAMPLES)])
    assert "Validating" in shown.stderr


def test_colour_only_when_asked_or_on_a_terminal() -> None:
    plain = run("validate", BROKEN / "dead_end.yaml")
    assert "\x1b[" not in plain.output
    coloured = run("validate", "--color", BROKEN / "dead_end.yaml")
    assert "\x1b[31m" in coloured.output


@pytest.mark.subprocess
def test_the_installed_command_prints_no_traceback_for_user_errors(tmp_path: Path) -> None:
    executable = Path(sys.executable).parent / "parlant-runtime"
    if not executable.exists():
        pytest.skip("the console script is not installed in this environment")
    bad = tmp_path / "bad.yaml"
    bad.write_text("agent: [unclosed\n")
    for args in ([str(bad)], ["--format", "sarif", str(tmp_path / "missing.yaml")], ["--nope"]):
        done = subprocess.run(
            [str(executable), "validate", *args], capture_output=True, text=True, check=False
        )
        assert done.returncode == 2, done
        assert "Traceback" not in done.stdout + done.stderr


def test_a_folder_without_bundles_is_an_error_not_a_pass(tmp_path: Path) -> None:
    result = run("validate", tmp_path)
    assert result.exit_code == 2
    assert "no bundle files" in result.output


def test_a_constant_beyond_the_sandbox_bounds_is_an_error_found_quickly(tmp_path: Path) -> None:
    """Issue 13: ``{{ [[0]*100000]*100000 }}`` passed validate and, sent, blocked 24 s."""
    bundle = tmp_path / "bomb.yaml"
    bundle.write_text(
        "agent: {name: Bomb, compositionMode: strict}\n"
        "cannedResponses:\n"
        '  - {name: bomb, template: "{{ [[0]*100000]*100000 }}"}\n'
        "guidelines:\n"
        "  - {name: g, condition: \"{{ ('x' * 10**9) | length > 0 }}\", action: Hi.}\n"
    )
    result = run("validate", "--no-color", bundle)
    assert result.exit_code == 1
    assert ":3: error invalid_template" in result.output
    assert "beyond the sandbox's bounds" in result.output
    assert ":5: error invalid_condition" in result.output
