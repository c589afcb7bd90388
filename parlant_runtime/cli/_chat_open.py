"""Opening a ``parlant-runtime chat``: database, publishing, the agent and the session.

:func:`open_chat` does everything before the first input line: the database
(SQLite is created and migrated on first use; an empty PostgreSQL database is
migrated, one at an older revision is refused, since other processes may use
it), the workspace, the agent (the bundle published, or a stored agent found by
name), the tools (each returns what ``/tool`` gave it) and the session (new, or
the one ``--session`` names). What stops it is a :class:`ChatError` with the exit
status to end with.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from uuid import UUID

from parlant_runtime.cli._chat_session import Chat, ChatError, ChatOptions
from parlant_runtime.engine import KeywordEvaluator, Runtime, ToolRegistry
from parlant_runtime.model import SessionStatus
from parlant_runtime.storage.port import NotFound, PublishRefused

if TYPE_CHECKING:
    from parlant_runtime.bundle import AgentSpec, LoadedBundle
    from parlant_runtime.llm import LanguageModel
    from parlant_runtime.storage.port import PublishReport
    from parlant_runtime.storage.sql.store import SqlStore

__all__ = ["EVALUATOR_NOTE", "open_chat", "prepare_database", "stub_tools"]

EVALUATOR_NOTE = (
    "natural-language conditions: offline keyword matching (KeywordEvaluator), "
    "deterministic, no LLM: a condition holds when the message has half its key words"
)


async def prepare_database(url: str | None) -> tuple[str, list[str]]:
    """The resolved URL, migrated if it may be; and what was done, for the banner.

    Raises:
        ChatError: a PostgreSQL database at an older revision (others may run on it:
            upgrading is a deliberate step), or one newer than this version knows.
    """
    from parlant_runtime.storage import migrate  # noqa: PLC0415
    from parlant_runtime.storage.url import database_url, redact  # noqa: PLC0415

    resolved = database_url(url)
    where = redact(resolved)
    at = await migrate.current_revision(resolved)
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


def _model(name: str, agent: AgentSpec, price: tuple[float, float] | None) -> LanguageModel:
    from parlant_runtime.llm import LanguageModelError, Price, model_from_name  # noqa: PLC0415

    try:
        return model_from_name(name, agent=agent, price=Price(*price) if price else None)
    except LanguageModelError as exc:
        raise ChatError(f"--model {name}: {exc}") from exc


async def open_chat(options: ChatOptions, loaded: LoadedBundle | None) -> tuple[Chat, list[str]]:
    """Everything before the first line; the chat and its banner lines.

    Raises:
        ChatError: the chat cannot start (with the exit status to end with).
    """
    from parlant_runtime.storage.sql.store import SqlStore  # noqa: PLC0415
    from parlant_runtime.storage.url import redact  # noqa: PLC0415

    resolved, done = await prepare_database(options.url)
    where = redact(resolved)
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
        tools = stub_tools(stubs, [tool.name for tool in agent.bundle.tools])
        if options.model is None:
            runtime = Runtime(store, evaluator=KeywordEvaluator(agent.bundle.terms), tools=tools)
            banner.append(EVALUATOR_NOTE)
        else:
            model = _model(options.model, agent.bundle.agent, options.price)
            runtime = Runtime(store, language_model=model, tools=tools)
            banner.append(
                f"language model {model.name}: decides conditions, reads the variables states "
                "collect, writes the replies (one call for conditions, one for the reply)"
            )
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
