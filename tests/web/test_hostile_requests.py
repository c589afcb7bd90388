"""Hostile requests to the embedding example: a JSON error, a quiet log, nothing leaked."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import httpx
import pytest

from tests.web.conftest import TROUBLE, Server
from tests.web.test_api import assert_error, new_session, say

JSON = {"content-type": "application/json"}

NESTED = {
    "a bare list": b"[" * 5_000 + b"]" * 5_000,
    "a message": b'{"text": ' + b"[" * 5_000 + b"]" * 5_000 + b"}",
    "objects": b'{"a": ' * 2_000 + b"1" + b"}" * 2_000,
}


def new_trouble(server: Server, since: int) -> list[str]:
    """Lines of the server's log after offset ``since`` that report trouble."""
    return [line for line in server.log()[since:].splitlines() if any(w in line for w in TROUBLE)]


@pytest.mark.parametrize("shape", list(NESTED))
def test_deeply_nested_json_is_a_400_not_a_500(
    client: httpx.Client, server: Server, shape: str
) -> None:
    body = NESTED[shape]
    assert len(body) <= 16 * 1024  # under the body limit: the nesting is what is refused
    since = len(server.log())
    session_id = new_session(client)
    for path in (f"/sessions/{session_id}/messages", "/sessions"):
        error = assert_error(client.post(path, content=body, headers=JSON), 400, "bad_json")
        assert "nested deeper than" in error["message"]
    assert client.get(f"/sessions/{session_id}").json()["last_offset"] == -1
    assert new_trouble(server, since) == []


def open_files(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def leave_mid_body(server: Server, session_id: str) -> None:
    """Announce a 1,000-byte body, send a few bytes of it and hang up."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw:
        raw.sendall(
            f"POST /sessions/{session_id}/messages HTTP/1.1\r\n"
            f"host: 127.0.0.1\r\ncontent-type: application/json\r\n"
            f"content-length: 1000\r\n\r\n".encode()
            + b'{"text": "hel'
        )
        time.sleep(0.02)  # the server has started reading the body


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="counts open files in /proc")
def test_clients_leaving_mid_body_are_quiet_and_leak_nothing(
    client: httpx.Client, server: Server
) -> None:
    session_id = new_session(client)
    say(client, session_id, "hello")  # warm: the pools hold what they keep
    since = len(server.log())
    before = open_files(server.process.pid)
    clients = 40
    for _ in range(clients):
        leave_mid_body(server, session_id)
    deadline = time.monotonic() + 15
    while open_files(server.process.pid) > before + 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert open_files(server.process.pid) <= before + 2
    assert new_trouble(server, since) == []
    assert len(server.log()[since:].splitlines()) <= clients  # at most one line each
    # nothing half-written, and the server answers as before
    last = client.get(f"/sessions/{session_id}").json()["last_offset"]
    reply = say(client, session_id, "hello again")
    assert reply["events"][0]["offset"] == last + 1
