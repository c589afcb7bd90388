"""Journey diagrams: the graph places findings exactly, and both renderers say it all.

The Mermaid and DOT texts are parsed back with small regex readers below, so the
tests check what a reader of the text gets (every state, every transition, the
labels as written, the marks), not how the text happens to be laid out.
"""

from __future__ import annotations

import itertools
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from parlant_runtime.bundle import JourneySpec, bundle_from_data, read_bundle
from parlant_runtime.diagram import (
    JourneyDiagram,
    build_diagram,
    to_dot,
    to_mermaid,
)
from parlant_runtime.validation import Code, Finding, Severity, validate_bundle
from tests.strategies import names

# ---------------------------------------------------------------------------
# readers of the rendered text

_M_STATE = re.compile(r'^\s*state "([^"\n]*)" as (\w+)$', re.MULTILINE)
# an edge label ends at ":", ";", "#" or a line break, except that Mermaid reads
# entity codes ("#59;") before parsing, so those may stand in it
_M_EDGE = re.compile(
    r"^\s*(\w+|\[\*\]) --> (\w+|\[\*\])(?: : ((?:[^:;#\n]|#\d+;)*))?$", re.MULTILINE
)
_M_CLASS = re.compile(r"^\s*class ([\w,]+) (\w+)$", re.MULTILINE)
_D_STRING = r'"((?:[^"\\]|\\.)*)"'
_D_NODE = re.compile(rf"^\s*{_D_STRING} \[(.*)\];$", re.MULTILINE)
_D_EDGE = re.compile(rf"^\s*{_D_STRING} -> {_D_STRING}(?: \[(.*)\])?;$", re.MULTILINE)
_D_ATTRIBUTE = re.compile(rf"(\w+)={_D_STRING}")


def mermaid_text(escaped: str) -> str:
    """What Mermaid shows for an escaped label: entity codes and <br/> decoded."""
    return re.sub(r"#(\d+);", lambda m: chr(int(m[1])), escaped.replace("<br/>", "\n"))


def mermaid_states(text: str) -> dict[str, str]:
    return {node_id: mermaid_text(label) for label, node_id in _M_STATE.findall(text)}


def mermaid_edges(text: str) -> list[tuple[str, str, str]]:
    return [(a, b, mermaid_text(label)) for a, b, label in _M_EDGE.findall(text)]


def mermaid_classes(text: str) -> dict[str, list[str]]:
    classes: dict[str, list[str]] = {}
    for ids, name in _M_CLASS.findall(text):
        classes.setdefault(name, []).extend(ids.split(","))
    return classes


def dot_text(quoted: str) -> str:
    """What Graphviz shows for the inside of a double-quoted string."""
    unescaped = re.sub(r"\\(.)", lambda m: "\n" if m[1] == "n" else m[1], quoted)
    return unescaped.replace("&amp;", "&")


def dot_attributes(text: str | None) -> dict[str, str]:
    return {key: dot_text(value) for key, value in _D_ATTRIBUTE.findall(text or "")}


def dot_nodes(text: str) -> dict[str, dict[str, str]]:
    return {node_id: dot_attributes(attrs) for node_id, attrs in _D_NODE.findall(text)}


def dot_edges(text: str) -> list[tuple[str, str, dict[str, str]]]:
    return [(a, b, dot_attributes(attrs)) for a, b, attrs in _D_EDGE.findall(text)]


# ---------------------------------------------------------------------------
# helpers


def diagram_of(path: Path, journey: int = 0) -> JourneyDiagram:
    loaded = read_bundle(path)
    report = validate_bundle(loaded)
    return build_diagram(loaded.bundle.journeys[journey], journey, report.findings)


def journey_from(states: list[dict[str, Any]], transitions: list[dict[str, Any]]) -> JourneySpec:
    data = {
        "agent": {"name": "A"},
        "journeys": [{"title": "J", "states": states, "transitions": transitions}],
    }
    return bundle_from_data(data).journeys[0]


def chat(name: str, *, initial: bool = False) -> dict[str, Any]:
    return {"name": name, "stateType": "chat", "chatPrompt": "Hello", "isInitial": initial}


