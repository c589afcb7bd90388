"""One lock per session with a call running or waiting in a runtime.

Within one process, calls on one session run one at a time, in arrival order;
other sessions are not held up. A lock is dropped when the last caller leaves, so
idle and ended sessions keep nothing. The locks belong to the event loop that uses
them: one ``Runtime`` per loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from uuid import UUID

__all__ = ["SessionLocks"]


@dataclass
class _Held:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


class SessionLocks:
    """One lock per session with a call running or waiting; dropped when the last one
    leaves, so idle and ended sessions hold nothing."""

    def __init__(self) -> None:
        self._held: dict[UUID, _Held] = {}

    def __len__(self) -> int:
        return len(self._held)

    @asynccontextmanager
    async def hold(self, session_id: UUID) -> AsyncIterator[None]:
        held = self._held.get(session_id)
        if held is None:
            held = self._held[session_id] = _Held()
        held.users += 1
        try:
            async with held.lock:
                yield
        finally:
            held.users -= 1
            if held.users == 0:
                del self._held[session_id]
