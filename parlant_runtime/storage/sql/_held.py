"""Connections of the store's pool that its driver path keeps between calls.

The driver path (:mod:`._pg_turns`: a turn's read and commit on PostgreSQL) takes a
connection of the store's pool for each call. Checking one out of SQLAlchemy's pool and
back in costs a greenlet hop each way and the pool's bookkeeping: measured, about 0.1 ms
of client CPU per call in a turn, as much as the turn's read itself
(``benchmarks/bench_pg_paths.py``). So a connection that path gives back is kept here
(at most as many as the pool keeps, its ``size``), and its next call takes it directly.

Kept, a connection stays checked out of the pool, so the pool's limits hold; one kept
unused for :data:`IDLE` seconds goes back to the pool, so that the pool's other users
(publishes, session creations, waiters) never wait long for a connection kept here. A
kept connection that died (the driver knows, as the pool's checkout check does:
:func:`.faults.drop_dead_connections`) goes back for the pool to replace, and
:meth:`HeldConnections.release` gives every kept one back when the store closes.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import greenlet_spawn

__all__ = ["IDLE", "HeldConnections", "give_back"]

IDLE = 0.1
"""Seconds a connection is kept unused before it goes back to the pool."""


async def give_back(raw: Any) -> None:
    """Return a pooled connection to the pool (one that died is replaced at its next
    checkout); never raises: closing must not turn a call's outcome into a failure."""
    with contextlib.suppress(Exception):
        await greenlet_spawn(raw.close)


class HeldConnections:
    """Pooled connections kept between calls of the driver path (see the module)."""

    def __init__(self, engine: AsyncEngine, idle: float = IDLE) -> None:
        self._engine = engine
        size = getattr(engine.pool, "size", None)
        self._size = int(size()) if callable(size) else 0  # NullPool and the like: none
        self._idle = idle
        self._kept: list[tuple[Any, float]] = []  # (connection, kept since), newest last
        self._sweep: asyncio.TimerHandle | None = None
        self._returning: set[asyncio.Task[None]] = set()
        self._closed = False

    async def take(self) -> Any:
        """A pooled connection (its driver's connection is ``.driver_connection``): the
        newest kept one that is alive, else one checked out of the pool."""
        while self._kept:
            raw, _ = self._kept.pop()
            if not raw.driver_connection.is_closed():
                return raw
            await give_back(raw)
        return await self._engine.raw_connection()

    async def give(self, raw: Any) -> None:
        """Keep a connection :meth:`take` gave, or return it to the pool (the store is
        closing, as many are kept as the pool keeps, or it died)."""
        if self._closed or len(self._kept) >= self._size or raw.driver_connection.is_closed():
            await give_back(raw)
            return
        loop = asyncio.get_running_loop()
        self._kept.append((raw, loop.time()))
        if self._sweep is None:
            self._sweep = loop.call_later(self._idle, self._return_idle)

    def _return_idle(self) -> None:
        """Give the connections kept unused for :data:`IDLE` seconds back to the pool."""
        self._sweep = None
        loop = asyncio.get_running_loop()
        due = loop.time() - self._idle
        idle = [raw for raw, since in self._kept if since <= due]
        self._kept = [(raw, since) for raw, since in self._kept if since > due]
        for raw in idle:
            task = loop.create_task(give_back(raw))
            self._returning.add(task)
            task.add_done_callback(self._returning.discard)
        if self._kept:
            oldest = self._kept[0][1]
            self._sweep = loop.call_at(oldest + self._idle, self._return_idle)

    async def release(self) -> None:
        """Give every kept connection back to the pool and keep none from now on."""
        self._closed = True
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        kept, self._kept = self._kept, []
        for raw, _ in kept:
            await give_back(raw)
        if self._returning:
            await asyncio.gather(*self._returning, return_exceptions=True)
