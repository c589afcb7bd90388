"""What a runtime call reports to the host: a span, a duration, and log records.

:func:`observed` wraps the public methods of :class:`~parlant_runtime.engine.Runtime`.
Each call is a span (``parlant.turn`` for the calls that commit a turn) with the
workspace, agent, session, the journey and state it ends in, the replies and whether
the message was a duplicate, and the call's :class:`~parlant_runtime.telemetry.Telemetry`
is current while it runs (the tool, model and store spans are its children).

After a turn commits, what the runtime swallowed is logged on ``parlant_runtime.engine``
at WARNING, once per failure: each tool call that failed (also one that fell back), by
the tool's name, and each other error of the turn (a plug-in that failed or timed out,
the retriever, a chain bound). They are read from the turn's trace, which the engine
has already redacted, so no private value reaches a log record; DEBUG has a one-line
summary per turn.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any, Protocol, TypeVar, cast

from parlant_runtime.engine.trace import Trace
from parlant_runtime.model import Session
from parlant_runtime.telemetry import SpanLike, Telemetry, using

__all__ = ["observed"]

_log = logging.getLogger("parlant_runtime.engine")

_F = TypeVar("_F", bound=Callable[..., Awaitable[Any]])


class _Observable(Protocol):
    telemetry: Telemetry


class _TurnLike(Protocol):
    """What is read of a :class:`~parlant_runtime.engine.runtime.TurnResult`."""

    @property
    def session(self) -> Session: ...
    @property
    def replies(self) -> tuple[str, ...]: ...
    @property
    def journey(self) -> str | None: ...
    @property
    def state(self) -> str | None: ...
    @property
    def tool_calls(self) -> tuple[str, ...]: ...
    @property
    def trace(self) -> Trace: ...
    @property
    def duplicate(self) -> bool: ...


def observed(operation: str, *, span: str = "parlant.turn") -> Callable[[_F], _F]:
    """Report a ``Runtime`` method ``(self, workspace_id, session_id or agent_id, ...)``
    as ``span`` (see the module docstring)."""

    def decorate(method: _F) -> _F:
        first, second = list(inspect.signature(method).parameters)[1:3]
        key = "parlant.agent.id" if second == "agent_id" else "parlant.session.id"

        @wraps(method)
        async def call(runtime: _Observable, *args: Any, **kw: Any) -> Any:
            telemetry = runtime.telemetry
            workspace_id = str(args[0] if args else kw[first])
            attributes = {
                "parlant.operation": operation,
                "parlant.workspace": workspace_id,
                key: str(args[1] if len(args) > 1 else kw[second]),
            }
            started = time.perf_counter()
            with using(telemetry), telemetry.span(span, attributes) as current:
                result = await method(runtime, *args, **kw)
                elapsed = time.perf_counter() - started
                _report(telemetry, current, operation, workspace_id, result, elapsed)
            return result

        return cast(_F, call)

    return decorate


def _report(  # noqa: PLR0917 - private, one call site
    telemetry: Telemetry,
    span: SpanLike,
    operation: str,
    workspace_id: str,
    result: object,
    elapsed: float,
) -> None:
    if isinstance(result, Session):
        span.set_attribute("parlant.session.id", str(result.id))
        span.set_attribute("parlant.agent.id", str(result.agent_id))
        return
    turn: _TurnLike = result  # type: ignore[assignment]  # every other method: a TurnResult
    session = turn.session
    if telemetry.on:
        span.set_attribute("parlant.agent.id", str(session.agent_id))
        span.set_attribute("parlant.replies", len(turn.replies))
        span.set_attribute("parlant.duplicate", turn.duplicate)
        span.set_attribute("parlant.errors", len(turn.trace.errors))
        if turn.journey is not None:
            span.set_attribute("parlant.journey", turn.journey)
        if turn.state is not None:
            span.set_attribute("parlant.state", turn.state)
        telemetry.turn_duration.record(
            elapsed, {"parlant.operation": operation, "parlant.workspace": workspace_id}
        )
    _log_turn(operation, workspace_id, session, turn, elapsed)


def _log_turn(
    operation: str, workspace_id: str, session: Session, turn: _TurnLike, elapsed: float
) -> None:
    where = (workspace_id, session.id, session.agent_id)
    failed = [call for call in turn.trace.tools if call.get("ok") is False]
    for call in failed:  # the tool's error is also the turn's: logged once, with its name
        _log.warning(
            "tool %r failed%s (workspace %s, session %s, agent %s): %s",
            call.get("tool"),
            " and fell back" if call.get("fell_back") else "",
            *where,
            call.get("error"),
        )
    told = {call.get("error") for call in failed}
    for error in turn.trace.errors:
        if error not in told:
            _log.warning("turn failure (workspace %s, session %s, agent %s): %s", *where, error)
    if _log.isEnabledFor(logging.DEBUG):
        _log.debug(
            "%s (workspace %s, session %s, agent %s): %d replies, journey %s, state %s, "
            "tools %s, %d errors%s, %.1f ms",
            operation,
            *where,
            len(turn.replies),
            turn.journey,
            turn.state,
            list(turn.tool_calls),
            len(turn.trace.errors),
            ", duplicate" if turn.duplicate else "",
            elapsed * 1000,
        )