def chain(count: int) -> JourneySpec:
    """States s0 .. s{count}, s0 initial, the last final, one transition between neighbours."""
    states = [chat(f"s{i}", initial=i == 0) for i in range(count)]
    states.append({"name": f"s{count}", "stateType": "final"})
    transitions = [{"from": f"s{i}", "to": f"s{i + 1}"} for i in range(count)]
    return journey_from(states, transitions)


def finding(
    code: Code, field: str, states: tuple[str, ...] = (), journey: str | None = "J"
) -> Finding:
    return Finding(code, journey, states, f"{code.value} here", field)


def marked_edges(diagram: JourneyDiagram) -> dict[int, tuple[Code, ...]]:
    return {edge.index: edge.codes for edge in diagram.edges if edge.findings}


def marked_nodes(diagram: JourneyDiagram) -> dict[str, tuple[Code, ...]]:
    return {node.name: node.codes for node in diagram.nodes if node.findings}


# ---------------------------------------------------------------------------
# the example bundle, drawn whole


@pytest.mark.parametrize("journey", [0, 1])
def test_mermaid_declares_every_state_and_transition(examples_dir: Path, journey: int) -> None:
    spec = read_bundle(examples_dir / "clinic.yaml").bundle.journeys[journey]
    text = to_mermaid(diagram_of(examples_dir / "clinic.yaml", journey))

    assert text.startswith("stateDiagram-v2\n")
    states = mermaid_states(text)
    assert [label.split("\n")[0] for label in states.values()] == [s.name for s in spec.states]
    ids = {label.split("\n")[0]: node_id for node_id, label in states.items()}
    edges = mermaid_edges(text)
    transitions = [(a, b) for a, b, _ in edges if "[*]" not in (a, b)]
    assert transitions == [(ids[t.from_state], ids[t.to_state]) for t in spec.transitions]
    starts = [b for a, b, _ in edges if a == "[*]"]
    ends = [a for a, b, _ in edges if b == "[*]"]
    assert starts == [ids[s.name] for s in spec.states if s.is_initial]
    assert ends == [ids[s.name] for s in spec.states if s.ends_journey]


@pytest.mark.parametrize("journey", [0, 1])
def test_dot_has_every_state_as_node_and_every_transition_as_edge(
    examples_dir: Path, journey: int
) -> None:
    spec = read_bundle(examples_dir / "clinic.yaml").bundle.journeys[journey]
    text = to_dot(diagram_of(examples_dir / "clinic.yaml", journey))

    assert text.startswith("digraph ")
    assert 'rankdir="LR"' in text
    nodes = dot_nodes(text)
    start = next(node_id for node_id, attrs in nodes.items() if attrs.get("shape") == "point")
    assert nodes.pop(start)["style"] == "invis"
    assert [attrs["label"].split("\n")[0] for attrs in nodes.values()] == [
        s.name for s in spec.states
    ]
    ids = {attrs["label"].split("\n")[0]: node_id for node_id, attrs in nodes.items()}
    edges = [(a, b) for a, b, _ in dot_edges(text)]
    assert edges == [(start, ids[s.name]) for s in spec.states if s.is_initial] + [
        (ids[t.from_state], ids[t.to_state]) for t in spec.transitions
    ]
    shapes = {"chat": "box", "tool": "component", "decision": "diamond", "final": "doublecircle"}
    for state in spec.states:
        assert nodes[ids[state.name]]["shape"] == shapes[state.state_type.value]


def test_a_clean_journey_has_no_marks(examples_dir: Path) -> None:
    diagram = diagram_of(examples_dir / "clinic.yaml")
    mermaid, dot = to_mermaid(diagram), to_dot(diagram)

    assert not marked_nodes(diagram)
    assert not marked_edges(diagram)
    assert "⚠" not in mermaid
    assert set(mermaid_classes(mermaid)) == {"tool", "decision"}
    assert "penwidth" not in dot


# ---------------------------------------------------------------------------
# findings land on exactly what they name


