"""``parlant-runtime test``: run conversation test files against their bundles.

The contract is ``docs/testing.md``. Exit status: 0 every case
passed, 1 a case failed, 2 a file (or the ``--bundle`` given) could not be read.
Every file is run even when an earlier one fails. ``--junit FILE`` writes JUnit
XML for CI systems next to the text or JSON on stdout. ``--coverage`` adds what
the cases reached (:mod:`parlant_runtime.testing.coverage`) to the text or JSON;
``--coverage-diagram DIR`` draws each journey coloured by it.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Literal

import click

from parlant_runtime.bundle import read_bundle
from parlant_runtime.cli._files import expand_test_paths
from parlant_runtime.diagram import to_dot, to_mermaid
from parlant_runtime.errors import BundleError
from parlant_runtime.testing import (
    CONVERSATION_FILE_SUFFIX,
    FileResult,
    exit_status,
    render_text,
    run_conversation_file,
    to_json_data,
    to_junit,
)
from parlant_runtime.testing.coverage import (
    CoverageReport,
    coverage_diagrams,
    coverage_of,
    coverage_to_json,
    diagram_file_stem,
    render_coverage_text,
)

__all__ = ["expand_test_paths", "run_files", "test", "write_coverage_diagrams"]


def run_files(files: list[str], *, bundle: str | None = None) -> list[FileResult]:
    """Run every file (one event loop for all of them)."""

    async def work() -> list[FileResult]:
        return [await run_conversation_file(path, bundle=bundle) for path in files]

    return asyncio.run(work())


@click.command()
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@click.option(
    "--bundle",
    metavar="FILE",
    help="Run every file against this bundle instead of the one each file names.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text for people, json for scripts.",
)
@click.option("--junit", metavar="FILE", help="Also write the results as JUnit XML to FILE.")
@click.option(
    "--coverage",
    is_flag=True,
    help="Also report the states, transitions, guidelines and canned responses the cases "
    "reached and those they never did (with file and line).",
)
@click.option(
    "--coverage-diagram",
    "diagram_dir",
    metavar="DIR",
    help="Also draw each journey coloured by coverage into DIR, as Mermaid (.mmd) and "
    "Graphviz DOT (.dot) files (implies --coverage).",
)
@click.option(
    "--color/--no-color",
    default=None,
    help="Colour the text output (default: when stdout is a terminal).",
)
def test(  # click passes options as keywords
    *,
    paths: tuple[str, ...],
    bundle: str | None,
    fmt: Literal["text", "json"],
    junit: str | None,
    coverage: bool,
    diagram_dir: str | None,
    color: bool | None,
) -> None:
    """Run conversation tests (files, or folders of *.conversation.yaml files).

    Each case is a scripted dialogue run on a fresh in-memory session, with no
    LLM and no network: natural-language conditions hold only where a step's
    `holds` lists them, and tools answer from the case's stubs. Exit status:
    0 all cases passed, 1 a case failed, 2 a file could not be read.
    """
    files = expand_test_paths(paths)
    if not files:
        where = ", ".join(paths)
        click.echo(f"no conversation test files (*{CONVERSATION_FILE_SUFFIX}) in {where}", err=True)
        sys.exit(2)
    if bundle is not None:
        try:
            read_bundle(bundle)
        except BundleError as exc:
            click.echo(f"--bundle {bundle}: cannot read", err=True)
            for problem in exc.problems:
                click.echo(f"  {problem}", err=True)
            sys.exit(2)
    results = run_files(files, bundle=bundle)
    if junit is not None:
        try:
            Path(junit).write_text(to_junit(results), encoding="utf-8")
        except OSError as exc:
            click.echo(f"--junit {junit}: cannot write: {exc.strerror or exc}", err=True)
            sys.exit(2)
    report = coverage_of(results) if coverage or diagram_dir is not None else None
    if report is not None and diagram_dir is not None:
        try:
            written = write_coverage_diagrams(report, Path(diagram_dir))
        except OSError as exc:
            click.echo(f"--coverage-diagram {diagram_dir}: cannot write: {exc}", err=True)
            sys.exit(2)
        click.echo(f"wrote {len(written)} coverage diagram file(s) to {diagram_dir}", err=True)
    if fmt == "json":
        data = to_json_data(results)
        if report is not None:
            data["coverage"] = coverage_to_json(report)
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        click.echo(render_text(results), color=color, nl=False)
        if report is not None:
            click.echo("", color=color)
            click.echo(render_coverage_text(report), color=color, nl=False)
    sys.exit(exit_status(results))


def write_coverage_diagrams(report: CoverageReport, folder: Path) -> list[Path]:
    """Write ``<bundle>.<journey>.mmd`` and ``.dot`` per journey into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    stems: list[str] = []
    for measured in report.bundles:
        bundle = read_bundle(measured.bundle).bundle
        for journey, drawing in coverage_diagrams(measured, bundle):
            stem = diagram_file_stem(measured.bundle, journey, stems)
            stems.append(stem)
            for suffix, text in ((".mmd", to_mermaid(drawing)), (".dot", to_dot(drawing))):
                path = folder / f"{stem}{suffix}"
                path.write_text(text, encoding="utf-8")
                written.append(path)
    return written
