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


def run_files(
    files: list[str],
    *,
    bundle: str | None = None,
    model: str | None = None,
    record: bool = False,
) -> list[FileResult]:
    """Run every file (one event loop for all of them); with ``model``, each file
    records its model calls to its cassette, or replays them from it."""

    async def work() -> list[FileResult]:
        results = []
        for path in files:
            if model is None:
                results.append(await run_conversation_file(path, bundle=bundle))
            else:
                results.append(await _with_model(path, bundle, model, record))
        return results

    return asyncio.run(work())


async def _with_model(path: str, bundle: str | None, name: str, record: bool) -> FileResult:
    from parlant_runtime.llm import LanguageModelError, model_from_name  # noqa: PLC0415
    from parlant_runtime.llm.recording import cassette_for, recorded  # noqa: PLC0415
    from parlant_runtime.testing.loader import (  # noqa: PLC0415
        ConversationFileError,
        Problem,
        read_conversation_file,
    )
    from parlant_runtime.testing.runner import load_case_bundle  # noqa: PLC0415

    cassette = cassette_for(path)
    try:
        _, agent = load_case_bundle(read_conversation_file(path), bundle)
        # a replay never sends a request, so it needs no key; the SDK wants one all the same
        key = None if record else "replayed-no-key-needed"
        model = model_from_name(name, agent=agent.agent, api_key=key)
        with recorded(cassette, "record" if record else "replay"):
            return await run_conversation_file(path, bundle=bundle, language_model=model)
    except ConversationFileError as exc:
        return FileResult(path, problems=exc.problems)
    except LanguageModelError as exc:
        return FileResult(path, problems=(Problem(path, None, "--model", str(exc)),))


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
    "--model",
    metavar="MODEL",
    help="Run with a language model (openai:MODEL, anthropic:MODEL or 'agent') instead of "
    "`holds`: its HTTP exchanges are replayed from each file's .cassette.yaml, never "
    "reaching the network (see --record).",
)
@click.option(
    "--record",
    is_flag=True,
    help="With --model: call the model for real and write each file's .cassette.yaml.",
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
    model: str | None,
    record: bool,
    color: bool | None,
) -> None:
    """Run conversation tests (files, or folders of *.conversation.yaml files).

    Each case is a scripted dialogue run on a fresh in-memory session, with no
    LLM and no network: natural-language conditions hold only where a step's
    `holds` lists them, and tools answer from the case's stubs. With --model a
    language model decides instead, replayed from recordings (--record makes
    them). Exit status: 0 all cases passed, 1 a case failed, 2 a file could
    not be read.
    """
    if record and model is None:
        raise click.UsageError("--record records a model's answers: give --model too")
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
    results = run_files(files, bundle=bundle, model=model, record=record)
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