def test_dead_end_marks_only_the_dead_end_state(bundles_dir: Path) -> None:
    diagram = diagram_of(bundles_dir / "broken" / "dead_end.yaml")
    node = diagram.node("join_waitlist")
    assert node is not None

    assert marked_nodes(diagram) == {"join_waitlist": (Code.DEAD_END,)}
    assert node.severity is Severity.ERROR
    assert not marked_edges(diagram)

    classes = mermaid_classes(to_mermaid(diagram))
    assert classes["error"] == [node.id]
    assert "warning" not in classes
    assert "info" not in classes

    nodes = dot_nodes(to_dot(diagram))
    red = [node_id for node_id, attrs in nodes.items() if attrs.get("color") == "red"]
    assert red == [node.id]
    assert nodes[node.id]["penwidth"] == "2"
    assert "dead_end" in nodes[node.id]["tooltip"]
    assert all(attrs.get("color") is None for _, _, attrs in dot_edges(to_dot(diagram)))


def test_a_loop_marks_every_state_of_the_loop(bundles_dir: Path) -> None:
    diagram = diagram_of(bundles_dir / "broken" / "auto_advance_cycle.yaml")
    assert marked_nodes(diagram) == {
        "book": (Code.AUTO_ADVANCE_CYCLE,),
        "booking_ok": (Code.AUTO_ADVANCE_CYCLE,),
    }
    assert not marked_edges(diagram)


def test_shadowed_transition_marks_only_that_transition(bundles_dir: Path) -> None:
    diagram = diagram_of(bundles_dir / "broken" / "shadowed_transition.yaml")
    confirm, ask_day = diagram.node("confirm"), diagram.node("ask_day")
    assert confirm is not None
    assert ask_day is not None

    assert marked_edges(diagram) == {14: (Code.SHADOWED_TRANSITION,)}
    assert diagram.edges[14].severity is Severity.WARNING
    assert not marked_nodes(diagram)  # the finding names both states, but its field the edge

    mermaid = to_mermaid(diagram)
    warned = [(a, b) for a, b, label in mermaid_edges(mermaid) if label.startswith("⚠ ")]
    assert warned == [(confirm.id, ask_day.id)]
    assert mermaid.count("⚠") == 1
    assert set(mermaid_classes(mermaid)) == {"tool", "decision"}

    orange = [
        (a, b) for a, b, attrs in dot_edges(to_dot(diagram)) if attrs.get("color") == "orange"
    ]
    assert orange == [(confirm.id, ask_day.id)]
    assert not [n for n, attrs in dot_nodes(to_dot(diagram)).items() if "color" in attrs]


def test_transition_to_a_missing_state_goes_to_a_placeholder(bundles_dir: Path) -> None:
    diagram = diagram_of(bundles_dir / "broken" / "dangling_reference.yaml")
    placeholder = diagram.node("ask_insurance")
    assert placeholder is not None

    assert placeholder.missing
    assert placeholder.kind is None
    assert [node.name for node in diagram.nodes if node.missing] == ["ask_insurance"]
    assert diagram.edges[14].target == placeholder.id
    assert marked_edges(diagram) == {14: (Code.DANGLING_REFERENCE,)}
    assert mermaid_classes(to_mermaid(diagram))["missing"] == [placeholder.id]
    assert dot_nodes(to_dot(diagram))[placeholder.id]["style"] == "dashed"


def test_transition_index_is_matched_whole() -> None:
    journey = chain(12)
    findings = [
        finding(Code.SELF_TRANSITION, "journeys[0].transitions[1]"),
        finding(Code.INVALID_CONDITION, "journeys[0].transitions[10].condition"),
        finding(Code.DEAD_END, "journeys[0].states[1]", states=("s1",)),
        finding(Code.INVALID_STATE, "journeys[0].states[10].chatPrompt", states=("s10",)),
    ]
    diagram = build_diagram(journey, 0, findings)

    assert marked_edges(diagram) == {1: (Code.SELF_TRANSITION,), 10: (Code.INVALID_CONDITION,)}
    assert marked_nodes(diagram) == {"s1": (Code.DEAD_END,), "s10": (Code.INVALID_STATE,)}


def test_findings_of_other_journeys_are_ignored() -> None:
    journey = chain(3)
    findings = [
        finding(Code.DEAD_END, "journeys[0].states[1]", states=("s1",), journey="Other"),
        finding(Code.SELF_TRANSITION, "journeys[1].transitions[0]"),
        finding(Code.UNUSED_TOOL, "tools[0]", journey=None),
    ]
    diagram = build_diagram(journey, 0, findings)

    assert not marked_nodes(diagram)
    assert not marked_edges(diagram)
    assert [f.code for f in diagram.findings] == [Code.SELF_TRANSITION]


