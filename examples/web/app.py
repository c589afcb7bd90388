"""The chat backend: HTTP routes around one :class:`parlant_runtime.Runtime`.

``uvicorn examples.web.app:app`` serves :data:`app` (configured from the
environment); ``python -m examples.web`` does the same with command-line options;
tests and other programs call :func:`create_app`.

At start-up the backend migrates the database (SQLite file by default, or
``$PARLANT_DATABASE_URL``), creates its workspace and publishes its bundle (an
unchanged bundle writes nothing, so any number of processes may start on one
database). Routes (JSON in and out; errors are ``{"error": {"status", "code",
"message"}}``, never a stack trace):

- ``GET /``: the chat page;
- ``POST /sessions``: a new session (body: optional ``{"customer_id": "..."}``);
- ``GET /sessions/{id}``: where the session is;
- ``POST /sessions/{id}/messages``: ``{"text": "...", "idempotency_key": "..."}``,
  answers with the turn's replies, position and event offsets;
- ``POST /sessions/{id}/messages/stream``: the same body; answers with server-sent
  events: ``event: chunk`` (``{"part", "text"}``) while the reply is written, then one
  ``event: turn`` with what ``/messages`` answers (the replies as stored);
- ``POST /sessions/{id}/end``: close the session;
- ``GET /sessions/{id}/events?after=N``: the events as server-sent events
  (:mod:`examples.web.streaming`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from parlant_runtime import (
    ConcurrentUpdate,
    InvalidData,
    KeywordEvaluator,
    LanguageModelError,
    NotFound,
    PublishRefused,
    ReplyChunk,
    Runtime,
    Session,
    SessionClosed,
    SessionStatus,
    SqlStore,
    StorageError,
    TurnResult,
    database_url,
    model_from_name,
    read_bundle,
    upgrade,
    validate_bundle,
)

from .streaming import event_stream
from .tools import cafe_tools

__all__ = [
    "DEFAULT_BUNDLE",
    "DEFAULT_WORKSPACE",
    "MAX_BODY_BYTES",
    "MAX_BODY_DEPTH",
    "ApiError",
    "Backend",
    "ChatBackendApp",
    "Settings",
    "StartupError",
    "app",
    "create_app",
]

HERE = Path(__file__).resolve().parent
DEFAULT_BUNDLE = HERE / "agent.yaml"
DEFAULT_WORKSPACE = "web-example"
MAX_BODY_BYTES = 16 * 1024
"""Largest request body accepted (a chat message is far smaller); beyond it: 413."""
MAX_BODY_DEPTH = 8
"""Deepest nesting of objects and lists a request body may have (the bodies here have 1);
checked before parsing, where a 10 KB body nested 5,000 deep would exhaust the parser."""
MAX_IDEMPOTENCY_KEY = 200
MAX_OFFSET = 2**31 - 1
"""Largest offset a stream may start after (the databases store offsets as 32-bit integers)."""

logger = logging.getLogger("uvicorn.error")  # printed with the server's own messages

M = TypeVar("M", bound=BaseModel)


class StartupError(RuntimeError):
    """The backend cannot start: a bad bundle, a refused publish, an unusable database."""


@dataclass(frozen=True)
class Settings:
    """How the backend runs; :meth:`from_environment` reads ``PARLANT_*`` variables."""

    database_url: str | None = None
    """``None``: ``$PARLANT_DATABASE_URL``, else ``./parlant.db`` (as the CLI does)."""
    bundle: Path = DEFAULT_BUNDLE
    workspace: str = DEFAULT_WORKSPACE
    keepalive: float = 15.0
    """Seconds between keep-alive comments on an idle event stream (0.05 to 3600)."""
    model: str | None = None
    """A language model (``openai:MODEL``, ``anthropic:MODEL``, ``agent``); ``None``:
    keyword matching, no model."""

    def __post_init__(self) -> None:
        if not 0.05 <= self.keepalive <= 3600:  # also refuses NaN
            raise StartupError(
                f"the keep-alive interval must be 0.05 to 3600 seconds, not {self.keepalive}"
            )
        if not self.workspace.strip():
            raise StartupError("the workspace id is empty; name one (default: web-example)")

    @classmethod
    def from_environment(cls) -> Settings:
        """``PARLANT_DATABASE_URL``, ``PARLANT_WEB_BUNDLE``, ``PARLANT_WEB_WORKSPACE``,
        ``PARLANT_WEB_KEEPALIVE``, ``PARLANT_MODEL``.

        Raises:
            StartupError: a variable has a value that cannot be used.
        """
        raw = os.environ.get("PARLANT_WEB_KEEPALIVE", "").strip()
        try:
            keepalive = float(raw) if raw else 15.0
        except ValueError:
            raise StartupError(
                f"PARLANT_WEB_KEEPALIVE={raw!r} is not a number of seconds"
            ) from None
        return cls(
            database_url=os.environ.get("PARLANT_DATABASE_URL") or None,
            bundle=Path(os.environ.get("PARLANT_WEB_BUNDLE") or DEFAULT_BUNDLE),
            workspace=os.environ.get("PARLANT_WEB_WORKSPACE") or DEFAULT_WORKSPACE,
            keepalive=keepalive,
            model=os.environ.get("PARLANT_MODEL") or None,
        )


# ---------------------------------------------------------------------- errors


class ApiError(Exception):
    """An error the client is told about: a status, a stable code and one sentence."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers


