"""One or more tests per validation rule, including the cases at its edges.

The broken bundles under ``tests/bundles/broken`` are copies of the examples with
one deliberate defect each; ``tests/broken_bundles_expected.yaml`` lists the codes
each must produce.
Smaller cases are built inline with :func:`journey`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from parlant_runtime import Code, ValidationReport, bundle_from_data, read_bundle, validate_bundle
from parlant_runtime.validation.registry import BUNDLE_RULES, JOURNEY_RULES

BROKEN = Path(__file__).parent / "bundles" / "broken"
EXPECTED: dict[str, list[str]] = yaml.safe_load(
    (Path(__file__).parent / "broken_bundles_expected.yaml").read_text()
)


def journey(
    states: list[dict[str, Any]],
    transitions: list[tuple[str, str] | tuple[str, str, str | None] | dict[str, Any]],
    **extra: Any,
) -> ValidationReport:
    """Validate a bundle holding one journey (and whatever ``extra`` adds at the top)."""
    rows = []
    for transition in transitions:
        if isinstance(transition, dict):
            rows.append(transition)
        else:
            row: dict[str, Any] = {"from": transition[0], "to": transition[1]}
            if len(transition) == 3:
                row["condition"] = transition[2]
            rows.append(row)
    journey_extra = extra.pop("journey", {})
    data = {
        "agent": {"name": "A"},
        "journeys": [{"title": "J", "states": states, "transitions": rows, **journey_extra}],
        **extra,
    }
    return validate_bundle(bundle_from_data(data))


def chat(name: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "stateType": "chat", "chatPrompt": f"Say {name}", **fields}


def final(name: str = "done") -> dict[str, Any]:
    return {"name": name, "stateType": "final", "isFinal": True}


def decision(name: str) -> dict[str, Any]:
    return {"name": name, "stateType": "decision", "condition": f"decide {name}"}


def codes(report: ValidationReport) -> set[str]:
    return {finding.code.value for finding in report.findings}


def of(report: ValidationReport, code: Code) -> list[Any]:
    return [finding for finding in report.findings if finding.code is code]


# --- the broken example files --------------------------------------------------------


@pytest.mark.parametrize("name", sorted(EXPECTED), ids=sorted(EXPECTED))
def test_broken_example_produces_exactly_its_codes(name: str) -> None:
    report = validate_bundle(read_bundle(BROKEN / name))
    assert codes(report) == set(EXPECTED[name])
    for finding in report.findings:
        assert finding.line is not None, f"{finding.code} has no line"


def test_every_code_has_a_broken_example_and_a_rule() -> None:
    covered = {code for listed in EXPECTED.values() for code in listed}
    assert covered == {code.value for code in Code}
    ruled = {rule.code for rule, _ in JOURNEY_RULES} | {rule.code for rule, _ in BUNDLE_RULES}
    assert ruled == set(Code)


def test_rule_names_are_unique_and_each_reports_only_its_code() -> None:
    names = [rule.name for rule, _ in [*JOURNEY_RULES, *BUNDLE_RULES]]
    assert len(names) == len(set(names))
    for name, listed in EXPECTED.items():
        loaded = read_bundle(BROKEN / name)
        report = validate_bundle(loaded)
        assert {f.code.value for f in report.findings} <= set(listed)


# --- initial and final states --------------------------------------------------------


def test_no_initial_state() -> None:
    report = journey([chat("a"), final()], [("a", "done")])
    assert codes(report) == {"no_initial_state"}
    assert of(report, Code.NO_INITIAL_STATE)[0].field == "journeys[0].states"


def test_empty_journey_reports_no_initial_state_only() -> None:
    assert codes(journey([], [])) == {"no_initial_state"}


def test_multiple_initial_states_names_all_of_them() -> None:
    report = journey(
        [chat("a", isInitial=True), chat("b", isInitial=True), final()],
        [("a", "done"), ("b", "done")],
    )
    (finding,) = of(report, Code.MULTIPLE_INITIAL_STATES)
    assert finding.states == ("a", "b")
    assert finding.field == "journeys[0].states[1]"


def test_no_final_state() -> None:
    report = journey([chat("a", isInitial=True), chat("b")], [("a", "b"), ("b", "a")])
    assert codes(report) == {"no_final_state"}


def test_state_type_final_without_is_final_still_ends_the_journey() -> None:
    report = journey(
        [chat("a", isInitial=True), {"name": "done", "stateType": "final"}], [("a", "done")]
    )
    assert codes(report) == set()


def test_final_has_outgoing() -> None:
    report = journey([chat("a", isInitial=True), final()], [("a", "done"), ("done", "a")])
    (finding,) = of(report, Code.FINAL_HAS_OUTGOING)
    assert finding.field == "journeys[0].transitions[1]"
    assert finding.states == ("done", "a")


# --- reachability and traps -----------------------------------------------------------


def test_unreachable_state_without_example_path() -> None:
    report = journey(
        [chat("a", isInitial=True), chat("island"), final()], [("a", "done"), ("island", "done")]
    )
    (finding,) = of(report, Code.UNREACHABLE_STATE)
    assert finding.states == ("island",)
    assert finding.example is None


def test_unreachable_is_not_reported_when_there_is_no_initial_state() -> None:
    report = journey([chat("a"), chat("b"), final()], [("a", "done")])
    assert Code.UNREACHABLE_STATE not in report.codes()


def test_dead_end_gives_the_path_that_gets_there() -> None:
    report = journey(
        [chat("a", isInitial=True), chat("b"), chat("stuck"), final()],
        [("a", "b"), ("b", "stuck"), ("a", "done", "customer leaves")],
    )
    (finding,) = of(report, Code.DEAD_END)
    assert finding.states == ("stuck",)
    assert finding.example == ("a", "b", "stuck")


def test_final_state_is_never_a_dead_end() -> None:
    report = journey([chat("a", isInitial=True), final()], [("a", "done")])
    assert Code.DEAD_END not in report.codes()


def test_cannot_reach_final_reports_each_trapped_state_with_a_path() -> None:
    report = journey(
        [chat("a", isInitial=True), chat("loop1"), chat("loop2"), final()],
        [("a", "done", "customer is done"), ("a", "loop1"), ("loop1", "loop2"), ("loop2", "loop1")],
    )
    findings = of(report, Code.CANNOT_REACH_FINAL)
    assert {f.states[0] for f in findings} == {"loop1", "loop2"}
    assert {f.example for f in findings} == {("a", "loop1"), ("a", "loop1", "loop2")}


def test_cannot_reach_final_is_silent_without_any_final_state() -> None:
    report = journey([chat("a", isInitial=True), chat("b")], [("a", "b"), ("b", "a")])
    assert Code.CANNOT_REACH_FINAL not in report.codes()


# --- state content -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "field", "words"),
    [
        ({"name": "s", "stateType": "chat"}, "chatPrompt", "chatPrompt"),
        ({"name": "s", "stateType": "chat", "chatPrompt": "   "}, "chatPrompt", "chatPrompt"),
        ({"name": "s", "stateType": "tool"}, "tool", "tool state without"),
        ({"name": "s", "stateType": "decision"}, "condition", "question"),
        (
            {"name": "s", "stateType": "chat", "chatPrompt": "x", "isFinal": True},
            "isFinal",
            "stateType: final",
        ),
        (
            {"name": "s", "stateType": "chat", "chatPrompt": "x", "tool": "t"},
            "tool",
            "only tool states",
        ),
        (
            {"name": "s", "stateType": "decision", "condition": "q", "toolConfig": {"a": 1}},
            "toolConfig",
            "only tool states",
        ),
        (
            {"name": "s", "stateType": "tool", "tool": "t", "toolConfig": {"args": {}}},
            "toolConfig",
            "unknown `toolConfig` key 'args'",
        ),
        (
            {"name": "s", "stateType": "tool", "tool": "t", "toolConfig": {"arguments": [1]}},
            "toolConfig",
            "not a mapping",
        ),
        (
            {
                "name": "s",
                "stateType": "tool",
                "tool": "t",
                "toolConfig": {"arguments": {"nope": 1}},
            },
            "toolConfig",
            "does not declare",
        ),
        (
            {
                "name": "s",
                "stateType": "tool",
                "tool": "t",
                "toolConfig": {"resultVariable": "a b"},
            },
            "toolConfig",
            "not a variable name",
        ),
    ],
    ids=[
        "chat-no-prompt",
        "chat-blank-prompt",
        "tool-no-tool",
        "decision-no-condition",
        "isfinal-on-chat",
        "tool-on-chat",
        "toolconfig-on-decision",
        "toolconfig-unknown-key",
        "arguments-not-mapping",
        "argument-not-declared",
        "bad-result-variable",
    ],
)
def test_invalid_state(state: dict[str, Any], field: str, words: str) -> None:
    tool = {"name": "t", "parameters": {"type": "object", "properties": {"day": {}}}}
    start = chat("start", isInitial=True)
    report = journey(
        [start, state, final()],
        [("start", "s"), ("s", "done"), ("start", "done", "customer leaves")],
        tools=[tool],
        guidelines=[{"condition": "x", "action": "y", "tools": ["t"]}],
    )
    findings = of(report, Code.INVALID_STATE)
    assert len(findings) == 1, findings
    assert findings[0].field == f"journeys[0].states[1].{field}"
    assert words in findings[0].message


def test_initial_and_final_at_once() -> None:
    report = journey([{**final("both"), "isInitial": True}], [])
    (finding,) = of(report, Code.INVALID_STATE)
    assert "both initial and final" in finding.message


# --- names that point nowhere ---------------------------------------------------------------


def test_transition_to_a_state_of_another_journey_says_which() -> None:
    data = {
        "agent": {"name": "A"},
        "journeys": [
            {
                "title": "One",
                "states": [chat("a", isInitial=True), final()],
                "transitions": [{"from": "a", "to": "done"}, {"from": "a", "to": "elsewhere"}],
            },
            {
                "title": "Two",
                "states": [chat("elsewhere", isInitial=True), final()],
                "transitions": [{"from": "elsewhere", "to": "done"}],
            },
        ],
    }
    report = validate_bundle(bundle_from_data(data))
    (finding,) = of(report, Code.DANGLING_REFERENCE)
    assert "belongs to journey 'Two'" in finding.message
    assert finding.field == "journeys[0].transitions[1].to"


def test_dangling_from_state() -> None:
    report = journey([chat("a", isInitial=True), final()], [("a", "done"), ("ghost", "done")])
    (finding,) = of(report, Code.DANGLING_REFERENCE)
    assert finding.field == "journeys[0].transitions[1].from"
    assert "does not exist" in finding.message


def test_dangling_tool_guideline_link_term_and_tool_read() -> None:
    report = journey(
        [
            chat("a", isInitial=True, chatPrompt="{{ tool.nope.x }}"),
            {"name": "t", "stateType": "tool", "tool": "missing"},
            final(),
        ],
        [
            {"from": "a", "to": "t", "condition": "{{ mentions('refund') }}"},
            ("t", "done"),
        ],
        guidelines=[{"name": "g", "condition": "c", "action": "x", "tools": ["absent"]}],
        journey={"guidelines": [{"guideline": "unknown"}]},
    )
    fields = sorted(f.field for f in of(report, Code.DANGLING_REFERENCE))
    assert fields == [
        "guidelines[0].tools[0]",
        "journeys[0].guidelines[0].guideline",
        "journeys[0].states[0].chatPrompt",
        "journeys[0].states[1].tool",
        "journeys[0].transitions[0].condition",
    ]


def test_mentions_accepts_synonyms_case_insensitively() -> None:
    report = journey(
        [chat("a", isInitial=True), final()],
        [{"from": "a", "to": "done", "condition": "{{ mentions('Money Back') }}"}],
        terms=[{"name": "refund", "synonyms": ["money back"]}],
    )
    assert Code.DANGLING_REFERENCE not in report.codes()


# --- transitions -----------------------------------------------------------------------------


def test_self_transition() -> None:
    report = journey(
        [chat("a", isInitial=True), final()],
        [("a", "a", "customer repeats"), ("a", "done")],
    )
    (finding,) = of(report, Code.SELF_TRANSITION)
    assert finding.states == ("a",)


def test_duplicate_transition_ignores_whitespace_in_conditions() -> None:
    report = journey(
        [chat("a", isInitial=True), final()],
        [("a", "done", "customer  is done"), ("a", "done", " customer is done ")],
    )
    (finding,) = of(report, Code.DUPLICATE_TRANSITION)
    assert finding.field == "journeys[0].transitions[1]"


def test_same_ends_with_other_conditions_are_not_duplicates() -> None:
    report = journey(
        [chat("a", isInitial=True), final()],
        [("a", "done", "customer is done"), ("a", "done", "customer leaves")],
    )
    assert Code.DUPLICATE_TRANSITION not in report.codes()


def test_shadowed_by_an_earlier_unconditional_sibling_of_equal_priority() -> None:
    report = journey(
        [chat("a", isInitial=True), chat("b"), final()],
        [("a", "done"), ("a", "b", "customer wants b"), ("b", "done")],
    )
    (finding,) = of(report, Code.SHADOWED_TRANSITION)
    assert finding.field == "journeys[0].transitions[1]"


def test_not_shadowed_when_the_conditional_sibling_has_higher_priority() -> None:
    report = journey(
        [chat("a", isInitial=True), chat("b"), final()],
        [
            {"from": "a", "to": "done"},
            {"from": "a", "to": "b", "condition": "customer wants b", "priority": 200},
            {"from": "b", "to": "done"},
        ],
    )
    assert Code.SHADOWED_TRANSITION not in report.codes()


def test_a_constant_true_expression_shadows_like_an_empty_condition() -> None:
    report = journey(
        [chat("a", isInitial=True), chat("b"), final()],
        [
            {"from": "a", "to": "done", "condition": "{{ true }}", "priority": 500},
            {"from": "a", "to": "b", "condition": "customer wants b", "priority": 400},
            {"from": "b", "to": "done"},
        ],
    )
    assert len(of(report, Code.SHADOWED_TRANSITION)) == 1


def test_ambiguous_priority_needs_two_distinct_conditional_targets() -> None:
    same_target = journey(
        [chat("a", isInitial=True), final()],
        [("a", "done", "customer is done"), ("a", "done", "customer leaves")],
    )
    assert Code.AMBIGUOUS_PRIORITY not in same_target.codes()
    two_targets = journey(
        [chat("a", isInitial=True), chat("b"), final()],
        [("a", "done", "customer is done"), ("a", "b", "customer wants b"), ("b", "done")],
    )
    (finding,) = of(two_targets, Code.AMBIGUOUS_PRIORITY)
    assert finding.states == ("a", "done", "b")


def test_no_fallback_on_a_decision_with_only_conditional_exits() -> None:
    report = journey(
        [chat("a", isInitial=True), decision("d"), final()],
        [("a", "d"), {"from": "d", "to": "done", "condition": "{{ vars.x is defined }}"}],
    )
    assert codes(report) == {"no_fallback"}


def test_chat_states_need_no_fallback() -> None:
    report = journey([chat("a", isInitial=True), final()], [("a", "done", "customer is done")])
    assert Code.NO_FALLBACK not in report.codes()


# --- loops -----------------------------------------------------------------------------------


def test_auto_advance_cycle_through_decisions_gives_the_cycle() -> None:
    report = journey(
        [chat("a", isInitial=True), decision("d1"), decision("d2"), final()],
        [
            ("a", "d1"),
            {"from": "d1", "to": "d2", "priority": 50},
            {"from": "d2", "to": "d1", "condition": "loop", "priority": 200},
            {"from": "d2", "to": "done", "priority": 10},
            {"from": "d1", "to": "done", "condition": "stop", "priority": 200},
        ],
    )
    (finding,) = of(report, Code.AUTO_ADVANCE_CYCLE)
    assert finding.example == ("d1", "d2", "d1")


def test_a_cycle_through_a_chat_state_waits_and_is_fine() -> None:
    report = journey(
        [chat("a", isInitial=True), decision("d"), final()],
        [("a", "d"), ("d", "a", "retry"), ("d", "done")],
    )
    assert Code.AUTO_ADVANCE_CYCLE not in report.codes()


def test_a_decision_looping_on_itself_is_an_auto_advance_cycle() -> None:
    report = journey(
        [chat("a", isInitial=True), decision("d"), final()],
        [("a", "d"), ("d", "d", "again"), ("d", "done")],
    )
    (finding,) = of(report, Code.AUTO_ADVANCE_CYCLE)
    assert finding.example == ("d", "d")


def test_revisit_cycle_only_when_revisiting_is_forbidden() -> None:
    states = [chat("a", isInitial=True), chat("b"), final()]
    transitions: list[Any] = [("a", "b"), ("b", "a", "customer goes back"), ("b", "done")]
    assert Code.REVISIT_CYCLE not in journey(states, transitions).codes()
    report = journey(states, transitions, journey={"allowRevisiting": False})
    (finding,) = of(report, Code.REVISIT_CYCLE)
    assert finding.example is not None
    assert finding.example[0] == finding.example[-1]


# --- templates, conditions and variables --------------------------------------------------------


@pytest.mark.parametrize(
    "prompt",
    [
        "{{ vars.x ",
        "{{ ''.__class__ }}",
        "{{ vars.__dict__ }}",
        "{% include 'other' %}",
        "{{ 'x' | center(10) }}",
    ],
    ids=["unclosed", "dunder-class", "dunder-dict", "include", "unknown-filter"],
)
def test_invalid_template(prompt: str) -> None:
    report = journey([chat("a", isInitial=True, chatPrompt=prompt), final()], [("a", "done")])
    (finding,) = of(report, Code.INVALID_TEMPLATE)
    assert finding.field == "journeys[0].states[0].chatPrompt"


def test_canned_response_templates_are_checked_too() -> None:
    report = journey(
        [chat("a", isInitial=True), final()],
        [("a", "done")],
        cannedResponses=[{"template": "Hi {{ user.__class__ }}"}],
    )
    assert of(report, Code.INVALID_TEMPLATE)[0].field == "cannedResponses[0].template"


def test_private_variables_may_feed_tools_and_conditions_but_never_messages() -> None:
    tool = {"name": "t", "parameters": {"type": "object", "properties": {"pin": {}}}}
    secret = {"key": "pin", "isPrivate": True, "value": "1234"}
    report = journey(
        [
            chat("a", isInitial=True, chatPrompt="Your pin is {{ vars.pin }}"),
            {
                "name": "t",
                "stateType": "tool",
                "tool": "t",
                "toolConfig": {"arguments": {"pin": "{{ vars.pin }}"}},
            },
            final(),
        ],
        [{"from": "a", "to": "t", "condition": "{{ vars.pin == '1234' }}"}, ("t", "done")],
        tools=[tool],
        variables=[secret],
    )
    (finding,) = of(report, Code.INVALID_TEMPLATE)
    assert finding.field == "journeys[0].states[0].chatPrompt"
    assert "private" in finding.message


@pytest.mark.parametrize(
    "condition",
    ["{{ vars.x > }}", "{{ a }} and {{ b }}", "customer says {{ vars.x }}", "{{ x.__class__ }}"],
    ids=["does-not-parse", "two-expressions", "mixed-text", "sandbox"],
)
def test_invalid_condition(condition: str) -> None:
    report = journey(
        [chat("a", isInitial=True), final()],
        [{"from": "a", "to": "done", "condition": condition}],
    )
    (finding,) = of(report, Code.INVALID_CONDITION)
    assert finding.field == "journeys[0].transitions[0].condition"


def test_conditions_everywhere_are_checked() -> None:
    bad = "{{ ( }}"
    report = journey(
        [chat("a", isInitial=True, condition=bad), final()],
        [("a", "done")],
        guidelines=[{"name": "g", "condition": bad, "action": "x"}],
        cannedResponses=[{"template": "t", "conditions": [bad]}],
        journey={
            "conditions": [bad],
            "guidelines": [{"guideline": "g", "journeySpecificCondition": bad}],
        },
    )
    fields = sorted(f.field for f in of(report, Code.INVALID_CONDITION))
    assert fields == [
        "cannedResponses[0].conditions[0]",
        "guidelines[0].condition",
        "journeys[0].conditions[0]",
        "journeys[0].guidelines[0].journeySpecificCondition",
        "journeys[0].states[0].condition",
    ]


def test_undefined_variable_and_what_counts_as_defined() -> None:
    report = journey(
        [
            chat("a", isInitial=True, chatPrompt="{{ vars.declared }} {{ vars.missing }}"),
            chat("b", chatPrompt="{{ vars.extracted }} {{ vars.from_tool }} {{ day }}"),
            {
                "name": "t",
                "stateType": "tool",
                "tool": "t",
                "toolConfig": {"resultVariable": "from_tool"},
            },
            final(),
        ],
        [
            {"from": "a", "to": "t", "condition": "{{ vars.extracted is defined }}"},
            ("t", "b"),
            ("b", "done"),
        ],
        tools=[{"name": "t"}],
        variables=[{"key": "declared", "value": "x"}],
    )
    messages = [f.message for f in of(report, Code.UNDEFINED_VARIABLE)]
    assert len(messages) == 2
    assert any("vars.missing" in m for m in messages)
    assert any("'day'" in m and "vars.day" in m for m in messages)


def test_unused_tool() -> None:
    report = journey(
        [chat("a", isInitial=True), final()],
        [("a", "done")],
        tools=[{"name": "used"}, {"name": "idle"}],
        guidelines=[{"condition": "c", "action": "x", "tools": ["used"]}],
    )
    (finding,) = of(report, Code.UNUSED_TOOL)
    assert finding.field == "tools[1]"
    assert finding.journey is None


# --- the report -----------------------------------------------------------------------------


def test_all_findings_are_collected_not_only_the_first() -> None:
    report = journey(
        [chat("a", isInitial=True), chat("b"), chat("c"), {"name": "x", "stateType": "chat"}],
        [("a", "a"), ("b", "c")],
    )
    assert codes(report) >= {
        "no_final_state",
        "unreachable_state",
        "dead_end",
        "self_transition",
        "invalid_state",
    }


def test_strict_counts_warnings() -> None:
    report = journey(
        [chat("a", isInitial=True), final()], [("a", "a", "customer repeats"), ("a", "done")]
    )
    assert report.passes()
    assert not report.passes(strict=True)


def test_a_state_whose_only_exits_dangle_is_no_dead_end_the_dangling_reference_says_it() -> None:
    # one cause, one finding: the author wrote an exit, only its target is wrong
    report = journey(
        [chat("a", isInitial=True), chat("b"), final()],
        [("a", "done", "customer leaves"), ("a", "b"), ("b", "ghostly phantom")],
    )
    assert codes(report) == {"dangling_reference"}


def test_a_loop_that_never_waits_is_not_also_a_revisit_cycle() -> None:
    report = journey(
        [chat("a", isInitial=True), decision("d"), final()],
        [("a", "d"), {"from": "d", "to": "d", "condition": "again"}, ("d", "done")],
        journey={"allowRevisiting": False},
    )
    assert Code.AUTO_ADVANCE_CYCLE in report.codes()
    assert Code.REVISIT_CYCLE not in report.codes()


@pytest.mark.parametrize(
    "prompt",
    ["{{ message.center(10) }}", "{{ 'a%s' % vars.x }}", "{{ 1 | attr('__class__') }}"],
    ids=["padding-method", "percent-format", "attr-dunder"],
)
def test_templates_the_runtime_would_refuse_are_refused_here(prompt: str) -> None:
    report = journey([chat("a", isInitial=True, chatPrompt=prompt), final()], [("a", "done")])
    assert Code.INVALID_TEMPLATE in report.codes()


def test_private_variables_read_through_get_are_caught() -> None:
    report = journey(
        [chat("a", isInitial=True, chatPrompt="{{ vars.get('pin') }}"), final()],
        [("a", "done")],
        variables=[{"key": "pin", "isPrivate": True, "value": "1"}],
    )
    (finding,) = of(report, Code.INVALID_TEMPLATE)
    assert "private variable 'pin'" in finding.message


# --- one cause, one finding: a misspelt transition end ------------------------------


def test_a_misspelt_transition_target_is_one_finding_with_a_did_you_mean() -> None:
    report = journey(
        [chat("a", isInitial=True), chat("b"), chat("c"), final()],
        [("a", "bb"), ("b", "c"), ("c", "done")],
    )
    (finding,) = report.findings
    assert finding.code is Code.DANGLING_REFERENCE
    assert finding.message == "Transition to state 'bb' does not exist; did you mean 'b'?"


def test_a_transition_to_a_name_like_no_state_reports_no_cascade() -> None:
    report = journey(
        [chat("ask", isInitial=True), chat("pay"), chat("ship"), final()],
        [("ask", "zzzzzzzz"), ("pay", "ship"), ("ship", "done")],
    )
    assert [f.code for f in report.findings] == [Code.DANGLING_REFERENCE]


def test_a_misspelt_source_is_one_finding_too() -> None:
    report = journey(
        [chat("a", isInitial=True), chat("b"), final()],
        [("a", "b"), ("bb", "done")],
    )
    (finding,) = report.findings
    assert finding.message == "Transition from state 'bb' does not exist; did you mean 'b'?"


def test_without_a_dangling_end_unreachable_states_are_reported_again() -> None:
    report = journey(
        [chat("a", isInitial=True), chat("b"), chat("lonely"), final()],
        [("a", "b"), ("b", "done"), ("lonely", "done")],
    )
    assert [f.states for f in report.findings] == [("lonely",)]


# --- conditions that name states, journeys and state types ------------------------------


def test_a_condition_naming_a_state_no_journey_has_is_a_dangling_reference() -> None:
    report = journey(
        [chat("ask", isInitial=True), chat("offer"), final()],
        [("ask", "offer"), ("offer", "done")],
        cannedResponses=[
            {"template": "Hi", "conditions": ["{{ state.name == 'offers' }}"]},
            {"template": "Yo", "conditions": ["{{ 'ask' == state.name or state.name in ['x'] }}"]},
            {"template": "Ok", "conditions": ["{{ state.name == 'done' }}"]},
        ],
    )
    found = of(report, Code.DANGLING_REFERENCE)
    assert [f.field for f in found] == [
        "cannedResponses[0].conditions[0]",
        "cannedResponses[1].conditions[0]",
    ]
    assert found[0].message.endswith("did you mean 'offer'?")


def test_inside_a_journey_the_state_must_be_one_of_its_own() -> None:
    data = {
        "agent": {"name": "A"},
        "journeys": [
            {
                "title": "One",
                "states": [chat("a", isInitial=True), final()],
                "transitions": [
                    {"from": "a", "to": "done", "condition": "{{ state.name == 'b' }}"}
                ],
            },
            {
                "title": "Two",
                "states": [chat("b", isInitial=True), final("end")],
                "transitions": [{"from": "b", "to": "end"}],
            },
        ],
    }
    (finding,) = validate_bundle(bundle_from_data(data)).findings
    assert finding.code is Code.DANGLING_REFERENCE
    assert "journey 'One' has no state" in finding.message


def test_state_type_and_journey_title_comparisons_are_checked_too() -> None:
    report = journey(
        [chat("a", isInitial=True), final()],
        [("a", "done", "{{ state.type == 'chatt' or journey.title == 'j' }}")],
    )
    messages = [f.message for f in of(report, Code.DANGLING_REFERENCE)]
    assert len(messages) == 2
    assert "did you mean 'chat'?" in messages[1] or "did you mean 'chat'?" in messages[0]
    assert any("did you mean 'J'?" in m for m in messages)


# --- a condition meant as an expression ----------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["vars.day is defined", "state.name == 'a'", "not vars.done", "mentions('refund')"],
)
def test_an_expression_without_braces_is_a_warning_with_the_fix(text: str) -> None:
    report = journey([chat("a", isInitial=True), final()], [("a", "done", text)])
    (finding,) = of(report, Code.UNBRACED_EXPRESSION)
    assert finding.message.endswith(f'write "{{{{ {text} }}}}".')


@pytest.mark.parametrize(
    "text",
    [
        "customer wants to book",
        "yes",
        "customer is angry",
        "the message mentions a refund",
        "state of the order is unclear",
    ],
)
def test_natural_language_is_not_mistaken_for_an_expression(text: str) -> None:
    report = journey([chat("a", isInitial=True), final()], [("a", "done", text)])
    assert of(report, Code.UNBRACED_EXPRESSION) == []


# --- tools: what would fail only when they run ------------------------------------------


def tool_report(**tool: Any) -> ValidationReport:
    return journey(
        [chat("a", isInitial=True), {"name": "t", "stateType": "tool", "tool": "t"}, final()],
        [("a", "t"), ("t", "done")],
        tools=[{"name": "t", **tool}],
    )


def test_error_handling_typos_are_findings_with_a_did_you_mean() -> None:
    report = tool_report(errorHandling={"onErorr": "fail", "timeOutMs": 300})
    messages = [f.message for f in of(report, Code.INVALID_TOOL)]
    assert len(messages) == 2
    assert "unknown key 'onErorr'; did you mean 'onError'?" in messages[0]
    assert "unknown key 'timeOutMs'; did you mean 'timeoutMs'?" in messages[1]
    assert {f.field for f in report.findings} == {"tools[0].errorHandling"}


def test_error_handling_values_are_checked_as_the_runtime_does() -> None:
    report = tool_report(errorHandling={"onError": "fial", "retries": 9})
    messages = sorted(f.message for f in of(report, Code.INVALID_TOOL))
    assert any(
        "onError must be 'fail' or 'fallback', not 'fial'; did you mean 'fail'?" in m
        for m in messages
    )
    assert any("retries must be a whole number from 0 to 5, not 9" in m for m in messages)


def test_schemas_are_checked_against_the_metaschema() -> None:
    report = tool_report(
        parameters={"type": "objekt", "properties": {"day": {"type": "strng"}}},
        returnSchema={"type": "object", "required": "day"},
    )
    found = {f.field: f.message for f in of(report, Code.INVALID_TOOL)}
    assert set(found) == {
        "tools[0].parameters.type",
        "tools[0].parameters.properties.day.type",
        "tools[0].returnSchema.required",
    }
    assert found["tools[0].parameters.type"].endswith("did you mean 'object'?")
    assert found["tools[0].parameters.properties.day.type"].endswith("did you mean 'string'?")


def test_a_valid_tool_has_no_finding() -> None:
    report = tool_report(
        parameters={"type": "object", "properties": {"day": {"type": "string"}}},
        returnSchema={"type": ["object", "null"]},
        errorHandling={
            "timeoutMs": 100,
            "retries": 1,
            "backoffMs": 0,
            "onError": "fallback",
            "fallback": {"free": False},
        },
    )
    assert report.findings == ()
