"""The reply of a turn that ends a journey is composed in its final state.

A strict agent selects its canned responses by ``state.name``; the journey's last
message is the one of its final state, so ``state.name`` (and ``journey.title``)
must name the final state while that reply is composed, although the session is
in no journey once the turn is over.
"""

from __future__ import annotations

from parlant_runtime.engine.turn import DEFAULT_NO_MATCH
from tests.engine.test_turns import Chat, bundle, chat, edge, final, journey, run_chat


def strict_flow() -> dict:  # type: ignore[type-arg]
    return bundle(
        journey("Order", [chat("ask", "Shall I?"), final("done")], [edge("ask", "done", "yes")]),
        mode="strict",
        canned_responses=[
            {
                "name": "asking",
                "template": "Shall I order it?",
                "conditions": ["{{ state.name == 'ask' }}"],
            },
            {
                "name": "finished",
                "template": "Ordered ({{ journey.title }}). Goodbye!",
                "conditions": ["{{ state.name == 'done' }}"],
            },
            {
                "name": "final",
                "template": "(in a {{ state.type }} state)",
                "conditions": ["{{ state.type == 'final' }}"],
                "priority": 1,
            },
        ],
        guidelines=[
            {
                "name": "thank at the end",
                "condition": "{{ state.name == 'done' }}",
                "action": "Thank them.",
            }
        ],
    )


def test_a_canned_response_selected_by_the_final_state_name_is_the_last_reply() -> None:
    async def scenario(c: Chat) -> None:
        first = await c.say("order please", "start")
        assert (first.state, first.replies) == ("ask", ("Shall I order it?",))
        last = await c.say("yes", "yes")
        assert last.replies == ("Ordered (Order). Goodbye!",), last.trace.reply
        assert last.replies != (DEFAULT_NO_MATCH,)
        assert last.guidelines == ("thank at the end",)
        # the journey is over all the same
        assert (last.journey, last.state) == (None, None)
        assert (await c.current()).current_state_id is None
        after = await c.say("anything else?")
        assert after.replies == (DEFAULT_NO_MATCH,)

    run_chat(strict_flow(), scenario)
