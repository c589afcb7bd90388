"""One ``parlant-runtime chat`` conversation: open the database, publish, then line by line.

:func:`open_chat` prepares everything before the first line: the database
(SQLite is created and migrated on first use; an empty PostgreSQL database is
migrated, one at an older revision is refused), the workspace, the agent (the
bundle published, or a stored agent found by name) and the session (new, or the
one ``--session`` names). :meth:`Chat.handle` then takes one input line, a
customer message or a slash command, and returns the lines to print.

Nothing here prints or exits: problems that stop the chat are :class:`ChatError`
with the exit status the command should end with; problems with one line are
:class:`LineError` (the REPL prints them and goes on, a script stops).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from uuid import UUID

import click

from parlant_runtime.cli._chat_trace import render_trace
from parlant_runtime.engine import KeywordEvaluator, Runtime, SessionClosed, ToolRegistry
from parlant_runtime.errors import ParlantRuntimeError
from parlant_runtime.model import EventType, SessionMode, SessionStatus, ValueType
from parlant_runtime.storage.port import InvalidData, NotFound, PublishRefused

if TYPE_CHECKING:
    from parlant_runtime.bundle import LoadedBundle
    from parlant_runtime.engine import TurnResult
    from parlant_runtime.storage.port import PublishReport, StoredAgent
    from parlant_runtime.storage.sql.store import SqlStore

__all__ = ["HELP", "Chat", "ChatError", "ChatOptions", "LineError", "open_chat", "parse_line"]

HELP = """\
Type what the customer says; the agent answers. Commands:
  /trace on|off        show where each turn went and why (conditions, transitions,
                       guidelines, reply, tools) after every reply
  /state               the journey and state, mode and status of the session
  /vars                the session's variables (private ones are never shown)
  /set KEY=VALUE ...   set variables with the next message, as an extractor would
  /tool NAME JSON      what tool NAME returns from now on (/tool NAME: forget it;
                       /tool: list); a tool with no result given fails
  /mode auto|manual|paused
                       auto answers; manual and paused record messages unanswered;
                       back to auto from paused answers what is pending
  /human TEXT          reply as a human agent (what manual mode is for)
  /end                 close this session (completed) and start a new one
  /help                this text
  /quit                leave (Ctrl-D and Ctrl-C too); the session stays resumable
A line starting with # is a comment; start a message with \\ to send a leading
/ or # as it is (\\/etc is the message "/etc")."""

PRIVATE = "[private]"
"""What the chat shows instead of a private variable's value."""

EVALUATOR_NOTE = (
    "natural-language conditions: offline keyword matching (KeywordEvaluator), "
    "deterministic, no LLM: a condition holds when the message has half its key words"
)


class ChatError(ParlantRuntimeError):
    """The chat cannot start or go on; ``status`` is the exit status to end with."""

    def __init__(self, message: str, status: int = 2) -> None:
        super().__init__(message)
        self.status = status


class LineError(ParlantRuntimeError):
    """One input line cannot be carried out (a bad command, a value of the wrong type)."""


@dataclass(frozen=True)
class ChatOptions:
    """What the command line asked for."""

    bundle_path: str | None
    url: str | None
    workspace: str
    agent_name: str | None = None
    session_id: str | None = None
    trace: bool = False


@dataclass(frozen=True)
class Line:
    """One input line, classified: a message to send, a command, or nothing."""

    kind: str
    """``message``, ``command`` or ``blank`` (empty or a ``#`` comment)."""
    text: str = ""
    command: str = ""
    argument: str = ""


def parse_line(raw: str) -> Line:
    """Classify one input line (see :data:`HELP` for the rules)."""
    text = raw.strip()
    if not text or text.startswith("#"):
        return Line("blank")
    if text.startswith("\\"):
        return Line("message", text[1:])
    if text.startswith("/"):
        command, _, argument = text[1:].partition(" ")
        return Line("command", text, command.casefold(), argument.strip())
    return Line("message", text)


