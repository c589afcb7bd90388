"""Storage: the port the runtime persists through, and its adapters.

The port (:class:`Store`) and its errors import without any database driver. The
SQL adapter (SQLite through aiosqlite, PostgreSQL through asyncpg) lives in
:mod:`parlant_runtime.storage.sql` and is imported only when a database URL asks
for it; :class:`MemoryStore` keeps everything in the process, for tests.
"""

from __future__ import annotations

from parlant_runtime.storage.memory import MemoryStore
from parlant_runtime.storage.port import (
    MAX_EVENT_BYTES,
    MAX_EVENTS_PER_TURN,
    MAX_ID_LENGTH,
    MAX_INTEGER,
    MAX_TITLE_LENGTH,
    MAX_VALUE_DEPTH,
    MAX_VARIABLE_BYTES,
    AgentChanges,
    ConcurrentUpdate,
    DatabaseUnavailable,
    DatabaseURLError,
    DuplicateMessage,
    InvalidData,
    MigrationError,
    NewEvent,
    NotFound,
    PublishRefused,
    PublishReport,
    SessionStart,
    StorageError,
    Store,
    StoredAgent,
    TurnCommit,
    VariableChange,
)

__all__ = [
    "MAX_EVENTS_PER_TURN",
    "MAX_EVENT_BYTES",
    "MAX_ID_LENGTH",
    "MAX_INTEGER",
    "MAX_TITLE_LENGTH",
    "MAX_VALUE_DEPTH",
    "MAX_VARIABLE_BYTES",
    "AgentChanges",
    "ConcurrentUpdate",
    "DatabaseURLError",
    "DatabaseUnavailable",
    "DuplicateMessage",
    "InvalidData",
    "MemoryStore",
    "MigrationError",
    "NewEvent",
    "NotFound",
    "PublishRefused",
    "PublishReport",
    "SessionStart",
    "StorageError",
    "Store",
    "StoredAgent",
    "TurnCommit",
    "VariableChange",
]
