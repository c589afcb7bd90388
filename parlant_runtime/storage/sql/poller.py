"""One poller per store for the waiters that no notification reaches.

On SQLite (and on PostgreSQL while no listening connection can be had) commits of
other processes send no notification. Rather than every waiter polling the events
of its own session (800 open streams were 16,000 queries a second, and pushed
other requests' answers to seconds), one task per store asks, once per interval,
for the event count of every session someone waits on, in one statement per 500
sessions, and wakes the waiters whose session has events past their offset. The
task runs only while someone waits. Commits of this process still wake their
waiters at once (:meth:`EventNotifier.local_commit`), without it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Collection, Mapping
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from parlant_runtime.storage.sql import schema as t

__all__ = ["BATCH", "SessionPoller"]

BATCH = 500
"""Sessions asked about per statement (SQLite allows 999 bound parameters on old builds)."""

logger = logging.getLogger(__name__)

_EVENT_COUNTS = sa.select(t.session.c.id, t.session.c.event_count).where(
    t.session.c.id.in_(sa.bindparam("ids", expanding=True))
)


class SessionPoller:
    """Asks for the event counts of the waited-on sessions, once per ``interval``.

    ``waiting`` gives, at each round, the waited-on sessions with the lowest offset a
    waiter of each has seen; ``wake(session_id, last_offset)`` is called for each
    session that has events past it.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        interval: float,
        waiting: Callable[[], Mapping[UUID, int]],
        wake: Callable[[UUID, int], None],
    ) -> None:
        self._engine = engine
        self._interval = interval
        self._waiting = waiting
        self._wake = wake
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    def ensure_running(self) -> None:
        """Start the polling task unless it runs (it stops when nobody waits)."""
        if self._task is None or self._task.done():
            self._stop.clear()
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            # a sleep that close() can end early, without cancelling a query under way
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self._interval)
            if self._stop.is_set():
                return
            waiting = self._waiting()
            if not waiting:
                return
            try:
                counts = await self._event_counts(waiting.keys())
            except Exception:  # the next round tries again; waiters still have their timeout
                logger.debug("polling for new events failed", exc_info=True)
                continue
            for session_id, count in counts.items():
                if count - 1 > waiting.get(session_id, count):
                    self._wake(session_id, count - 1)

    async def _event_counts(self, sessions: Collection[UUID]) -> dict[UUID, int]:
        ids = list(sessions)
        counts: dict[UUID, int] = {}
        async with self._engine.connect() as conn:
            for start in range(0, len(ids), BATCH):
                rows = await conn.execute(_EVENT_COUNTS, {"ids": ids[start : start + BATCH]})
                counts.update({row.id: int(row.event_count) for row in rows})
        return counts

    async def close(self) -> None:
        """Stop polling; waits for a round under way to give its connection back."""
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self._task
            self._task = None
