"""Reports of conversation test results: text for people, JSON for scripts, JUnit XML for CI.

All three read the same :mod:`parlant_runtime.testing.results`, and the pytest
plugin shows the same failure text, so a failing case reads alike wherever it
runs: the step, each expectation with what happened instead, the errors the
turn recorded, and the session's path so far.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from typing import Any

import click

from parlant_runtime.testing.expect import shown
from parlant_runtime.testing.results import CaseFailure, CaseResult, FileResult, Outcome

__all__ = [
    "exit_status",
    "failure_headline",
    "failure_text",
    "render_text",
    "to_json_data",
    "to_junit",
]

_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
"""Characters XML 1.0 cannot carry (control characters, lone surrogates)."""

_LABELS = {
    Outcome.PASSED: ("PASS", "green"),
    Outcome.FAILED: ("FAIL", "red"),
    Outcome.ERROR: ("ERROR", "red"),
}


def exit_status(files: Sequence[FileResult]) -> int:
    """0 every case passed, 1 a case failed, 2 a file could not be read."""
    if any(not result.readable for result in files):
        return 2
    return 0 if all(result.passed for result in files) else 1


def _at(line: int | None) -> str:
    return f" (line {line})" if line is not None else ""


def failure_headline(failure: CaseFailure) -> str:
    """One line: the step and its first mismatch."""
    first = failure.mismatches[0]
    where = f"step {failure.step}: " if failure.step is not None else ""
    return f"{where}{first.key}: {first.message}"


def failure_text(failure: CaseFailure, *, indent: str = "  ") -> str:
    """The full report of a failing case (no colour), one detail per line."""
    lines: list[str] = []
    if failure.step is None:
        lines.append(f"{indent}before the first step:")
    else:
        customer = shown(failure.customer)
        lines.append(f"{indent}step {failure.step}{_at(failure.line)}: customer says {customer}")
    lines.extend(
        f"{indent}  {mismatch.key}{_at(mismatch.line)}: {mismatch.message}"
        for mismatch in failure.mismatches
    )
    if failure.errors:
        lines.append(f"{indent}errors the turn recorded:")
        lines.extend(f"{indent}  - {error}" for error in failure.errors)
    if failure.path:
        lines.append(f"{indent}path so far:")
        lines.extend(
            f"{indent}  {record.number}. {shown(record.customer)} -> {record.describe()}"
            for record in failure.path
        )
    elif failure.step is not None:
        lines.append(f"{indent}path so far: (no step ran)")
    return "\n".join(lines)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def render_text(files: Sequence[FileResult]) -> str:
    """One line per case (coloured label), failure details, and a summary line."""
    lines: list[str] = []
    counts = dict.fromkeys(Outcome, 0)
    unreadable = 0
    for result in files:
        if not result.readable:
            unreadable += 1
            lines.append(f"{result.path}: {click.style('cannot read', fg='red', bold=True)}")
            for problem in result.problems:
                where = problem.file or result.path
                where += f":{problem.line}" if problem.line is not None else ""
                field = f"{problem.field}: " if problem.field else ""
                lines.append(f"  {where}: {field}{problem.message}")
            continue
        for case in result.cases:
            counts[case.outcome] += 1
            label, colour = _LABELS[case.outcome]
            where = f"{result.path}:{case.line}" if case.line is not None else result.path
            lines.append(f"{click.style(label, fg=colour, bold=True)} {where} {case.name}")
            if case.failure is not None:
                lines.append(failure_text(case.failure))
    total = sum(counts.values())
    summary = (
        f"{_plural(total, 'case')} in {_plural(len(files), 'file')}: "
        f"{counts[Outcome.PASSED]} passed, {counts[Outcome.FAILED]} failed"
    )
    if counts[Outcome.ERROR]:
        summary += f", {_plural(counts[Outcome.ERROR], 'error')}"
    if unreadable:
        summary += f", {unreadable} unreadable"
    colour = "green" if exit_status(files) == 0 else "red"
    lines.append(click.style(summary, fg=colour, bold=True))
    return "\n".join(lines) + "\n"


def _failure_data(failure: CaseFailure) -> dict[str, Any]:
    return {
        "step": failure.step,
        "customer": failure.customer,
        "line": failure.line,
        "mismatches": [
            {
                "key": m.key,
                "expected": m.expected,
                "got": m.got,
                "message": m.message,
                "line": m.line,
            }
            for m in failure.mismatches
        ],
        "errors": list(failure.errors),
        "path": [
            {
                "step": record.number,
                "customer": record.customer,
                "entered": list(record.entered),
                "journey": record.journey,
                "state": record.state,
                "replies": list(record.replies),
            }
            for record in failure.path
        ],
    }


def _case_data(case: CaseResult) -> dict[str, Any]:
    return {
        "name": case.name,
        "line": case.line,
        "outcome": case.outcome.value,
        "steps_run": case.steps_run,
        "failure": _failure_data(case.failure) if case.failure is not None else None,
    }


def to_json_data(files: Sequence[FileResult]) -> dict[str, Any]:
    """Every file, case and failure as JSON-ready data, with a summary and the exit status."""
    cases = [case for result in files for case in result.cases]
    return {
        "files": [
            {
                "path": result.path,
                "bundle": result.bundle,
                "readable": result.readable,
                "problems": [
                    {"file": p.file, "line": p.line, "field": p.field, "message": p.message}
                    for p in result.problems
                ],
                "cases": [_case_data(case) for case in result.cases],
            }
            for result in files
        ],
        "summary": {
            "files": len(files),
            "unreadable": sum(1 for result in files if not result.readable),
            "cases": len(cases),
            **{outcome.value: sum(1 for c in cases if c.outcome is outcome) for outcome in Outcome},
            "exit_status": exit_status(files),
        },
    }


def to_junit(files: Sequence[FileResult]) -> str:
    """JUnit XML: one ``testsuite`` per file, one ``testcase`` per case.

    A failed expectation is a ``failure``, a turn that raised an ``error``; an
    unreadable file is a suite with one ``error`` test case carrying its problems.
    No ``time`` attributes: the output is the same on every run.
    """
    root = ET.Element("testsuites", name="parlant-runtime conversation tests")
    totals = {"tests": 0, "failures": 0, "errors": 0}
    for result in files:
        suite = ET.SubElement(root, "testsuite", name=_xml(result.path))
        counts = {"tests": 0, "failures": 0, "errors": 0}
        if not result.readable:
            counts.update(tests=1, errors=1)
            case = ET.SubElement(suite, "testcase", name="(file)", classname=_xml(result.path))
            text = "\n".join(str(problem) for problem in result.problems)
            error = ET.SubElement(case, "error", message="the file could not be read")
            error.set("type", "unreadable")
            error.text = _xml(text)
        for outcome in result.cases:
            counts["tests"] += 1
            case = ET.SubElement(
                suite, "testcase", name=_xml(outcome.name), classname=_xml(result.path)
            )
            if outcome.line is not None:
                case.set("file", _xml(result.path))
                case.set("line", str(outcome.line))
            if outcome.failure is None:
                continue
            tag = "error" if outcome.outcome is Outcome.ERROR else "failure"
            counts["errors" if tag == "error" else "failures"] += 1
            element = ET.SubElement(case, tag, message=_xml(failure_headline(outcome.failure)))
            element.set("type", outcome.outcome.value)
            element.text = _xml(failure_text(outcome.failure, indent=""))
        for key, value in counts.items():
            suite.set(key, str(value))
            totals[key] += value
    for key, value in totals.items():
        root.set(key, str(value))
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def _xml(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)
