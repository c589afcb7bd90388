"""Reading bundle files: every problem at once, with file, line and field path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from parlant_runtime import (
    AgentBundle,
    BundleError,
    BundleProblem,
    ParlantRuntimeError,
    bundle_from_data,
    dump_bundle,
    dumps_bundle,
    load_bundle,
    loads_bundle,
    read_bundle,
    reads_bundle,
)
from parlant_runtime.bundle.source import MAX_BUNDLE_BYTES, MAX_BUNDLE_NODES

MALFORMED = Path(__file__).parent / "bundles" / "malformed"
MINIMAL = Path(__file__).parent.parent / "examples" / "minimal.yaml"


def problems_of(path: Path) -> list[BundleProblem]:
    with pytest.raises(BundleError) as caught:
        load_bundle(path)
    return list(caught.value.problems)


def where(problems: list[BundleProblem]) -> set[tuple[int | None, str]]:
    return {(p.line, p.field) for p in problems}


def test_bundle_error_is_a_parlant_runtime_error_and_lists_every_problem() -> None:
    with pytest.raises(ParlantRuntimeError) as caught:
        load_bundle(MALFORMED / "wrong_types.yaml")
    text = str(caught.value)
    assert text.startswith("the bundle cannot be loaded (8 problems):")
    assert f"{MALFORMED / 'wrong_types.yaml'}:14 agent.temperature:" in text


def test_wrong_types_are_all_reported_with_lines() -> None:
    problems = problems_of(MALFORMED / "wrong_types.yaml")
    assert where(problems) == {
        (14, "agent.temperature"),
        (19, "guidelines[0].priority"),
        (20, "guidelines[0].enabled"),
        (23, "terms[0].synonyms"),
        (26, "journeys[0].conditions"),
        (27, "journeys[0].allowSkipping"),
        (28, "journeys[0].states"),
        (32, "journeys[0].transitions[0].priority"),
    }
    by_field = {p.field: p.message for p in problems}
    assert by_field["agent.temperature"] == 'expected a valid integer, got "warm"'
    assert by_field["journeys[0].allowSkipping"] == "expected a valid boolean, got [true]"


def test_unknown_keys_are_refused_with_a_suggestion() -> None:
    problems = problems_of(MALFORMED / "unknown_keys.yaml")
    messages = {p.field: p.message for p in problems}
    assert messages["agent.temprature"] == "unknown key 'temprature'; did you mean 'temperature'?"
    assert messages["journeys[0].states[0].chatPromt"].endswith("did you mean 'chatPrompt'?")
    assert "known keys here: agent, cannedResponses" in messages["workflows"]
    assert (
        "known keys here: condition, from, id, priority, to"
        in (messages["journeys[0].transitions[0].when"])
    )


def test_bad_enum_value_lists_the_allowed_ones() -> None:
    (problem,) = problems_of(MALFORMED / "bad_enum.yaml")
    assert str(problem) == (
        f"{MALFORMED / 'bad_enum.yaml'}:13 journeys[0].states[2].stateType: "
        "'chatt' is not one of chat, tool, decision, final"
    )


def test_duplicate_names_point_at_the_repeated_entry() -> None:
    problems = problems_of(MALFORMED / "duplicate_names.yaml")
    assert where(problems) == {(13, "journeys[0].states[2].name"), (18, "journeys[1].title")}
    assert all("each must be unique" in p.message for p in problems)


def test_duplicates_are_reported_together_with_other_problems() -> None:
    text = """
