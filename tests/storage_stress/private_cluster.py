"""A Citus cluster of the test's own: a coordinator and workers it may add and stop.

The shared cluster of the test suite (tests/citus.py) must never lose a node, so the
operations tests start their own, on free ports: private PostgreSQL servers
(:mod:`.private_server`) with Citus preloaded and ``wal_level = logical`` (shard
moves use logical replication), asynchronous commits written out late
(``synchronous_commit = off``, ``wal_writer_delay = 10s``), small settings (the
machine is shared), the
``postgres`` database of each node with the extension, and 4 shards a table. Without
Citus installed the tests are skipped, except in CI (``PARLANT_REQUIRE_CITUS=1``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]  # no stubs, no py.typed

from parlant_runtime.storage.migrate import upgrade
from tests.citus import unavailable
from tests.storage_stress.private_server import PrivateServer, _binaries, _free_port

__all__ = ["PrivateCluster", "private_cluster"]

_SETTINGS = (
    # commits acknowledged before their WAL is written, and written late: what a shard
    # move must not lose (see parlant_runtime/storage/sql/sharding.py)
    "-c wal_writer_delay=10s "
    "-c shared_preload_libraries=citus -c wal_level=logical -c max_connections=60 "
    "-c shared_buffers=16MB -c max_wal_senders=8 -c max_replication_slots=8 "
    "-c citus.max_adaptive_executor_pool_size=2"
)


class CitusNode(PrivateServer):
    """A private server with Citus loaded."""

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off "
            f"-c full_page_writes=off -c synchronous_commit=off {_SETTINGS}"
        )
        log = self.folder / "server.log"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(log), "-w", "start")

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"


class PrivateCluster:
    """A coordinator and its workers, all on this machine."""

    def __init__(self, binaries: Path, user: str | None) -> None:
        self._binaries = binaries
        self._user = user
        self.nodes: list[CitusNode] = []

    @property
    def coordinator(self) -> CitusNode:
        return self.nodes[0]

    @property
    def workers(self) -> list[CitusNode]:
        return self.nodes[1:]

    @property
    def url(self) -> str:
        return self.coordinator.url

    def start_node(self) -> CitusNode:
        """A new node, started, with the extension (not yet part of the cluster)."""
        folder = Path(tempfile.mkdtemp(prefix="parlant-citus-"))
        if self._user is not None:
            shutil.chown(folder, self._user)
        node = CitusNode(self._binaries, folder, _free_port(), self._user)
        self.nodes.append(node)
        node.initialise()
        node.start()
        asyncio.run(_execute(node.dsn, "CREATE EXTENSION citus"))
        return node

    async def add_worker(self, node: CitusNode) -> None:
        await _execute(self.coordinator.dsn, f"SELECT citus_add_node('127.0.0.1', {node.port})")

    def close(self) -> None:
        for node in self.nodes:
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                node.stop()
            shutil.rmtree(node.folder, ignore_errors=True)


async def _execute(dsn: str, *statements: str) -> None:
    connection = await asyncpg.connect(dsn, timeout=30)
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


@contextlib.contextmanager
def private_cluster(workers: int = 2) -> Iterator[PrivateCluster]:
    """A started cluster with the schema at head and its tables laid out; stopped and
    deleted afterwards."""
    binaries = _binaries()
    if (
        binaries is None
        or not (binaries.resolve() / "initdb")
        .resolve()
        .parent.parent.joinpath("lib", "citus.so")
        .exists()
    ):
        unavailable("Citus is not installed for this PostgreSQL (no citus.so)")
    assert binaries is not None
    user = None
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            unavailable("running as root and there is no 'postgres' user to run a server")
        user = "postgres"
    cluster = PrivateCluster(binaries, user)
    try:
        try:
            coordinator = cluster.start_node()
            for _ in range(workers):
                cluster.start_node()
        except (OSError, subprocess.SubprocessError) as exc:
            unavailable(f"a private Citus cluster could not be started: {exc}")
        asyncio.run(
            _execute(
                coordinator.dsn,
                "ALTER DATABASE postgres SET citus.shard_count = 4",
                f"SELECT citus_set_coordinator_host('127.0.0.1', {coordinator.port})",
            )
        )
        for worker in cluster.workers:
            asyncio.run(cluster.add_worker(worker))
        asyncio.run(upgrade(cluster.url, citus=True))
        yield cluster
    finally:
        cluster.close()