def _error_response(error: ApiError) -> JSONResponse:
    body: dict[str, Any] = {
        "status": error.status,
        "code": error.code,
        "message": error.message,
    }
    if error.details:
        body["details"] = error.details
    return JSONResponse({"error": body}, status_code=error.status, headers=error.headers)


async def _on_api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return _error_response(exc)


async def _on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    message = {
        404: f"there is no {request.url.path} here; see GET / for the chat page",
        405: f"{request.method} is not allowed on {request.url.path}",
    }.get(exc.status_code, str(exc.detail))
    headers = dict(exc.headers) if exc.headers else None
    return _error_response(ApiError(exc.status_code, code, message, headers=headers))


async def _on_client_left(request: Request, exc: Exception) -> Response:
    # the connection is gone: whatever is sent is dropped by the server, quietly
    return Response(status_code=400)


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    # the traceback goes to the server log (Starlette re-raises to uvicorn), not to the client
    return _error_response(
        ApiError(500, "internal", "the server failed to answer; the cause is in its log")
    )


# ---------------------------------------------------------------------- request bodies


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class NewSession(_Body):
    customer_id: str | None = Field(default=None, min_length=1, max_length=200)


class NewMessage(_Body):
    text: str = Field(max_length=MAX_BODY_BYTES)
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=MAX_IDEMPOTENCY_KEY)

    @field_validator("text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the message is empty; send some text")
        if "\x00" in value:
            raise ValueError("the message contains a NUL character")
        return value


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    too_large = ApiError(
        413,
        "too_large",
        f"the request body is larger than {MAX_BODY_BYTES} bytes; send a shorter message",
    )
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise too_large
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY_BYTES:
                raise too_large
    except ClientDisconnect:
        # nobody is left to answer: no traceback, one quiet line for whoever debugs
        logger.debug("a client left before sending its whole request body")
        raise _ClientLeft from None
    return bytes(body)


class _ClientLeft(Exception):
    """The client hung up mid-body; the answer goes nowhere, so none is made."""


