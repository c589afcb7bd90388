"""``parlant-runtime chat``: talk to an agent in the terminal, or run a scripted conversation.

The bundle is validated and published into the database first (SQLite by
default, created on first use), then a session starts (or ``--session`` resumes
one) and each input line is a customer message or a slash command. Input comes
from the keyboard, from ``--script FILE`` or from a pipe; the last two print the
conversation as a transcript and stop at the first line that fails (exit 1).

Exit status: 0 the conversation ended normally; 1 the bundle has validation
errors, publishing was refused, or a scripted line failed; 2 the bundle or
script cannot be read, the database cannot be used, or the command line is wrong.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from parlant_runtime.bundle import LoadedBundle, read_bundle
from parlant_runtime.cli._chat_open import open_chat
from parlant_runtime.cli._chat_session import Chat, ChatError, ChatOptions, LineError, parse_line
from parlant_runtime.cli._database import DATABASE_URL_HELP, database_failure
from parlant_runtime.cli._text import render_findings
from parlant_runtime.errors import BundleError
from parlant_runtime.validation import validate_bundle
from parlant_runtime.validation.export import CheckedFile

__all__ = ["DEFAULT_WORKSPACE", "chat"]

DEFAULT_WORKSPACE = "default"
"""The workspace chat publishes into and runs in when ``--workspace`` is not given."""

PROMPT = "you> "

T = TypeVar("T")


def _fail(message: str, status: int) -> NoReturn:
    click.echo(message, err=True)
    sys.exit(status)


def _load(bundle_path: str, agent_name: str | None) -> LoadedBundle:
    """Read and validate the bundle; exit 2 when unreadable, 1 when it has errors."""
    try:
        loaded = read_bundle(bundle_path)
    except BundleError as exc:
        _fail(f"{bundle_path}: cannot read\n{exc}", 2)
    report = validate_bundle(loaded)
    if not report.ok:
        findings = render_findings([CheckedFile(bundle_path, report=report)], strict=False)
        click.echo(findings, err=True, nl=False)
        _fail("not published, chat not started: fix the errors above first", 1)
    name = loaded.bundle.agent.name
    if agent_name is not None and agent_name != name:
        _fail(f"{bundle_path} holds agent {name!r}, not {agent_name!r}; drop --agent or fix it", 2)
    return loaded


def _script_lines(path: str) -> list[str]:
    try:
        return Path(path).read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        _fail(f"--script {path}: cannot read: not UTF-8 text", 2)
    except OSError as exc:
        _fail(f"--script {path}: cannot read: {exc.strerror or exc}", 2)


def _run(runner: asyncio.Runner, work: Coroutine[Any, Any, T]) -> T:
    """Run one step of the chat; database and setup failures end the command."""
    from parlant_runtime.storage.port import StorageError  # noqa: PLC0415

    try:
        return runner.run(work)
    except ChatError as exc:
        _fail(str(exc), exc.status)
    except (StorageError, OSError) as exc:
        _fail(database_failure(exc), 2)


def _price(raw: str | None) -> tuple[float, float] | None:
    if raw is None:
        return None
    try:
        given, taken = (float(part) for part in raw.split(","))
    except ValueError:
        raise click.BadParameter(
            f"{raw!r} is not IN,OUT: two numbers, dollars per million tokens (e.g. 0.15,0.60)",
            param_hint="--price",
        ) from None
    if not (given >= 0 and taken >= 0):  # also refuses NaN
        raise click.BadParameter(f"{raw!r}: prices cannot be negative", param_hint="--price")
    return given, taken


def _keyboard() -> Iterator[tuple[int, str]]:
    with contextlib.suppress(ImportError):  # platforms without readline
        import readline  # noqa: F401, PLC0415 (line editing and history for input())
    number = 0
    while True:
        number += 1
        try:
            yield number, input(PROMPT)
        except EOFError:
            click.echo()
            return


@click.command()
@click.argument("bundle_path", metavar="[BUNDLE]", required=False)
@click.option("--database-url", "url", metavar="URL", help=DATABASE_URL_HELP)
@click.option(
    "--workspace",
    default=DEFAULT_WORKSPACE,
    show_default=True,
    help="The workspace to publish into and chat in (created when missing).",
)
@click.option(
    "--agent",
    "agent_name",
    metavar="NAME",
    help="Chat with this agent already in the database (no BUNDLE needed).",
)
@click.option("--trace", is_flag=True, help="After each reply, show where the turn went and why.")
@click.option(
    "--script",
    metavar="FILE",
    help="Run the conversation in FILE (one input line per line, # comments) and exit.",
)
@click.option("--session", "session_id", metavar="ID", help="Resume this session.")
@click.option(
    "--model",
    metavar="MODEL",
    help="Understand and answer with a language model: openai:MODEL, anthropic:MODEL, or "
    "'agent' (the agent's modelProvider and modelName). Keys and base URLs come from "
    "OPENAI_API_KEY/OPENAI_BASE_URL or ANTHROPIC_API_KEY/ANTHROPIC_BASE_URL.",
)
@click.option(
    "--price",
    metavar="IN,OUT",
    help="With --model: US dollars per million input and output tokens (e.g. 0.15,0.60), "
    "so the trace and the session's counters show what each turn cost.",
)
@click.option(
    "--color/--no-color",
    default=None,
    help="Colour the output (default: when stdout is a terminal).",
)
def chat(  # click passes options as keywords
    *,
    bundle_path: str | None,
    url: str | None,
    workspace: str,
    agent_name: str | None,
    trace: bool,
    script: str | None,
    session_id: str | None,
    model: str | None,
    price: str | None,
    color: bool | None,
) -> None:
    """Talk to the agent of BUNDLE in the terminal (or run a --script).

    BUNDLE is validated and published into the database first (publishing the
    same bundle again changes nothing), then a session starts, or --session
    resumes one. Natural-language conditions are decided offline by keyword
    matching: deterministic, no LLM; with --model a language model decides
    them, reads the variables states collect and writes the replies. Type /help
    in the chat for its commands.
    Exit status: 0 done, 1 validation errors, publish refused or a scripted
    line failed, 2 unreadable bundle or script, or an unusable database.
    """
    if bundle_path is None and agent_name is None:
        raise click.UsageError("give a BUNDLE file, or --agent NAME for an agent in the database")
    if price is not None and model is None:
        raise click.UsageError("--price prices a model's tokens: give --model too")
    prices = _price(price)  # a wrong price is refused before anything is read
    loaded = _load(bundle_path, agent_name) if bundle_path is not None else None
    lines: Iterator[tuple[int, str]]
    if script is not None:
        lines = enumerate(_script_lines(script), start=1)
        source = script
    elif not sys.stdin.isatty():
        lines = enumerate(sys.stdin, start=1)
        source = "<stdin>"
    else:
        lines = _keyboard()
        source = ""
    interactive = not source
    options = ChatOptions(bundle_path, url, workspace, agent_name, session_id, trace, model, prices)

    def echo(text: str) -> None:
        click.echo(text, color=color)

    with asyncio.Runner() as runner:
        try:
            conversation, banner = _run(runner, open_chat(options, loaded))
        except KeyboardInterrupt:
            _fail("interrupted before the chat started; nothing was sent", 130)
        for line in banner:
            echo(click.style(f"· {line}", dim=True))
        if interactive:
            echo(click.style("· /help lists the commands; Ctrl-D or /quit leaves", dim=True))
        status = 0
        try:
            status = _converse(runner, conversation, lines, source=source, echo=echo, color=color)
        except KeyboardInterrupt:
            echo("")
            status = 0 if interactive else 130
        finally:
            runner.run(conversation.store.close())
        hint = f"session {conversation.session_id}: resume with --session {conversation.session_id}"
        echo(click.style(f"· {hint}", dim=True))
    sys.exit(status)


def _converse(
    runner: asyncio.Runner,
    conversation: Chat,
    lines: Iterator[tuple[int, str]],
    *,
    source: str,
    echo: Callable[[str], None],
    color: bool | None,
) -> int:
    """Feed the lines to the chat; the exit status (1 when a scripted line failed)."""
    for number, raw in lines:
        line = parse_line(raw)
        if source and line.kind != "blank":
            shown = conversation.echo(raw)
            echo(
                click.style(PROMPT, bold=True)
                + (click.style(shown, dim=True) if line.kind == "command" else shown)
            )
        try:
            output = _run(runner, conversation.handle(raw))
        except LineError as exc:
            if not source:
                click.echo(click.style(str(exc), fg="red"), err=True, color=color)
                continue
            click.echo(f"{source}:{number}: {exc}", err=True, color=color)
            return 1
        for text in output:
            echo(text)
        if conversation.finished:
            break
    return 0