def test_findings_without_a_state_field_mark_the_states_they_name() -> None:
    journey = chain(4)
    findings = [
        finding(Code.CANNOT_REACH_FINAL, "journeys[0].states", states=("s2", "s3")),
        finding(Code.NO_INITIAL_STATE, "journeys[0].states"),
        finding(Code.DANGLING_REFERENCE, "journeys[0].guidelines[0].guideline"),
    ]
    diagram = build_diagram(journey, 0, findings)

    assert marked_nodes(diagram) == {
        "s2": (Code.CANNOT_REACH_FINAL,),
        "s3": (Code.CANNOT_REACH_FINAL,),
    }
    assert [f.code for f in diagram.findings] == [Code.NO_INITIAL_STATE, Code.DANGLING_REFERENCE]
    graph_label = dot_attributes(to_dot(diagram).splitlines()[1])["label"]
    assert graph_label.split("\n") == ["J", "error: no_initial_state", "error: dangling_reference"]
    comments = [line for line in to_mermaid(diagram).splitlines() if line.strip().startswith("%%")]
    assert sum("no_initial_state" in line for line in comments) == 1


def test_worst_severity_wins() -> None:
    journey = chain(2)
    findings = [
        finding(Code.NO_FALLBACK, "journeys[0].states[1]"),
        finding(Code.UNDEFINED_VARIABLE, "journeys[0].states[1].chatPrompt"),
        finding(Code.DEAD_END, "journeys[0].states[1]"),
        finding(Code.UNDEFINED_VARIABLE, "journeys[0].states[1].chatPrompt"),
    ]
    node = build_diagram(journey, 0, findings).nodes[1]

    assert node.severity is Severity.ERROR
    assert node.codes == (Code.NO_FALLBACK, Code.UNDEFINED_VARIABLE, Code.DEAD_END)


# ---------------------------------------------------------------------------
# labels and identifiers

AWKWARD_NAMES = [
    'say "hi"',
    "two\nlines",
    "a#b;c:d",
    "50% <off> & more",
    "back\\slash \\n \\N",
    "turn direction LR now",
    "end",
    "%%{init}%%",
]


def awkward_journey() -> JourneySpec:
    states = [chat(name, initial=i == 0) for i, name in enumerate(AWKWARD_NAMES)]
    transitions = [
        {"from": a, "to": b, "condition": f'customer says "{a}": ok; #{i}', "priority": 7}
        for i, (a, b) in enumerate(itertools.pairwise(AWKWARD_NAMES))
    ]
    return journey_from(states, transitions)


def test_mermaid_escapes_labels() -> None:
    diagram = build_diagram(awkward_journey(), 0, [])
    text = to_mermaid(diagram)

    assert mermaid_states(text) == {node.id: node.label for node in diagram.nodes}
    edges = [(a, b, label) for a, b, label in mermaid_edges(text) if "[*]" not in (a, b)]
    assert edges == [(e.source, e.target, e.label) for e in diagram.edges]
    # nothing the grammar reads survives outside an entity code or a <br/>
    escaped = [label for label, _ in _M_STATE.findall(text)]
    escaped += [label for *_, label in _M_EDGE.findall(text)]
    assert len(escaped) == len(diagram.nodes) + len(diagram.edges) + 1  # + "[*] --> first"
    for label in escaped:
        assert not set(re.sub(r"#\d+;|<br/>", "", label)) & set('"#;:%<>&\n')
    assert not re.search(r"direction\s+(tb|bt|rl|lr)", text, re.IGNORECASE)


def test_dot_escapes_labels() -> None:
    diagram = build_diagram(awkward_journey(), 0, [])
    text = to_dot(diagram)

    nodes = dot_nodes(text)
    assert {n: attrs["label"] for n, attrs in nodes.items() if "label" in attrs} == {
        node.id: node.label for node in diagram.nodes
    }
    edges = [(a, b, attrs["label"]) for a, b, attrs in dot_edges(text) if "label" in attrs]
    assert edges == [(e.source, e.target, e.label) for e in diagram.edges]


