"""Graphviz DOT text for a journey diagram, for ``dot -Tsvg`` and tools that read DOT.

Every id and text is written as a DOT double-quoted string. Inside one, DOT reads
``\\"`` as a quote, and Graphviz then reads backslash sequences (``\\n``, ``\\l``,
``\\N`` ...) and HTML entities (``&amp;``) in labels; so ``&`` is written as
``&amp;``, backslashes are doubled, quotes escaped and line breaks written as
``\\n``: nothing a state name or condition holds can end the string or turn into
an escape.
"""

from __future__ import annotations

from parlant_runtime.diagram.model import DiagramNode, JourneyDiagram
from parlant_runtime.model import StateType
from parlant_runtime.validation.findings import Finding, Severity

__all__ = ["COVERAGE_COLOURS", "SEVERITY_COLOURS", "START_ID", "quote_dot", "to_dot"]

SEVERITY_COLOURS: dict[Severity, str] = {
    Severity.ERROR: "red",
    Severity.WARNING: "orange",
    Severity.INFO: "blue",
}
"""The colour of nodes and edges with findings, by their worst severity."""

COVERAGE_COLOURS: dict[bool, str] = {True: "green4", False: "red3"}
"""The colour of states and transitions conversation tests reached (``True``) or never did;
the ones never reached are also dashed."""

START_ID = "__start"
"""The invisible point the entry arrows leave from; no diagram id starts with ``_``."""

_INDENT = "  "

_SHAPES: dict[StateType, dict[str, str]] = {
    StateType.CHAT: {"shape": "box", "style": "rounded"},
    StateType.TOOL: {"shape": "component"},
    StateType.DECISION: {"shape": "diamond"},
    StateType.FINAL: {"shape": "doublecircle"},
}
_FINAL = {"shape": "doublecircle"}
_MISSING = {"shape": "box", "style": "dashed", "color": "gray50", "fontcolor": "gray50"}


def quote_dot(text: str) -> str:
    """``text`` as a DOT double-quoted string that Graphviz shows as written."""
    escaped = (
        text.replace("&", "&amp;").replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    )
    return f'"{escaped}"'


def _attributes(attributes: dict[str, str]) -> str:
    return ", ".join(f"{key}={quote_dot(value)}" for key, value in attributes.items())


def _marks(findings: tuple[Finding, ...], severity: Severity | None) -> dict[str, str]:
    if severity is None:
        return {}
    colour = SEVERITY_COLOURS[severity]
    return {
        "color": colour,
        "fontcolor": colour,
        "penwidth": "2",
        "tooltip": "\n".join(f"{f.code.value}: {f.message}" for f in findings),
    }


def _coverage(covered: bool | None, style: str | None) -> dict[str, str]:
    """Green when the tests reached it, red and dashed when they never did."""
    if covered is None:
        return {}
    colour = COVERAGE_COLOURS[covered]
    marks = {"color": colour, "fontcolor": colour, "penwidth": "2"}
    if covered:
        marks["tooltip"] = "reached by the conversation tests"
    else:
        marks["style"] = f"{style},dashed" if style else "dashed"
        marks["tooltip"] = "never reached by the conversation tests"
    return marks


def _node_attributes(node: DiagramNode) -> dict[str, str]:
    if node.kind is None:
        shape = _MISSING
    elif node.final:
        shape = _FINAL
    else:
        shape = _SHAPES[node.kind]
    return {
        "label": node.label,
        **shape,
        **_coverage(node.covered, shape.get("style")),
        **_marks(node.findings, node.severity),
    }


def to_dot(diagram: JourneyDiagram) -> str:
    """The diagram as a Graphviz ``digraph``, left to right, ending with a newline.

    Chat states are rounded boxes, tool states components, decisions diamonds and
    final states double circles; states a transition names but the journey lacks
    are dashed grey boxes. With coverage marked (:func:`mark_coverage`), states and
    transitions the tests reached are green, the others red and dashed. Nodes and
    edges with findings are drawn in red, orange or
    blue (their worst severity) with a thicker line and the findings as tooltip;
    findings about the journey as a whole are listed under its title.
    """
    title = diagram.title
    for finding in diagram.findings:
        title += f"\n{finding.severity.value}: {finding.code.value}"
    lines = [
        f"digraph {quote_dot(diagram.title)} {{",
        f"{_INDENT}graph [{_attributes({'rankdir': 'LR', 'label': title, 'labelloc': 't'})}];",
        f"{_INDENT}node [{_attributes({'fontname': 'Helvetica', 'fontsize': '11'})}];",
        f"{_INDENT}edge [{_attributes({'fontname': 'Helvetica', 'fontsize': '9'})}];",
    ]
    initial = [node for node in diagram.nodes if node.initial]
    if initial:
        point = {"shape": "point", "style": "invis", "width": "0.1"}
        lines.append(f"{_INDENT}{quote_dot(START_ID)} [{_attributes(point)}];")
    for node in diagram.nodes:
        lines.append(f"{_INDENT}{quote_dot(node.id)} [{_attributes(_node_attributes(node))}];")
    for node in initial:
        lines.append(f"{_INDENT}{quote_dot(START_ID)} -> {quote_dot(node.id)};")
    for edge in diagram.edges:
        attributes = {"label": edge.label} if edge.label else {}
        attributes.update(_coverage(edge.covered, None))
        attributes.update(_marks(edge.findings, edge.severity))
        arrow = f"{_INDENT}{quote_dot(edge.source)} -> {quote_dot(edge.target)}"
        lines.append(f"{arrow} [{_attributes(attributes)}];" if attributes else f"{arrow};")
    lines.append("}")
    return "\n".join(lines) + "\n"
