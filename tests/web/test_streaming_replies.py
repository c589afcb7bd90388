"""``POST /sessions/{id}/messages/stream``: the reply as server-sent events, stored once.

Against a real server process (``python -m examples.web``), with and without a
language model; the model is the local fake provider (tests/llm/fake_provider.py)
reached through ``OPENAI_BASE_URL``, so nothing goes to the internet.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.llm.fake_provider import Call, echo_brain, serve
from tests.web.conftest import Server, sse_messages, start_server


def _stream(client: httpx.Client, session: str, text: str) -> list[tuple[str, Any]]:
    with client.stream(
        "POST", f"/sessions/{session}/messages/stream", json={"text": text}
    ) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        return [(m["event"], json.loads(m["data"])) for m in sse_messages(response.iter_lines())]


def _check(events: list[tuple[str, Any]], client: httpx.Client, session: str) -> dict[str, Any]:
    assert events[-1][0] == "turn"
    turn: dict[str, Any] = events[-1][1]
    chunks = [data for name, data in events if name == "chunk"]
    parts: dict[int, str] = {}
    for chunk in chunks:
        parts[chunk["part"]] = parts.get(chunk["part"], "") + chunk["text"]
    assert [text.strip() for _, text in sorted(parts.items())] == turn["replies"]
    stored = client.get(f"/sessions/{session}").json()
    assert stored["last_offset"] == turn["last_offset"]  # stored once, nothing after
    return turn


@pytest.fixture
def plain(tmp_path: Path) -> Iterator[Server]:
    server = start_server(f"sqlite:///{tmp_path / 'web.db'}", tmp_path / "server.log")
    yield server
    server.stop()


def test_without_a_model_each_stored_reply_is_one_chunk(plain: Server) -> None:
    with httpx.Client(base_url=plain.base_url, timeout=30) as client:
        session = client.post("/sessions", json={}).json()["session_id"]
        events = _stream(client, session, "hello")
        turn = _check(events, client, session)
        assert turn["replies"] == [
            "Hello, welcome to Aurora Cafe! Would you like to order a coffee?"
        ]
        assert [name for name, _ in events] == ["chunk", "turn"]
        client.post(f"/sessions/{session}/end")
        closed = client.post(f"/sessions/{session}/messages/stream", json={"text": "hi"})
        assert closed.status_code == 409
        assert closed.json()["error"]["code"] == "session_closed"


def _cafe(call: Call) -> Any:
    if call.schema_name == "understanding":
        doc = call.document()
        wants = "coffee" in str(doc["latest_message"])
        verdicts = [
            {"id": c["id"], "holds": wants and "order" in c["text"], "rationale": "asked"}
            for c in doc["conditions"]
        ]
        return {"conditions": verdicts, "variables": {}}
    return echo_brain(call)


def test_with_a_model_the_reply_streams_word_by_word(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with serve(_cafe) as fake:
        monkeypatch.setenv("OPENAI_BASE_URL", f"{fake.url}/v1")
        monkeypatch.setenv("OPENAI_API_KEY", "test-key")
        monkeypatch.setenv("PARLANT_MODEL", "openai:gpt-test")
        server = start_server(f"sqlite:///{tmp_path / 'web.db'}", tmp_path / "server.log")
        try:
            with httpx.Client(base_url=server.base_url, timeout=30) as client:
                session = client.post("/sessions", json={}).json()["session_id"]
                events = _stream(client, session, "I want to order a coffee")
                turn = _check(events, client, session)
        finally:
            server.stop()
        assert fake.calls[-1].stream
    assert turn["replies"] == ["What can I get you: espresso, latte, cappuccino or flat white?"]
    assert sum(1 for name, _ in events if name == "chunk") > 3
