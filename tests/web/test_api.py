"""The embedding example's HTTP API against a running server, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import httpx
import pytest

from parlant_runtime import Runtime, load_bundle
from parlant_runtime.storage.sql.store import SqlStore
from tests.web.conftest import ROOT, Server, read_events, sse_messages

BUNDLE = ROOT / "examples" / "web" / "agent.yaml"


def new_session(client: httpx.Client, **body: Any) -> str:
    response = client.post("/sessions", json=body)
    assert response.status_code == 201, response.text
    session_id: str = response.json()["session_id"]
    return session_id


def say(client: httpx.Client, session_id: str, text: str, **extra: Any) -> dict[str, Any]:
    response = client.post(f"/sessions/{session_id}/messages", json={"text": text, **extra})
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error: dict[str, Any] = response.json()["error"]
    assert error["status"] == status
    assert error["code"] == code
    assert error["message"]
    assert "Traceback" not in response.text
    return error


# ---------------------------------------------------------------------- the happy path


def test_the_page_is_served(client: httpx.Client) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "EventSource" in response.text


def test_a_new_session_starts_with_no_events(client: httpx.Client) -> None:
    response = client.post("/sessions", json={"customer_id": "c-42"})
    assert response.status_code == 201
    created = response.json()
    assert response.headers["location"] == f"/sessions/{created['session_id']}"
    fetched = client.get(f"/sessions/{created['session_id']}").json()
    assert fetched == created
    assert fetched["customer_id"] == "c-42"
    assert fetched["status"] == "active"
    assert fetched["last_offset"] == -1
    assert (fetched["journey"], fetched["state"]) == (None, None)


def test_a_session_needs_no_body(client: httpx.Client) -> None:
    response = client.post("/sessions")
    assert response.status_code == 201
    assert response.json()["customer_id"] is None


def test_a_message_answers_with_replies_position_and_offsets(client: httpx.Client) -> None:
    session_id = new_session(client)
    turn = say(client, session_id, "I'd like a latte please")
    assert len(turn["replies"]) == 1
    assert turn["replies"][0].startswith("One latte coming up: order number ")
    assert (turn["journey"], turn["state"]) == ("Order a coffee", "order_placed")
    offsets = [event["offset"] for event in turn["events"]]
    assert offsets == list(range(len(offsets)))
    assert turn["events"][0]["type"] == "customer_message"
    assert turn["events"][-1]["type"] == "agent_message"
    assert "tool_call" in [event["type"] for event in turn["events"]]
    assert turn["last_offset"] == offsets[-1]
    assert turn["duplicate"] is False

    second = say(client, session_id, "thanks")
    assert second["replies"] == ["You're welcome - enjoy your coffee!"]
    assert second["events"][0]["offset"] == offsets[-1] + 1
    assert second["journey"] is None
    position = client.get(f"/sessions/{session_id}").json()
    assert position["last_offset"] == second["last_offset"]


def test_a_retried_message_is_recorded_once(client: httpx.Client) -> None:
    session_id = new_session(client)
    first = say(client, session_id, "an espresso", idempotency_key="msg-1")
    again = say(client, session_id, "an espresso", idempotency_key="msg-1")
    assert again["duplicate"] is True
    assert again["replies"] == first["replies"]
    assert again["events"] == first["events"]
    assert client.get(f"/sessions/{session_id}").json()["last_offset"] == first["last_offset"]
    unkeyed = say(client, session_id, "thanks", idempotency_key=None)  # null: no key
    assert unkeyed["duplicate"] is False


# ---------------------------------------------------------------------- the event stream


def test_the_stream_sends_every_event_with_its_offset_as_id(client: httpx.Client) -> None:
    session_id = new_session(client)
    turn = say(client, session_id, "a cappuccino please")
    events = read_events(client, f"/sessions/{session_id}/events", len(turn["events"]))
    assert [e["offset"] for e in events] == [e["offset"] for e in turn["events"]]
    assert [e["type"] for e in events] == [e["type"] for e in turn["events"]]
    assert [e["sse_id"] for e in events] == [str(e["offset"]) for e in events]
    assert events[0]["content"] == {"text": "a cappuccino please"}
    assert events[-1]["content"]["text"] == turn["replies"][0]
    # the turn's trace rides in event metadata: it stays on the server
    assert all("metadata" not in event for event in events)


def test_the_stream_delivers_what_happens_after_it_opened(
    client: httpx.Client, server: Server
) -> None:
    session_id = new_session(client)
    with (
        httpx.Client(base_url=server.base_url, timeout=10.0) as streaming,
        streaming.stream("GET", f"/sessions/{session_id}/events") as response,
    ):
        messages = sse_messages(response.iter_lines())
        assert "retry" in next(messages)  # the stream is open before anything happens
        turn = say(client, session_id, "hello")
        got = []
        for message in messages:
            if "data" in message:
                got.append(json.loads(message["data"]))
            if len(got) == len(turn["events"]):
                break
    assert [e["type"] for e in got] == ["customer_message", "agent_message"]
    assert got[1]["content"]["text"] == turn["replies"][0]


def test_last_event_id_resumes_right_after_it(client: httpx.Client) -> None:
    session_id = new_session(client)
    turn = say(client, session_id, "I want a flat white")
    last = turn["last_offset"]
    assert last >= 4
    resumed = read_events(
        client, f"/sessions/{session_id}/events", last - 2, headers={"last-event-id": "2"}
    )
    assert [e["offset"] for e in resumed] == list(range(3, last + 1))
    # a reconnect's Last-Event-ID wins over the after= of the URL the page first opened
    resumed = read_events(
        client,
        f"/sessions/{session_id}/events?after=0",
        1,
        headers={"last-event-id": str(last - 1)},
    )
    assert resumed[0]["offset"] == last
    after = read_events(client, f"/sessions/{session_id}/events?after={last - 1}", 1)
    assert after[0]["offset"] == last


def test_an_idle_stream_sends_keep_alive_comments(client: httpx.Client) -> None:
    session_id = new_session(client)
    started = time.monotonic()
    comments = []
    with client.stream("GET", f"/sessions/{session_id}/events") as response:
        for message in sse_messages(response.iter_lines()):
            if message.get("comment") == "keep-alive":
                comments.append(message)
            if len(comments) == 2:
                break
    assert len(comments) == 2
    assert time.monotonic() - started < 8  # keepalive is 0.5 s in these servers


def test_a_client_that_leaves_ends_its_stream(client: httpx.Client, server: Server) -> None:
    session_id = new_session(client)
    before = server.health()["open_streams"]
    with client.stream("GET", f"/sessions/{session_id}/events") as response:
        messages = sse_messages(response.iter_lines())  # kept: dropping it closes the stream
        assert "retry" in next(messages)
        assert server.health()["open_streams"] == before + 1
        response.close()
    deadline = time.monotonic() + 10
    while server.health()["open_streams"] != before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.health()["open_streams"] == before
    assert "Traceback" not in server.log()


def test_a_closed_session_streams_its_end_then_tells_the_browser_to_stop(
    client: httpx.Client,
) -> None:
    session_id = new_session(client)
    say(client, session_id, "hello")
    ended = client.post(f"/sessions/{session_id}/end")
    assert ended.status_code == 200
    assert ended.json()["status"] == "completed"
    with client.stream("GET", f"/sessions/{session_id}/events?after=1") as response:
        messages = [m for m in sse_messages(response.iter_lines()) if "data" in m]
    # the stream ended by itself after the closing event
    assert [json.loads(m["data"])["content"] for m in messages] == [{"status": "completed"}]
    reconnect = client.get(
        f"/sessions/{session_id}/events", headers={"last-event-id": messages[-1]["id"]}
    )
    assert reconnect.status_code == 204


# ---------------------------------------------------------------------- bad requests


def test_an_unknown_session_is_404_everywhere(client: httpx.Client) -> None:
    for session_id in (str(uuid.uuid4()), "not-a-uuid"):
        assert_error(client.get(f"/sessions/{session_id}"), 404, "unknown_session")
        assert_error(
            client.post(f"/sessions/{session_id}/messages", json={"text": "hi"}),
            404,
            "unknown_session",
        )
        assert_error(client.get(f"/sessions/{session_id}/events"), 404, "unknown_session")
        assert_error(client.post(f"/sessions/{session_id}/end"), 404, "unknown_session")


def test_a_closed_session_refuses_messages_with_409(client: httpx.Client) -> None:
    session_id = new_session(client)
    assert client.post(f"/sessions/{session_id}/end").status_code == 200
    error = assert_error(
        client.post(f"/sessions/{session_id}/messages", json={"text": "hello"}),
        409,
        "session_closed",
    )
    assert "completed" in error["message"]
    assert_error(client.post(f"/sessions/{session_id}/end"), 409, "session_closed")
    assert client.get(f"/sessions/{session_id}").json()["last_offset"] == 0  # nothing written


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        (b'{"text": "hi"', 400, "bad_json", None),
        (b"\xff\xfe", 400, "bad_json", None),
        (b"", 400, "bad_json", None),
        (b'["hi"]', 422, "invalid_request", None),
        (b"{}", 422, "invalid_request", "text"),
        (b'{"text": 5}', 422, "invalid_request", "text"),
        (b'{"text": "   "}', 422, "invalid_request", "text"),
        (b'{"text": "hi", "colour": "red"}', 422, "invalid_request", "colour"),
        (b'{"text": "hi", "idempotency_key": ""}', 422, "invalid_request", "idempotency_key"),
        (
            b'{"text": "hi", "idempotency_key": "%s"}' % (b"k" * 201),
            422,
            "invalid_request",
            "idempotency_key",
        ),
        (b'{"text": "a\\u0000b"}', 422, "invalid_request", "text"),
    ],
)
def test_a_bad_message_body_is_refused_and_writes_nothing(
    client: httpx.Client, body: bytes, status: int, code: str, field: str | None
) -> None:
    session_id = new_session(client)
    response = client.post(
        f"/sessions/{session_id}/messages",
        content=body,
        headers={"content-type": "application/json"},
    )
    error = assert_error(response, status, code)
    if field is not None:
        assert field in [detail["field"] for detail in error["details"]]
        assert field in error["message"]
    assert client.get(f"/sessions/{session_id}").json()["last_offset"] == -1


def test_a_bad_session_body_is_refused(client: httpx.Client) -> None:
    assert_error(client.post("/sessions", json={"customer_id": 7}), 422, "invalid_request")
    assert_error(client.post("/sessions", json={"metadata": {}}), 422, "invalid_request")
    json_type = {"content-type": "application/json"}
    assert_error(client.post("/sessions", content=b"{nope", headers=json_type), 400, "bad_json")


def test_a_body_that_is_not_json_is_415(client: httpx.Client) -> None:
    session_id = new_session(client)
    path = f"/sessions/{session_id}/messages"
    for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
        headers = {"content-type": content_type} if content_type else {}
        response = client.post(path, content=b'{"text": "hi"}', headers=headers)
        assert_error(response, 415, "unsupported_media_type")
    ok = client.post(
        path, content=b'{"text": "hi"}', headers={"content-type": "application/json; charset=utf-8"}
    )
    assert ok.status_code == 200
    assert client.get(f"/sessions/{session_id}").json()["last_offset"] == ok.json()["last_offset"]


def test_an_oversized_body_is_413_with_or_without_a_length(client: httpx.Client) -> None:
    session_id = new_session(client)
    big = json.dumps({"text": "x" * 20_000}).encode()
    json_type = {"content-type": "application/json"}
    response = client.post(f"/sessions/{session_id}/messages", content=big, headers=json_type)
    assert_error(response, 413, "too_large")

    def chunks() -> Any:  # no content-length: the server counts as it reads
        for start in range(0, len(big), 1000):
            yield big[start : start + 1000]

    response = client.post(f"/sessions/{session_id}/messages", content=chunks(), headers=json_type)
    assert "content-length" not in response.request.headers
    assert_error(response, 413, "too_large")
    assert client.get(f"/sessions/{session_id}").json()["last_offset"] == -1


def test_bad_stream_positions_are_400(client: httpx.Client) -> None:
    session_id = new_session(client)
    for query in ("after=x", "after=-5", "after=1.5", f"after={10**30}", "after=2147483648"):
        assert_error(client.get(f"/sessions/{session_id}/events?{query}"), 400, "bad_offset")
    response = client.get(f"/sessions/{session_id}/events", headers={"last-event-id": "abc"})
    assert "Last-Event-ID" in assert_error(response, 400, "bad_offset")["message"]


def test_unknown_routes_and_methods_answer_json(client: httpx.Client) -> None:
    assert_error(client.get("/nowhere"), 404, "not_found")
    assert_error(client.delete("/sessions"), 405, "method_not_allowed")


# ---------------------------------------------------------------------- tenancy


def test_sessions_of_another_workspace_are_404(sqlite_server: Server) -> None:
    url = sqlite_server.database_url

    async def foreign_session() -> str:
        store = SqlStore.open(url)
        try:
            await store.ensure_workspace("someone-else")
            report = await store.publish("someone-else", load_bundle(BUNDLE))
            session = await Runtime(store).start_session("someone-else", report.agent_id)
            return str(session.id)
        finally:
            await store.close()

    session_id = asyncio.run(foreign_session())
    with httpx.Client(base_url=sqlite_server.base_url, timeout=10.0) as client:
        for response in (
            client.get(f"/sessions/{session_id}"),
            client.post(f"/sessions/{session_id}/messages", json={"text": "hello"}),
            client.get(f"/sessions/{session_id}/events"),
            client.post(f"/sessions/{session_id}/end"),
        ):
            assert_error(response, 404, "unknown_session")

    async def untouched() -> tuple[int, str]:
        store = SqlStore.open(url)
        try:
            session = await store.get_session("someone-else", uuid.UUID(session_id))
            return session.event_count, session.status.value
        finally:
            await store.close()

    assert asyncio.run(untouched()) == (0, "active")
