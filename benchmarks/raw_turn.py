"""Raw-driver references for a persisted turn: the least a turn can cost on each database.

A turn here is what any chat backend does for one customer message: in one
transaction, read the session row, append three events (the customer's message, a
transition, the reply) and move the session with a compare-and-set ``UPDATE`` on its
version. No ORM, no models, no validation: the driver alone, with the same JSON
codecs. The tables are the reference's own (``raw_session``, ``raw_event``, created
by :func:`create_postgres` and :func:`create_sqlite`), so the reference does not
change when the runtime's schema does.

``benchmarks/bench_storage.py`` measures the runtime against these in the same run;
other benchmarks may import them (``from benchmarks.raw_turn import ...`` or by path).
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from typing import Any
from uuid import UUID

import asyncpg  # type: ignore[import-untyped]  # no stubs, no py.typed

__all__ = [
    "EVENTS_PER_TURN",
    "PostgresRawTurn",
    "SqliteRawTurn",
    "create_postgres",
    "create_sqlite",
]

EVENTS_PER_TURN = 3

_POSTGRES_DDL = """
CREATE TABLE IF NOT EXISTS raw_session (
    id uuid PRIMARY KEY, version integer NOT NULL DEFAULT 0, state integer NOT NULL DEFAULT 0,
    event_count integer NOT NULL DEFAULT 0, updated_at timestamp NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS raw_event (
    session_id uuid NOT NULL REFERENCES raw_session (id), "offset" integer NOT NULL,
    kind text NOT NULL, content jsonb NOT NULL, PRIMARY KEY (session_id, "offset"));
"""
_SQLITE_DDL = """
CREATE TABLE IF NOT EXISTS raw_session (
    id text PRIMARY KEY, version integer NOT NULL DEFAULT 0, state integer NOT NULL DEFAULT 0,
    event_count integer NOT NULL DEFAULT 0, updated_at text NOT NULL DEFAULT CURRENT_TIMESTAMP);
CREATE TABLE IF NOT EXISTS raw_event (
    session_id text NOT NULL REFERENCES raw_session (id), "offset" integer NOT NULL,
    kind text NOT NULL, content text NOT NULL, PRIMARY KEY (session_id, "offset"));
"""
_KINDS = ("customer_message", "journey_transition", "agent_message")


def _contents(number: int) -> list[dict[str, Any]]:
    return [{"text": f"turn {number}, event {i}"} for i in range(EVENTS_PER_TURN)]


async def _json_codecs(connection: asyncpg.Connection) -> None:
    for name in ("json", "jsonb"):
        await connection.set_type_codec(
            name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
        )


async def create_postgres(dsn: str) -> None:
    """The reference's two tables in the database at ``dsn`` (a plain ``postgresql://``)."""
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(_POSTGRES_DDL)
    finally:
        await connection.close()


class PostgresRawTurn:
    """Raw asyncpg: ``BEGIN``, ``SELECT`` the session, three event ``INSERT``s
    (``executemany``), the compare-and-set ``UPDATE``, ``COMMIT``."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @classmethod
    async def open(cls, dsn: str, size: int) -> PostgresRawTurn:
        pool = await asyncpg.create_pool(dsn, min_size=size, max_size=size, init=_json_codecs)
        return cls(pool)

    async def close(self) -> None:
        await self.pool.close()

    async def new_session(self) -> UUID:
        session_id = uuid.uuid4()
        await self.pool.execute("INSERT INTO raw_session (id) VALUES ($1)", session_id)
        return session_id

    async def turn(self, session_id: UUID, number: int) -> None:
        async with self.pool.acquire() as connection, connection.transaction():
            row = await connection.fetchrow("SELECT * FROM raw_session WHERE id = $1", session_id)
            if row is None:
                raise RuntimeError("no such raw session")
            base = row["event_count"]
            await connection.executemany(
                'INSERT INTO raw_event (session_id, "offset", kind, content) '
                "VALUES ($1, $2, $3, $4)",
                [
                    (session_id, base + i, _KINDS[i], content)
                    for i, content in enumerate(_contents(number))
                ],
            )
            status = await connection.execute(
                "UPDATE raw_session SET version = version + 1, state = $3, "
                "event_count = event_count + $4, updated_at = now() "
                "WHERE id = $1 AND version = $2",
                session_id,
                row["version"],
                number % 4,
                EVENTS_PER_TURN,
            )
            if status != "UPDATE 1":
                raise RuntimeError("the raw compare-and-set failed")


def create_sqlite(path: str) -> None:
    """The reference's two tables in the SQLite file at ``path`` (WAL)."""
    connection = sqlite3.connect(path)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.executescript(_SQLITE_DDL)
    finally:
        connection.close()


class SqliteRawTurn:
    """Raw sqlite3 on one connection (WAL, the runtime's durability settings):
    ``BEGIN IMMEDIATE``, ``SELECT`` the session, three event ``INSERT``s, the
    compare-and-set ``UPDATE``, ``COMMIT``. Blocking calls, as the module has no other."""

    def __init__(self, path: str) -> None:
        self.connection = sqlite3.connect(path, isolation_level=None)
        self.connection.execute("PRAGMA journal_mode=WAL")
        self.connection.execute("PRAGMA busy_timeout=5000")
        self.connection.execute("PRAGMA foreign_keys=ON")

    def close(self) -> None:
        self.connection.close()

    def new_session(self) -> str:
        session_id = str(uuid.uuid4())
        self.connection.execute("INSERT INTO raw_session (id) VALUES (?)", (session_id,))
        return session_id

    def turn(self, session_id: str, number: int) -> None:
        connection = self.connection
        connection.execute("BEGIN IMMEDIATE")
        try:
            row = connection.execute(
                "SELECT id, version, state, event_count FROM raw_session WHERE id = ?",
                (session_id,),
            ).fetchone()
            if row is None:
                raise RuntimeError("no such raw session")
            base = row[3]
            connection.executemany(
                'INSERT INTO raw_event (session_id, "offset", kind, content) VALUES (?, ?, ?, ?)',
                [
                    (session_id, base + i, _KINDS[i], json.dumps(content))
                    for i, content in enumerate(_contents(number))
                ],
            )
            changed = connection.execute(
                "UPDATE raw_session SET version = version + 1, state = ?, "
                "event_count = event_count + ?, updated_at = CURRENT_TIMESTAMP "
                "WHERE id = ? AND version = ?",
                (number % 4, EVENTS_PER_TURN, session_id, row[1]),
            ).rowcount
            if changed != 1:
                raise RuntimeError("the raw compare-and-set failed")
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