@dataclass
class Chat:
    """A conversation in progress (see the module docstring)."""

    store: SqlStore
    runtime: Runtime
    workspace: str
    agent: StoredAgent
    session_id: UUID
    trace: bool = False
    stubs: dict[str, Any] = field(default_factory=dict)
    pending: dict[str, Any] = field(default_factory=dict)
    finished: bool = False

    @property
    def agent_name(self) -> str:
        return self.agent.bundle.agent.name

    async def handle(self, raw: str) -> list[str]:
        """Carry out one input line and return what to print.

        Raises:
            LineError: the line cannot be carried out; nothing was changed.
        """
        line = parse_line(raw)
        if line.kind == "blank":
            return []
        if line.kind == "message":
            return await self.say(line.text)
        handler = _COMMANDS.get(line.command)
        if handler is None:
            raise LineError(f"unknown command {line.text.split()[0]!r}; /help lists the commands")
        return await handler(self, line.argument)

    async def say(self, text: str) -> list[str]:
        """Send a customer message; the replies (and the trace when it is on)."""
        variables, self.pending = self.pending, {}
        try:
            result = await self.runtime.process_message(
                self.workspace, self.session_id, text, variables=variables
            )
        except SessionClosed as exc:
            raise LineError(f"{exc} (/end starts one)") from exc
        except InvalidData as exc:
            raise LineError(f"not sent: {exc}") from exc
        return self._turn_lines(result)

    def _turn_lines(self, result: TurnResult) -> list[str]:
        name = click.style(f"{self.agent_name}:", fg="magenta", bold=True)
        lines = [f"{name} {reply}" for reply in result.replies]
        if not result.replies:
            if result.session.mode is not SessionMode.AUTO:
                why = f"the session is in {result.session.mode.value} mode"
            elif result.journey is None and result.trace.path:
                why = f"the journey ended at {result.trace.path[-1]}"
            else:
                why = "no journey state, guideline or canned response answers this"
            lines.append(click.style(f"({self.agent_name} says nothing: {why})", dim=True))
        if not self.trace:
            for error in result.trace.errors:
                lines.append(click.style(f"(turn error: {error})", fg="red"))
        else:
            lines += render_trace(
                result.trace, journey=result.journey, state=result.state, events=result.events
            )
        return lines

    # ------------------------------------------------------------------ commands

    async def _help(self, argument: str) -> list[str]:
        return HELP.splitlines()

    async def _trace(self, argument: str) -> list[str]:
        if argument.casefold() not in ("on", "off"):
            raise LineError("say /trace on or /trace off")
        self.trace = argument.casefold() == "on"
        return [_note(f"trace {'on' if self.trace else 'off'}")]

    async def _state(self, argument: str) -> list[str]:
        session = await self.store.get_session(self.workspace, self.session_id)
        compiled = await self.runtime.agent(self.workspace, session.agent_id)
        journey = compiled.journey_by_id(session.current_journey_id)
        where = "no journey"
        if journey is not None:
            state = (
                journey.by_id.get(session.current_state_id) if session.current_state_id else None
            )
            where = f"{journey.title} / {state}" if state else journey.title
        lines = [
            f"at: {where}",
            f"session {session.id}: {session.status.value}, mode {session.mode.value}, "
            f"{session.message_count} message(s)",
        ]
        if self.pending:
            lines.append(f"set with the next message: {self._shown(self.pending)}")
        return [_note(line) for line in lines]

    async def _vars(self, argument: str) -> list[str]:
        variables = await self.store.get_variables(self.workspace, self.session_id)
        shown = {v.key: v.value for v in variables if not v.is_private}
        lines = [f"{key} = {_json(value)}" for key, value in sorted(shown.items())]
        if self.pending:
            lines.append(f"(set with the next message: {self._shown(self.pending)})")
        return [_note(line) for line in lines] or [_note("no variables")]

    async def _set(self, argument: str) -> list[str]:
        if not argument:
            raise LineError("say /set KEY=VALUE (several may follow, separated by spaces)")
        declared = {v.key: v for v in self.agent.bundle.variables}
        values: dict[str, Any] = {}
        for item in _split_assignments(argument):
            key, eq, raw = item.partition("=")
            key = key.strip()
            if not eq or not key.isidentifier():
                raise LineError(f"{item!r} is not KEY=VALUE (e.g. /set day=Monday)")
            spec = declared.get(key)
            value = _value(raw)
            if spec is not None and spec.value_type is ValueType.STRING:
                value = value if isinstance(value, str) else raw  # code=1234 stays text
            values[key] = value
        self.pending.update(values)
        return [_note(f"set with the next message: {self._shown(values)}")]

    def _private(self) -> set[str]:
        return {v.key for v in self.agent.bundle.variables if v.is_private}

    def _shown(self, values: Mapping[str, Any]) -> str:
        private = self._private()
        return _assignments({k: PRIVATE if k in private else v for k, v in values.items()})

    def echo(self, raw: str) -> str:
        """The input line as a transcript shows it: values of private variables hidden."""
        line = parse_line(raw)
        if line.kind != "command" or line.command != "set":
            return raw.strip()
        private = self._private()
        items = []
        for item in _split_assignments(line.argument):
            key, eq, _ = item.partition("=")
            items.append(f"{key}={PRIVATE}" if eq and key.strip() in private else item)
        return " ".join(["/set", *items])

    async def _tool(self, argument: str) -> list[str]:
        known = [tool.name for tool in self.agent.bundle.tools]
        if not argument:
            if not known:
                return [_note("this agent has no tools")]
            return [
                _note(f"{n}: returns {_json(self.stubs[n])}" if n in self.stubs else f"{n}: fails")
                for n in known
            ]
        name, _, raw = argument.partition(" ")
        if name not in known:
            listed = ", ".join(known) or "none"
            raise LineError(f"the agent has no tool {name!r}; its tools: {listed}")
        if not raw.strip():
            self.stubs.pop(name, None)
            return [_note(f"{name} now fails (no result given)")]
        try:
            self.stubs[name] = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise LineError(f"/tool {name}: the result must be JSON ({exc})") from exc
        return [_note(f"{name} returns {_json(self.stubs[name])} from now on")]

    async def _mode(self, argument: str) -> list[str]:
        try:
            mode = SessionMode(argument.casefold())
        except ValueError:
            raise LineError("say /mode auto, /mode manual or /mode paused") from None
        try:
            result = await self.runtime.set_mode(self.workspace, self.session_id, mode)
        except SessionClosed as exc:
            raise LineError(f"{exc} (/end starts one)") from exc
        lines = [_note(f"mode {mode.value}")]
        answered = any(e.event_type is EventType.AGENT_MESSAGE for e in result.events)
        if answered:
            lines += self._turn_lines(result)
        return lines

    async def _human(self, argument: str) -> list[str]:
        if not argument:
            raise LineError("say /human TEXT: what the human agent replies")
        try:
            await self.runtime.post_human_message(self.workspace, self.session_id, argument)
        except SessionClosed as exc:
            raise LineError(f"{exc} (/end starts one)") from exc
        return [f"{click.style('human agent:', fg='blue', bold=True)} {argument}"]

    async def _end(self, argument: str) -> list[str]:
        with contextlib.suppress(SessionClosed):  # already closed: just start anew
            await self.runtime.end(self.workspace, self.session_id)
        old = self.session_id
        session = await self.runtime.start_session(self.workspace, self.agent.agent_id)
        self.session_id, self.pending = session.id, {}
        return [_note(f"session {old} completed"), _note(f"new session {session.id}")]

    async def _quit(self, argument: str) -> list[str]:
        self.finished = True
        return []


