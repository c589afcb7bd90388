"""Reading the generator's expression conditions, and choosing values that satisfy them.

Part of :mod:`parlant_runtime.testing.generate` (step 4 of its docstring): the parts of
an expression the planner reads (``vars.a.b`` paths, constants, comparisons), values
that make a comparison true or false, examples of JSON schemas and simple patterns,
and nested dictionaries addressed by a path.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from jinja2 import nodes

from parlant_runtime.bundle.schema import AgentBundle

__all__ = [
    "MISSING",
    "argument_schemas",
    "compares",
    "constant_of",
    "drop_in",
    "example_for_pattern",
    "example_for_schema",
    "get_in",
    "path_of",
    "satisfying",
    "set_in",
    "simple_var",
]

MISSING: Any = object()
"""No value: unset, or not something the planner can read."""


def path_of(node: nodes.Node) -> tuple[str, ...] | None:
    """``vars.a.b`` / ``vars['a']`` / ``tool.t.x`` as a tuple of names, else ``None``."""
    if isinstance(node, nodes.Name):
        return (node.name,)
    if isinstance(node, nodes.Getattr):
        base = path_of(node.node)
        return (*base, node.attr) if base is not None else None
    if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
        base = path_of(node.node)
        if base is not None and isinstance(node.arg.value, str):
            return (*base, node.arg.value)
    return None


def constant_of(node: nodes.Node) -> Any:
    if isinstance(node, nodes.Const):
        return node.value
    if isinstance(node, nodes.List | nodes.Tuple):
        values = [constant_of(item) for item in node.items]
        return MISSING if any(v is MISSING for v in values) else values
    if isinstance(node, nodes.Neg):
        inner = constant_of(node.node)
        return -inner if isinstance(inner, int | float) and not isinstance(inner, bool) else MISSING
    return MISSING


def _other_than(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 1
    if isinstance(value, str):
        return f"not {value}" if value else "something"
    return "something else"


def compares(op: str, left: Any, right: Any) -> bool:
    try:
        if op == "eq":
            return bool(left == right)
        if op == "ne":
            return bool(left != right)
        if op == "gt":
            return bool(left > right)
        if op == "gteq":
            return bool(left >= right)
        if op == "lt":
            return bool(left < right)
        if op == "lteq":
            return bool(left <= right)
        if op == "in":
            return bool(left in right)
        if op == "notin":
            return bool(left not in right)
    except TypeError:
        return False
    return False


def satisfying(op: str, constant: Any, want: bool, current: Any) -> Any:
    """A value ``v`` with ``(v <op> constant) == want``, keeping ``current`` when it fits."""
    if current is not MISSING and compares(op, current, constant) == want:
        return current
    positive = {"eq": True, "ne": False, "in": True, "notin": False}
    if op in positive:
        equal = positive[op] == want
        if op in ("in", "notin"):
            if not isinstance(constant, list):
                return MISSING
            if equal:
                return constant[0] if constant else MISSING
            return _other_than(constant[0] if constant else "")
        return constant if equal else _other_than(constant)
    if not isinstance(constant, int | float) or isinstance(constant, bool):
        return MISSING
    above = {"gt": True, "gteq": True, "lt": False, "lteq": False}[op] == want
    if above:
        return constant + 1
    return constant - 1


_REGEX_PIECE = re.compile(r"\\d|\\w|\[[^\]]+\]|\\.|[^\\\[\]{}()*+?|^$.]|\.")


def example_for_pattern(pattern: str) -> str | None:
    """A string a simple regular expression matches (classes, escapes, ``{n}``, ``+``,
    ``*``, ``?``, anchors), or ``None`` for anything richer."""
    body = pattern.removeprefix("^").removesuffix("$")
    out: list[str] = []
    position = 0
    while position < len(body):
        match = _REGEX_PIECE.match(body, position)
        if match is None:
            return None
        piece = match[0]
        position = match.end()
        if piece == "\\d":
            char = "1"
        elif piece in ("\\w", "."):
            char = "a"
        elif piece.startswith("["):
            inner = piece[1:-1]
            if inner.startswith("^"):
                return None
            char = inner[0] if inner[0] != "\\" else inner[1]
        elif piece.startswith("\\"):
            char = piece[1]
        else:
            char = piece
        repeat = 1
        quantifier = re.match(r"\{(\d+)(?:,(\d*))?\}|[+*?]", body[position:])
        if quantifier is not None:
            position += quantifier.end()
            if quantifier[0] in ("*", "?"):
                repeat = 0
            elif quantifier[1] is not None:
                repeat = int(quantifier[1])
        out.append(char * repeat)
    text = "".join(out)
    return text if re.search(pattern, text) else None


def example_for_schema(schema: Any, name: str) -> Any:
    """A small value that a JSON schema accepts (required properties only)."""
    if not isinstance(schema, dict):
        return f"TODO {name}"
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), kind[0] if kind else None)
    if kind == "object" or (kind is None and "properties" in schema):
        properties = schema.get("properties") or {}
        return {
            key: example_for_schema(properties.get(key), key)
            for key in schema.get("required") or []
        }
    if kind == "array":
        return []
    if kind == "boolean":
        return True
    if kind in ("integer", "number"):
        if "minimum" in schema:
            low = schema["minimum"]
        elif "exclusiveMinimum" in schema:
            low = schema["exclusiveMinimum"] + 1
        else:
            low = 0
        return int(low) if kind == "integer" else low
    if kind == "null":
        return None
    pattern = schema.get("pattern")
    if isinstance(pattern, str):
        example = example_for_pattern(pattern)
        if example is not None:
            return example
    return f"TODO {name}"


def set_in(target: dict[str, Any], path: Sequence[str], value: Any) -> bool:
    """Set ``target[p0][p1]... = value``; ``False`` when it contradicts what is there."""
    here = target
    for part in path[:-1]:
        nxt = here.get(part, MISSING)
        if nxt is MISSING:
            nxt = here[part] = {}
        if not isinstance(nxt, dict):
            return False
        here = nxt
    old = here.get(path[-1], MISSING)
    if old is not MISSING and old != value:
        return False
    here[path[-1]] = value
    return True


def drop_in(target: dict[str, Any], path: Sequence[str]) -> None:
    """Remove ``target[p0][p1]...`` if it is there."""
    here: Any = target
    for part in path[:-1]:
        here = here.get(part) if isinstance(here, dict) else None
    if isinstance(here, dict):
        here.pop(path[-1], None)


def get_in(source: Any, path: Sequence[str]) -> Any:
    here = source
    for part in path:
        if not isinstance(here, dict) or part not in here:
            return MISSING
        here = here[part]
    return here


def simple_var(template: str) -> str | None:
    match = re.fullmatch(r"\s*\{\{\s*vars\.([A-Za-z_]\w*)\s*\}\}\s*", template)
    return match[1] if match else None


def argument_schemas(bundle: AgentBundle) -> dict[str, Any]:
    """Variable -> the schema of the tool parameter it feeds (``{{ vars.x }}`` arguments)."""
    tools = {tool.name: tool for tool in bundle.tools}
    hints: dict[str, Any] = {}
    for journey in bundle.journeys:
        for state in journey.states:
            tool = tools.get(state.tool or "")
            if tool is None or not isinstance(tool.parameters, dict):
                continue
            properties = tool.parameters.get("properties") or {}
            for name, value in (state.tool_config.get("arguments") or {}).items():
                key = simple_var(value) if isinstance(value, str) else None
                if key is not None and name in properties:
                    hints.setdefault(key, properties[name])
            for name in tool.parameters.get("required") or []:
                if name in properties:
                    hints.setdefault(name, properties[name])
    return hints