def test_edge_labels_are_short_and_show_priority_unless_default() -> None:
    long = "the customer has explained at great length what they would like to do"
    journey = journey_from(
        [chat("a", initial=True), chat("b"), {"name": "c", "stateType": "final"}],
        [
            {"from": "a", "to": "b", "condition": long},
            {"from": "a", "to": "c", "condition": "first\n  second", "priority": 7},
            {"from": "b", "to": "c"},
            {"from": "b", "to": "a", "priority": 1},
        ],
    )
    labels = [edge.label for edge in build_diagram(journey, 0, []).edges]

    assert len(labels[0]) == 40
    assert labels[0].endswith("…")
    assert long.startswith(labels[0][:-1])
    assert labels[1:] == ["first second (p=7)", "", "p=1"]


def test_identifiers_are_safe_and_unique() -> None:
    lookalikes = ["a b", "a_b", "a-b", "a_b_2", "ä b", "1"]
    journey = journey_from(
        [chat(name, initial=i == 0) for i, name in enumerate(lookalikes)],
        [{"from": "a b", "to": "nowhere"}, {"from": "a_b", "to": "no where"}],
    )
    ids = [node.id for node in build_diagram(journey, 0, []).nodes]

    assert len(ids) == len(lookalikes) + 2
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", node_id) for node_id in ids)


@given(st.lists(names, min_size=1, max_size=6, unique=True), st.data())
def test_any_names_survive_both_renderers(state_names: list[str], data: st.DataObject) -> None:
    states = [chat(name, initial=i == 0) for i, name in enumerate(state_names)]
    pairs = st.tuples(st.sampled_from(state_names), st.sampled_from([*state_names, "ghost"]))
    transitions = [
        {"from": a, "to": b, "condition": data.draw(st.one_of(st.none(), names))}
        for a, b in data.draw(st.lists(pairs, max_size=6))
    ]
    diagram = build_diagram(journey_from(states, transitions), 0, [])
    mermaid, dot = to_mermaid(diagram), to_dot(diagram)

    assert mermaid_states(mermaid) == {node.id: node.label for node in diagram.nodes}
    m_edges = [(a, b, label) for a, b, label in mermaid_edges(mermaid) if "[*]" not in (a, b)]
    assert m_edges == [(e.source, e.target, e.label) for e in diagram.edges]
    nodes = dot_nodes(dot)
    assert {n: nodes[n]["label"] for n in nodes if "label" in nodes[n]} == {
        node.id: node.label for node in diagram.nodes
    }
    d_edges = [(a, b, attrs.get("label", "")) for a, b, attrs in dot_edges(dot) if a != "__start"]
    assert d_edges == [(e.source, e.target, e.label) for e in diagram.edges]


# ---------------------------------------------------------------------------
# Graphviz itself, where it is installed


@pytest.mark.skipif(
    shutil.which("dot") is None,
    reason="Graphviz's `dot` is not installed (apt-get install graphviz); DOT text is still "
    "checked by the parsers in this module",
)
@pytest.mark.subprocess
@pytest.mark.parametrize("bundle", ["clinic", "dead_end", "dangling_reference", "awkward"])
def test_graphviz_renders_the_dot_output(
    examples_dir: Path, bundles_dir: Path, bundle: str
) -> None:
    if bundle == "awkward":
        diagram = build_diagram(awkward_journey(), 0, [])
    elif bundle == "clinic":
        diagram = diagram_of(examples_dir / "clinic.yaml")
    else:
        diagram = diagram_of(bundles_dir / "broken" / f"{bundle}.yaml")
    dot = shutil.which("dot")
    assert dot is not None
    result = subprocess.run(
        [dot, "-Tsvg"], input=to_dot(diagram), capture_output=True, text=True, check=False
    )

    assert result.returncode == 0, result.stderr
    assert "error" not in result.stderr.lower()  # font warnings vary by machine; errors do not
    # the entry point is invisible (not drawn), its arrow is
    assert result.stdout.count('class="node"') == len(diagram.nodes)
    assert result.stdout.count('class="edge"') == len(diagram.edges) + 1


def test_public_names_are_exported_sorted() -> None:
    from parlant_runtime import diagram

    assert diagram.__all__ == sorted(diagram.__all__)
    assert all(hasattr(diagram, name) for name in diagram.__all__)