agent: {name: A, temperature: 500}
tools: [{name: t}, {name: t}]
"""
    with pytest.raises(BundleError) as caught:
        reads_bundle(text, filename="b.yaml")
    assert {p.field for p in caught.value.problems} == {"agent.temperature", "tools[1].name"}


def test_missing_required_fields() -> None:
    problems = problems_of(MALFORMED / "missing_required.yaml")
    assert {p.field for p in problems} == {
        "agent.name",
        "journeys[0].states[1].name",
        "journeys[1].title",
    }
    assert all(p.message.startswith("required field") for p in problems)


def test_not_yaml_says_where_the_parser_gave_up() -> None:
    (problem,) = problems_of(MALFORMED / "not_yaml.yaml")
    assert problem.line == 5
    assert problem.message.startswith("not valid YAML:")


def test_top_level_must_be_a_mapping() -> None:
    (problem,) = problems_of(MALFORMED / "not_a_mapping.yaml")
    assert problem.message == "a bundle is a mapping with an `agent` key, not list"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is empty"),
        ("# only a comment\n", "is empty"),
        ("agent: {name: A}\nagent: {name: B}\n", "duplicate key 'agent' (first on line 1)"),
        ("agent: {name: A}\n1: x\n", "keys must be text"),
    ],
    ids=["empty", "comment-only", "duplicate-key", "non-text-key"],
)
def test_yaml_level_problems(text: str, message: str) -> None:
    with pytest.raises(BundleError) as caught:
        reads_bundle(text, filename="b.yaml")
    assert message in str(caught.value)


def test_merge_keys_are_allowed() -> None:
    text = """
defaults: &chat {stateType: chat, chatPrompt: Hi}
"""
    with pytest.raises(BundleError, match="unknown key 'defaults'"):
        reads_bundle(text + "agent: {name: A}\n")
    bundle = loads_bundle(
        """
agent: {name: A}
journeys:
  - title: J
    states:
      - &chat {name: a, stateType: chat, chatPrompt: Hi, isInitial: true}
      - {<<: *chat, name: b, isInitial: false}
