"""``parlant-runtime generate-tests``: conversation-test skeletons that take every transition.

The work is :mod:`parlant_runtime.testing.generate`; this command reads the bundle,
shows progress, writes the file and checks it once more as a whole, by running it.

Exit status: 0 the file was written and its cases take every transition; 1 it was
written but some transitions are left out (each is listed with its line and the
reason), or nothing could be generated; 2 the bundle cannot be read, a journey
named does not exist, or the file cannot be written.
"""

from __future__ import annotations

import asyncio
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path

import click

from parlant_runtime.bundle import LoadedBundle, read_bundle
from parlant_runtime.errors import BundleError
from parlant_runtime.testing.coverage import coverage_of
from parlant_runtime.testing.generate import (
    GeneratedTests,
    generate_tests,
    relative_bundle,
    render_generated,
)
from parlant_runtime.testing.loader import ConversationFileError, loads_conversation_file
from parlant_runtime.testing.results import FileResult
from parlant_runtime.testing.runner import run_case

__all__ = ["GENERATED_SUFFIX", "generate_tests_command"]

GENERATED_SUFFIX = ".generated.conversation.yaml"
"""How a generated file is named: ``<bundle stem>.generated.conversation.yaml``."""


def _check(text: str, path: str, bundle: str) -> FileResult:
    """Run the generated file as it will be run, for the coverage it really reaches."""
    loaded = loads_conversation_file(text, filename=path)
    agent = read_bundle(bundle).bundle

    async def work() -> FileResult:
        cases = [await run_case(loaded, i, agent) for i in range(len(loaded.spec.cases))]
        return FileResult(path, bundle, tuple(cases))

    return asyncio.run(work())


@click.command("generate-tests")
@click.argument("bundle", metavar="BUNDLE")
@click.option(
    "--output",
    "-o",
    "folder",
    metavar="DIR",
    help=f"Write DIR/<bundle>{GENERATED_SUFFIX} (default: print the file to stdout).",
)
@click.option("--journey", "titles", multiple=True, help="Only this journey (repeatable).")
@click.option("--force", is_flag=True, help="Replace the file in DIR if it exists.")
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Show a progress bar on stderr (default: on a terminal).",
)
def generate_tests_command(
    *,
    bundle: str,
    folder: str | None,
    titles: tuple[str, ...],
    force: bool,
    progress: bool | None,
) -> None:
    """Write conversation tests that together take every transition of BUNDLE's journeys.

    Paths are chosen on the journey graph (shortest paths through each transition
    to a final state, then a greedy set cover for few cases), conditions filled in
    as `holds`, `set` values and tool stubs, and every case is run before it is
    kept. Customer messages and replies are TODO placeholders to write by hand;
    as generated, the cases pass. Transitions no case takes are listed with why.
    """
    try:
        loaded = read_bundle(bundle)
    except BundleError as exc:
        click.echo(f"{bundle}: cannot read the bundle", err=True)
        for problem in exc.problems:
            click.echo(f"  {problem}", err=True)
        sys.exit(2)
    known = [journey.title for journey in loaded.bundle.journeys]
    if not known:
        click.echo(
            f"{bundle}: the bundle has no journeys, so there is nothing to generate", err=True
        )
        sys.exit(1)
    missing = [title for title in titles if title not in known]
    if missing:
        listed = ", ".join(repr(title) for title in known) or "none"
        click.echo(f"{bundle}: no journey titled {missing[0]!r}; its journeys: {listed}", err=True)
        sys.exit(2)
    target: Path | None = None
    if folder is not None:
        target = Path(folder) / f"{Path(bundle).stem}{GENERATED_SUFFIX}"
        if target.exists() and not force:
            click.echo(f"{target} exists; pass --force to replace it", err=True)
            sys.exit(2)
    if progress is None:
        progress = sys.stderr.isatty()
    tests = _generate(loaded, titles, known, progress=progress)
    words = ["parlant-runtime", "generate-tests", bundle]
    for title in titles:
        words += ["--journey", title]
    command = shlex.join(words)
    if not tests.cases:
        click.echo(f"{bundle}: no case could be generated", err=True)
        _report_uncovered(tests)
        sys.exit(1)
    where = str(target) if target is not None else "<stdout>"
    folder_of_file = str(target.parent) if target is not None else "."
    text = render_generated(
        tests, bundle_ref=relative_bundle(bundle, folder_of_file), command=command
    )
    try:
        result = _check(text, where if target is not None else "generated", bundle)
    except ConversationFileError as exc:  # a bug of the generator: say so, write nothing
        click.echo(f"the generated file does not read back: {exc}", err=True)
        sys.exit(1)
    if target is None:
        click.echo(text, nl=False)
    else:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        except OSError as exc:
            click.echo(f"{target}: cannot write: {exc.strerror or exc}", err=True)
            sys.exit(2)
    sys.exit(_summary(tests, result, where))


def _summary(tests: GeneratedTests, result: FileResult, where: str) -> int:
    """Say what the file, run as written, covers and leaves out; the exit status."""
    chosen = {journey.title for journey in tests.journeys}
    measured = [
        journey
        for measured_bundle in coverage_of([result]).bundles
        for journey in measured_bundle.journeys
        if journey.title in chosen
    ]
    covered = sum(journey.transitions_covered for journey in measured)
    total = sum(len(journey.transitions) for journey in measured)
    failed = [case.name for case in result.cases if not case.passed]
    click.echo(
        f"wrote {tests.cases} case(s) to {where}; run as generated they take "
        f"{covered} of {total} transitions"
        + (f"; {len(failed)} case(s) fail: {', '.join(failed)}" if failed else ""),
        err=True,
    )
    uncovered = _report_uncovered(tests)
    return 1 if uncovered or failed else 0


def _generate(
    loaded: LoadedBundle, titles: tuple[str, ...], known: list[str], *, progress: bool
) -> GeneratedTests:
    """Generate, with a progress bar over the journeys on stderr."""
    names = dict(enumerate(known))
    order = [index for index, title in enumerate(known) if not titles or title in titles]
    with click.progressbar(
        order,
        label="Generating",
        file=sys.stderr,
        hidden=not progress,
        item_show_func=lambda index: names.get(index, "") if index is not None else "",
    ) as bar:

        def advance(indices: Iterator[int]) -> Iterator[int]:
            wanted = set(indices)
            return (index for index in bar if index in wanted)

        return generate_tests(loaded, titles=titles, progress=advance)


def _report_uncovered(tests: GeneratedTests) -> int:
    items = [item for journey in tests.journeys for item in journey.uncovered]
    for item in items:
        where = f"{tests.bundle}:{item.line}" if item.line else tests.bundle
        click.echo(
            f"  not covered: {where} {item.journey}: {item.description} - {item.reason}",
            err=True,
        )
    return len(items)
