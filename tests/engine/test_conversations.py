"""The engine's fixes and additions, seen in conversation-test files (the spec's format).

Each test writes a small bundle and a conversation file into a temporary folder and
runs it as the ``test`` command does: a tool state skipped by its condition, the move
back after a failed chain in the step's events, and a guideline's tool filling a
reply.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from parlant_runtime.testing import Outcome
from tests.engine.test_turns import bundle, chat, edge, journey, tool_state
from tests.testing.support import one_case, run


def run_case(tmp_path: Path, data: dict[str, Any], body: str) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    (case,) = run(one_case(tmp_path, body, bundle=path)).cases
    assert case.outcome is Outcome.PASSED, case.failure


def lookup_journey() -> dict[str, Any]:
    return bundle(
        journey(
            "J",
            [
                chat("a", "Which day?"),
                tool_state(
                    "t",
                    "lookup",
                    condition="{{ vars.slots is defined }}",
                    toolConfig={"resultVariable": "slots"},
                ),
                chat("b", "Booked."),
            ],
            [edge("a", "t", "customer gives a day"), edge("t", "b")],
        ),
        tools=[{"name": "lookup"}],
    )


def test_a_tool_state_whose_skip_condition_holds_makes_no_call(tmp_path: Path) -> None:
    run_case(
        tmp_path,
        lookup_journey(),
        """
        tools:
          lookup: {returns: {free: true}}
        steps:
          - customer: "hi"
            holds: [start]
            expect: {state: a}
          - customer: "Monday"
            holds: [customer gives a day]
            set: {slots: {free: true}}
            expect: {state: b, tool_calls: [], reply: "Booked."}
        """,
    )


def test_a_failed_tool_call_moves_the_session_back_in_the_events(tmp_path: Path) -> None:
    run_case(
        tmp_path,
        lookup_journey(),
        """
        tools:
          lookup: {raises: "booking system down"}
        steps:
          - customer: "hi"
            holds: [start]
            expect: {state: a}
          - customer: "Monday"
            holds: [customer gives a day]
            expect:
              state: a
              tool_calls: [lookup]
              events:
                - customer_message
                - journey_transition
                - tool_call
                - tool_result
                - status_update
                - journey_transition   # back at a, where the session waited
                - agent_message
        """,
    )


def test_a_matched_guidelines_tool_fills_the_reply(tmp_path: Path) -> None:
    data = bundle(
        mode="strict",
        guidelines=[
            {
                "name": "hours",
                "condition": "customer asks about opening hours",
                "action": "Give the opening hours.",
                "tools": ["opening_hours"],
            }
        ],
        tools=[{"name": "opening_hours"}],
        cannedResponses=[
            {
                "name": "hours",
                "template": "We open at {{ tool.opening_hours.open }}.",
                "priority": 200,
            },
            {"name": "other", "template": "Anything else?"},
        ],
    )
    run_case(
        tmp_path,
        data,
        """
        tools:
          opening_hours: {returns: {open: "09:00"}}
        steps:
          - customer: "when do you open?"
            holds: [customer asks about opening hours]
            expect:
              guidelines: [hours]
              tool_calls: [opening_hours]
              reply: "We open at 09:00."
              events: [customer_message, tool_call, tool_result, agent_message]
          - customer: "thanks"
            expect: {tool_calls: [], reply: "Anything else?"}
        """,
    )