"""
    )
    assert bundle.journeys[0].states[1].chat_prompt == "Hi"


def test_json_bundle_means_the_same_as_its_yaml_twin() -> None:
    yaml_twin = load_bundle(Path(__file__).parent.parent / "examples" / "clinic.yaml")
    json_twin = load_bundle(Path(__file__).parent / "bundles" / "valid" / "clinic.json")
    assert json_twin == yaml_twin


def test_json_errors_have_lines() -> None:
    with pytest.raises(BundleError) as caught:
        reads_bundle('{\n  "agent": {\n    "name": "A",\n    "temprature": 3\n  }\n}', fmt="json")
    (problem,) = caught.value.problems
    assert (problem.line, problem.field) == (4, "agent.temprature")


def test_json_syntax_errors_and_duplicate_keys() -> None:
    with pytest.raises(BundleError, match="not valid JSON"):
        reads_bundle('{"agent": {"name": "A"},}', fmt="json")
    with pytest.raises(BundleError, match="duplicate key 'agent'"):
        reads_bundle('{"agent": {"name": "A"}, "agent": {"name": "B"}}', fmt="json")


def test_snake_case_spellings_are_accepted_and_mean_the_same() -> None:
    camel = loads_bundle(MINIMAL.read_text())
    snake_text = (
        MINIMAL.read_text()
        .replace("compositionMode", "composition_mode")
        .replace("stateType", "state_type")
        .replace("isInitial", "is_initial")
        .replace("chatPrompt", "chat_prompt")
        .replace("isFinal", "is_final")
    )
    assert loads_bundle(snake_text) == camel


def test_snake_case_errors_still_find_their_line() -> None:
    with pytest.raises(BundleError) as caught:
        reads_bundle("agent:\n  name: A\n  max_tokens: 0\n")
    (problem,) = caught.value.problems
    assert (problem.line, problem.field) == (3, "agent.max_tokens")  # as the file spells it


def test_files_that_cannot_be_read(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="no such file"):
        load_bundle(tmp_path / "missing.yaml")
    with pytest.raises(BundleError, match="is a folder"):
        load_bundle(tmp_path)
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(BundleError, match="not UTF-8"):
        load_bundle(binary)


def test_very_large_files_are_refused_with_a_clear_message() -> None:
    text = "agent: {name: A}\n#" + "x" * MAX_BUNDLE_BYTES
    with pytest.raises(BundleError, match="too large to be a bundle"):
        reads_bundle(text)


def test_alias_bombs_are_refused() -> None:
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 8):
        refs = ", ".join([f"*a{i - 1}"] * 10)
        levels.append(f"a{i}: &a{i} [{refs}]")
    text = "\n".join(levels) + "\nagent: {name: A}\n"
    assert MAX_BUNDLE_NODES < 10**8
    with pytest.raises(BundleError, match="too large to be a bundle"):
        reads_bundle(text)


def test_variable_values_must_fit_their_type() -> None:
    with pytest.raises(BundleError) as caught:
        bundle_from_data(
            {
                "agent": {"name": "A"},
                "variables": [{"key": "n", "valueType": "number", "value": "3"}],
            }
        )
    (problem,) = caught.value.problems
    assert problem.field == "variables[0]"
    assert "is not a number" in problem.message


def test_dump_leaves_out_defaults_and_derived_ids(tmp_path: Path) -> None:
    bundle = load_bundle(MINIMAL)
    text = dumps_bundle(bundle)
    assert "id:" not in text
    assert "priority" not in text
    target = tmp_path / "out.json"
    dump_bundle(bundle, target)
    assert json.loads(target.read_text())["agent"] == {"name": "Clinic assistant"}
    assert load_bundle(target) == bundle


def test_explicit_ids_are_kept_and_children_derive_from_them() -> None:
    base = load_bundle(MINIMAL)
    data = base.model_dump(by_alias=True)
    journey = data["journeys"][0]
    journey["id"] = "00000000-0000-4000-8000-000000000001"
    for child in (*journey["states"], *journey["transitions"]):
        del child["id"]
    moved = AgentBundle.model_validate(data)
    assert str(moved.journeys[0].id) == "00000000-0000-4000-8000-000000000001"
    assert moved.journeys[0].states[0].id != base.journeys[0].states[0].id
    text = dumps_bundle(moved)
    assert text.count("id:") == 1
    assert loads_bundle(text) == moved


def test_renaming_a_state_changes_only_its_id() -> None:
    base = load_bundle(MINIMAL)
    renamed = loads_bundle(MINIMAL.read_text().replace("confirm", "confirm_visit"))
    old = {s.name: s.id for s in base.journeys[0].states}
    new = {s.name: s.id for s in renamed.journeys[0].states}
    assert old["ask_day"] == new["ask_day"]
    assert old["done"] == new["done"]
    assert old["confirm"] != new["confirm_visit"]


def test_read_bundle_keeps_line_numbers() -> None:
    loaded = read_bundle(MINIMAL)
    assert loaded.path == str(MINIMAL)
    assert loaded.source.line_of(("journeys", 0, "transitions", 1, "from")) is not None


@pytest.mark.parametrize(
    ("text", "field", "message"),
    [
        ("agent: {name: A, temperature: true}", "agent.temperature", "got true"),
        ("agent: {name: A, temperature: '30'}", "agent.temperature", 'got "30"'),
        ("agent: {name: A}\ntools: [{name: t, enabled: 'off'}]", "tools[0].enabled", 'got "off"'),
        ("agent: {name: A}\nguidelines: [{action: x, enabled: 0}]", "guidelines[0].enabled", "0"),
    ],
    ids=["bool-as-int", "digits-as-int", "word-as-bool", "int-as-bool"],
)
def test_types_are_strict(text: str, field: str, message: str) -> None:
    with pytest.raises(BundleError) as caught:
        reads_bundle(text)
    (problem,) = caught.value.problems
    assert problem.field == field
    assert message in problem.message


def test_one_field_given_in_both_spellings() -> None:
    with pytest.raises(BundleError, match="the same field given twice"):
        reads_bundle("agent: {name: A, max_tokens: 5, maxTokens: 6}")


def test_a_variable_key_is_unique_across_scopes() -> None:
    text = "agent: {name: A}\nvariables: [{key: k}, {key: k, scope: customer}]"
    with pytest.raises(BundleError, match="duplicate key 'k'"):
        reads_bundle(text)


def test_json_refuses_nan_and_infinity() -> None:
    with pytest.raises(BundleError, match="NaN is not a JSON number"):
        reads_bundle(
            '{"agent": {"name": "A"}, "variables": [{"key": "k", "value": NaN}]}', fmt="json"
        )


def test_the_size_limit_counts_bytes_not_characters() -> None:
    wide = "é" * (MAX_BUNDLE_BYTES // 2 + 1)  # fewer characters than the limit, more bytes
    assert len(wide) < MAX_BUNDLE_BYTES
    with pytest.raises(BundleError, match="bytes"):
        reads_bundle(f"agent: {{name: A}}\n# {wide}\n")
