"""Mermaid ``stateDiagram-v2`` text for a journey diagram, for Markdown, GitHub and docs.

Mermaid's state-diagram grammar ends an edge label at ``:``, ``;`` or a line break,
reads ``#`` as a comment, ``"`` as the end of a state's label and ``%%`` as a
comment, and turns ``#<number>;`` into that character before parsing. So every
character of a label that the grammar could read is written as ``#<number>;``
and line breaks as ``<br/>``; ids are the diagram's own (ASCII, prefixed), which
no keyword of the grammar starts like.

Mermaid cannot colour one edge of a state diagram reliably, so edges with
findings are marked by a ``⚠`` in front of their label; states get a class per
kind and per severity, severity last so that its colours win. With coverage
drawn, states get a ``covered`` or ``uncovered`` class and transition labels a
``✓`` or ``✗ never:`` mark.
"""

from __future__ import annotations

import re

from parlant_runtime.diagram.model import DiagramNode, JourneyDiagram
from parlant_runtime.model import StateType

__all__ = ["COVERED_MARK", "EDGE_MARK", "UNCOVERED_MARK", "escape_mermaid", "to_mermaid"]

EDGE_MARK = "⚠ "
"""Put in front of the label of an edge that has findings."""

COVERED_MARK = "✓ "
"""With coverage drawn: put in front of the label of a transition the tests took."""

UNCOVERED_MARK = "✗ never: "
"""With coverage drawn: put in front of the label of a transition the tests never took."""

_INDENT = "    "

# characters the grammar or its entity pre-pass would read; written as #<code>;
_SPECIAL = frozenset('"#;:%<>&')

# ".*direction\s+LR" anywhere on a line makes the whole line a direction statement
_DIRECTION = re.compile(r"(direction)(\s+)(?=tb|bt|rl|lr)", re.IGNORECASE)

# kind classes set fill and border; severity classes set fill, border and text colour
# and are declared and applied after the kind classes, so that they win
_CLASS_DEFS: tuple[tuple[str, str], ...] = (
    ("tool", "fill:#e0f2f1,stroke:#00897b"),
    ("decision", "fill:#fff8e1,stroke:#f9a825,stroke-dasharray:6 3"),
    ("missing", "fill:#fafafa,stroke:#9e9e9e,stroke-dasharray:2 2,color:#757575"),
    ("covered", "fill:#e8f5e9,stroke:#2e7d32,stroke-width:2px"),
    ("uncovered", "fill:#fce4ec,stroke:#c62828,stroke-width:2px,stroke-dasharray:5 3"),
    ("error", "fill:#ffebee,stroke:#d32f2f,stroke-width:3px,color:#b71c1c"),
    ("warning", "fill:#fff3e0,stroke:#ef6c00,stroke-width:3px,color:#e65100"),
    ("info", "fill:#e3f2fd,stroke:#1976d2,stroke-width:3px,color:#0d47a1"),
)


_COVERAGE_CLASSES = frozenset({"covered", "uncovered"})


def escape_mermaid(text: str) -> str:
    """``text`` as it can stand in a quoted state label or after an edge's ``:``.

    Line breaks become ``<br/>``; ``" # ; : % < > &`` become Mermaid entity codes
    (``#34;`` ...), which Mermaid shows as the character itself.
    """
    escaped = "".join(f"#{ord(ch)};" if ch in _SPECIAL else ch for ch in text)
    return _defuse_direction(escaped.replace("\n", "<br/>"))


def _defuse_direction(text: str) -> str:
    return _DIRECTION.sub(lambda m: m[1] + "".join(f"#{ord(ch)};" for ch in m[2]), text)


def _node_classes(node: DiagramNode) -> list[str]:
    classes = []
    if node.missing:
        classes.append("missing")
    elif node.kind is StateType.TOOL:
        classes.append("tool")
    elif node.kind is StateType.DECISION:
        classes.append("decision")
    if node.covered is not None:
        classes.append("covered" if node.covered else "uncovered")
    if node.severity is not None:
        classes.append(node.severity.value)
    return classes


def _comment(text: str) -> str:
    # escaped like a label: Mermaid's pre-pass reads a "<" here as opening an HTML tag
    # that runs on to the next ">", lines below included
    return f"{_INDENT}%% " + escape_mermaid(" ".join(text.split()))


def to_mermaid(diagram: JourneyDiagram) -> str:
    """The diagram as Mermaid ``stateDiagram-v2`` source, ending with a newline.

    Every state is declared as ``state "<label>" as <id>``; ``[*]`` points at each
    initial state and each final state points at ``[*]``; transitions are
    ``<from> --> <to> : <label>``, in file order.
    """
    lines = ["stateDiagram-v2", _comment(f"journey: {diagram.title}")]
    for finding in diagram.findings:
        lines.append(_comment(f"{finding.severity.value} {finding.code.value}: {finding.message}"))
    for node in diagram.nodes:
        lines.append(f'{_INDENT}state "{escape_mermaid(node.label)}" as {node.id}')
    for node in diagram.nodes:
        if node.initial:
            lines.append(f"{_INDENT}[*] --> {node.id}")
    for edge in diagram.edges:
        label = edge.label if edge.severity is None else EDGE_MARK + edge.label
        if edge.covered is not None:
            label = ((COVERED_MARK if edge.covered else UNCOVERED_MARK) + label).rstrip()
        arrow = f"{_INDENT}{edge.source} --> {edge.target}"
        lines.append(f"{arrow} : {escape_mermaid(label)}" if label.strip() else arrow)
    for node in diagram.nodes:
        if node.final:
            lines.append(f"{_INDENT}{node.id} --> [*]")

    members: dict[str, list[str]] = {name: [] for name, _ in _CLASS_DEFS}
    for node in diagram.nodes:
        for name in _node_classes(node):
            members[name].append(node.id)
    drawn = any(node.covered is not None for node in diagram.nodes)
    for name, style in _CLASS_DEFS:
        if drawn or name not in _COVERAGE_CLASSES:  # plain diagrams stay as they were
            lines.append(f"{_INDENT}classDef {name} {style}")
    for name, _ in _CLASS_DEFS:
        if members[name]:
            lines.append(f"{_INDENT}class {','.join(members[name])} {name}")
    return "\n".join(lines) + "\n"
