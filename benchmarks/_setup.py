"""Turns the storage benchmarks commit straight to a store, without the engine: a
customer's message, and a turn committed at the version the session is at.

A sibling script module, imported by ``bench_citus``, ``bench_publish_load`` and
``bench_session_length``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from uuid import UUID

from parlant_runtime.model import EventType
from parlant_runtime.storage.port import NewEvent, TurnCommit

if TYPE_CHECKING:  # bench_publish_load's workers may run an older tree of the library
    from parlant_runtime.model import Session
    from parlant_runtime.storage.port import Store

__all__ = ["commit_next", "message"]


def message(text: str, key: str | None = None) -> NewEvent:
    """A customer's message saying ``text`` (with the idempotency key ``key``)."""
    return NewEvent(
        event_type=EventType.CUSTOMER_MESSAGE, content={"text": text}, idempotency_key=key
    )


async def commit_next(
    store: Store, ws: str, session_id: UUID, events: Sequence[NewEvent], **changes: Any
) -> Session:
    """A turn of ``events`` committed on the session at the version it is at now (read
    first), with ``changes`` as the turn's other fields; the session as it then is."""
    session = await store.get_session(ws, session_id)
    return await store.commit_turn(
        ws,
        TurnCommit(
            session_id=session_id,
            expected_version=session.version,
            events=list(events),
            **changes,
        ),
    )
