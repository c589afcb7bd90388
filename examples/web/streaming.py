"""A session's events as server-sent events (``text/event-stream``).

One stream follows one session from an offset: it sends the stored events after
it, then waits for new ones with :meth:`Store.wait_for_events` (woken at once by a
commit in this process, by LISTEN/NOTIFY from another process on PostgreSQL, on
SQLite by the store's one poller, which asks about every waited-on session in one
query per interval however many streams are open). Every event goes out with
``id: <offset>``, so a browser that
reconnects sends ``Last-Event-ID`` and resumes exactly after the last event it
got. While nothing happens a comment line goes out every ``keepalive`` seconds
(proxies keep the connection, and a client that left is noticed). The stream ends
when the session is closed (a reconnect then gets 204, which tells EventSource to
stop), and when the server shuts down (a browser reconnects, possibly to another
process, and resumes).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncGenerator, Sequence
from typing import Any
from uuid import UUID

from parlant_runtime import Event, EventType, Store

__all__ = ["RETRY_MILLISECONDS", "event_data", "event_stream", "format_event"]

RETRY_MILLISECONDS = 1000
"""How long a browser waits before it reconnects a stream that ended."""

CLOSED_STATUSES = frozenset({"completed", "abandoned"})

logger = logging.getLogger("uvicorn.error")  # printed with the server's own messages


def event_data(event: Event) -> dict[str, Any]:
    """What a client sees of an event: everything but its metadata (the turn's trace)."""
    data: dict[str, Any] = {
        "offset": event.offset,
        "type": event.event_type.value,
        "content": event.content,
        "created_at": event.created_at.isoformat() if event.created_at else None,
    }
    if event.journey_id is not None:
        data["journey_id"] = str(event.journey_id)
    if event.state_id is not None:
        data["state_id"] = str(event.state_id)
    if event.tool_call_id is not None:
        data["tool_call_id"] = event.tool_call_id
    return data


def format_event(event: Event) -> str:
    """One SSE message: ``id`` is the offset, ``data`` one line of JSON."""
    payload = json.dumps(event_data(event), ensure_ascii=False, separators=(",", ":"))
    return f"id: {event.offset}\ndata: {payload}\n\n"


def closes_session(event: Event) -> bool:
    """Whether the event records the end of the session."""
    return (
        event.event_type is EventType.STATUS_UPDATE
        and event.content.get("status") in CLOSED_STATUSES
    )


_DETACHED: set[asyncio.Future[Sequence[Event]]] = set()


def _finished(task: asyncio.Future[Sequence[Event]]) -> None:
    _DETACHED.discard(task)
    if not task.cancelled():
        task.exception()  # retrieved, so asyncio does not warn about it


def _detach(task: asyncio.Future[Sequence[Event]]) -> None:
    """Let a wait finish by itself (within its timeout, or when the store closes).

    Cancelling it could interrupt a query, and the SQLite driver then throws its
    connection away; a wait that is left alone returns its connection cleanly.
    """
    if task.done():
        _finished(task)
        return
    _DETACHED.add(task)
    task.add_done_callback(_finished)


async def _next_events(
    store: Store,
    workspace_id: str,
    session_id: UUID,
    after: int,
    *,
    timeout: float,
    stopping: asyncio.Event,
) -> Sequence[Event] | None:
    """Events after ``after`` (empty when ``timeout`` passed), or ``None`` when stopping."""
    waiting = asyncio.ensure_future(
        store.wait_for_events(workspace_id, session_id, after=after, timeout=timeout)
    )
    stopped = asyncio.ensure_future(stopping.wait())
    try:
        await asyncio.wait({waiting, stopped}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:  # the client left
        _detach(waiting)
        raise
    finally:
        stopped.cancel()
    if stopping.is_set():
        _detach(waiting)
        return None
    return waiting.result()


async def event_stream(
    store: Store,
    workspace_id: str,
    session_id: UUID,
    *,
    after: int,
    keepalive: float,
    stopping: asyncio.Event,
) -> AsyncGenerator[str, None]:
    """The session's events after ``after``, as SSE text, until closed or stopped.

    A client that disconnects cancels the iteration (Starlette does); a database
    error ends the stream (logged), and the browser reconnects from where it was.
    """
    yield f"retry: {RETRY_MILLISECONDS}\n: session {session_id}\n\n"
    cursor = after
    while True:
        try:
            events = await _next_events(
                store, workspace_id, session_id, cursor, timeout=keepalive, stopping=stopping
            )
        except Exception:
            logger.exception("the event stream of session %s failed; it ends here", session_id)
            return
        if events is None:
            return
        if not events:
            yield ": keep-alive\n\n"
            continue
        for event in events:
            yield format_event(event)
            cursor = event.offset
        if any(closes_session(event) for event in events):
            return
