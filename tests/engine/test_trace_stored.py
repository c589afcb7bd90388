"""The trace stored with a turn's last event stays bounded; the turn's result keeps it all.

``Trace.to_dict`` is the whole trace as JSON data (what ``dataclasses.asdict`` gives);
``Trace.stored`` is what the event's metadata keeps: the same while it is under
``STORED_TRACE_BYTES`` of JSON, a compacted form marked ``truncated`` past that.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from parlant_runtime.engine import ConditionTrace, ReplyTrace, Trace, TransitionTrace
from parlant_runtime.engine.trace import STORED_TRACE_BYTES, STORED_TRACE_ITEMS
from parlant_runtime.storage import MAX_EVENT_BYTES
from tests.engine.test_turns import Chat, as_json, bundle, run_chat


def json_bytes(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def sample(conditions: int = 3, text: str = "{{ vars.x > 1 }}") -> Trace:
    trace = Trace()
    for i in range(conditions):
        trace.conditions.append(ConditionTrace(f"guideline g{i}", text, "expression", i % 2 == 0))
    trace.conditions.append(ConditionTrace("guideline bad", "{{ x.y }}", "expression", False, "y?"))
    trace.transitions.append(TransitionTrace("a", "b", 100, "taken", "id-1"))
    trace.transitions.append(TransitionTrace("a", "c", 90, "not tried"))
    trace.path.extend(["J/b"])
    trace.guidelines.extend(["g0"])
    trace.reply = ReplyTrace("canned_response", "canned x", (("canned y", "a condition"),))
    trace.errors.append("tool 't' failed")
    return trace


def test_to_dict_is_what_asdict_gives() -> None:
    for trace in (Trace(), sample(), sample(50)):
        assert trace.to_dict() == dataclasses.asdict(trace)
    assert sample().to_dict()["reply"]["skipped"] == (("canned y", "a condition"),)


def test_to_dict_copies_and_never_shares_the_trace_lists() -> None:
    trace = sample()
    data = trace.to_dict()
    data["path"].append("J/elsewhere")
    data["conditions"][0]["result"] = "changed"
    assert trace.path == ["J/b"]
    assert trace.conditions[0].result is True


def test_a_small_trace_is_stored_whole() -> None:
    trace = sample(100)
    assert trace.stored() == trace.to_dict()


def test_a_large_trace_is_stored_compacted_within_its_budget() -> None:
    trace = sample(2_000, text="the customer asks about the catalogue " * 8)
    full = trace.to_dict()
    assert json_bytes(full) > STORED_TRACE_BYTES
    stored = trace.stored()
    assert json_bytes(stored) <= STORED_TRACE_BYTES
    assert stored["truncated"] is True
    kept = stored["conditions"]
    assert all(c["result"] or c["reason"] is not None for c in kept)  # false ones went first
    assert any(c["reason"] == "y?" for c in kept) or stored["omitted"]["conditions"]
    assert len(kept) <= STORED_TRACE_ITEMS
    assert len(kept) + stored["omitted"]["conditions"] == len(trace.conditions)
    assert stored["transitions"] == full["transitions"]  # small lists are kept whole
    assert stored["reply"] == as_json(full["reply"])
    assert len(trace.conditions) == 2_001  # the trace itself is untouched


def test_texts_too_long_even_for_the_compacted_trace_are_cut() -> None:
    trace = Trace(errors=["x" * 100_000 for _ in range(5)], path=["é" * 50_000])
    stored = trace.stored()
    assert json_bytes(stored) <= STORED_TRACE_BYTES
    assert stored["truncated"] is True
    assert all(error.endswith("…") for error in stored["errors"])
    assert len(stored["errors"]) == 5  # every entry is kept, each shorter


def test_a_turn_of_a_large_agent_stores_a_bounded_trace_and_returns_the_whole() -> None:
    subject = "the customer asks about subject {} of the catalogue, " + "in detail " * 20
    data = bundle(
        guidelines=[
            {"name": f"g{i}", "condition": subject.format(i), "action": f"Answer {i}."}
            for i in range(1_000)
        ]
    )

    async def scenario(c: Chat) -> None:
        result = await c.say("hi", subject.format(7))
        assert result.guidelines == ("g7",)
        assert len(result.trace.conditions) == 1_000  # the caller gets it all
        last = (await c.events())[-1]
        stored = last.metadata["trace"]
        assert json_bytes(stored) <= STORED_TRACE_BYTES < MAX_EVENT_BYTES
        assert stored["truncated"] is True
        assert [row["where"] for row in stored["conditions"]] == ["guideline g7"]
        assert stored["omitted"] == {"conditions": 999}
        assert stored["guidelines"] == ["g7"]

    run_chat(data, scenario)


def test_the_cheap_size_bound_is_never_below_the_json_size() -> None:
    worst = '\x01"\\é😀 '  # escapes, multi-byte characters, a surrogate pair in JSON
    traces = [
        Trace(),
        sample(),
        sample(300, text=worst * 40),
        Trace(path=[worst * 100], errors=[worst], guidelines=["g", worst]),
        Trace(reply=ReplyTrace("none", None, ((worst, worst),))),
    ]
    for trace in traces:
        assert trace._bound() >= json_bytes(trace.to_dict())
