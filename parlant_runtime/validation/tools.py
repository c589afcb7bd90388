"""Rules about tools: what would make every call of a tool fail, found before it runs.

A tool's ``errorHandling`` and its JSON Schemas (``parameters``, ``returnSchema``) are
only read when the tool is called; a typo there (``onErorr: fial``, ``timeOutMs``,
``"type": "objekt"``) would otherwise show as a failed call in production.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from parlant_runtime.bundle.source import did_you_mean
from parlant_runtime.engine.tools import ErrorHandling
from parlant_runtime.validation.context import BundleContext
from parlant_runtime.validation.findings import Code, Finding
from parlant_runtime.validation.registry import bundle_rule

__all__: list[str] = []  # rules register themselves; nothing to import from here

_META = Draft202012Validator(Draft202012Validator.META_SCHEMA)
_JSON_TYPES = ("array", "boolean", "integer", "null", "number", "object", "string")


@bundle_rule(Code.INVALID_TOOL)
def check_invalid_tool(ctx: BundleContext) -> Iterator[Finding]:
    """``errorHandling`` must be what the runtime accepts, and both schemas valid JSON
    Schemas (checked against the 2020-12 metaschema, as the runtime uses them)."""
    for index, tool in enumerate(ctx.bundle.tools):
        for problem in ErrorHandling.problems(tool.error_handling):
            yield ctx.finding(
                Code.INVALID_TOOL,
                f"Tool {tool.name!r} would fail on every call: {problem}"
                + ("" if problem.endswith("?") else "."),
                ("tools", index, "errorHandling"),
            )
        for key, schema in (("parameters", tool.parameters), ("returnSchema", tool.return_schema)):
            if schema is None:
                continue
            for where, problem in _schema_problems(schema):
                yield ctx.finding(
                    Code.INVALID_TOOL,
                    f"Tool {tool.name!r} would fail on every call: `{key}` is not a valid "
                    f"JSON Schema at {where}: "
                    f"{problem}{'' if problem.endswith('?') else '.'}",
                    ("tools", index, key, *_path_parts(where)),
                )


def _schema_problems(schema: Any) -> Iterator[tuple[str, str]]:
    """Each place where ``schema`` breaks the metaschema, with what to write instead."""
    errors = sorted(_META.iter_errors(schema), key=lambda e: list(map(str, e.absolute_path)))
    seen: set[str] = set()
    for error in errors:
        where = "/".join(map(str, error.absolute_path)) or "the top"
        if where in seen:  # one finding per place: the metaschema reports several views
            continue
        seen.add(where)
        yield where, _explain(error)


def _explain(error: ValidationError) -> str:
    path = list(error.absolute_path)
    value = error.instance
    if path and path[-1] == "type" and isinstance(value, str):
        close = did_you_mean(value, _JSON_TYPES)
        hint = f"; did you mean {close!r}?" if close else ""
        return f"{value!r} is not a JSON type ({', '.join(_JSON_TYPES)}){hint}"
    message = error.message
    return message if len(message) <= 200 else message[:197] + "..."


def _path_parts(where: str) -> tuple[str | int, ...]:
    if where == "the top":
        return ()
    return tuple(int(part) if part.isdigit() else part for part in where.split("/"))