_COMMANDS = {
    "help": Chat._help,
    "trace": Chat._trace,
    "state": Chat._state,
    "vars": Chat._vars,
    "set": Chat._set,
    "tool": Chat._tool,
    "mode": Chat._mode,
    "human": Chat._human,
    "end": Chat._end,
    "quit": Chat._quit,
    "exit": Chat._quit,
}


def _note(text: str) -> str:
    return click.style(f"  · {text}", dim=True)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _assignments(values: Mapping[str, Any]) -> str:
    return ", ".join(f"{key}={_json(value)}" for key, value in values.items())


def _value(raw: str) -> Any:
    """JSON when it reads as JSON (numbers, true, objects), else the text as it is."""
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def _split_assignments(argument: str) -> list[str]:
    """``a=1 b="two words"`` -> ``['a=1', 'b="two words"']``; a value may hold spaces in quotes
    or JSON brackets."""
    items: list[str] = []
    current, depth, quote = "", 0, ""
    for char in argument:
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        elif char.isspace() and depth <= 0:
            if current:
                items.append(current)
            current = ""
            continue
        current += char
    if current:
        items.append(current)
    return [_unquote(item) for item in items]


def _unquote(item: str) -> str:
    key, eq, value = item.partition("=")
    if eq and len(value) >= 2 and value[0] == value[-1] == "'":
        return f"{key}={value[1:-1]}"
    return item


