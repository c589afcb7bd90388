"""One ``parlant-runtime chat`` conversation, line by line.

:meth:`Chat.handle` takes one input line, a customer message or a slash
command, and returns the lines to print (``_chat_open`` sets the chat up).

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
from parlant_runtime.engine import Runtime, SessionClosed
from parlant_runtime.errors import ParlantRuntimeError
from parlant_runtime.model import EventType, SessionMode, ValueType
from parlant_runtime.storage.port import InvalidData

if TYPE_CHECKING:
    from parlant_runtime.engine import TurnResult
    from parlant_runtime.storage.port import StoredAgent
    from parlant_runtime.storage.sql.store import SqlStore

__all__ = ["HELP", "PRIVATE", "Chat", "ChatError", "ChatOptions", "LineError", "parse_line"]

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
    model: str | None = None
    """``openai:MODEL``, ``anthropic:MODEL`` or ``agent``: a language model understands."""
    price: tuple[float, float] | None = None
    """Dollars per million input and output tokens of ``model``."""


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
        lines = [
            f"{key} (not set)" if value is None else f"{key} = {_json(value)}"
            for key, value in sorted(shown.items())
        ]
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
