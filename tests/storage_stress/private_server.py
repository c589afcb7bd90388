"""A PostgreSQL server of the test's own, which the test may stop and restart.

The shared server of the test suite must never be stopped (other tests run on it),
so the restart tests start their own: ``initdb`` in a temporary folder, a free port,
sockets in that folder, trust authentication, no fsync. As root the server runs as
the ``postgres`` user (PostgreSQL refuses root). Without the PostgreSQL binaries the
tests are skipped, except in CI (``PARLANT_REQUIRE_POSTGRES=1``), where they fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from parlant_runtime.storage.migrate import upgrade
from tests.postgres import REQUIRE_ENV, _unavailable

__all__ = ["PrivateServer", "private_server"]

_BINARIES = ("/usr/lib/postgresql/*/bin", "/usr/local/pgsql/bin", "/opt/homebrew/bin")


def _binaries() -> Path | None:
    """The folder holding ``initdb``, ``pg_ctl`` and ``postgres``, if there is one."""
    found = shutil.which("initdb")
    if found is not None:
        return Path(found).parent
    for pattern in _BINARIES:
        for folder in sorted(glob.glob(pattern), reverse=True):  # the newest version first
            if (Path(folder) / "initdb").exists():
                return Path(folder)
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


class PrivateServer:
    """A server in ``folder`` on ``port``: :meth:`start`, :meth:`stop`, :meth:`restart`."""

    def __init__(self, binaries: Path, folder: Path, port: int, user: str | None) -> None:
        self.binaries = binaries
        self.folder = folder
        self.data = folder / "data"
        self.port = port
        self.user = user
        """Who runs the server (``postgres`` when the tests run as root)."""

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *arguments: str) -> None:
        command = [str(self.binaries / arguments[0]), *arguments[1:]]
        if self.user is not None:
            command = ["runuser", "-u", self.user, "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def initialise(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-N")

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c full_page_writes=off -c synchronous_commit=off"
        )
        log = self.folder / "server.log"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(log), "-w", "start")

    def stop(self) -> None:
        """A fast shutdown: every connection is ended, as in a real restart."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def restart(self) -> None:
        self.stop()
        self.start()


@contextlib.contextmanager
def private_server() -> Iterator[PrivateServer]:
    """A started server with the schema at head; stopped and deleted afterwards."""
    binaries = _binaries()
    if binaries is None:
        _unavailable(f"no initdb found (PostgreSQL server binaries; {REQUIRE_ENV}=1 requires them)")
    user = None
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            _unavailable("running as root and there is no 'postgres' user to run a server")
        user = "postgres"
    folder = Path(tempfile.mkdtemp(prefix="parlant-pg-"))
    if user is not None:
        shutil.chown(folder, user)
    server = PrivateServer(binaries, folder, _free_port(), user)
    try:
        server.initialise()
        server.start()
    except (OSError, subprocess.SubprocessError) as exc:
        shutil.rmtree(folder, ignore_errors=True)
        _unavailable(f"a private PostgreSQL server could not be started: {exc}")
    try:
        asyncio.run(upgrade(server.url))
        yield server
    finally:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            server.stop()
        shutil.rmtree(folder, ignore_errors=True)
