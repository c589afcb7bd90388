"""Expression conditions decided in batches give exactly what deciding each alone gives.

The reply phase of a turn decides every guideline's expression condition (and, for a
fluid agent, every canned response's) in a few sandbox calls instead of one each. A
batch must never change a result or a reason, whatever the expressions do: read
something undefined, break a sandbox rule, return an undefined value, or carry a
trailing ``, x`` that parentheses would turn into a tuple.
"""

from __future__ import annotations

from typing import Any

import pytest

from parlant_runtime.engine.batch import MAX_CHUNK, ConditionBatch
from parlant_runtime.engine.conditions import Condition, compile_condition
from parlant_runtime.sandbox import ConditionKind
from tests.engine.test_turns import Chat, bundle, run_chat

CONTEXT: dict[str, Any] = {
    "message": "where is my parcel?",
    "vars": {"n": 3, "name": "Ada", "items": [1, 2], "tier": "gold", "none": None},
    "session": {"id": "s", "mode": "auto", "status": "active", "customer": None, "metadata": {}},
    "journey": {},
    "state": {},
    "tool": {"lookup": {"found": True}},
    "kb": [],
    "mentions": lambda term: term == "parcel",
}

EXPRESSIONS = [
    "{{ vars.n > 2 }}",
    "{{ vars.n > 5 }}",
    "{{ 1 == 2, 0 }}",  # alone: only ``1 == 2`` is read; in parentheses it would be a tuple
    "{{ vars.missing }}",  # an undefined value
    "{{ vars.missing == 1 }}",  # undefined inside an operation: the call fails
    "{{ vars.items | length }}",
    "{{ range(5000) | list | length > 1 }}",  # breaks a sandbox bound
    "{{ vars.name.__class__ }}",  # refused when compiled
    "{{ [1 for x in range(9)] }}",  # does not parse
    "{{ mentions('parcel') and tool.lookup.found }}",
    "{{ vars.none }}",
    "{{ message | upper | replace('PARCEL', 'box') }}",
    "{{ vars.tier == 'gold' and vars.n >= 3 }}",
    "{{ (2 ** 64) ** 64 > 0 }}",  # bounded arithmetic
    "{{ ('x' * 10**9) | length > 0 }}",  # bounded strings
    "{{ '%s' % vars }}",  # refused formatting
    "{{ vars.update({'name': 'Eve'}) or true }}",  # refused mutation
    "",
    "customer wants a refund",
]


def alone(conditions: list[Condition]) -> dict[Condition, tuple[bool, str | None]]:
    return {c: c.evaluate(CONTEXT, {}) for c in conditions if c.kind is ConditionKind.EXPRESSION}


@pytest.mark.parametrize("repeat", [1, 3, 40])
def test_a_batch_decides_every_expression_as_it_is_decided_alone(repeat: int) -> None:
    conditions = [compile_condition(text) for text in EXPRESSIONS * repeat]
    batch = ConditionBatch(conditions)
    expected = alone(conditions)
    assert batch.evaluate(CONTEXT) == expected
    assert batch.evaluate(CONTEXT) == expected  # chunks compiled on first use, reused
    reasons = [reason for _, reason in expected.values()]
    assert any(r is not None and "missing" in r for r in reasons)  # the cases did fail
    assert any(r is not None and "range()" in r for r in reasons)
    assert CONTEXT["vars"]["name"] == "Ada"  # nothing was changed


def test_a_batch_of_many_chunks_decides_each_condition() -> None:
    conditions = [compile_condition(f"{{{{ vars.n > {i - 100} }}}}") for i in range(300)]
    conditions[150] = compile_condition("{{ vars.missing > 1 }}")  # fails its chunk
    batch = ConditionBatch(conditions)
    decided = batch.evaluate(CONTEXT)
    assert len(conditions) > 2 * MAX_CHUNK
    assert decided == alone(conditions)
    assert [decided[c][0] for c in conditions[:150]] == [i < 103 for i in range(150)]
    assert decided[conditions[150]][1] is not None


def test_natural_and_empty_conditions_are_left_to_the_turn() -> None:
    conditions = [compile_condition("customer is angry"), compile_condition(None)]
    batch = ConditionBatch(conditions)
    assert len(batch) == 0
    assert batch.evaluate(CONTEXT) == {}


# ---------------------------------------------------------------------- in a turn


def test_a_turn_traces_batched_guidelines_exactly_as_before() -> None:
    guidelines = [
        {"name": f"g{i}", "condition": f"{{{{ vars.score > {i} }}}}", "action": f"Do {i}."}
        for i in range(30)
    ]
    guidelines[10]["condition"] = "{{ vars.nothing > 1 }}"  # an error: false, with its reason
    guidelines[20]["condition"] = "customer is polite"
    data = bundle(guidelines=guidelines, variables=[{"key": "score", "valueType": "number"}])

    async def scenario(c: Chat) -> None:
        result = await c.say("hi", "customer is polite", variables={"score": 15})
        rows = {t.where: t for t in result.trace.conditions}
        assert len(result.trace.conditions) == 30
        for i in range(30):
            row = rows[f"guideline g{i}"]
            if i == 10:
                assert (row.result, row.kind) == (False, "expression")
                assert row.reason is not None
                assert "nothing" in row.reason
            elif i == 20:
                assert (row.result, row.kind, row.reason) == (True, "natural", None)
            else:
                assert (row.result, row.reason) == (i < 15, None)
        expected = [f"g{i}" for i in range(15) if i != 10] + ["g20"]
        assert sorted(result.guidelines) == sorted(expected)

    run_chat(data, scenario)


CANNED = [
    {"name": "first", "template": "First.", "conditions": ["{{ vars.n > 5 }}"], "priority": 900},
    {"name": "second", "template": "Second {{ vars.n }}.", "priority": 500},
    {"name": "third", "template": "Third.", "conditions": ["{{ vars.n > 1 }}"], "priority": 100},
]


def test_strict_stops_at_the_first_fillable_canned_response() -> None:
    data = bundle(
        mode="strict",
        cannedResponses=CANNED,
        variables=[{"key": "n", "valueType": "number", "value": 3}],
    )

    async def scenario(c: Chat) -> None:
        result = await c.say("hi")
        assert result.replies == ("Second 3.",)
        assert result.trace.reply is not None
        assert result.trace.reply.skipped == (("canned first", "a condition does not hold"),)
        where = [t.where for t in result.trace.conditions]
        assert where == ["canned first"]  # the third is never tried

    run_chat(data, scenario)


def test_fluid_offers_every_eligible_canned_response_decided_in_a_batch() -> None:
    offered: list[tuple[str, ...]] = []

    class Recording:
        async def compose(self, request: Any) -> Any:
            offered.append(tuple(c.name for c in request.candidates))
            return None

    data = bundle(
        cannedResponses=CANNED, variables=[{"key": "n", "valueType": "number", "value": 3}]
    )

    async def scenario(c: Chat) -> None:
        result = await c.say("hi")
        assert offered == [("canned second", "canned third")]
        assert [(t.where, t.result) for t in result.trace.conditions] == [
            ("canned first", False),
            ("canned third", True),
        ]

    run_chat(data, scenario, generator=Recording())
