"""Waking whoever waits for a session's new events.

Commits in this process wake local waiters directly. On PostgreSQL every commit
also sends ``NOTIFY parlant_events, '<session>:<last offset>'`` inside its
transaction (delivered on commit), and one listening connection per store wakes
the waiters of other processes; if that connection cannot be had, or on SQLite,
one poller per store (:mod:`.poller`) asks at ``poll_interval`` for the event
counts of every waited-on session in one statement, however many wait. A wake-up
only says "look again": the waiter always re-reads the events, so a lost or
duplicated notification costs a query, never an event.

When the listening connection dies (the server restarted, the connection was
killed), every waiter is woken and the poller takes over, and the connection is opened again in the
background, with a growing pause between attempts (0.1 s up to 2 s); once it
listens again the waiters are woken once more (a commit in between is found by
their re-read) and go back to waiting for notifications.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from parlant_runtime.storage.sql.poller import SessionPoller

__all__ = ["EventNotifier"]

CHANNEL = "parlant_events"
_FIRST_PAUSE = 0.1
_LONGEST_PAUSE = 2.0

_log = logging.getLogger("parlant_runtime.storage")


class EventNotifier:
    """Per-session wake-ups, fed by local commits and (on PostgreSQL) LISTEN/NOTIFY."""

    def __init__(self, engine: AsyncEngine, *, poll_interval: float) -> None:
        self._engine = engine
        self._poll_interval = poll_interval
        self._waiters: dict[UUID, set[asyncio.Event]] = {}
        self._after: dict[asyncio.Event, int] = {}  # each waiter's offset seen, for the poller
        self._poller = SessionPoller(engine, poll_interval, self._waiting, self._polled)
        self._listener: AsyncConnection | None = None
        self._listening = False
        self._closed = False
        self._start_lock = asyncio.Lock()
        self._reconnect: asyncio.Task[None] | None = None
        self._warned = False  # a failed LISTEN is said once at WARNING until one succeeds

    def local_commit(self, session_id: UUID) -> None:
        """A commit of this process: wake its waiters now."""
        for event in self._waiters.get(session_id, ()):
            event.set()

    def _waiting(self) -> dict[UUID, int]:
        """Each waited-on session with the lowest offset one of its waiters has seen."""
        return {
            session_id: min(self._after.get(event, -1) for event in events)
            for session_id, events in self._waiters.items()
            if events
        }

    def _polled(self, session_id: UUID, last_offset: int) -> None:
        """The poller saw events up to ``last_offset``: wake the waiters before it."""
        for event in self._waiters.get(session_id, ()):
            if self._after.get(event, -1) < last_offset:
                event.set()

    def _wake_all(self) -> None:
        for waiters in self._waiters.values():
            for event in waiters:
                event.set()

    def _on_notify(self, *args: Any) -> None:
        payload = str(args[-1])
        try:
            session_id = UUID(payload.split(":", 1)[0])
        except ValueError:
            return
        self.local_commit(session_id)

    async def _listen(self) -> bool:
        """Open the listening connection if there is none; whether one listens now."""
        if self._listening or self._closed or self._engine.dialect.name != "postgresql":
            return self._listening
        if self._reconnect is not None:
            return False  # the background reconnection is at it: waiters poll meanwhile
        return await self._open()

    async def _open(self) -> bool:
        async with self._start_lock:
            if self._listening or self._closed:
                return self._listening
            connection: AsyncConnection | None = None
            try:
                connection = await self._engine.connect()
                raw = await connection.get_raw_connection()
                driver: Any = raw.driver_connection
                await driver.add_listener(CHANNEL, self._on_notify)
                driver.add_termination_listener(self._on_lost)
            except Exception as exc:  # no listener: waiters poll, which is slower but correct
                if connection is not None:
                    await _discard(connection)
                # every wait (and every reconnection attempt) tries again: said once
                level = logging.DEBUG if self._warned else logging.WARNING
                self._warned = True
                _log.log(level, "no LISTEN connection, waiters poll: %s", type(exc).__name__)
                return False
            if self._closed:  # the store closed while this connected: nobody else will close it
                await _discard(connection)
                return False
            self._listener = connection
            self._listening = True
            if self._warned:
                _log.info("the LISTEN connection is open again; waiters stop polling")
            self._warned = False
            return True

    def _on_lost(self, *_: Any) -> None:
        """The listening connection died (asyncpg calls this): poll, and listen again."""
        if not self._listening:
            return
        self._listening = False
        _log.warning("the LISTEN connection was lost; waiters poll while it is opened again")
        self._warned = True  # the failed attempts to open it again are DEBUG
        lost, self._listener = self._listener, None
        self._wake_all()  # they wait for a notification that may not come: poll instead
        if not self._closed and self._reconnect is None:
            self._reconnect = asyncio.get_running_loop().create_task(self._listen_again(lost))

    async def _listen_again(self, lost: AsyncConnection | None) -> None:
        """Open a listening connection again, pausing longer after each failure."""
        try:
            if lost is not None:
                await _discard(lost)
            pause = _FIRST_PAUSE
            while not self._closed:
                await asyncio.sleep(pause)
                if await self._open():
                    self._wake_all()  # re-read: commits while nobody listened went unheard
                    return
                pause = min(_LONGEST_PAUSE, pause * 2)
        finally:
            self._reconnect = None

    @contextlib.asynccontextmanager
    async def watch(
        self, session_id: UUID, after: int = -1
    ) -> AsyncIterator[Callable[[float], Awaitable[None]]]:
        """Register a waiter (that has seen the events up to ``after``) before reading,
        so no commit slips between read and wait."""
        await self._listen()
        event = asyncio.Event()
        self._waiters.setdefault(session_id, set()).add(event)
        self._after[event] = after

        async def woken(timeout: float) -> None:
            if not self._listening:  # no notifications from other processes: the poller
                self._poller.ensure_running()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), timeout)
            event.clear()

        try:
            yield woken
        finally:
            self._after.pop(event, None)
            waiters = self._waiters.get(session_id)
            if waiters is not None:
                waiters.discard(event)
                if not waiters:
                    del self._waiters[session_id]

    async def close(self) -> None:
        """Stop listening and polling, and wake every waiter (it will find the store closed)."""
        self._closed = True
        self._wake_all()
        await self._poller.close()
        if self._reconnect is not None:
            self._reconnect.cancel()
            with contextlib.suppress(BaseException):
                await self._reconnect
            self._reconnect = None
        listener, self._listener = self._listener, None
        self._listening = False
        if listener is not None:
            with contextlib.suppress(Exception):
                raw = await listener.get_raw_connection()
                driver: Any = raw.driver_connection
                driver.remove_termination_listener(self._on_lost)
                await driver.remove_listener(CHANNEL, self._on_notify)
            await _discard(listener)


async def _discard(connection: AsyncConnection) -> None:
    """Close a connection that may be dead already (the pool then drops it)."""
    with contextlib.suppress(Exception):
        await connection.close()
