"""Real servers for the embedding example's tests: ``python -m examples.web`` in a subprocess.

Each server listens on a free port of 127.0.0.1 with its log in a file; it is
ready when ``GET /healthz`` answers. Stopping sends SIGTERM (what a process
manager does) and waits for a clean exit.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

from tests.postgres import postgres_url

ROOT = Path(__file__).resolve().parent.parent.parent
STARTUP_SECONDS = 60.0


def free_port() -> int:
    """A port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Server:
    """One backend process; :meth:`stop` (or the fixture) ends it."""

    def __init__(
        self,
        database_url: str,
        log_path: Path,
        *,
        keepalive: float = 0.5,
        bundle: Path | None = None,
        via_uvicorn: bool = False,
    ) -> None:
        self.database_url = database_url
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._log: IO[bytes] = log_path.open("wb")
        env = {k: v for k, v in os.environ.items() if not k.startswith("PARLANT_WEB_")}
        env["PYTHONUNBUFFERED"] = "1"
        if via_uvicorn:  # uvicorn's own command line; the app reads the environment
            command = [sys.executable, "-m", "uvicorn", "examples.web.app:app"]
            command += ["--port", str(self.port)]
            env["PARLANT_DATABASE_URL"] = database_url
            env["PARLANT_WEB_KEEPALIVE"] = str(keepalive)
            if bundle is not None:
                env["PARLANT_WEB_BUNDLE"] = str(bundle)
        else:
            command = [sys.executable, "-m", "examples.web", "--port", str(self.port)]
            command += ["--database-url", database_url, "--keepalive", str(keepalive)]
            if bundle is not None:
                command += ["--bundle", str(bundle)]
        self.process = subprocess.Popen(
            command, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT, env=env
        )

    def log(self) -> str:
        """What the server printed so far."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_ready(self, timeout: float = STARTUP_SECONDS) -> None:
        """Until ``/healthz`` answers 200; fails with the log when the process dies."""
        deadline = time.monotonic() + timeout
        with httpx.Client(base_url=self.base_url, timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise AssertionError(f"the server exited at start-up:\n{self.log()}")
                try:
                    if client.get("/healthz").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
        raise AssertionError(f"the server did not start within {timeout} s:\n{self.log()}")

    def health(self) -> dict[str, Any]:
        """The ``/healthz`` answer."""
        with httpx.Client(base_url=self.base_url, timeout=5.0) as client:
            data: dict[str, Any] = client.get("/healthz").json()
            return data

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM, then wait; returns the exit status (killed after ``timeout``)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode

    def wait_exit(self, timeout: float) -> int:
        """The exit status of a process that ends by itself."""
        try:
            return self.process.wait(timeout)
        finally:
            self._log.close()


def start_server(database_url: str, log_path: Path, **options: Any) -> Server:
    """A started server that answers (stopped again when it does not)."""
    server = Server(database_url, log_path, **options)
    try:
        server.wait_ready()
    except BaseException:
        server.stop()
        raise
    return server


TROUBLE = ("Traceback", "ERROR", "Task was destroyed", "Exception")


def assert_clean_log(server: Server) -> None:
    """The server logged no error, traceback or abandoned task."""
    log = server.log()
    found = [line for line in log.splitlines() if any(word in line for word in TROUBLE)]
    assert not found, f"the server logged trouble:\n{log}"


def assert_clean_stop(server: Server) -> None:
    """SIGTERM ends the server through its shutdown, with nothing bad in its log.

    uvicorn re-raises the signal once it has shut down, so the status is 0 or
    "terminated by SIGTERM"; either way the log ends with its farewell.
    """
    assert server.stop() in {0, -signal.SIGTERM}
    assert "Finished server process" in server.log()
    assert_clean_log(server)


def sse_messages(lines: Iterator[str]) -> Iterator[dict[str, str]]:
    """Server-sent messages from a stream's lines: ``{"id", "data", "comment"}`` fields."""
    message: dict[str, str] = {}
    for line in lines:
        if line == "":
            if message:
                yield message
            message = {}
            continue
        if line.startswith(":"):
            message["comment"] = line[1:].strip()
            continue
        name, _, value = line.partition(":")
        message[name] = value.removeprefix(" ")


def read_events(
    client: httpx.Client,
    path: str,
    count: int,
    *,
    headers: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    """The first ``count`` events of a stream (``data`` as JSON, plus the ``id`` field)."""
    events: list[dict[str, Any]] = []
    with client.stream("GET", path, headers=headers) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        for message in sse_messages(response.iter_lines()):
            if "data" in message:
                event = json.loads(message["data"])
                event["sse_id"] = message["id"]
                events.append(event)
                if len(events) == count:
                    break
    return events


@pytest.fixture(scope="module")
def sqlite_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A backend on a fresh SQLite file, shared by a module's tests."""
    folder = tmp_path_factory.mktemp("web-sqlite")
    server = start_server(f"sqlite:///{folder / 'chat.db'}", folder / "server.log")
    yield server
    assert_clean_stop(server)


@pytest.fixture(scope="module")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A backend on a throwaway PostgreSQL database, shared by a module's tests."""
    folder = tmp_path_factory.mktemp("web-postgres")
    with postgres_url() as url:
        server = start_server(url, folder / "server.log")
        yield server
        assert_clean_stop(server)


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def server(request: pytest.FixtureRequest) -> Server:
    """The backend on SQLite and on PostgreSQL: the same tests run on both."""
    found: Server = request.getfixturevalue(f"{request.param}_server")
    return found


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    """An HTTP client for the server."""
    with httpx.Client(base_url=server.base_url, timeout=10.0) as http:
        yield http
