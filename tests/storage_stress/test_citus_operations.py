"""Operating a Citus cluster under conversations: adding a worker and rebalancing
while turns run loses no turn (a turn is written out on its worker when it is
acknowledged, though the nodes commit asynchronously); a stopped worker stops only the
sessions it holds, with a library error and nothing half written.

Each test starts a cluster of its own (:mod:`.private_cluster`), never the shared one.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from uuid import UUID

import asyncpg  # type: ignore[import-untyped]  # no stubs, no py.typed
import pytest

from parlant_runtime.model import EventType
from parlant_runtime.storage.port import (
    ConcurrentUpdate,
    DatabaseUnavailable,
    DuplicateMessage,
    NewEvent,
    SessionStart,
    StorageError,
    TurnCommit,
)
from parlant_runtime.storage.sql.store import SqlStore
from tests.storage_stress import WS, agent_bundle
from tests.storage_stress.private_cluster import PrivateCluster, private_cluster

pytestmark = [pytest.mark.citus]

SESSIONS = 6


def _message(key: str) -> NewEvent:
    return NewEvent(
        event_type=EventType.CUSTOMER_MESSAGE, content={"text": key}, idempotency_key=key
    )


async def _sessions(store: SqlStore, count: int) -> list[UUID]:
    await store.ensure_workspace(WS)
    agent = (await store.publish(WS, agent_bundle())).agent_id
    return [(await store.create_session(WS, SessionStart(agent_id=agent))).id for _ in range(count)]


async def _node_of(dsn: str, session_id: UUID) -> int:
    """The port of the worker holding the session's shard."""
    connection = await asyncpg.connect(dsn)
    try:
        port: int = await connection.fetchval(
            "SELECT n.nodeport FROM pg_dist_placement p JOIN pg_dist_node n USING (groupid) "
            "WHERE p.shardid = get_shard_id_for_distribution_column('parlant_session', $1::uuid)",
            session_id,
        )
    finally:
        await connection.close()
    return port


@dataclass
class Traffic:
    """Turns sent to each session until stopped, each retried (same idempotency key)
    until it is acknowledged: a turn the store acknowledged must be in the log once."""

    store: SqlStore
    acknowledged: dict[UUID, list[str]] = field(default_factory=dict)
    retries: int = 0
    log: list[tuple[str, str]] = field(default_factory=list)
    """What each attempt of each turn got, for the failure message."""
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def converse(self, session_id: UUID) -> None:
        sent = self.acknowledged.setdefault(session_id, [])
        while not self.stop.is_set():
            key = f"{session_id}-{len(sent)}"
            while True:
                session = await self.store.get_session(WS, session_id)
                commit = TurnCommit(
                    session_id=session_id,
                    expected_version=session.version,
                    events=[_message(key)],
                )
                try:
                    await self.store.commit_turn(WS, commit)
                    self.log.append((key, "committed"))
                except DuplicateMessage:  # an earlier attempt landed after all
                    self.log.append((key, "duplicate"))
                except (ConcurrentUpdate, StorageError) as exc:
                    self.log.append((key, f"{type(exc).__name__}: {exc}"))
                    self.retries += 1
                    await asyncio.sleep(0.2)
                    continue
                break
            sent.append(key)
            await asyncio.sleep(0.05)


async def _rebalance_while_conversing(cluster: PrivateCluster) -> None:
    store = SqlStore.open(cluster.url)
    try:
        sessions = await _sessions(store, SESSIONS)
        traffic = Traffic(store)
        tasks = [asyncio.ensure_future(traffic.converse(s)) for s in sessions]
        await asyncio.sleep(2)
        new = await asyncio.to_thread(cluster.start_node)
        await cluster.add_worker(new)
        admin = await asyncpg.connect(cluster.coordinator.dsn)
        try:
            await admin.execute("SELECT citus_rebalance_start()")
            await admin.execute("SELECT citus_rebalance_wait()")
            moved = await admin.fetchval(
                "SELECT count(*) FROM pg_dist_placement p JOIN pg_dist_node n USING (groupid) "
                "JOIN pg_dist_shard s USING (shardid) "
                "JOIN pg_dist_partition d USING (logicalrelid) "
                "WHERE n.nodeport = $1 AND d.partmethod = 'h'",
                new.port,
            )
            failed = await admin.fetchval(
                "SELECT count(*) FROM pg_dist_background_job WHERE state <> 'finished'"
            )
        finally:
            await admin.close()
        await asyncio.sleep(1)  # turns go on after the moves, on the new worker too
        traffic.stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 120)
        assert moved > 0, "the rebalance moved no shard to the new worker"
        assert failed == 0, "a rebalance job did not finish"
        for session_id in sessions:
            events = await store.list_events(WS, session_id)
            keys = [e.idempotency_key for e in events]
            lost = [k for k in traffic.acknowledged[session_id] if k not in keys]
            attempts = [entry for entry in traffic.log if entry[0] in lost]
            assert lost == [], f"acknowledged turns missing from the log: {attempts}"
            assert keys == traffic.acknowledged[session_id]
            assert [e.offset for e in events] == list(range(len(events)))
        assert sum(len(keys) for keys in traffic.acknowledged.values()) > 2 * SESSIONS
        ports = {await _node_of(cluster.coordinator.dsn, s) for s in sessions}
        assert new.port in ports or len(ports) > 1
    finally:
        await store.close()


