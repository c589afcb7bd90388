"""``parlant-runtime publish`` and ``export``: bundles into a database and back out.

Publishing validates first and refuses a bundle with errors (printing the
findings), writes the agent in one transaction, says what changed, and refuses to
strand live sessions on removed states unless told where to move them
(``--map``) or forced. Exporting writes the stored agent as a bundle file;
publishing and exporting again gives an equal bundle.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import click

from parlant_runtime.bundle import dumps_bundle, read_bundle
from parlant_runtime.cli._database import DATABASE_URL_HELP, run_with_store
from parlant_runtime.cli._text import render_findings
from parlant_runtime.errors import BundleError
from parlant_runtime.validation import validate_bundle
from parlant_runtime.validation.export import CheckedFile

if TYPE_CHECKING:
    from parlant_runtime.storage.port import PublishReport
    from parlant_runtime.storage.sql.store import SqlStore

__all__ = ["export", "parse_mapping", "publish"]


def parse_mapping(entries: tuple[str, ...]) -> dict[str, dict[str, str]]:
    """``("Book a visit/ask_day=pick_day",)`` -> ``{"Book a visit": {"ask_day": "pick_day"}}``."""
    mapping: dict[str, dict[str, str]] = {}
    for entry in entries:
        journey, sep, rest = entry.rpartition("/")
        old, eq, new = rest.partition("=")
        if not (sep and eq and journey and old and new):
            raise click.BadParameter(
                f"{entry!r} is not JOURNEY/OLD_STATE=NEW_STATE", param_hint="--map"
            )
        mapping.setdefault(journey, {})[old] = new
    return mapping


def _report_lines(report: PublishReport) -> list[str]:
    if not report.written and not report.created and report.changes.empty:
        return [f"unchanged: agent {report.agent_id} stays at version {report.version}"]
    verb = "created" if report.created else "updated"
    if not report.written:
        verb = f"would be {verb} (dry run)"
    lines = [f"{verb}: agent {report.agent_id}, version {report.version}"]
    for title, group in (
        ("added", report.changes.added),
        ("removed", report.changes.removed),
        ("changed", report.changes.changed),
    ):
        for kind, labels in sorted(group.items()):
            shown = ", ".join(labels[:8]) + (
                f" and {len(labels) - 8} more" if len(labels) > 8 else ""
            )
            lines.append(f"  {title} {len(labels)} {kind}(s): {shown}")
    for state, count in sorted(report.stranded_sessions.items()):
        lines.append(f"  {count} live session(s) on removed state {state}")
    if report.moved_sessions:
        lines.append(f"  moved {report.moved_sessions} session(s)")
    return lines


def _report_data(report: PublishReport) -> dict[str, Any]:
    return {
        "agentId": str(report.agent_id),
        "version": report.version,
        "created": report.created,
        "written": report.written,
        "changes": {
            "added": {k: list(v) for k, v in report.changes.added.items()},
            "removed": {k: list(v) for k, v in report.changes.removed.items()},
            "changed": {k: list(v) for k, v in report.changes.changed.items()},
        },
        "strandedSessions": dict(report.stranded_sessions),
        "movedSessions": report.moved_sessions,
    }


@click.command()
@click.argument("bundle_path", metavar="BUNDLE")
@click.option("--database-url", "url", metavar="URL", help=DATABASE_URL_HELP)
@click.option("--workspace", required=True, help="The workspace the agent belongs to.")
@click.option(
    "--map",
    "mappings",
    multiple=True,
    metavar="JOURNEY/OLD=NEW",
    help="Move live sessions from a removed state to a new one (repeatable).",
)
@click.option("--force", is_flag=True, help="Publish even if sessions sit on removed states.")
@click.option("--dry-run", is_flag=True, help="Report what would change; write nothing.")
@click.option(
    "--create-workspace",
    is_flag=True,
    help="Create the workspace and knowledge-base rows if missing (embedded databases; "
    "on a host database the workspace needs an owner: --created-by).",
)
@click.option(
    "--created-by",
    "created_by",
    metavar="USER_ID",
    help="The host user credited with a new agent (and owning a workspace "
    "--create-workspace makes); default: the workspace's owner.",
)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
def publish(  # click passes options as keywords
    *,
    bundle_path: str,
    url: str | None,
    workspace: str,
    mappings: tuple[str, ...],
    force: bool,
    dry_run: bool,
    create_workspace: bool,
    created_by: str | None,
    fmt: Literal["text", "json"],
) -> None:
    """Validate BUNDLE and write its agent into the database in one transaction.

    Exit status: 0 published (or unchanged), 1 refused (validation errors, or live
    sessions on removed states), 2 unreadable bundle or unreachable database.
    """
    from parlant_runtime.storage.port import PublishRefused  # noqa: PLC0415

    mapping = parse_mapping(mappings)
    try:
        loaded = read_bundle(bundle_path)
    except BundleError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
    report = validate_bundle(loaded)
    if not report.ok:
        click.echo(
            render_findings([CheckedFile(bundle_path, report=report)], strict=False), err=True
        )
        click.echo("not published: fix the errors above first", err=True)
        sys.exit(1)

    async def work(store: SqlStore) -> PublishReport | PublishRefused:
        if create_workspace:
            await store.ensure_workspace(workspace, owner_id=created_by)
            kb_ids = [kb.knowledge_base_id for kb in loaded.bundle.knowledge_bases]
            await store.ensure_knowledge_bases(workspace, kb_ids, user_id=created_by)
        try:
            return await store.publish(
                workspace,
                loaded.bundle,
                state_mapping=mapping,
                force=force,
                dry_run=dry_run,
                created_by=created_by,
            )
        except PublishRefused as refused:
            return refused

    outcome = run_with_store(url, work)
    if isinstance(outcome, PublishRefused):
        if outcome.report is not None:
            for line in _report_lines(outcome.report)[1:]:
                click.echo(line, err=True)
        click.echo(f"not published: {outcome}", err=True)
        sys.exit(1)
    if fmt == "json":
        click.echo(json.dumps(_report_data(outcome), indent=2))
    else:
        click.echo("\n".join(_report_lines(outcome)))


@click.command()
@click.option("--database-url", "url", metavar="URL", help=DATABASE_URL_HELP)
@click.option("--workspace", required=True, help="The workspace the agent belongs to.")
@click.option("--agent", "name", required=True, help="The agent's name.")
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write to this file.")
@click.option("--format", "fmt", type=click.Choice(["yaml", "json"]), default=None)
@click.option(
    "--include-private-values",
    is_flag=True,
    help="Also write the values of private variables (left out by default).",
)
def export(
    *,
    url: str | None,
    workspace: str,
    name: str,
    output: str | None,
    fmt: Literal["yaml", "json"] | None,
    include_private_values: bool,
) -> None:
    """Write a stored agent as a bundle (YAML unless --format json or a .json output).

    The values of private variables are left out unless --include-private-values:
    an export is shared and pasted more freely than the database it comes from.
    """
    from parlant_runtime.storage.port import NotFound  # noqa: PLC0415
    from parlant_runtime.storage.publishing import from_workspace  # noqa: PLC0415

    async def work(store: SqlStore) -> str:
        agent_id = await store.find_agent(workspace, name)
        if agent_id is None:
            raise NotFound(f"workspace {workspace!r} has no agent named {name!r}")
        stored = await store.load_agent(workspace, agent_id)
        chosen = fmt or ("json" if output and output.endswith(".json") else "yaml")
        bundle = from_workspace(stored.bundle, workspace)
        if not include_private_values:
            hidden = [v.key for v in bundle.variables if v.is_private and v.value is not None]
            if hidden:
                bundle = bundle.model_copy(
                    update={
                        "variables": [
                            v.model_copy(update={"value": None}) if v.key in hidden else v
                            for v in bundle.variables
                        ]
                    }
                )
                left_out.extend(hidden)
        return dumps_bundle(bundle, fmt=chosen)

    left_out: list[str] = []
    text = run_with_store(url, work)
    if left_out:
        click.echo(
            f"left out the value of private variable(s) {', '.join(left_out)}; "
            "--include-private-values writes them",
            err=True,
        )
    if output is None:
        click.echo(text, nl=False)
    else:
        Path(output).write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}", err=True)
