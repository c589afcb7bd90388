"""``collect`` on a state: what loads, what is refused (and where), what round-trips."""

from __future__ import annotations

from typing import Any

import pytest

from parlant_runtime import BundleError, bundle_from_data, dumps_bundle, loads_bundle


def _data(state: dict[str, Any]) -> dict[str, Any]:
    return {
        "agent": {"name": "A"},
        "journeys": [
            {"title": "J", "states": [{"name": "s", "isInitial": True, **state}]},
        ],
    }


CHAT = {"stateType": "chat", "chatPrompt": "Which day?"}


def test_a_chat_state_collects_variables_and_they_round_trip() -> None:
    collect = [
        {"name": "day", "schema": {"type": "string", "minLength": 3}, "description": "a day"},
        {"name": "party", "schema": {"type": "integer", "minimum": 1}},
    ]
    bundle = bundle_from_data(_data({**CHAT, "collect": collect}))
    state = bundle.journeys[0].states[0]
    assert [(c.name, c.value_schema) for c in state.collect] == [
        ("day", {"type": "string", "minLength": 3}),
        ("party", {"type": "integer", "minimum": 1}),
    ]
    assert loads_bundle(dumps_bundle(bundle)) == bundle


@pytest.mark.parametrize(
    ("state", "field", "message"),
    [
        (
            {**CHAT, "collect": [{"name": "day", "schema": {"type": "weekday"}}]},
            "collect[0].schema",
            "not a valid JSON Schema",
        ),
        (
            {**CHAT, "collect": [{"name": "2day", "schema": {"type": "string"}}]},
            "collect[0].name",
            "is not a name",
        ),
        (
            {**CHAT, "collect": [{"name": "day"}]},
            "collect[0].schema",
            "required",
        ),
        (
            {
                **CHAT,
                "collect": [
                    {"name": "day", "schema": {"type": "string"}},
                    {"name": "day", "schema": {"type": "string"}},
                ],
            },
            "states[0]",
            "collected variable",
        ),
        (
            {
                "stateType": "decision",
                "condition": "Which way?",
                "collect": [{"name": "day", "schema": {"type": "string"}}],
            },
            "states[0]",
            "only chat states collect variables",
        ),
    ],
)
def test_a_broken_collect_is_refused_where_it_is(
    state: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(BundleError) as refused:
        bundle_from_data(_data(state))
    text = str(refused.value)
    assert field in text
    assert message.casefold() in text.casefold()
