"""``parlant-runtime validate``: check bundles before they are published.

Exit status (the contract in ``docs/validation.md``): 0 no errors (warnings
allowed; with ``--strict`` warnings count as errors), 1 at least one error, 2 some
input could not be read. Every file is checked even when an earlier one fails.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Literal

import click

from parlant_runtime.bundle import read_bundle
from parlant_runtime.cli._database import DATABASE_URL_HELP, run_with_store
from parlant_runtime.cli._files import expand_paths
from parlant_runtime.cli._text import render_findings
from parlant_runtime.errors import BundleError
from parlant_runtime.validation import Severity, validate_bundle
from parlant_runtime.validation.export import CheckedFile, findings_json, to_sarif

if TYPE_CHECKING:
    from parlant_runtime.storage.sql.store import SqlStore

__all__ = ["check_files", "check_stored_agents", "findings_exit_status", "validate"]

PROGRESS_THRESHOLD = 5
"""From this many files on, a progress bar is shown on an interactive terminal."""


def check_files(files: list[str], *, progress: bool) -> list[CheckedFile]:
    """Read and validate each file, keeping unreadable ones as results too."""
    results: list[CheckedFile] = []
    with click.progressbar(
        files,
        label="Validating",
        file=sys.stderr,
        hidden=not progress,
        item_show_func=lambda item: item or "",
    ) as bar:
        for path in bar:
            try:
                loaded = read_bundle(path)
            except BundleError as exc:
                results.append(CheckedFile(path, problems=exc.problems))
                continue
            results.append(CheckedFile(path, report=validate_bundle(loaded)))
    return results


def findings_exit_status(results: list[CheckedFile], *, strict: bool) -> int:
    """0, 1 or 2 as the contract says."""
    if any(not result.readable for result in results):
        return 2
    failing = {Severity.ERROR, Severity.WARNING} if strict else {Severity.ERROR}
    for result in results:
        assert result.report is not None
        if any(finding.severity in failing for finding in result.report.findings):
            return 1
    return 0


def check_stored_agents(
    url: str | None, workspace: str, names: tuple[str, ...]
) -> list[CheckedFile]:
    """Validate agents stored in a database (findings carry field paths, no lines)."""
    from parlant_runtime.storage.port import NotFound  # noqa: PLC0415 (no SQL unless asked)
    from parlant_runtime.storage.publishing import from_workspace  # noqa: PLC0415

    async def work(store: SqlStore) -> list[CheckedFile]:
        results = []
        for name in names:
            agent_id = await store.find_agent(workspace, name)
            if agent_id is None:
                raise NotFound(f"workspace {workspace!r} has no agent named {name!r}")
            stored = await store.load_agent(workspace, agent_id)
            bundle = from_workspace(stored.bundle, workspace)
            results.append(CheckedFile(f"{workspace}/{name}", report=validate_bundle(bundle)))
        return results

    return run_with_store(url, work)


@click.command()
@click.argument("paths", nargs=-1, metavar="PATH...")
@click.option("--database-url", "url", metavar="URL", help=DATABASE_URL_HELP)
@click.option("--workspace", help="With --agent: the workspace of the stored agents.")
@click.option("--agent", "agents", multiple=True, help="Validate this stored agent (repeatable).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "sarif"]),
    default="text",
    show_default=True,
    help="text for people, json for scripts, sarif for code-scanning systems.",
)
@click.option("--strict", is_flag=True, help="Count warnings as errors (exit 1).")
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Show a progress bar on stderr (default: for many files on a terminal).",
)
@click.option(
    "--color/--no-color",
    default=None,
    help="Colour the text output (default: when stdout is a terminal).",
)
def validate(  # click passes options as keywords
    *,
    paths: tuple[str, ...],
    url: str | None,
    workspace: str | None,
    agents: tuple[str, ...],
    fmt: Literal["text", "json", "sarif"],
    strict: bool,
    progress: bool | None,
    color: bool | None,
) -> None:
    """Validate agent bundles (files, or folders of .yaml/.yml/.json files) or stored agents.

    Every journey graph is checked: reachability, final states, dead ends, traps,
    shadowed transitions, loops that never wait for the customer, templates and
    conditions. Exit status: 0 no errors, 1 errors (or warnings with --strict),
    2 a file could not be read.
    """
    if not paths and not agents:
        raise click.UsageError("give bundle files or folders, or --agent NAME --workspace W")
    if agents and not workspace:
        raise click.UsageError("--agent needs --workspace")
    files = expand_paths(paths)
    if paths and not files:
        click.echo(f"no bundle files (.yaml, .yml, .json) in {', '.join(paths)}", err=True)
        sys.exit(2)
    if progress is None:
        progress = len(files) >= PROGRESS_THRESHOLD and sys.stderr.isatty()
    results = check_files(files, progress=progress)
    if agents:
        assert workspace is not None
        results += check_stored_agents(url, workspace, agents)
    if fmt == "json":
        click.echo(json.dumps(findings_json(results), indent=2, ensure_ascii=False))
    elif fmt == "sarif":
        click.echo(json.dumps(to_sarif(results), indent=2, ensure_ascii=False))
    else:
        click.echo(render_findings(results, strict=strict), color=color, nl=False)
    sys.exit(findings_exit_status(results, strict=strict))
