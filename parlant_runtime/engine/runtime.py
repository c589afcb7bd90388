"""The embedding API: what a chat backend calls, once per customer message.

:class:`Runtime` holds no session state between turns (any number of backend
processes can serve the same sessions): each call loads the session's stored
position, computes the turn (:mod:`parlant_runtime.engine.turn`) and commits it
in one transaction guarded by the session's version. When another process
committed first, the turn is computed again from the new position (a bounded
number of times); nothing is ever half-written.

Session modes: ``auto`` answers; ``manual`` records customer messages and does not
answer (a human posts replies with :meth:`Runtime.post_human_message`);
``paused`` records them and answers nothing until :meth:`Runtime.resume`, which
then answers what is pending in one turn. Completed and abandoned sessions refuse
messages.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid4, uuid5

from parlant_runtime.engine.caller_input import (
    check_message,
    check_variables,
    starting_variables,
)
from parlant_runtime.engine.commit import commit_events, commit_outcome
from parlant_runtime.engine.compiled import AgentCache, CompiledAgent, compile_agent
from parlant_runtime.engine.compose import DeterministicGenerator, ResponseGenerator
from parlant_runtime.engine.conditions import ConditionEvaluator, KeywordEvaluator
from parlant_runtime.engine.health import ToolHealth, tool_health
from parlant_runtime.engine.knowledge import Retriever
from parlant_runtime.engine.locks import SessionLocks
from parlant_runtime.engine.observe import observed
from parlant_runtime.engine.session_log import conversation, position_now, recorded_turn
from parlant_runtime.engine.tools import ToolRegistry
from parlant_runtime.engine.trace import Trace
from parlant_runtime.engine.turn import (
    PLUGIN_TIMEOUT,
    RUNTIME_KEY,
    TURN_BUDGET,
    TurnInput,
    TurnOutcome,
    record_message,
    run_turn,
)
from parlant_runtime.engine.understanding import TokenSink, Understander
from parlant_runtime.errors import ParlantRuntimeError
from parlant_runtime.model import Event, EventType, Session, SessionMode, SessionStatus
from parlant_runtime.storage.checks import (
    check_session_start,
    check_text,
)
from parlant_runtime.storage.port import (
    MAX_TITLE_LENGTH,
    ConcurrentUpdate,
    DuplicateMessage,
    InvalidData,
    NewEvent,
    NotFound,
    SessionStart,
    Store,
    TurnCommit,
    TurnRead,
    VariableChange,
)
from parlant_runtime.storage.traced import traced_store
from parlant_runtime.telemetry import Telemetry

if TYPE_CHECKING:
    from parlant_runtime.llm import LanguageModel

__all__ = [
    "HISTORY_MESSAGES",
    "MAX_ATTEMPTS",
    "ReplyChunk",
    "Runtime",
    "SessionClosed",
    "TurnResult",
]

HISTORY_MESSAGES = 20
"""Messages of the conversation so far a language model sees, by default."""

MAX_ATTEMPTS = 5
"""How often a turn is recomputed when other turns keep committing first."""

_log = logging.getLogger("parlant_runtime.engine")


class SessionClosed(ParlantRuntimeError):
    """The session is completed or abandoned: it takes no more messages."""


@dataclass(frozen=True)
class TurnResult:
    """What one call did: replies, events written, where the session now is, and why."""

    session: Session
    replies: tuple[str, ...]
    events: tuple[Event, ...]
    journey: str | None
    state: str | None
    guidelines: tuple[str, ...]
    tool_calls: tuple[str, ...]
    trace: Trace
    duplicate: bool = False
    """The message's idempotency key was already recorded: nothing new was written."""


@dataclass(frozen=True, slots=True)
class ReplyChunk:
    """A piece of a reply while it is written (:meth:`Runtime.stream_message`)."""

    part: int
    """Which message of the reply (0 first; a turn may answer in several)."""
    text: str


