"""The store survives a PostgreSQL restart: on a private server the test restarts itself.

- an idle store's first call after a restart succeeds (its pooled connections died
  with the old server);
- the listening connection comes back by itself: a commit in another store wakes a
  waiter at once again, not at its timeout;
- while the server is down every call raises the library's :class:`StorageError`,
  never a driver or socket error, and the store works again once the server is back;
- turns sent while the server restarts: each call that reported success is in the
  log, and no call that reported a failure is (a committed turn is never reported
  as failed).

A restart of the shared server would break everyone's tests, hence the private one
(:mod:`tests.storage_stress.private_server`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from uuid import UUID

import pytest

from parlant_runtime.model import EventType
from parlant_runtime.storage.port import (
    NewEvent,
    SessionStart,
    StorageError,
    TurnCommit,
)
from parlant_runtime.storage.sql.store import SqlStore
from tests.storage_stress import WS, agent_bundle
from tests.storage_stress.private_server import PrivateServer, private_server

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def server() -> Iterator[PrivateServer]:
    with private_server() as started:
        yield started


async def _session(store: SqlStore) -> tuple[UUID, UUID]:
    await store.ensure_workspace(WS)
    agent_id = (await store.publish(WS, agent_bundle())).agent_id
    session = await store.create_session(WS, SessionStart(agent_id=agent_id))
    return agent_id, session.id


def _message(text: str, key: str) -> NewEvent:
    return NewEvent(
        event_type=EventType.CUSTOMER_MESSAGE, content={"text": text}, idempotency_key=key
    )


async def _say(store: SqlStore, session_id: UUID, key: str) -> None:
    session = await store.get_session(WS, session_id)
    await store.commit_turn(
        WS,
        TurnCommit(
            session_id=session_id,
            expected_version=session.version,
            events=[_message(key, key)],
        ),
    )


def test_an_idle_store_works_after_a_restart_and_its_listener_comes_back(
    server: PrivateServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="parlant_runtime.storage")

    async def body() -> None:
        # the waiter's store polls only every 30 s: a quick wake-up can only be a NOTIFY
        waiting = SqlStore.open(server.url, poll_interval=30)
        sending = SqlStore.open(server.url)
        try:
            _, session_id = await _session(sending)
            await waiting.wait_for_events(WS, session_id, after=-1, timeout=0.1)  # listens
            await asyncio.to_thread(server.restart)
            # the first call of the idle store after the restart
            assert (await waiting.get_session(WS, session_id)).id == session_id
            woke_in = []
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 15
            while loop.time() < deadline:
                count = (await sending.get_session(WS, session_id)).event_count
                waiter = asyncio.create_task(
                    waiting.wait_for_events(WS, session_id, after=count - 1, timeout=2)
                )
                await asyncio.sleep(0.2)  # the waiter has read, and waits
                sent = time.perf_counter()
                await _say(sending, session_id, f"m{count}")
                assert await waiter, "the waiter saw nothing"
                woke_in.append(time.perf_counter() - sent)
                if woke_in[-1] < 1.0:
                    break
            assert woke_in[-1] < 1.0, (
                f"no wake-up by NOTIFY after the restart: waits of {woke_in} s"
            )
        finally:
            await waiting.close()
            await sending.close()

    asyncio.run(body())
    # what a host's logs show of it (docs/observability.md)
    said = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert (
        "WARNING",
        "the LISTEN connection was lost; waiters poll while it is opened again",
    ) in said
    assert ("INFO", "the LISTEN connection is open again; waiters stop polling") in said


def test_while_the_server_is_down_every_call_is_a_storage_error(server: PrivateServer) -> None:
    async def body() -> None:
        store = SqlStore.open(server.url)
        try:
            agent_id, session_id = await _session(store)
            await store.wait_for_events(WS, session_id, after=-1, timeout=0.1)
            await asyncio.to_thread(server.stop)
            try:
                calls = {
                    "get_session": store.get_session(WS, session_id),
                    "list_events": store.list_events(WS, session_id),
                    "commit_turn": _say(store, session_id, "down"),
                    "create_session": store.create_session(WS, SessionStart(agent_id=agent_id)),
                    "publish": store.publish(WS, agent_bundle(("x", "y"))),
                    "wait_for_events": store.wait_for_events(WS, session_id, after=-1, timeout=0.5),
                    "load_agent": store.load_agent(WS, agent_id),
                }
                for name, call in calls.items():
                    try:
                        await call
                    except StorageError:
                        continue
                    except Exception as exc:  # what leaked is the finding
                        pytest.fail(f"{name} raised {type(exc).__name__}: {exc}")
                    pytest.fail(f"{name} succeeded with the server down")
            finally:
                await asyncio.to_thread(server.start)
            await _say(store, session_id, "back")
            keys = [e.idempotency_key for e in await store.list_events(WS, session_id)]
            assert keys == ["back"]
        finally:
            await store.close()

    asyncio.run(body())


def test_turns_across_a_restart_are_reported_as_they_landed(server: PrivateServer) -> None:
    async def body() -> None:
        store = SqlStore.open(server.url)
        reported: dict[str, bool] = {}
        try:
            _, session_id = await _session(store)
            restarted = asyncio.create_task(asyncio.to_thread(server.restart))
            number = 0
            while not restarted.done() or sum(reported.values()) < 40:
                key = f"t{number}"
                try:
                    await _say(store, session_id, key)
                except StorageError:
                    reported[key] = False
                else:
                    reported[key] = True
                number += 1
                await asyncio.sleep(0.005)
            await restarted
            logged = {e.idempotency_key for e in await store.list_events(WS, session_id)}
        finally:
            await store.close()
        ok = {key for key, landed in reported.items() if landed}
        failed = {key for key, landed in reported.items() if not landed}
        assert ok <= logged, f"acknowledged but not in the log: {sorted(ok - logged)}"
        assert not failed & logged, f"reported failed but committed: {sorted(failed & logged)}"
        assert len(ok) >= 40

    asyncio.run(body())
