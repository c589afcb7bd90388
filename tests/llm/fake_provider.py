"""A local HTTP server that speaks the OpenAI Chat Completions and Anthropic Messages
wire protocols, for driving the adapters through the official SDKs without a network.

It listens on 127.0.0.1 on a free port, in a thread. Every request is answered by a
*brain* (a function of the request, deterministic) unless a fault is queued:
``status`` (an error response, e.g. 429 with ``retry-after``), ``malformed`` (a body
that is not JSON), ``not_json`` (a well-formed response whose answer is not JSON),
``wrong_shape`` (JSON that breaks the requested schema) or ``hang`` (no answer until the
client gives up). Both providers stream with server-sent events when asked.

This is a scripted server, not a model: the brains answer by fixed rules.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast

__all__ = ["Call", "FakeProvider", "clinic_brain", "echo_brain", "serve"]


@dataclass
class Call:
    """One request as the brain sees it, whichever provider it came through."""

    provider: str
    model: str
    system: str
    messages: list[tuple[str, str]]
    schema_name: str | None
    schema: dict[str, Any] | None
    stream: bool
    body: dict[str, Any]

    def document(self) -> dict[str, Any]:
        """The JSON document the runtime sends as the last user message."""
        text = self.messages[-1][1]
        return dict(json.loads(text[text.index("{") :]))


Brain = Callable[[Call], Any]
"""Answers a call: a dict for a structured request, text otherwise."""


@dataclass
class FakeProvider:
    brain: Brain
    faults: list[tuple[str, Any]] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    url: str = ""

    def fault(self, kind: str, detail: Any = None, times: int = 1) -> None:
        """Answer the next ``times`` requests with this fault."""
        self.faults.extend([(kind, detail)] * times)


def _tokens(text: str) -> int:
    return max(1, len(text) // 4)


def _call_of(path: str, body: dict[str, Any]) -> Call:
    if path.endswith("/chat/completions"):
        messages = [(m["role"], str(m["content"])) for m in body["messages"]]
        system = messages[0][1] if messages and messages[0][0] == "system" else ""
        fmt = body.get("response_format") or {}
        schema = fmt.get("json_schema", {})
        return Call(
            "openai",
            body["model"],
            system,
            messages[1:] if system else messages,
            schema.get("name"),
            schema.get("schema"),
            bool(body.get("stream")),
            body,
        )
    choice = body.get("tool_choice") or {}
    tools = {t["name"]: t for t in body.get("tools", [])}
    name = choice.get("name")
    return Call(
        "anthropic",
        body["model"],
        str(body.get("system", "")),
        [(m["role"], str(m["content"])) for m in body["messages"]],
        name,
        tools[name]["input_schema"] if name in tools else None,
        bool(body.get("stream")),
        body,
    )


class _Handler(BaseHTTPRequestHandler):
    provider: FakeProvider

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return

    def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(raw)

    def _events(self, events: list[tuple[str | None, Any]]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for name, data in events:
            chunk = "" if name is None else f"event: {name}\n"
            chunk += f"data: {data if isinstance(data, str) else json.dumps(data)}\n\n"
            self.wfile.write(chunk.encode())
            self.wfile.flush()

    def do_POST(self) -> None:
        fake = self.provider
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        call = _call_of(self.path, body)
        fake.calls.append(call)
        kind, detail = fake.faults.pop(0) if fake.faults else ("", None)
        detail = cast(Any, detail)
        if kind == "hang":
            fake.stop.wait(detail or 30)
            return
        if kind == "status":
            status, headers = detail
            error = {"message": f"injected {status}", "type": "injected_error"}
            payload: dict[str, Any] = {"error": error}
            if call.provider == "anthropic":
                payload = {"type": "error", "error": error}
            self._send(status, payload, headers)
            return
        if kind == "malformed":
            self._send(200, b'{"id": "x", "choices": [ this is not json')
            return
        answer = fake.brain(call)
        if kind == "not_json":
            answer = "Sure! Here is what I think: conditions hold."
        elif kind == "wrong_shape":
            answer = {"verdicts": "yes"}
        text = answer if isinstance(answer, str) else json.dumps(answer)
        usage_in = _tokens(json.dumps(body.get("messages", [])) + call.system)
        usage_out = _tokens(text)
        if call.provider == "openai":
            self._openai(call, text, usage_in, usage_out)
        else:
            self._anthropic(call, answer, text, usage_in, usage_out)

    def _openai(self, call: Call, text: str, usage_in: int, usage_out: int) -> None:
        usage = {
            "prompt_tokens": usage_in,
            "completion_tokens": usage_out,
            "total_tokens": usage_in + usage_out,
        }
        base = {"id": "chatcmpl-1", "created": 0, "model": call.model}
        if not call.stream:
            message = {"role": "assistant", "content": text}
            choice = {"index": 0, "message": message, "finish_reason": "stop"}
            self._send(
                200, {**base, "object": "chat.completion", "choices": [choice], "usage": usage}
            )
            return
        events: list[tuple[str | None, Any]] = []
        for piece in re.findall(r"\S+\s*|\s+", text):
            delta = {"index": 0, "delta": {"content": piece}, "finish_reason": None}
            events.append((None, {**base, "object": "chat.completion.chunk", "choices": [delta]}))
        last = {"index": 0, "delta": {}, "finish_reason": "stop"}
        events.append((None, {**base, "object": "chat.completion.chunk", "choices": [last]}))
        events.append(
            (None, {**base, "object": "chat.completion.chunk", "choices": [], "usage": usage})
        )
        events.append((None, "[DONE]"))
        self._events(events)

    def _anthropic(self, call: Call, answer: Any, text: str, usage_in: int, usage_out: int) -> None:
        base = {"id": "msg_1", "type": "message", "role": "assistant", "model": call.model}
        if not call.stream:
            if call.schema_name is not None:
                content = [
                    {"type": "tool_use", "id": "toolu_1", "name": call.schema_name, "input": answer}
                ]
                if not isinstance(answer, dict):
                    content = [{"type": "text", "text": text}]
            else:
                content = [{"type": "text", "text": text}]
            self._send(
                200,
                {
                    **base,
                    "content": content,
                    "stop_reason": "tool_use" if call.schema_name else "end_turn",
                    "stop_sequence": None,
                    "usage": {"input_tokens": usage_in, "output_tokens": usage_out},
                },
            )
            return
        start: dict[str, Any] = {
            **base,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": usage_in, "output_tokens": 1},
        }
        events: list[tuple[str | None, Any]] = [
            ("message_start", {"type": "message_start", "message": start}),
            (
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                },
            ),
        ]
        for piece in re.findall(r"\S+\s*|\s+", text):
            delta = {"type": "text_delta", "text": piece}
            events.append(
                ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta})
            )
        events += [
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                    "usage": {"output_tokens": usage_out},
                },
            ),
            ("message_stop", {"type": "message_stop"}),
        ]
        self._events(events)


@contextmanager
def serve(brain: Brain) -> Iterator[FakeProvider]:
    """Run a fake provider on 127.0.0.1 (a free port) for the ``with`` block."""
    fake = FakeProvider(brain)
    handler = type("Handler", (_Handler,), {"provider": fake})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        fake.stop.set()
        server.shutdown()
        server.server_close()
        thread.join(5)
        time.sleep(0)


# ---------------------------------------------------------------------- brains

_PART = re.compile(r"^\d+\. \((?:the next step|a rule that applies)\) (.*)$", re.M)


def echo_brain(call: Call) -> Any:
    """Understanding: every condition whose words all appear in the message holds;
    a variable is read when the message says ``name=value``. Reply: each part's
    instruction, as its own message. Choice: the first approved response for each part."""
    if call.schema_name == "understanding":
        doc = call.document()
        message = str(doc["latest_message"]).casefold()
        verdicts = [
            {
                "id": c["id"],
                "holds": all(w in message for w in c["text"].casefold().split()),
                "rationale": f"the message {'says' if c['text'] in message else 'lacks'} it",
            }
            for c in doc["conditions"]
        ]
        found = dict(re.findall(r"(\w+)=(\S+)", str(doc["latest_message"])))
        values: dict[str, Any] = {}
        for spec in doc["collect"]:
            if spec["name"] in found:
                raw = found[spec["name"]]
                values[spec["name"]] = int(raw) if raw.isdigit() else raw
        return {"conditions": verdicts, "variables": values}
    if call.schema_name == "choice":
        doc = call.document()
        first = doc["approved_responses"][0]["id"] if doc["approved_responses"] else "none"
        return {"choices": [{"part": p["id"], "response": first} for p in doc["parts"]]}
    parts = _PART.findall(call.system)
    return "\n---\n".join(parts) if parts else "How can I help?"


_DAYS = "monday tuesday wednesday thursday friday saturday sunday".split()
_DEPARTMENTS = {
    "dermatology": "dermatology",
    "skin": "dermatology",
    "physio": "physiotherapy",
    "general practice": "general_practice",
    "gp": "general_practice",
}


def _clinic_holds(text: str, message: str, state: str | None) -> bool:
    words = set(re.findall(r"[a-z0-9']+", message))
    if text == "customer wants to book an appointment":
        return bool(words & {"book", "appointment", "booking"}) and "cancel" not in words
    if text == "customer greets the assistant":
        return bool(words & {"hi", "hello", "hey"})
    if text.startswith("customer describes chest pain"):
        return "chest pain" in message or "can't breathe" in message
    if text == "customer asks for medical advice":
        return "should i take" in message or "medicine" in words
    if text == "customer proposes a different day":
        return state == "suggest_other_day" and bool(words & set(_DAYS))
    if text == "customer no longer wants to book":
        return "never mind" in message or "forget it" in message
    if text == "none of the offered times suit the customer":
        return "none of" in message
    if text == "customer asks whether a day is free but has not asked to book yet":
        return "free" in words and "book" not in words
    return False


def clinic_brain(call: Call) -> Any:
    """Answers the clinic agent (examples/clinic.yaml) the way a model would, by rules:
    intents from key phrases, the department, day, time and confirmation code read from
    plain sentences; replies say each part's instruction."""
    if call.schema_name is None and "that's all" in call.messages[-1][1].casefold():
        return "Thank you for calling Riverside Family Clinic. Goodbye!"
    if call.schema_name != "understanding":
        return echo_brain(call)
    doc = call.document()
    message = str(doc["latest_message"]).casefold()
    state = doc["position"]["state"]
    verdicts = []
    for condition in doc["conditions"]:
        holds = _clinic_holds(condition["text"], message, state)
        reason = "the customer says so" if holds else "nothing in the message says so"
        verdicts.append({"id": condition["id"], "holds": holds, "rationale": reason})
    values: dict[str, Any] = {}
    wanted = {spec["name"] for spec in doc["collect"]}
    for phrase, department in _DEPARTMENTS.items():
        if "department" in wanted and re.search(rf"\b{phrase}\b", message):
            values["department"] = department
    for day in _DAYS:
        if "day" in wanted and day in message:
            values["day"] = day.capitalize()
    time_said = re.search(r"\b(\d{1,2})[:.](\d{2})\b", message)
    if "time" in wanted and time_said:
        values["time"] = f"{int(time_said.group(1)):02d}:{time_said.group(2)}"
    name = re.search(r"\b(?:this is|my name is|i am|i'm) ([A-Z][a-z]+)", str(doc["latest_message"]))
    if "patient_name" in wanted and name:
        values["patient_name"] = name.group(1)
    code = re.search(r"\bcl-\d{4}\b", message)
    if "confirmation_code" in wanted and code:
        values["confirmation_code"] = code.group(0).upper()
    return {"conditions": verdicts, "variables": values}