# ---------------------------------------------------------------------- opening


async def prepare_database(url: str | None) -> tuple[str, list[str]]:
    """The resolved URL, migrated if it may be; and what was done, for the banner.

    Raises:
        ChatError: a PostgreSQL database at an older revision (others may run on it:
            upgrading is a deliberate step), or one newer than this version knows.
    """
    from parlant_runtime.storage import migrate  # noqa: PLC0415

    resolved = migrate.database_url(url)
    where = migrate.redact(resolved)
    at = await migrate.current(resolved)
    head = migrate.head()
    if at == head:
        return resolved, []
    if at is not None and at not in migrate.revisions():
        raise ChatError(
            f"{where} is at schema revision {at}, which this parlant-runtime does not know "
            f"(its newest is {head}); upgrade parlant-runtime"
        )
    if at is not None and not resolved.startswith("sqlite"):
        raise ChatError(
            f"{where} is at schema revision {at}, not {head}; other processes may use it, so "
            f"chat does not upgrade it: run `parlant-runtime db upgrade --database-url {where}`"
        )
    await migrate.upgrade(resolved)
    if at is None:
        return resolved, ["created the database schema (first use)"]
    return resolved, [f"upgraded the database schema from revision {at} to {head}"]


def stub_tools(chat_stubs: dict[str, Any], names: list[str]) -> ToolRegistry:
    """A registry whose tools return what ``/tool`` gave them, read at call time."""
    registry = ToolRegistry()
    for name in names:
        registry.register(name, _stub(chat_stubs, name))
    return registry


def _stub(stubs: dict[str, Any], name: str) -> Any:
    async def call(arguments: dict[str, Any]) -> Any:
        if name not in stubs:
            raise LookupError(
                f"no result given for tool {name!r} in this chat; use /tool {name} JSON"
            )
        return json.loads(json.dumps(stubs[name]))

    return call


async def _publish(
    store: SqlStore, options: ChatOptions, loaded: LoadedBundle, where: str
) -> tuple[PublishReport, str]:
    bundle = loaded.bundle
    await store.ensure_workspace(options.workspace)
    await store.ensure_knowledge_bases(
        options.workspace, [kb.knowledge_base_id for kb in bundle.knowledge_bases]
    )
    try:
        report = await store.publish(options.workspace, bundle)
    except PublishRefused as refused:
        raise ChatError(_refusal(refused, options, where), status=1) from refused
    if not report.written and not report.created and report.changes.empty:
        note = f"agent {bundle.agent.name!r} unchanged at version {report.version}"
    elif report.created:
        note = f"published agent {bundle.agent.name!r} (version {report.version})"
    else:
        changed = sum(
            len(labels)
            for group in (report.changes.added, report.changes.removed, report.changes.changed)
            for labels in group.values()
        )
        note = (
            f"republished agent {bundle.agent.name!r}: version {report.version}, "
            f"{changed} change(s)"
        )
        if report.moved_sessions:
            note += f", {report.moved_sessions} session(s) moved"
    return report, note