class Runtime:
    """Runs agents from a store (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        *,
        evaluator: ConditionEvaluator | Understander | None = None,
        generator: ResponseGenerator | None = None,
        tools: ToolRegistry | None = None,
        retriever: Retriever | None = None,
        language_model: LanguageModel | None = None,
        history: int | None = None,
        plugin_timeout: float = PLUGIN_TIMEOUT,
        turn_budget: float = TURN_BUDGET,
        telemetry: Telemetry | None = None,
    ) -> None:
        """Args:
        store: where agents and sessions live.
        evaluator: decides natural-language conditions (default: with ``language_model``
            a :class:`~parlant_runtime.llm.ModelUnderstander`, else keyword matching).
        generator: composes replies (default: with ``language_model`` a
            :class:`~parlant_runtime.llm.ModelComposer`, else the built-in chooser).
        tools: the tool functions.
        retriever: searches knowledge bases.
        language_model: a :class:`~parlant_runtime.llm.LanguageModel` for conditions,
            extraction and replies (see ``docs/language-models.md``).
        history: messages of the conversation so far given to plug-ins (default
            :data:`HISTORY_MESSAGES` with a language model, else none).
        plugin_timeout: seconds one evaluator or generator call may take.
        turn_budget: seconds all of a turn's plug-in calls may take together.
        telemetry: where spans and metrics go (default: OpenTelemetry's global
            providers when the ``otel`` extra is installed; ``docs/observability.md``).
        """
        self.telemetry = telemetry or Telemetry()
        self.store = traced_store(store, self.telemetry)
        """``store``, wrapped to report its calls when telemetry is on (``.wrapped``)."""
        self.retriever = retriever
        """Searches the agent's knowledge bases each turn; ``None``: ``kb`` stays empty."""
        self.language_model = language_model
        if language_model is not None:
            from parlant_runtime.llm import ModelComposer, ModelUnderstander  # noqa: PLC0415

            evaluator = evaluator or ModelUnderstander(language_model)
            generator = generator or ModelComposer(language_model)
        self.evaluator: ConditionEvaluator | Understander = evaluator or KeywordEvaluator()
        self.generator: ResponseGenerator = generator or DeterministicGenerator()
        if history is None:
            history = HISTORY_MESSAGES if language_model is not None else 0
        if history < 0 or plugin_timeout <= 0 or turn_budget <= 0:
            raise ParlantRuntimeError(
                "history must be 0 or more, plugin_timeout and turn_budget more than 0"
            )
        self.history = history
        self.plugin_timeout = plugin_timeout
        self.turn_budget = turn_budget
        self.tools = tools or ToolRegistry()
        self._background: set[asyncio.Task[TurnResult]] = set()
        self._cache = AgentCache()
        self._locks = SessionLocks()

    async def agent(self, workspace_id: str, agent_id: UUID) -> CompiledAgent:
        """The compiled agent at its current version (compiled once per version)."""
        version = await self.store.agent_version(workspace_id, agent_id)
        return await self._agent_at(workspace_id, agent_id, version)

    async def _agent_at(self, workspace_id: str, agent_id: UUID, version: int) -> CompiledAgent:
        """The compiled agent at ``version``, the current one as just read (a turn reads
        it with its session: no query of its own)."""
        cached = self._cache.get(workspace_id, agent_id, version)
        if cached is not None:
            return cached
        return self._cache.put(compile_agent(await self.store.load_agent(workspace_id, agent_id)))

    @observed("start_session", span="parlant.session.start")
    async def start_session(
        self,
        workspace_id: str,
        agent_id: UUID,
        *,
        customer_id: str | None = None,
        variables: Mapping[str, Any] | None = None,
        mode: SessionMode = SessionMode.AUTO,
        session_id: UUID | None = None,
        title: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Session:
        """A new session; ``variables`` are its starting session variables.

        ``metadata`` is the host's own data about the session (JSON, kept as given and
        visible to conditions and templates as ``session.metadata``); the key
        ``parlantRuntime`` is the runtime's and may not be set. Everything is checked
        before the session is created: bad input creates nothing.

        Raises:
            InvalidData: a variable value, the metadata or the title cannot be stored.
            NotFound: no such agent in the workspace.
        """
        if metadata is not None and RUNTIME_KEY in metadata:
            raise InvalidData(
                f"session metadata key {RUNTIME_KEY!r} is the runtime's own; use another key"
            )
        # the texts first: the model below would refuse a wrong type with pydantic's error
        check_text(customer_id, "the customer id")
        check_text(title, "the session title", MAX_TITLE_LENGTH)
        start = SessionStart(
            agent_id=agent_id,
            customer_id=customer_id,
            mode=mode,
            session_id=session_id,
            title=title,
            metadata=dict(metadata or {}),
        )
        check_session_start(start)
        check_variables(variables)
        changes: list[VariableChange] = []
        if variables:
            changes = starting_variables(await self.agent(workspace_id, agent_id), variables)
        session = await self.store.create_session(workspace_id, start)
        if changes:
            session = await self.store.commit_turn(
                workspace_id,
                TurnCommit(
                    session_id=session.id,
                    expected_version=session.version,
                    variables=changes,
                    current_journey_id=session.current_journey_id,
                    current_state_id=session.current_state_id,
                ),
            )
        return session

    @observed("process_message")
    async def process_message(
        self,
        workspace_id: str,
        session_id: UUID,
        text: str,
        *,
        idempotency_key: str | None = None,
        variables: Mapping[str, Any] | None = None,
        sink: TokenSink | None = None,
    ) -> TurnResult:
        """Record a customer message and, in ``auto`` mode, answer it.

        ``variables`` are set before the turn runs (as an extractor would). ``sink``
        receives the reply's text as a streaming generator produces it (see
        :meth:`stream_message`, which is usually what you want).

        Raises:
            InvalidData: the text, the key or a variable cannot be stored (nothing is).
            SessionClosed: the session is completed or abandoned.
        """
        check_message(text)
        check_text(idempotency_key, "the idempotency key")
        check_variables(variables)
        # the same message, computed again here or in another process: the same call ids
        call_key = str(uuid5(session_id, idempotency_key) if idempotency_key else uuid4())
        async with self._locks.hold(session_id):
            return await self._process(
                workspace_id,
                session_id,
                text,
                idempotency_key=idempotency_key,
                variables=variables,
                call_key=call_key,
                sink=sink,
            )

    async def stream_message(
        self,
        workspace_id: str,
        session_id: UUID,
        text: str,
        *,
        idempotency_key: str | None = None,
        variables: Mapping[str, Any] | None = None,
    ) -> AsyncIterator[ReplyChunk | TurnResult]:
        """:meth:`process_message`, streamed: the reply's text as :class:`ReplyChunk`
        pieces while a streaming generator writes it, then the :class:`TurnResult`.

        The turn is committed once, after the reply is whole; ``TurnResult.replies`` are
        the messages as stored, which is what to keep (when the model failed half-way
        the stored reply is the built-in one; chunks are a preview). A generator that
        does not stream (the built-in one, strict agents) gives each stored message as
        one chunk. A consumer that stops reading does not stop the turn: it completes
        and is stored.

        Raises:
            SessionClosed: the session is completed or abandoned.
        """
        queue: asyncio.Queue[ReplyChunk | None] = asyncio.Queue()
        streamed = False

        async def sink(part: int, piece: str) -> None:
            nonlocal streamed
            streamed = True
            queue.put_nowait(ReplyChunk(part, piece))

        task = asyncio.create_task(
            self.process_message(
                workspace_id,
                session_id,
                text,
                idempotency_key=idempotency_key,
                variables=variables,
                sink=sink,
            )
        )
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        task.add_done_callback(lambda _: queue.put_nowait(None))
        while (chunk := await queue.get()) is not None:
            yield chunk
        result = await task
        if not streamed:
            for part, reply in enumerate(result.replies):
                yield ReplyChunk(part, reply)
        yield result

    async def _process(
        self,
        workspace_id: str,
        session_id: UUID,
        text: str,
        *,
        idempotency_key: str | None,
        variables: Mapping[str, Any] | None,
        call_key: str,
        sink: TokenSink | None = None,
    ) -> TurnResult:
        for _ in range(MAX_ATTEMPTS):
            read = await self.store.read_turn(
                workspace_id, session_id, idempotency_key=idempotency_key
            )
            session = read.session
            _refuse_closed(session)
            if read.message is not None:
                return await self._replay(workspace_id, session, read.message)
            answer = session.mode is SessionMode.AUTO
            try:
                return await self._turn(
                    workspace_id,
                    session,
                    text,
                    read=read,
                    answer=answer,
                    idempotency_key=idempotency_key,
                    variables=variables or {},
                    call_key=call_key,
                    sink=sink,
                )
            except ConcurrentUpdate:
                sink = None  # what was streamed stands; the recomputed turn's replies are final
                _log.info("session %s changed under its turn; computing it again", session_id)
                continue
            except DuplicateMessage:
                # another process recorded this message between our lookup and our commit:
                # the next attempt finds it and replays the recorded turn
                if idempotency_key is None:
                    raise
                continue
        raise ConcurrentUpdate(
            f"session {session_id} kept changing under {MAX_ATTEMPTS} attempts; try again"
        )

    @observed("post_human_message")
    async def post_human_message(
        self, workspace_id: str, session_id: UUID, text: str
    ) -> TurnResult:
        """Record a human agent's reply (any mode; typically ``manual``).

        Raises:
            InvalidData: the text cannot be stored (nothing is).
        """
        check_message(text)
        event = NewEvent(
            event_type=EventType.AGENT_MESSAGE, content={"text": text}, metadata={"author": "human"}
        )
        async with self._locks.hold(session_id):
            return await self._simple(workspace_id, session_id, [event], replies=(text,))

    @observed("set_mode")
    async def set_mode(self, workspace_id: str, session_id: UUID, mode: SessionMode) -> TurnResult:
        """Change the mode; going back to ``auto`` from ``paused`` answers what is pending."""
        async with self._locks.hold(session_id):
            session = await self.store.get_session(workspace_id, session_id)
            _refuse_closed(session)
            event = NewEvent(event_type=EventType.STATUS_UPDATE, content={"mode": mode.value})
            result = await self._simple(workspace_id, session_id, [event], mode=mode)
            if session.mode is SessionMode.PAUSED and mode is SessionMode.AUTO:
                return await self._resume(workspace_id, session_id)
            return result

    @observed("resume")
    async def resume(self, workspace_id: str, session_id: UUID) -> TurnResult:
        """Answer the customer messages that arrived while the session was not answering."""
        async with self._locks.hold(session_id):
            return await self._resume(workspace_id, session_id)

    async def _resume(self, workspace_id: str, session_id: UUID) -> TurnResult:
        for _ in range(MAX_ATTEMPTS):
            session = await self.store.get_session(workspace_id, session_id)
            _refuse_closed(session)
            if session.mode is not SessionMode.AUTO:
                session = (
                    await self._simple(
                        workspace_id,
                        session_id,
                        [NewEvent(event_type=EventType.STATUS_UPDATE, content={"mode": "auto"})],
                        mode=SessionMode.AUTO,
                    )
                ).session
            answered = int(session.metadata.get(RUNTIME_KEY, {}).get("answered", -1))
            pending = [
                event
                for event in await self.store.list_events(workspace_id, session_id, after=answered)
                if event.event_type is EventType.CUSTOMER_MESSAGE
            ]
            if not pending:
                return _result(
                    session, [], TurnOutcome([], None, None, [], {}, {}, [], [], Trace(), [])
                )
            text = "\n".join(str(event.content.get("text", "")) for event in pending)
            try:  # whoever answers these messages makes the same tool calls
                return await self._turn(
                    workspace_id,
                    session,
                    text,
                    answer=True,
                    record=False,
                    variables={},
                    call_key=f"{session_id}:resume:{answered}",
                )
            except ConcurrentUpdate:
                _log.info("session %s changed under its turn; computing it again", session_id)
                continue
        raise ConcurrentUpdate(f"session {session_id} kept changing; try again")

    @observed("end", span="parlant.session.end")
    async def end(
        self,
        workspace_id: str,
        session_id: UUID,
        *,
        status: SessionStatus = SessionStatus.COMPLETED,
    ) -> Session:
        """Close the session (completed or abandoned); it refuses messages afterwards."""
        event = NewEvent(event_type=EventType.STATUS_UPDATE, content={"status": status.value})
        async with self._locks.hold(session_id):
            result = await self._simple(workspace_id, session_id, [event], status=status)
        return result.session

    async def tool_health(self, workspace_id: str, agent_id: UUID, tool: str) -> ToolHealth:
        """Use count, errors, success rate and health of the agent's tool ``tool``
        (derived on read: :mod:`parlant_runtime.engine.health`).

        Raises:
            NotFound: the agent has no tool of that name.
        """
        compiled = await self.agent(workspace_id, agent_id)
        spec = compiled.tools.get(tool)
        if spec is None:
            known = ", ".join(sorted(compiled.tools)) or "none"
            raise NotFound(f"agent {agent_id} has no tool {tool!r}; its tools: {known}")
        return await tool_health(self.store, workspace_id, spec)

    @property
    def busy_sessions(self) -> int:
        """Sessions with a call running or waiting in this runtime (each holds one lock)."""
        return len(self._locks)

    # ------------------------------------------------------------------ internals

    async def _turn(
        self,
        workspace_id: str,
        session: Session,
        text: str,
        *,
        answer: bool,
        variables: Mapping[str, Any],
        record: bool = True,
        idempotency_key: str | None = None,
        call_key: str | None = None,
        sink: TokenSink | None = None,
        read: TurnRead | None = None,
    ) -> TurnResult:
        if read is None:
            read = await self.store.read_turn(workspace_id, session.id)
        agent = await self._agent_at(workspace_id, session.agent_id, read.agent_version)
        stored_variables = list(read.variables)
        history = (
            await conversation(self.store, workspace_id, session, self.history) if answer else ()
        )
        inp = TurnInput(session, agent, stored_variables, text, variables, call_key, history)
        if not answer:  # recorded with its variables, answered on resume
            outcome = record_message(inp, idempotency_key=idempotency_key)
        else:
            outcome = await run_turn(
                inp,
                evaluator=self.evaluator,
                generator=self.generator,
                tools=self.tools,
                record_message=record,
                idempotency_key=idempotency_key,
                retriever=self.retriever,
                plugin_timeout=self.plugin_timeout,
                turn_budget=self.turn_budget,
                sink=sink,
            )
            outcome.metadata.setdefault(RUNTIME_KEY, {})["answered"] = (
                session.event_count + len(outcome.events) - 1
            )
        committed, events = await commit_outcome(
            self.store, workspace_id, session, outcome, agent.version
        )
        return _result(committed, events, outcome, agent)

    async def _simple(
        self,
        workspace_id: str,
        session_id: UUID,
        events: list[NewEvent],
        *,
        replies: tuple[str, ...] = (),
        mode: SessionMode | None = None,
        status: SessionStatus | None = None,
        session: Session | None = None,
    ) -> TurnResult:
        """Commit events that move nothing (retrying on conflicts)."""
        for _ in range(MAX_ATTEMPTS):
            current = session or await self.store.get_session(workspace_id, session_id)
            session = None
            _refuse_closed(current)
            try:
                committed, written = await commit_events(
                    self.store, workspace_id, session_id, current, events, mode=mode, status=status
                )
            except ConcurrentUpdate:
                continue
            outcome = TurnOutcome([], None, None, [], {}, {}, list(replies), [], Trace(), [])
            agent = await self.agent(workspace_id, committed.agent_id)
            return _result(committed, written, outcome, agent)
        raise ConcurrentUpdate(f"session {session_id} kept changing; try again")

    async def _replay(self, workspace_id: str, session: Session, found: Event) -> TurnResult:
        async def agent() -> CompiledAgent:
            return await self.agent(workspace_id, session.agent_id)

        turn = await recorded_turn(self.store, workspace_id, session, found, agent)
        outcome = TurnOutcome([], None, None, [], {}, {}, list(turn.replies), [], Trace(), [])
        result = _result(session, turn.events, outcome, duplicate=True)
        return replace(result, journey=turn.position[0], state=turn.position[1])


def _refuse_closed(session: Session) -> None:
    if session.status is not SessionStatus.ACTIVE:
        raise SessionClosed(f"session {session.id} is {session.status.value}; start a new session")


def _result(
    session: Session,
    events: Sequence[Event],
    outcome: TurnOutcome,
    agent: CompiledAgent | None = None,
    *,
    duplicate: bool = False,
) -> TurnResult:
    journey, state = position_now(session, agent) if agent is not None else (None, None)
    return TurnResult(
        session=session,
        replies=tuple(outcome.replies),
        events=tuple(events),
        journey=journey,
        state=state,
        guidelines=tuple(outcome.guidelines),
        tool_calls=tuple(outcome.tool_calls),
        trace=outcome.trace,
        duplicate=duplicate,
    )
