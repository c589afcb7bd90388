"""Language-model turns: model calls and tokens per turn, and the runtime's own overhead.

Run: ``.venv/bin/python benchmarks/bench_llm.py`` (``--quick`` for fewer sessions,
``--json`` for JSON). No network: the model is the local fake provider of the tests
(``tests/llm/fake_provider.py``, a scripted HTTP server speaking Chat Completions on
127.0.0.1), reached through the official ``openai`` SDK, as a real deployment would.

The agent: 10 guidelines with natural-language conditions, a journey of four chat
states that collect variables (activation and two transitions in natural language, two
on expressions), three canned responses with natural-language conditions; fluid
composition. A session is five customer messages (start the journey, give a value, ask
a question a guideline answers, give another value, finish).

Measured per turn (medians over all turns of all sessions, and totals):

- model calls, input and output tokens (the aim: one call for every condition and
  variable of the turn, one for the reply);
- ``process_message`` wall time on a :class:`MemoryStore`;
- time inside the model calls (the SDK and the HTTP round trip to the local server,
  timed around ``LanguageModel.complete``/``stream``);
- the runtime's overhead: the first minus the second (prompt building, answer checks,
  the turn itself, the store);
- the reference, in the same run: the same conversation with no model (keyword
  matching, the built-in reply), i.e. what the runtime costs without any model.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from parlant_runtime import MemoryStore, Runtime, bundle_from_data
from parlant_runtime.llm import ModelRequest, ModelResponse, Price
from parlant_runtime.llm.openai_chat import OpenAIChatModel
from tests.llm.fake_provider import Call, echo_brain, serve

WS = "bench"
TOPICS = [
    "hours", "parking", "prices", "refunds", "wifi", "pets", "payment", "delivery",
    "allergies", "gifts",
]  # fmt: skip
MESSAGES = [
    "I want to book a table",
    "size=4",
    "what about parking and prices",
    "time=19:30",
    "thanks, I am done",
]


_FILLER = frozenset("customer asks about wants to a the is says".split())


def brain(call: Call) -> Any:
    """The echo brain, with conditions read the way a model would read these: a
    condition holds when the message has its words other than "customer asks about"."""
    answer = echo_brain(call)
    if call.schema_name == "understanding":
        message = str(call.document()["latest_message"]).casefold()
        texts = {c["id"]: c["text"] for c in call.document()["conditions"]}
        for verdict in answer["conditions"]:
            words = [w for w in texts[verdict["id"]].split() if w not in _FILLER]
            verdict["holds"] = all(w in message for w in words)
    return answer


def agent() -> dict[str, Any]:
    def chat(name: str, prompt: str, collect: str | None = None) -> dict[str, Any]:
        state: dict[str, Any] = {"name": name, "stateType": "chat", "chatPrompt": prompt}
        if collect is not None:
            state["collect"] = [{"name": collect, "schema": {"type": ["string", "integer"]}}]
        return state

    states = [
        {**chat("ask_size", "How many people?", "size"), "isInitial": True},
        chat("ask_time", "What time?", "time"),
        chat("confirm", "A table for {{ vars.size }} at {{ vars.time }}. Anything else?"),
        chat("bye", "Goodbye!"),
    ]
    return {
        "agent": {"name": "Bistro", "compositionMode": "fluid", "systemPrompt": "Be brief."},
        "guidelines": [
            {"name": t, "condition": f"customer asks about {t}", "action": f"Answer about {t}."}
            for t in TOPICS
        ],
        "cannedResponses": [
            {"name": "hello", "template": "Hello!", "conditions": ["customer says hello"]},
            {"name": "thanks", "template": "You're welcome.", "conditions": ["customer thanks"]},
            {
                "name": "sorry",
                "template": "Sorry about that.",
                "conditions": ["customer complains"],
            },
        ],
        "journeys": [
            {
                "title": "Book a table",
                "conditions": ["customer wants to book a table"],
                "states": states,
                "transitions": [
                    {"from": "ask_size", "to": "ask_time", "condition": "{{ vars.size }}"},
                    {"from": "ask_time", "to": "confirm", "condition": "{{ vars.time }}"},
                    {"from": "confirm", "to": "bye", "condition": "customer is done"},
                    {"from": "confirm", "to": "ask_time", "condition": "customer changes the time"},
                ],
            }
        ],
    }


class Timed:
    """A language model that times the calls of the one it wraps."""

    def __init__(self, model: OpenAIChatModel) -> None:
        self.model = model
        self.seconds = 0.0

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def price(self) -> Price | None:
        return self.model.price

    async def complete(self, request: ModelRequest) -> ModelResponse:
        started = time.perf_counter()
        try:
            return await self.model.complete(request)
        finally:
            self.seconds += time.perf_counter() - started

    async def stream(self, request: ModelRequest) -> AsyncIterator[str | ModelResponse]:
        started = time.perf_counter()
        try:
            async for piece in self.model.stream(request):
                yield piece
        finally:
            self.seconds += time.perf_counter() - started


async def conversation(
    runtime: Runtime, agent_id: Any, timed: Timed | None
) -> list[dict[str, Any]]:
    session = await runtime.start_session(WS, agent_id)
    turns = []
    for text in MESSAGES:
        inside = timed.seconds if timed else 0.0
        started = time.perf_counter()
        result = await runtime.process_message(WS, session.id, text)
        wall = time.perf_counter() - started
        model = result.trace.model or {}
        turns.append(
            {
                "wall": wall,
                "model_time": (timed.seconds - inside) if timed else 0.0,
                "calls": model.get("calls", 0),
                "input_tokens": model.get("input_tokens", 0),
                "output_tokens": model.get("output_tokens", 0),
                "errors": len(result.trace.errors),
                "replies": len(result.replies),
            }
        )
    return turns


async def measure(sessions: int, url: str) -> dict[str, Any]:
    store = MemoryStore()
    await store.ensure_workspace(WS)
    agent_id = (await store.publish(WS, bundle_from_data(agent()))).agent_id
    timed = Timed(OpenAIChatModel("bench", base_url=f"{url}/v1", api_key="bench"))
    with_model = Runtime(store, language_model=timed)
    without = Runtime(store)
    turns: list[dict[str, Any]] = []
    reference: list[float] = []
    await conversation(with_model, agent_id, timed)  # warm-up: connections, compilation
    await conversation(without, agent_id, None)
    for _ in range(sessions):  # alternating, so load drifts touch both alike
        turns += await conversation(with_model, agent_id, timed)
        reference += [t["wall"] for t in await conversation(without, agent_id, None)]
    ms = 1000.0

    def median(key: str) -> float:
        return float(statistics.median(t[key] for t in turns))

    overhead = [(t["wall"] - t["model_time"]) * ms for t in turns]
    return {
        "turns": len(turns),
        "calls_per_turn": {"median": median("calls"), "max": max(t["calls"] for t in turns)},
        "input_tokens_per_turn": median("input_tokens"),
        "output_tokens_per_turn": median("output_tokens"),
        "errors": sum(t["errors"] for t in turns),
        "multi_part_turns": sum(1 for t in turns if t["replies"] > 1),
        "turn_ms": median("wall") * ms,
        "model_ms": median("model_time") * ms,
        "overhead_ms": statistics.median(overhead),
        "overhead_p90_ms": statistics.quantiles(overhead, n=10)[-1],
        "reference_no_model_ms": statistics.median(reference) * ms,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer sessions")
    parser.add_argument("--json", action="store_true", help="print JSON")
    options = parser.parse_args()
    with serve(brain) as fake:
        figures = asyncio.run(measure(5 if options.quick else 30, fake.url))
    load = os.getloadavg()[0]
    if options.json:
        print(json.dumps({"cpus": os.cpu_count(), "load": load, **figures}, indent=2))
        return
    print(f"machine: {os.cpu_count()} CPUs, load average {load:.2f}")
    print(f"agent: 10 natural-language guidelines, a 4-state journey; {figures['turns']} turns")
    print(
        f"model calls per turn: median {figures['calls_per_turn']['median']:.0f}, "
        f"max {figures['calls_per_turn']['max']} (aim: 2, one for conditions and variables, "
        "one for the reply)"
    )
    print(
        f"tokens per turn (median): {figures['input_tokens_per_turn']:.0f} in, "
        f"{figures['output_tokens_per_turn']:.0f} out; turns answered in several parts: "
        f"{figures['multi_part_turns']}; errors: {figures['errors']}"
    )
    print(
        f"turn {figures['turn_ms']:.1f} ms = model calls {figures['model_ms']:.1f} ms "
        f"(SDK + local HTTP) + runtime overhead {figures['overhead_ms']:.1f} ms "
        f"(p90 {figures['overhead_p90_ms']:.1f} ms)"
    )
    print(
        f"reference, same conversation without a model: {figures['reference_no_model_ms']:.2f} ms"
    )


if __name__ == "__main__":
    main()
