"""The embedding example as processes: start-up, shut-down, restarts, several servers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.postgres import postgres_url
from tests.web.conftest import (
    ROOT,
    Server,
    assert_clean_stop,
    read_events,
    sse_messages,
    start_server,
)


def post(base_url: str, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
    with httpx.Client(base_url=base_url, timeout=20.0) as client:
        return client.post(path, json=body)


def new_session(server: Server) -> str:
    response = post(server.base_url, "/sessions", {})
    assert response.status_code == 201, response.text
    session_id: str = response.json()["session_id"]
    return session_id


# ---------------------------------------------------------------------- one process


@pytest.mark.parametrize("via_uvicorn", [False, True], ids=["python -m examples.web", "uvicorn"])
def test_shutdown_ends_open_streams_at_once(tmp_path: Path, via_uvicorn: bool) -> None:
    server = start_server(
        f"sqlite:///{tmp_path / 'chat.db'}", tmp_path / "server.log", via_uvicorn=via_uvicorn
    )
    session_id = new_session(server)
    ended = threading.Event()
    outcome: list[BaseException | None] = []

    def follow() -> None:
        try:
            with (
                httpx.Client(base_url=server.base_url, timeout=20.0) as client,
                client.stream("GET", f"/sessions/{session_id}/events") as response,
            ):
                for _ in sse_messages(response.iter_lines()):
                    pass  # until the server ends the stream
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)
        finally:
            ended.set()

    reader = threading.Thread(target=follow)
    reader.start()
    deadline = time.monotonic() + 10
    while server.health()["open_streams"] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.health()["open_streams"] == 1
    stopping = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    assert ended.wait(10), "the stream did not end"
    reader.join()
    assert outcome == [None]  # a clean end of the response, not a broken connection
    assert_clean_stop(server)
    # far sooner than the 5 s graceful-shutdown backstop, which would log a cancellation
    assert time.monotonic() - stopping < 4.5


def test_a_bundle_with_errors_stops_start_up_with_one_sentence(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        "agent: {name: Broken}\n"
        "journeys:\n"
        "  - title: J\n"
        "    states:\n"
        "      - {name: a, stateType: chat, isInitial: true, chatPrompt: hi}\n"
        "    transitions:\n"
        "      - {from: a, to: nowhere}\n",
        encoding="utf-8",
    )
    server = Server(f"sqlite:///{tmp_path / 'chat.db'}", tmp_path / "server.log", bundle=broken)
    assert server.wait_exit(60) == 3  # uvicorn's status for a failed start-up
    log = server.log()
    assert "cannot start: the bundle" in log
    assert "nowhere" in log
    assert "Traceback" not in log


def test_an_unreachable_database_stops_start_up_with_one_sentence(tmp_path: Path) -> None:
    server = Server("postgresql://nobody@127.0.0.1:1/nothing", tmp_path / "server.log")
    assert server.wait_exit(60) == 3  # uvicorn's status for a failed start-up
    log = server.log()
    assert "cannot start:" in log
    assert "Traceback" not in log


def test_a_restart_continues_the_sessions_where_they_were(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'chat.db'}"
    first = start_server(url, tmp_path / "first.log")
    session_id = new_session(first)
    turn = post(first.base_url, f"/sessions/{session_id}/messages", {"text": "I'd like a coffee"})
    assert turn.json()["state"] == "ask_drink"
    assert_clean_stop(first)

    second = start_server(url, tmp_path / "second.log")  # publishes the same bundle: no change
    try:
        turn = post(second.base_url, f"/sessions/{session_id}/messages", {"text": "a latte"})
        assert turn.status_code == 200
        assert turn.json()["state"] == "order_placed"
        with httpx.Client(base_url=second.base_url, timeout=10.0) as client:
            events = read_events(client, f"/sessions/{session_id}/events", 4)
        assert [e["offset"] for e in events] == [0, 1, 2, 3]
    finally:
        assert_clean_stop(second)


# ---------------------------------------------------------------------- several processes


@pytest.fixture(scope="module")
def postgres_pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Server]]:
    """Two servers on one fresh PostgreSQL database, started at the same time.

    Both migrate and publish at once (the migration lock and the agent's row lock
    take turns). A long keep-alive: a stream must be woken by NOTIFY, not by its
    own timeout.
    """
    folder = tmp_path_factory.mktemp("web-pair")
    with postgres_url() as url:
        servers = [Server(url, folder / f"server{i}.log", keepalive=30.0) for i in range(2)]
        try:
            for server in servers:
                server.wait_ready()
            yield servers[0], servers[1]
        finally:
            for server in servers:
                assert_clean_stop(server)


@pytest.mark.postgres
def test_events_posted_through_one_process_stream_from_another(
    postgres_pair: tuple[Server, Server],
) -> None:
    first, second = postgres_pair
    session_id = new_session(first)
    received: list[dict[str, Any]] = []
    latencies = []
    with (
        httpx.Client(base_url=second.base_url, timeout=20.0) as client,
        client.stream("GET", f"/sessions/{session_id}/events") as response,
    ):
        messages = sse_messages(response.iter_lines())
        assert "retry" in next(messages)
        for text, via in (("a latte please", first), ("thanks", second)):
            sent = time.monotonic()
            turn = post(via.base_url, f"/sessions/{session_id}/messages", {"text": text})
            assert turn.status_code == 200
            wanted = turn.json()["last_offset"]
            for message in messages:
                if "data" in message:
                    received.append(json.loads(message["data"]))
                    if received[-1]["offset"] == wanted:
                        break
            latencies.append(time.monotonic() - sent)
    assert [e["offset"] for e in received] == list(range(len(received)))
    assert received[-1]["content"]["text"] == "You're welcome - enjoy your coffee!"
    assert max(latencies) < 10  # woken by NOTIFY, not by the 30 s keep-alive timeout


@pytest.mark.postgres
def test_two_processes_share_one_session_without_losing_or_doubling(
    postgres_pair: tuple[Server, Server],
) -> None:
    first, second = postgres_pair
    session_id = new_session(first)
    path = f"/sessions/{session_id}/messages"
    results: dict[str, httpx.Response] = {}

    def send(name: str, server: Server, body: dict[str, Any]) -> None:
        results[name] = post(server.base_url, path, body)

    # the same message retried through both processes at once, and two different ones
    jobs = [
        ("retry-a", first, {"text": "an espresso", "idempotency_key": "k-1"}),
        ("retry-b", second, {"text": "an espresso", "idempotency_key": "k-1"}),
        ("hello-a", first, {"text": "hello"}),
        ("hello-b", second, {"text": "hi there"}),
    ]
    threads = [threading.Thread(target=send, args=job) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {name: r.status_code for name, r in results.items()} == dict.fromkeys(results, 200)
    retried = [results["retry-a"].json(), results["retry-b"].json()]
    assert sorted(r["duplicate"] for r in retried) == [False, True]
    assert retried[0]["replies"] == retried[1]["replies"]

    last = max(r.json()["last_offset"] for r in results.values())
    with httpx.Client(base_url=second.base_url, timeout=10.0) as client:
        events = read_events(client, f"/sessions/{session_id}/events", last + 1)
    assert [e["offset"] for e in events] == list(range(last + 1))
    customer = [e["content"]["text"] for e in events if e["type"] == "customer_message"]
    assert sorted(customer) == ["an espresso", "hello", "hi there"]


@pytest.mark.parametrize(
    ("arguments", "environment", "expected"),
    [
        (["--keepalive", "0"], {}, "keep-alive interval must be 0.05 to 3600 seconds"),
        ([], {"PARLANT_WEB_KEEPALIVE": "soon"}, "PARLANT_WEB_KEEPALIVE='soon' is not a number"),
    ],
)
def test_unusable_options_are_refused_before_serving(
    arguments: list[str], environment: dict[str, str], expected: str
) -> None:
    finished = subprocess.run(
        [sys.executable, "-m", "examples.web", *arguments],
        cwd=ROOT,
        env={**os.environ, **environment},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert finished.returncode == 2
    assert expected in finished.stderr
    assert "Traceback" not in finished.stderr
