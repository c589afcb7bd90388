"""Validation results as data: the JSON of ``validate --format json`` and SARIF 2.1.0.

Both describe a run over several files. A file that could not be read carries its
problems instead of findings; SARIF reports those as tool execution notifications
so that code-scanning systems show them at the right line too.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from parlant_runtime.errors import BundleProblem
from parlant_runtime.validation.findings import CODE_INFO, Code, Severity, ValidationReport

__all__ = ["CheckedFile", "findings_json", "to_sarif"]

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_SARIF_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}
_DOCS = "docs/validation.md"


@dataclass(frozen=True, slots=True)
class CheckedFile:
    """The outcome for one file: a report, or the problems that kept it from being read."""

    path: str
    report: ValidationReport | None = None
    problems: tuple[BundleProblem, ...] = ()

    @property
    def readable(self) -> bool:
        """Whether the file could be read as a bundle."""
        return self.report is not None


def _problem_data(problem: BundleProblem) -> dict[str, Any]:
    return {"path": {"field": problem.field, "line": problem.line}, "message": problem.message}


def findings_json(results: list[CheckedFile]) -> dict[str, Any]:
    """The ``--format json`` document: files with their findings, and a summary."""
    files: list[dict[str, Any]] = []
    totals = {Severity.ERROR: 0, Severity.WARNING: 0, Severity.INFO: 0}
    unreadable = 0
    for result in results:
        entry: dict[str, Any] = {"path": result.path, "readable": result.readable}
        if result.report is not None:
            entry["findings"] = [finding.to_dict() for finding in result.report.findings]
            for severity in totals:
                totals[severity] += result.report.count(severity)
        else:
            entry["findings"] = []
            entry["problems"] = [_problem_data(p) for p in result.problems]
            unreadable += 1
        files.append(entry)
    summary = {"errors": 0, "warnings": 0, "infos": 0, "unreadable": unreadable}
    summary["errors"] = totals[Severity.ERROR]
    summary["warnings"] = totals[Severity.WARNING]
    summary["infos"] = totals[Severity.INFO]
    return {"files": files, "summary": summary}


def _tool_version() -> str:
    try:
        return version("parlant-runtime")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"


def _uri(path: str) -> str:
    candidate = Path(path)
    return candidate.as_posix() if not candidate.is_absolute() else candidate.as_uri()


def _location(path: str, line: int | None) -> dict[str, Any]:
    physical: dict[str, Any] = {"artifactLocation": {"uri": _uri(path)}}
    if line is not None:
        physical["region"] = {"startLine": line}
    return {"physicalLocation": physical}


def to_sarif(results: list[CheckedFile]) -> dict[str, Any]:
    """A SARIF 2.1.0 log with one rule per validation code."""
    codes = list(Code)
    rules = [
        {
            "id": code.value,
            "name": "".join(part.capitalize() for part in code.value.split("_")),
            "shortDescription": {"text": CODE_INFO[code].summary},
            "fullDescription": {"text": f"{CODE_INFO[code].summary} See {_DOCS}#{code.value}."},
            "defaultConfiguration": {"level": _SARIF_LEVEL[CODE_INFO[code].severity]},
        }
        for code in codes
    ]
    sarif_results: list[dict[str, Any]] = []
    notifications: list[dict[str, Any]] = []
    for result in results:
        if result.report is None:
            notifications.extend(
                {
                    "level": "error",
                    "message": {"text": f"{p.field + ': ' if p.field else ''}{p.message}"},
                    "locations": [_location(result.path, p.line)],
                }
                for p in result.problems
            )
            continue
        for finding in result.report.findings:
            entry: dict[str, Any] = {
                "ruleId": finding.code.value,
                "ruleIndex": codes.index(finding.code),
                "level": _SARIF_LEVEL[finding.severity],
                "message": {"text": finding.message},
                "locations": [_location(result.path, finding.line)],
                "properties": {
                    "journey": finding.journey,
                    "states": list(finding.states),
                    "field": finding.field,
                },
            }
            if finding.example is not None:
                entry["properties"]["example"] = list(finding.example)
            sarif_results.append(entry)
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "parlant-runtime",
                "version": _tool_version(),
                "informationUri": "https://pypi.org/project/parlant-runtime/",
                "rules": rules,
            }
        },
        "results": sarif_results,
        "invocations": [
            {
                "executionSuccessful": not notifications,
                "toolExecutionNotifications": notifications,
            }
        ],
    }
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}