def _refusal(refused: Exception, options: ChatOptions, where: str) -> str:
    report = getattr(refused, "report", None)
    stranded = dict(report.stranded_sessions) if report is not None else {}
    if not stranded:
        return f"not published, chat not started: {refused}"
    lines = [
        f"not published, chat not started: {options.bundle_path} changes the agent already in "
        f"{where} (workspace {options.workspace!r}) and removes states that live sessions are on:"
    ]
    lines += [f"  {state}: {count} live session(s)" for state, count in sorted(stranded.items())]
    first = next(iter(sorted(stranded)))
    journey, _, state = first.rpartition("/")
    lines += [
        "Publishing now would leave them on states that no longer exist. Either:",
        f"  - move them: parlant-runtime publish {options.bundle_path} --workspace "
        f"{options.workspace} --database-url {where} --map '{journey}/{state}=NEW_STATE'",
        "  - or take them out of their journey: the same publish command with --force",
        "  - or chat on another database or workspace (--database-url, --workspace)",
    ]
    return "\n".join(lines)


async def open_chat(options: ChatOptions, loaded: LoadedBundle | None) -> tuple[Chat, list[str]]:
    """Everything before the first line; the chat and its banner lines.

    Raises:
        ChatError: the chat cannot start (with the exit status to end with).
    """
    from parlant_runtime.storage import migrate  # noqa: PLC0415
    from parlant_runtime.storage.sql.store import SqlStore  # noqa: PLC0415

    resolved, done = await prepare_database(options.url)
    where = migrate.redact(resolved)
    banner = [f"database {where}, workspace {options.workspace!r}", *done]
    store = SqlStore.open(resolved)
    try:
        if loaded is not None:
            report, note = await _publish(store, options, loaded, where)
            agent_id = report.agent_id
            banner.append(note)
        else:
            assert options.agent_name is not None
            found = await store.find_agent(options.workspace, options.agent_name)
            if found is None:
                raise ChatError(
                    f"workspace {options.workspace!r} in {where} has no agent named "
                    f"{options.agent_name!r}; give a BUNDLE to publish it"
                )
            agent_id = found
        agent = await store.load_agent(options.workspace, agent_id)
        stubs: dict[str, Any] = {}
        runtime = Runtime(
            store,
            evaluator=KeywordEvaluator(agent.bundle.terms),
            tools=stub_tools(stubs, [tool.name for tool in agent.bundle.tools]),
        )
        banner.append(EVALUATOR_NOTE)
        session_id = await _session(runtime, options, agent_id, banner)
    except NotFound as exc:
        await store.close()
        raise ChatError(str(exc)) from exc
    except BaseException:
        await store.close()
        raise
    chat = Chat(store, runtime, options.workspace, agent, session_id, options.trace, stubs)
    return chat, banner


async def _session(
    runtime: Runtime, options: ChatOptions, agent_id: UUID, banner: list[str]
) -> UUID:
    if options.session_id is None:
        session = await runtime.start_session(options.workspace, agent_id)
        banner.append(f"new session {session.id} (come back to it with --session {session.id})")
        return session.id
    try:
        wanted = UUID(options.session_id)
    except ValueError:
        raise ChatError(f"--session {options.session_id!r} is not a session id (a UUID)") from None
    session = await runtime.store.get_session(options.workspace, wanted)
    if session.agent_id != agent_id:
        raise ChatError(f"session {wanted} belongs to another agent; leave out --session")
    if session.status is not SessionStatus.ACTIVE:
        raise ChatError(
            f"session {wanted} is {session.status.value}; leave out --session to start a new one"
        )
    compiled = await runtime.agent(options.workspace, agent_id)
    journey = compiled.journey_by_id(session.current_journey_id)
    state = (
        journey.by_id.get(session.current_state_id)
        if journey and session.current_state_id
        else None
    )
    at = f"{journey.title} / {state}" if journey else "no journey"
    banner.append(
        f"resumed session {wanted}: {session.message_count} message(s) so far, at {at}, "
        f"mode {session.mode.value}"
    )
    return wanted