def _json_depth(raw: bytes) -> int:
    """How deep objects and lists nest in a JSON text (strings skipped), up to past the
    limit: a loop over the bytes, bounded by the body limit, where parsing recurses."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            deepest = max(deepest, depth)
            if deepest > MAX_BODY_DEPTH:
                break
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return deepest


async def _parse(request: Request, model: type[M], *, empty_ok: bool) -> M:
    raw = await _read_body(request)
    if not raw.strip():
        if empty_ok:
            return model()
        raise ApiError(400, "bad_json", "the request needs a JSON body")
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        # also keeps plain HTML forms of other sites from posting here (they cannot send JSON)
        raise ApiError(
            415,
            "unsupported_media_type",
            f"send the body as application/json, not {media_type or 'without a content type'}",
        )
    if _json_depth(raw) > MAX_BODY_DEPTH:
        raise ApiError(
            400,
            "bad_json",
            f"the body is nested deeper than {MAX_BODY_DEPTH} levels; send a flat JSON object",
        )
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ApiError(400, "bad_json", f"the body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ApiError(422, "invalid_request", "the body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        details = [
            {"field": ".".join(str(part) for part in error["loc"]), "problem": error["msg"]}
            for error in exc.errors(include_url=False, include_input=False)
        ]
        summary = "; ".join(f"{d['field'] or 'body'}: {d['problem']}" for d in details)
        raise ApiError(
            422, "invalid_request", f"the body does not fit: {summary}", details=details
        ) from exc


def _session_id(request: Request) -> UUID:
    raw = str(request.path_params["session_id"])
    try:
        return UUID(raw)
    except ValueError:
        raise ApiError(404, "unknown_session", f"there is no session {raw!r} here") from None


def _offset(raw: str, where: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        value = -2
    if not -1 <= value <= MAX_OFFSET:
        raise ApiError(
            400,
            "bad_offset",
            f"{where} must be an event offset (an integer from -1 to {MAX_OFFSET})",
        )
    return value


# ---------------------------------------------------------------------- the backend


@dataclass
class Backend:
    """The runtime, its store and the agent, from start-up to shut-down."""

    given: Settings | None = None
    """``None``: read from the environment at start-up (errors then stop the start)."""
    runtime: Runtime | None = None
    agent_id: UUID | None = None
    agent_name: str = ""
    database: str = ""
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    open_streams: int = 0
    """Event streams being served now (``GET /healthz`` shows it)."""
    _loop: asyncio.AbstractEventLoop | None = None
    _settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        """The settings in use (known once the backend started)."""
        if self._settings is None:
            raise ApiError(503, "starting", "the server is not ready yet; try again")
        return self._settings

    # -------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Migrate, open the store, create the workspace, publish the bundle."""
        self._loop = asyncio.get_running_loop()
        self.stopping = asyncio.Event()
        self._settings = self.given or Settings.from_environment()
        try:
            loaded = read_bundle(self.settings.bundle)
        except Exception as exc:
            raise StartupError(f"cannot read the bundle {self.settings.bundle}: {exc}") from exc
        report = validate_bundle(loaded)
        if not report.ok:
            problems = "; ".join(f"{f.field}: {f.message}" for f in report.errors)
            raise StartupError(f"the bundle {self.settings.bundle} has errors: {problems}")
        url = database_url(self.settings.database_url)
        await upgrade(url)
        store = SqlStore.open(url)
        self.database = store.url
        try:
            workspace = self.settings.workspace
            await store.ensure_workspace(workspace)
            kb_ids = [kb.knowledge_base_id for kb in loaded.bundle.knowledge_bases]
            if kb_ids:
                await store.ensure_knowledge_bases(workspace, kb_ids)
            published = await store.publish(workspace, loaded.bundle)
        except PublishRefused as exc:
            await store.close()
            raise StartupError(
                f"the bundle cannot be published over the stored agent: {exc} "
                "(end those sessions, or publish with a state mapping: parlant-runtime publish)"
            ) from exc
        except BaseException:
            await store.close()
            raise
        self.agent_id = published.agent_id
        self.agent_name = loaded.bundle.agent.name
        if self.settings.model is None:
            self.runtime = Runtime(
                store, evaluator=KeywordEvaluator(loaded.bundle.terms), tools=cafe_tools()
            )
        else:
            try:
                model = model_from_name(self.settings.model, agent=loaded.bundle.agent)
            except LanguageModelError as exc:
                await store.close()
                raise StartupError(f"PARLANT_MODEL={self.settings.model}: {exc}") from exc
            self.runtime = Runtime(store, language_model=model, tools=cafe_tools())
        logger.info(
            "serving agent %r (version %s) from %s",
            self.agent_name,
            published.version,
            self.database,  # redacted: no password in logs
        )

    def stop_streams(self) -> None:
        """End every event stream (safe from a signal handler or another thread)."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self.stopping.set)

    async def close(self) -> None:
        """End the streams and release the database."""
        self.stopping.set()
        if self.runtime is not None:
            await self.runtime.store.close()
            self.runtime = None

    def _runtime(self) -> Runtime:
        if self.runtime is None:
            raise ApiError(503, "starting", "the server is not ready yet; try again")
        return self.runtime

    # -------------------------------------------------------------- routes

    async def page(self, request: Request) -> Response:
        return HTMLResponse((HERE / "page.html").read_text(encoding="utf-8"))

    async def health(self, request: Request) -> Response:
        self._runtime()
        return JSONResponse(
            {
                "ok": True,
                "agent": self.agent_name,
                "database": self.database,
                "open_streams": self.open_streams,
            }
        )

    async def create_session(self, request: Request) -> Response:
        body = await _parse(request, NewSession, empty_ok=True)
        runtime = self._runtime()
        assert self.agent_id is not None
        session = await runtime.start_session(
            self.settings.workspace, self.agent_id, customer_id=body.customer_id
        )
        return JSONResponse(
            await self._session_data(session),
            status_code=201,
            headers={"location": f"/sessions/{session.id}"},
        )

    async def get_session(self, request: Request) -> Response:
        session_id = _session_id(request)
        session = await self._runtime().store.get_session(self.settings.workspace, session_id)
        return JSONResponse(await self._session_data(session))

    async def post_message(self, request: Request) -> Response:
        session_id = _session_id(request)
        body = await _parse(request, NewMessage, empty_ok=False)
        # a key that raced in from another request is answered with what that request
        # recorded (the runtime replays it)
        turn = await self._runtime().process_message(
            self.settings.workspace,
            session_id,
            body.text,
            idempotency_key=body.idempotency_key,
        )
        return JSONResponse(self._turn_data(turn))

    async def stream_message(self, request: Request) -> Response:
        session_id = _session_id(request)
        body = await _parse(request, NewMessage, empty_ok=False)
        pieces = self._runtime().stream_message(
            self.settings.workspace,
            session_id,
            body.text,
            idempotency_key=body.idempotency_key,
        )
        # the first piece comes once the turn has started to answer: a closed or unknown
        # session fails here, as a JSON error with its status, before any event is sent
        first = await anext(pieces)

        async def events() -> AsyncIterator[str]:
            piece: ReplyChunk | TurnResult | None = first
            while piece is not None:
                if isinstance(piece, ReplyChunk):
                    data = {"part": piece.part, "text": piece.text}
                    yield f"event: chunk\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"
                else:
                    turn = json.dumps(self._turn_data(piece), ensure_ascii=False)
                    yield f"event: turn\ndata: {turn}\n\n"
                piece = await anext(pieces, None)

        return StreamingResponse(
            events(), media_type="text/event-stream", headers={"cache-control": "no-store"}
        )

    async def end_session(self, request: Request) -> Response:
        session_id = _session_id(request)
        runtime = self._runtime()
        session = await runtime.store.get_session(self.settings.workspace, session_id)
        if session.status is not SessionStatus.ACTIVE:
            raise SessionClosed(f"session {session_id} is already {session.status.value}")
        session = await runtime.end(self.settings.workspace, session_id)
        return JSONResponse(await self._session_data(session))

    async def events(self, request: Request) -> Response:
        session_id = _session_id(request)
        last_event_id = request.headers.get("last-event-id")
        if last_event_id is not None and last_event_id.strip():
            after = _offset(last_event_id.strip(), "the Last-Event-ID header")
        else:
            after = _offset(request.query_params.get("after", "-1"), "the after parameter")
        store = self._runtime().store
        session = await store.get_session(self.settings.workspace, session_id)  # 404 first
        if session.status is not SessionStatus.ACTIVE and after >= session.event_count - 1:
            # closed and nothing left to send: 204 tells EventSource not to reconnect
            return Response(status_code=204)
        stream = event_stream(
            store,
            self.settings.workspace,
            session_id,
            after=after,
            keepalive=self.settings.keepalive,
            stopping=self.stopping,
        )
        return StreamingResponse(
            self._counted(stream),
            media_type="text/event-stream",
            headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
        )

    async def _counted(self, stream: AsyncGenerator[str, None]) -> AsyncIterator[str]:
        self.open_streams += 1
        try:
            async for chunk in stream:
                yield chunk
        finally:
            self.open_streams -= 1
            await stream.aclose()

    # -------------------------------------------------------------- answers

    async def _position(self, session: Session) -> tuple[str | None, str | None]:
        if session.current_journey_id is None:
            return None, None
        agent = await self._runtime().agent(self.settings.workspace, session.agent_id)
        for journey in agent.stored.bundle.journeys:
            if journey.id == session.current_journey_id:
                state = next(
                    (s.name for s in journey.states if s.id == session.current_state_id), None
                )
                return journey.title, state
        return None, None

    async def _session_data(self, session: Session) -> dict[str, Any]:
        journey, state = await self._position(session)
        return {
            "session_id": str(session.id),
            "agent": self.agent_name,
            "customer_id": session.customer_id,
            "status": session.status.value,
            "mode": session.mode.value,
            "journey": journey,
            "state": state,
            "last_offset": session.event_count - 1,
            "events_url": f"/sessions/{session.id}/events",
        }

    def _turn_data(self, turn: TurnResult) -> dict[str, Any]:
        return {
            "session_id": str(turn.session.id),
            "replies": list(turn.replies),
            "journey": turn.journey,
            "state": turn.state,
            "events": [
                {"offset": event.offset, "type": event.event_type.value} for event in turn.events
            ],
            "last_offset": turn.session.event_count - 1,
            "duplicate": turn.duplicate,
            "status": turn.session.status.value,
            "mode": turn.session.mode.value,
        }


def _translate(handler: Callable[[Request], Any]) -> Callable[[Request], Any]:
    """Storage and runtime errors as answers with proper statuses."""

    async def translated(request: Request) -> Response:
        try:
            response: Response = await handler(request)
        except NotFound:
            raw = request.path_params.get("session_id", "")
            raise ApiError(404, "unknown_session", f"there is no session {raw!r} here") from None
        except SessionClosed as exc:
            raise ApiError(409, "session_closed", f"{exc}") from None
        except ConcurrentUpdate:
            raise ApiError(
                503,
                "busy",
                "the session kept changing under this message; send it again",
                headers={"retry-after": "1"},
            ) from None
        except InvalidData as exc:
            raise ApiError(422, "invalid_data", str(exc)) from None
        except (StorageError, OSError) as exc:
            logger.exception("database failure")
            raise ApiError(
                503,
                "database_unavailable",
                "the database did not answer; try again shortly",
                headers={"retry-after": "2"},
            ) from exc
        return response

    return translated


# ---------------------------------------------------------------------- shutting down


@contextlib.contextmanager
def _streams_end_on_exit_signals(backend: Backend) -> Iterator[None]:
    """Chain into the server's SIGINT/SIGTERM handlers so open streams end at once.

    uvicorn waits for open responses before it runs the lifespan shutdown, and an
    event stream never finishes by itself: without this, every open chat page
    would hold a graceful shutdown until its timeout.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[int, Any] = {}

    def on_signal(number: int, frame: FrameType | None) -> None:
        backend.stop_streams()
        handler = previous.get(number)
        if callable(handler):
            handler(number, frame)
        elif handler != signal.SIG_IGN:  # nobody else handles it: its default action
            signal.signal(number, signal.SIG_DFL)
            signal.raise_signal(number)

    for which in (signal.SIGINT, signal.SIGTERM):
        previous[which] = signal.getsignal(which)
        signal.signal(which, on_signal)
    try:
        yield
    finally:
        for number, handler in previous.items():
            if signal.getsignal(number) is on_signal:
                signal.signal(number, handler)


