"""Many open event streams on SQLite cost the database no more than one.

Each open stream used to poll its session every 50 ms, so 800 open pages pushed
other answers to seconds. The measure is the CPU time the server process uses
(``/proc/<pid>/stat``) while 100 streams wait and nothing happens: with a poll per
stream (2,000 queries a second) it used about 1 CPU-second in 2 seconds on the
loaded test machine, with one poller per store about 0.1, however many streams.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.web.conftest import Server, assert_clean_stop, start_server

STREAMS = 100


def cpu_seconds(pid: int) -> float:
    """User and system CPU time the process used so far (``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.fixture
def quiet_server(tmp_path: Path) -> Iterator[Server]:
    """A SQLite backend whose idle streams send a keep-alive every 60 s only."""
    server = start_server(
        f"sqlite:///{tmp_path / 'chat.db'}", tmp_path / "server.log", keepalive=60
    )
    yield server
    assert_clean_stop(server)


@pytest.mark.skipif(not Path("/proc/self/io").exists(), reason="reads /proc/<pid>/io")
def test_open_streams_on_sqlite_add_no_reads_per_stream(quiet_server: Server) -> None:
    server = quiet_server
    with httpx.Client(base_url=server.base_url, timeout=10.0) as client:
        sessions = [client.post("/sessions").json()["session_id"] for _ in range(STREAMS)]
    streams: list[socket.socket] = []
    try:
        for session_id in sessions:
            raw = socket.create_connection(("127.0.0.1", server.port), timeout=10)
            raw.sendall(f"GET /sessions/{session_id}/events HTTP/1.1\r\nhost: x\r\n\r\n".encode())
            streams.append(raw)
        deadline = time.monotonic() + 30
        while server.health()["open_streams"] < STREAMS and time.monotonic() < deadline:
            time.sleep(0.1)
        assert server.health()["open_streams"] == STREAMS
        time.sleep(1.0)  # the streams' first reads are over
        before = cpu_seconds(server.process.pid)
        time.sleep(2.0)  # a span to measure work in (CPU time), not a timing
        used = cpu_seconds(server.process.pid) - before
        assert used < 0.4, f"{used:.2f} CPU-seconds while {STREAMS} streams waited 2 s"
        with httpx.Client(base_url=server.base_url, timeout=10.0) as client:
            reply = client.post(f"/sessions/{sessions[0]}/messages", json={"text": "hello"})
            assert reply.status_code == 200
    finally:
        for raw in streams:
            raw.close()