@pytest.mark.slow
@pytest.mark.subprocess
def test_a_worker_added_and_shards_rebalanced_during_turns_loses_no_turn() -> None:
    with private_cluster() as cluster:
        asyncio.run(_rebalance_while_conversing(cluster))


async def _turns_written_out(cluster: PrivateCluster) -> None:
    store = SqlStore.open(cluster.url)
    try:
        (session_id,) = await _sessions(store, 1)
        port = await _node_of(cluster.coordinator.dsn, session_id)
        admin = await asyncpg.connect(cluster.coordinator.dsn)
        try:
            await admin.execute("CREATE EXTENSION pg_walinspect")  # on every node
            shard = await admin.fetchval(
                "SELECT get_shard_id_for_distribution_column("
                "'parlant_runtime.session_state', $1::uuid)",
                session_id,
            )
        finally:
            await admin.close()
        worker = next(node for node in cluster.workers if node.port == port)
        connection = await asyncpg.connect(worker.dsn)
        try:
            assert await connection.fetchval("SHOW synchronous_commit") == "off"
            for number in range(3):
                start = await connection.fetchval("SELECT pg_current_wal_insert_lsn()")
                session = await store.get_session(WS, session_id)
                await store.commit_turn(
                    WS,
                    TurnCommit(
                        session_id=session_id,
                        expected_version=session.version,
                        events=[_message(f"{session_id}-{number}")],
                    ),
                )
                # the turn's transaction on the worker: the one that moved the version
                xid = await connection.fetchval(
                    f"SELECT xmin::text FROM parlant_runtime.session_state_{shard} "
                    "WHERE session_id = $1",
                    session_id,
                )
                # what a shard move's catch-up waits for is the WAL written out; the
                # server's WAL writer would write this commit only seconds later
                written = await connection.fetchval(
                    "SELECT count(*) FROM "
                    "pg_get_wal_records_info($1::pg_lsn, pg_current_wal_lsn()) "
                    "WHERE resource_manager = 'Transaction' AND record_type = 'COMMIT' "
                    "AND xid::text = $2",
                    start,
                    xid,
                )
                assert written == 1, f"turn {number}'s commit is not written out on its worker"
        finally:
            await connection.close()
    finally:
        await store.close()


@pytest.mark.slow
@pytest.mark.subprocess
def test_a_turn_is_written_out_on_its_worker_when_acknowledged_despite_asynchronous_commit() -> (
    None
):
    with private_cluster() as cluster:
        asyncio.run(_turns_written_out(cluster))


async def _stop_a_worker(cluster: PrivateCluster) -> None:
    store = SqlStore.open(cluster.url)
    try:
        sessions = await _sessions(store, SESSIONS)
        where = {s: await _node_of(cluster.coordinator.dsn, s) for s in sessions}
        while len(set(where.values())) < 2:  # sessions on both workers
            (extra,) = await _sessions(store, 1)
            where[extra] = await _node_of(cluster.coordinator.dsn, extra)
        stopped = cluster.workers[1]
        down = [s for s, port in where.items() if port == stopped.port]
        up = [s for s, port in where.items() if port != stopped.port]
        before = {s: await store.get_session(WS, s) for s in where}
        await asyncio.to_thread(stopped.stop)

        for session_id in up:  # the other worker's sessions go on
            session = before[session_id]
            done = await store.commit_turn(
                WS,
                TurnCommit(
                    session_id=session_id,
                    expected_version=session.version,
                    events=[_message(f"{session_id}-up")],
                ),
            )
            assert done.version == session.version + 1
        for session_id in down:  # the stopped worker's get a library error
            session = before[session_id]
            with pytest.raises(DatabaseUnavailable, match=f"unavailable: .*{stopped.port}"):
                await store.commit_turn(
                    WS,
                    TurnCommit(
                        session_id=session_id,
                        expected_version=session.version,
                        events=[_message(f"{session_id}-down")],
                    ),
                )
            with pytest.raises(DatabaseUnavailable, match=str(stopped.port)):
                await store.get_session(WS, session_id)

        await asyncio.to_thread(stopped.start)
        for session_id in down:  # nothing of the refused turns was written
            assert await store.get_session(WS, session_id) == before[session_id]
            assert await store.list_events(WS, session_id) == []
        for session_id in up:
            events = await store.list_events(WS, session_id)
            assert [e.idempotency_key for e in events] == [f"{session_id}-up"]
    finally:
        await store.close()


@pytest.mark.slow
@pytest.mark.subprocess
def test_a_stopped_worker_stops_only_its_sessions_and_writes_nothing_half() -> None:
    with private_cluster() as cluster:
        asyncio.run(_stop_a_worker(cluster))
