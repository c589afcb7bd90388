"""A SQLite connection of the standard library and the one thread that uses it.

The SQL store's turns on SQLite (:mod:`._sqlite_turns`) run here instead of through
SQLAlchemy's aiosqlite dialect, where every driver call (each statement, fetch, cursor,
``BEGIN``, ``COMMIT``) is a hop to the driver's thread and back: about 48 hops a turn.
Here a turn's read is one call into the reader's thread and its commit one call into
the writer's, each running all of its statements synchronously, with ``sqlite3``'s
statement cache.

:class:`SqliteThread` serves work functions ``work(connection) -> result`` from a
queue, in order, and hands each result (or exception) back to the caller's event
loop. A writer's transactions (:meth:`SqliteThread.transact`) begin with
``BEGIN IMMEDIATE``, so a transaction that reads before it writes holds the write lock
from its start and never fails to upgrade. Transactions queued while one runs are
**committed together**: one ``BEGIN IMMEDIATE``, each in a ``SAVEPOINT`` of its own
(one that raises is rolled back to it alone and gets its error), one ``COMMIT``: a
caller's result is delivered only after that ``COMMIT``, so each is as durable as if
it had committed alone, while the file's write lock, and the sync of the log to disk,
are taken once per group rather than once per turn.

Since one thread writes for the whole store, this process's writers queue here in
order rather than in SQLite's busy handler, whose sleeps of up to 100 ms let a waiter
lose the lock again and again (with 32 sessions a turn could wait out the 5 s busy
timeout: "database is locked"). Other processes on the same file still meet this one
in the busy handler. :meth:`SqliteThread.paused` holds the thread between two
transactions while a write of the store's other engine (SQLAlchemy's: publishes,
session creations) runs, so that it, too, waits its turn in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
import weakref
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

__all__ = ["BUSY_TIMEOUT_MS", "SqliteThread", "connect"]

T = TypeVar("T")

BUSY_TIMEOUT_MS = 5_000
"""How long a statement waits for another process's lock on the file (as the engine's)."""
GROUP_LIMIT = 64
"""Most transactions committed together."""
_CACHED_STATEMENTS = 256


def connect(database: str, *, uri: bool = False, foreign_keys: bool = True) -> sqlite3.Connection:
    """A connection as the store's engine makes them: autocommit (transactions are
    begun explicitly), foreign keys on, WAL, the busy timeout."""
    connection = sqlite3.connect(
        database,
        uri=uri,
        isolation_level=None,
        cached_statements=_CACHED_STATEMENTS,
        timeout=BUSY_TIMEOUT_MS / 1000,
    )
    try:
        connection.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    except BaseException:
        connection.close()
        raise
    return connection


@dataclass(slots=True)
class _Item(Generic[T]):
    """One piece of work for the thread, and where its outcome goes."""

    work: Callable[[sqlite3.Connection], T]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[T]
    transaction: bool
    """Run in a write transaction (possibly with others); else alone, outside one."""
    result: Any = None
    error: BaseException | None = None


def _deliver(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def _finish(item: _Item[Any]) -> None:
    with contextlib.suppress(RuntimeError):  # the caller's loop is closed: nobody waits
        item.loop.call_soon_threadsafe(_deliver, item.future, item.result, item.error)


def _deliver_all(items: list[_Item[Any]]) -> None:
    for item in items:
        _deliver(item.future, item.result, item.error)


def _finish_all(items: list[_Item[Any]]) -> None:
    """Hand back a group's outcomes with one wake-up of each caller's loop (a write to
    its self-pipe each) rather than one per item."""
    by_loop: dict[asyncio.AbstractEventLoop, list[_Item[Any]]] = {}
    for item in items:
        by_loop.setdefault(item.loop, []).append(item)
    for loop, theirs in by_loop.items():
        with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits
            loop.call_soon_threadsafe(_deliver_all, theirs)


class SqliteThread:
    """One connection and its thread (see the module docstring); started at once.

    ``opener`` makes the connection, in the thread, when the first item comes. ``group``
    commits queued transactions together.
    """

    def __init__(
        self, opener: Callable[[], sqlite3.Connection], *, name: str, group: bool = True
    ) -> None:
        self._queue: queue.SimpleQueue[_Item[Any] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(
            target=_serve, args=(self._queue, opener, group), name=name, daemon=True
        )
        self._thread.start()
        # a store dropped without close() still ends its threads (and their connections)
        self._stop = weakref.finalize(self, self._queue.put, None)
        self.closed = False

    def _submit(self, work: Callable[[sqlite3.Connection], T], transaction: bool) -> Any:
        if self.closed:
            raise RuntimeError("the SQLite thread is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put(_Item(work, loop, future, transaction))
        return future

    async def call(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """``work(connection)`` alone, outside any transaction (reads: each statement
        is its own, or ``work`` begins and ends one itself)."""
        result: T = await self._submit(work, transaction=False)
        return result

    async def transact(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """``work(connection)`` in a write transaction, committed before this returns.

        ``work`` must not begin or end transactions. When it raises, what it wrote is
        rolled back and its exception is raised here; a ``sqlite3.Error`` of the
        ``BEGIN`` or the ``COMMIT`` is raised for every transaction of the group.
        Work whose caller was cancelled before it began is skipped.
        """
        result: T = await self._submit(work, transaction=True)
        return result

    @contextlib.asynccontextmanager
    async def paused(self) -> AsyncIterator[None]:
        """Hold the thread between transactions for the block: it has finished what was
        queued before, and starts nothing queued after until the block ends."""
        release = threading.Event()
        loop = asyncio.get_running_loop()
        reached: asyncio.Future[None] = loop.create_future()

        def hold(_connection: sqlite3.Connection) -> None:
            with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits
                loop.call_soon_threadsafe(_deliver, reached, None, None)
            release.wait()

        held = self._submit(hold, transaction=False)
        try:
            await reached
            yield
        finally:
            release.set()
            with contextlib.suppress(Exception):
                await held

    async def close(self) -> None:
        """Finish what is queued, close the connection (in its thread) and end the thread."""
        if self.closed:
            return
        closing = self._submit(_closing, transaction=False)
        self.closed = True
        self._stop.detach()
        await closing


def _closing(connection: sqlite3.Connection) -> None:
    """Marks the last item: the thread closes its connection (if it opened one) and ends."""
    del connection


def _serve(
    items: queue.SimpleQueue[_Item[Any] | None],
    opener: Callable[[], sqlite3.Connection],
    group: bool,
) -> None:
    """The thread: serve items until ``None``, opening the connection when first needed
    (again after a failed opening, which is each item's error until it succeeds)."""
    connection: sqlite3.Connection | None = None
    ahead: deque[_Item[Any] | None] = deque()  # taken from the queue, not yet served
    try:
        while True:
            item = ahead.popleft() if ahead else items.get()
            if item is None:
                return
            if item.work is _closing:  # the last item: close, then tell the caller
                if connection is not None:
                    with contextlib.suppress(sqlite3.Error):
                        connection.close()
                    connection = None
                _finish(item)
                return
            if connection is None:
                try:
                    connection = opener()
                except BaseException as exc:
                    item.error = exc
                    _finish(item)
                    continue
            if not item.transaction:
                _run_alone(connection, item)
                continue
            batch = [item]
            while group and len(batch) < GROUP_LIMIT:
                if ahead:
                    more = ahead.popleft()
                else:
                    try:
                        more = items.get_nowait()
                    except queue.Empty:
                        break
                if more is None or not more.transaction:
                    ahead.appendleft(more)
                    break
                batch.append(more)
            ahead.extendleft(reversed(_run_group(connection, batch)))
    finally:
        if connection is not None:
            with contextlib.suppress(sqlite3.Error):
                connection.close()


def _run_alone(connection: sqlite3.Connection, item: _Item[Any]) -> None:
    if item.future.cancelled():  # a read nobody waits for
        _finish(item)
        return
    try:
        item.result = item.work(connection)
    except BaseException as exc:
        item.error = exc
        with contextlib.suppress(sqlite3.Error):
            if connection.in_transaction:  # work that began a transaction and failed
                connection.execute("ROLLBACK")
    _finish(item)


def _run_group(connection: sqlite3.Connection, batch: list[_Item[Any]]) -> list[_Item[Any]]:
    """Commit ``batch`` in one transaction; returns items to run again (the transaction
    was lost under them through another item's error)."""
    live = []
    for item in batch:
        if item.future.cancelled():  # cancelled before it began: nothing is written
            _finish(item)
        else:
            live.append(item)
    if not live:
        return []
    try:
        connection.execute("BEGIN IMMEDIATE")
    except BaseException as exc:
        for item in live:
            item.error = exc
            _finish(item)
        return []
    alone = len(live) == 1
    done: list[_Item[Any]] = []  # each item's result or error, handed back after COMMIT
    for item in live:
        item.error = None  # an item run again after a lost transaction starts afresh
        try:
            if not alone:
                connection.execute("SAVEPOINT turn")
            item.result = item.work(connection)
            if not alone:
                connection.execute("RELEASE turn")
        except BaseException as exc:
            item.error = exc
            if not connection.in_transaction:
                # SQLite rolled the whole transaction back (a full disk, an I/O error):
                # this item reports its error; the others run again
                _finish(item)
                return [other for other in live if other is not item]
            if alone:
                connection.execute("ROLLBACK")
                _finish(item)
                return []
            connection.execute("ROLLBACK TO turn")
            connection.execute("RELEASE turn")
        done.append(item)
    try:
        connection.execute("COMMIT")
    except BaseException as exc:
        if connection.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                connection.execute("ROLLBACK")
        for item in done:
            if item.error is None:
                item.error, item.result = exc, None
    # an error (a turn that lost its compare-and-set, say) is told only now, too: its
    # caller reads again and must find what the others committed
    _finish_all(done)
    return []
