"""``parlant-runtime diagram``: draw journeys as Mermaid or Graphviz DOT.

States and transitions with validation findings are marked, so the picture shows
where the problems are. Several journeys in Mermaid come out as a Markdown file
with one fenced diagram per journey (Mermaid has one diagram per block); in DOT as
one ``digraph`` per journey, which ``dot`` renders one after the other.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Literal

import click

from parlant_runtime.bundle import read_bundle
from parlant_runtime.diagram import build_diagram, to_dot, to_mermaid
from parlant_runtime.errors import BundleError
from parlant_runtime.validation import validate_bundle

__all__ = ["diagram"]


@click.command()
@click.argument("bundle", metavar="BUNDLE")
@click.option("--journey", "titles", multiple=True, help="Draw only this journey (repeatable).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["mermaid", "dot"]),
    default="mermaid",
    show_default=True,
    help="Mermaid stateDiagram-v2, or Graphviz DOT.",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, writable=True),
    help="Write to this file instead of standard output.",
)
def diagram(
    bundle: str, titles: tuple[str, ...], fmt: Literal["mermaid", "dot"], output: str | None
) -> None:
    """Draw the journeys of BUNDLE, marking states and transitions with findings."""
    try:
        loaded = read_bundle(bundle)
    except BundleError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
    journeys = list(enumerate(loaded.bundle.journeys))
    if titles:
        known = {journey.title for _, journey in journeys}
        missing = [title for title in titles if title not in known]
        if missing:
            listed = ", ".join(repr(j.title) for _, j in journeys) or "none"
            click.echo(
                f"{bundle}: no journey titled {missing[0]!r}; its journeys: {listed}", err=True
            )
            sys.exit(2)
        journeys = [(index, journey) for index, journey in journeys if journey.title in titles]
    findings = validate_bundle(loaded).findings
    drawings = [build_diagram(journey, index, findings) for index, journey in journeys]
    if fmt == "dot":
        text = "\n".join(to_dot(drawing) for drawing in drawings)
    elif len(drawings) == 1:
        text = to_mermaid(drawings[0])
    else:
        text = "\n".join(
            f"## {journey.title}\n\n```mermaid\n{to_mermaid(drawing).rstrip()}\n```\n"
            for (_, journey), drawing in zip(journeys, drawings, strict=True)
        )
    if output is None:
        click.echo(text, nl=not text.endswith("\n"))
    else:
        Path(output).write_text(text, encoding="utf-8")
        click.echo(f"wrote {len(drawings)} journey diagram(s) to {output}", err=True)
