"""The human-readable output of ``validate``: one line per finding, coloured by severity."""

from __future__ import annotations

import click

from parlant_runtime.validation import Finding, Severity
from parlant_runtime.validation.export import CheckedFile

__all__ = ["render_findings"]

_COLOURS = {Severity.ERROR: "red", Severity.WARNING: "yellow", Severity.INFO: "blue"}


def _where(path: str, line: int | None) -> str:
    return f"{path}:{line}" if line is not None else path


def _finding_lines(path: str, finding: Finding) -> list[str]:
    severity = click.style(finding.severity.value, fg=_COLOURS[finding.severity], bold=True)
    code = click.style(finding.code.value, bold=True)
    journey = f" [{finding.journey}]" if finding.journey else ""
    lines = [f"{_where(path, finding.line)}: {severity} {code}{journey} {finding.message}"]
    detail = f"    at {finding.field}" if finding.field else ""
    if finding.example:
        detail += ("; " if detail else "    ") + "e.g. " + " -> ".join(finding.example)
    if detail:
        lines.append(click.style(detail, dim=True))
    return lines


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def render_findings(results: list[CheckedFile], *, strict: bool) -> str:
    """Every finding and unreadable file, then a one-line summary."""
    lines: list[str] = []
    errors = warnings = infos = unreadable = 0
    for result in results:
        if result.report is None:
            unreadable += 1
            label = click.style("cannot read", fg="red", bold=True)
            lines.append(f"{result.path}: {label}")
            lines.extend(
                f"  {_where(result.path, p.line)}: {p.field + ': ' if p.field else ''}{p.message}"
                for p in result.problems
            )
            continue
        for finding in result.report.findings:
            lines.extend(_finding_lines(result.path, finding))
        errors += result.report.count(Severity.ERROR)
        warnings += result.report.count(Severity.WARNING)
        infos += result.report.count(Severity.INFO)
    summary = (
        f"{_plural(len(results), 'file')} checked: {_plural(errors, 'error')}, "
        f"{_plural(warnings, 'warning')}, {_plural(infos, 'info')}"
    )
    if unreadable:
        summary += f", {unreadable} unreadable"
    failed = unreadable or errors or (strict and warnings)
    lines.append(click.style(summary, fg="red" if failed else "green", bold=True))
    return "\n".join(lines) + "\n"
