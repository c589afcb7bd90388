"""How a turn's two store calls reach PostgreSQL: SQLAlchemy or the driver, several
statements or one.

Run: ``.venv/bin/python benchmarks/bench_pg_paths.py`` (``--quick`` for fewer calls,
``--json`` for JSON). It needs a PostgreSQL server whose user may create databases (as
``bench_storage.py``: ``$PARLANT_BENCH_POSTGRES_URL``, else
``$PARLANT_TEST_POSTGRES_URL``, else ``postgresql://postgres@127.0.0.1:5432/postgres``);
it creates a throwaway database and drops it at the end.

The turn is ``persisted_turn.py``'s (a strict agent, one journey of four chat states
in a ring): computed once by the engine, then committed again and again on one session
(each commit expecting the version the previous one left), so that only the store's
work is measured. The ways, alternating in blocks on the same store and session:

- commit, ``sqlalchemy, several statements``: the generic path (``_Turns.record_turn``,
  what SQLite runs): ``BEGIN``, the session's ``UPDATE``, the version's, the events',
  the usage row, ``COMMIT``, each through SQLAlchemy's compiled cache;
- commit, ``sqlalchemy, one statement``: what ``SqlStore.record_turn`` does, its one
  statement (``storage/sql/_pg_statements.py``) sent through ``exec_driver_sql`` on a
  connection in autocommit (no compilation; SQLAlchemy's connection, execution and
  result machinery);
- commit, ``driver, one statement``: ``SqlStore.record_turn`` on PostgreSQL, that
  statement on the driver's (asyncpg's) connection of a pooled connection, with its
  prepared-statement cache;
- read, ``sqlalchemy``: the turn's read (``_Sessions.read_turn``, one statement through
  SQLAlchemy's compiled cache); ``sqlalchemy, compiled text``: what ``SqlStore.read_turn``
  does, the statement compiled once and sent through ``exec_driver_sql``; ``driver``:
  ``SqlStore.read_turn`` on PostgreSQL, that text sent to the driver.

For each: median client CPU per call (this process's CPU time over a block, which holds
better than wall time on a busy machine) and median wall time per call, and their
ratios to the driver's way.

Then where the turn's ``NOTIFY`` goes: commits per second of 1 and 8 sessions at once
(a task each), the turn's statement followed by the ``NOTIFY`` in a transaction of its
own (what the store does) or the ``NOTIFY`` in the turn's statement (what it did),
alternating. PostgreSQL holds one lock, for the whole server, from before the commit of
a transaction that notifies until its flush, so the second way commits one session at
a time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bench_storage import admin_url, throwaway_postgres  # a sibling script module
from persisted_turn import WS, ring_agent  # a sibling script module

from parlant_runtime import Runtime
from parlant_runtime.bundle.schema import AgentBundle
from parlant_runtime.storage.checks import check_turn
from parlant_runtime.storage.port import TurnCommit, TurnRead
from parlant_runtime.storage.sql._pg_statements import NOTIFY, turn_arguments, turn_statement
from parlant_runtime.storage.sql._pg_turns import _committed
from parlant_runtime.storage.sql._sessions import _Sessions
from parlant_runtime.storage.sql._statements import _SESSION, _merged_variables
from parlant_runtime.storage.sql._turns import _Turns
from parlant_runtime.storage.sql.store import SqlStore


@dataclass(frozen=True, slots=True)
class Settings:
    calls: int
    block: int
    seconds: float
    rounds: int


FULL = Settings(calls=3_000, block=250, seconds=2.0, rounds=3)
QUICK = Settings(calls=600, block=100, seconds=1.0, rounds=2)


class Bench:
    """One session, committed to and read by every way in turn."""

    def __init__(self, store: SqlStore, template: TurnCommit, version: int) -> None:
        self.store = store
        self.template = template
        self.version = version

    def next_turn(self) -> TurnCommit:
        return self.template.model_copy(update={"expected_version": self.version})

    async def generic(self) -> None:
        committed = await _Turns.record_turn(self.store, WS, self.next_turn())
        self.version = committed.session.version

    async def driver(self) -> None:
        committed = await self.store.record_turn(WS, self.next_turn())
        self.version = committed.session.version

    async def one_statement_sqlalchemy(self) -> None:
        """What ``SqlStore.record_turn`` does, the statement sent by ``exec_driver_sql``."""
        turn = self.next_turn()
        check_turn(turn)
        ids = [uuid.uuid4() for _ in turn.events]
        shape, values = turn_arguments(WS, turn, ids, citus=False, dumps=json.dumps)
        sql, names = turn_statement(shape)
        async with self.store._reader.connect() as conn:  # autocommit, as the store's reads
            row = (await conn.exec_driver_sql(sql, tuple(values[n] for n in names))).first()
        assert row is not None, "the statement wrote nothing"
        self.version = _committed(row, turn, ids).session.version

    async def read_sqlalchemy(self) -> None:
        await _Sessions.read_turn(self.store, WS, self.template.session_id)

    async def read_sqlalchemy_text(self) -> None:
        """What ``SqlStore.read_turn`` does, the statement sent by ``exec_driver_sql``."""
        reads, _ = self.store._reads()
        arguments = tuple(reads.arguments(sid=self.template.session_id, ws=WS))
        async with self.store._reader.connect() as conn:  # autocommit, as the store's reads
            rows = (await conn.exec_driver_sql(reads.sql, arguments)).all()
        columns = reads.located(rows[0])
        TurnRead(
            _SESSION.picked(rows[0], reads.session),
            int(rows[0][columns.index("agent_version")]),
            _merged_variables(rows, columns),
        )

    async def read_driver(self) -> None:
        await self.store.read_turn(WS, self.template.session_id)


class Concurrent:
    """Sessions committed to at once, the turn's ``NOTIFY`` after its statement (what
    the store does, there sent once the call has returned) or in it (what it did):
    PostgreSQL serialises the commits of transactions that notify, on the whole server.
    Both awaited here: the cost of the lock, not of where the round trip falls."""

    def __init__(self, store: SqlStore, template: TurnCommit) -> None:
        self.store = store
        self.template = template
        self.versions: dict[uuid.UUID, int] = {}

    async def add_session(self) -> uuid.UUID:
        runtime = Runtime(self.store)
        session = await runtime.start_session(
            WS, (await self.store.get_session(WS, self.template.session_id)).agent_id
        )
        self.versions[session.id] = session.version
        return session.id

    async def commit_notify_after(self, session_id: uuid.UUID) -> None:
        await self.commit(session_id, inside=False)

    async def commit_notify_in(self, session_id: uuid.UUID) -> None:
        await self.commit(session_id, inside=True)

    async def commit(self, session_id: uuid.UUID, *, inside: bool) -> None:
        turn = self.template.model_copy(
            update={"session_id": session_id, "expected_version": self.versions[session_id]}
        )
        ids = [uuid.uuid4() for _ in turn.events]
        shape, values = turn_arguments(WS, turn, ids, citus=False, dumps=json.dumps)
        sql, names = turn_statement(shape)
        payload = f"{session_id}:0"
        if inside:  # the NOTIFY in the statement's own transaction, as before
            cut = sql.rindex("\nSELECT ") + len("\nSELECT ")
            sql = f"{sql[:cut]}pg_notify('parlant_events', '{payload}'), {sql[cut:]}"
        held = self.store._held()
        raw = await held.take()
        try:
            row = await raw.driver_connection.fetchrow(sql, *(values[n] for n in names))
            if not inside:
                await raw.driver_connection.fetch(NOTIFY, payload)
        finally:
            await held.give(raw)
        self.versions[session_id] = int(row["version"])


async def _rate(
    action: Callable[[uuid.UUID], Awaitable[None]], sessions: list[uuid.UUID], seconds: float
) -> float:
    done = 0
    stop = time.perf_counter() + seconds

    async def worker(session_id: uuid.UUID) -> None:
        nonlocal done
        while time.perf_counter() < stop:
            await action(session_id)
            done += 1

    began = time.perf_counter()
    await asyncio.gather(*(worker(session_id) for session_id in sessions))
    return done / (time.perf_counter() - began)


async def _prepared(url: str) -> tuple[SqlStore, Bench]:
    store = SqlStore.open(url)
    await store.ensure_workspace(WS)
    report = await store.publish(WS, AgentBundle.model_validate(ring_agent()))
    runtime = Runtime(store)
    session_id = (await runtime.start_session(WS, report.agent_id)).id
    captured: list[TurnCommit] = []
    real = store.record_turn

    async def capture(workspace_id: str, turn: TurnCommit) -> Any:
        captured.append(turn)
        return await real(workspace_id, turn)

    store.record_turn = capture  # type: ignore[method-assign]
    for number in range(3):
        result = await runtime.process_message(WS, session_id, f"message {number}")
    del store.record_turn
    turn = captured[-1]
    return store, Bench(store, turn, result.session.version)


async def _timed(action: Callable[[], Awaitable[None]], count: int) -> tuple[float, float]:
    began_cpu, began = time.process_time(), time.perf_counter()
    for _ in range(count):
        await action()
    return (time.process_time() - began_cpu) / count, (time.perf_counter() - began) / count


async def _notify_placement(bench: Concurrent, settings: Settings) -> dict[str, float]:
    """Commits per second of 1 and 8 sessions at once, the ``NOTIFY`` after the turn's
    statement or in it, alternating."""
    rates: dict[str, list[float]] = {}
    for count in (1, 8):
        sessions = [await bench.add_session() for _ in range(count)]
        ways = {"after it": bench.commit_notify_after, "in the statement": bench.commit_notify_in}
        for action in ways.values():  # warm-up
            await _rate(action, sessions, 0.3)
        for _ in range(settings.rounds):
            for where, action in ways.items():
                rate = await _rate(action, sessions, settings.seconds)
                rates.setdefault(f"{count} session(s), NOTIFY {where}", []).append(rate)
    return {name: statistics.median(taken) for name, taken in rates.items()}


async def run(settings: Settings) -> dict[str, Any]:
    async with throwaway_postgres(admin_url()) as url:
        store, bench = await _prepared(url)
        try:
            ways: dict[str, Callable[[], Awaitable[None]]] = {
                "commit: sqlalchemy, several statements": bench.generic,
                "commit: sqlalchemy, one statement": bench.one_statement_sqlalchemy,
                "commit: driver, one statement": bench.driver,
                "read: sqlalchemy": bench.read_sqlalchemy,
                "read: sqlalchemy, compiled text": bench.read_sqlalchemy_text,
                "read: driver": bench.read_driver,
            }
            for action in ways.values():  # warm-up: caches, prepared statements
                await _timed(action, 30)
            samples: dict[str, list[tuple[float, float]]] = {name: [] for name in ways}
            for _ in range(settings.calls // settings.block):
                for name, action in ways.items():
                    samples[name].append(await _timed(action, settings.block))
            notify = await _notify_placement(Concurrent(store, bench.template), settings)
        finally:
            await store.close()
    results: dict[str, Any] = {}
    for name, taken in samples.items():
        results[name] = {
            "cpu_ms": statistics.median(cpu for cpu, _ in taken) * 1e3,
            "wall_ms": statistics.median(wall for _, wall in taken) * 1e3,
        }
    for kind, reference in (("commit", "commit: driver, one statement"), ("read", "read: driver")):
        for name, figures in results.items():
            if name.startswith(kind):
                figures["cpu_ratio"] = figures["cpu_ms"] / results[reference]["cpu_ms"]
                figures["wall_ratio"] = figures["wall_ms"] / results[reference]["wall_ms"]
    return {"calls": settings.calls, "ways": results, "notify": notify}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls (a smoke run)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    try:
        results = asyncio.run(run(QUICK if args.quick else FULL))
    except OSError as exc:
        sys.exit(f"bench_pg_paths: PostgreSQL is needed: {exc}")
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(
        f"a turn's store calls on PostgreSQL, {results['calls']:,} calls of each way "
        "(ratios to the driver's way)"
    )
    print(f"  {'':42} {'CPU ms':>8} {'ratio':>6} {'wall ms':>8} {'ratio':>6}")
    for name, f in results["ways"].items():
        print(
            f"  {name:42} {f['cpu_ms']:>8.3f} {f['cpu_ratio']:>5.2f}x "
            f"{f['wall_ms']:>8.3f} {f['wall_ratio']:>5.2f}x"
        )
    print("commits per second, the turn's statement and its NOTIFY (driver, held connections)")
    for name, rate in results["notify"].items():
        print(f"  {name:42} {rate:>8,.0f}")


if __name__ == "__main__":
    main()