class ChatBackendApp:
    """The ASGI application: the routes, and a lifespan that starts and stops the backend.

    The lifespan is handled here rather than by Starlette so that a backend that
    cannot start (bad bundle, unreachable database, refused publish) reports one
    sentence to the server, not a traceback.
    """

    def __init__(self, backend: Backend, routes: Starlette) -> None:
        self.backend = backend
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.routes(scope, receive, send)
            return
        await receive()  # lifespan.startup
        try:
            await self.backend.start()
        except (StartupError, StorageError, OSError) as exc:
            await send({"type": "lifespan.startup.failed", "message": f"cannot start: {exc}"})
            return
        try:
            with _streams_end_on_exit_signals(self.backend):
                await send({"type": "lifespan.startup.complete"})
                await receive()  # lifespan.shutdown
        finally:
            await self.backend.close()
        await send({"type": "lifespan.shutdown.complete"})


def create_app(settings: Settings | None = None) -> ChatBackendApp:
    """The ASGI application; nothing is read or opened before the server starts it.

    ``settings``: ``None`` reads the environment at start-up (:meth:`Settings.from_environment`).
    """
    backend = Backend(settings)
    routes = [
        Route("/", backend.page, methods=["GET"]),
        Route("/healthz", _translate(backend.health), methods=["GET"]),
        Route("/sessions", _translate(backend.create_session), methods=["POST"]),
        Route("/sessions/{session_id}", _translate(backend.get_session), methods=["GET"]),
        Route(
            "/sessions/{session_id}/messages",
            _translate(backend.post_message),
            methods=["POST"],
        ),
        Route(
            "/sessions/{session_id}/messages/stream",
            _translate(backend.stream_message),
            methods=["POST"],
        ),
        Route("/sessions/{session_id}/end", _translate(backend.end_session), methods=["POST"]),
        Route("/sessions/{session_id}/events", _translate(backend.events), methods=["GET"]),
    ]
    starlette = Starlette(
        routes=routes,
        exception_handlers={
            ApiError: _on_api_error,
            _ClientLeft: _on_client_left,
            HTTPException: _on_http_error,
            Exception: _on_unexpected,
        },
    )
    return ChatBackendApp(backend, starlette)


app = create_app()
"""The backend configured from the environment (``uvicorn examples.web.app:app``)."""
