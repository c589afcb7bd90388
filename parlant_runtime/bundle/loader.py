"""Loading bundles from files, text or data, with every problem reported at once.

Two pairs, named like :func:`json.load` and :func:`json.loads`: :func:`load_bundle`
(a file) and :func:`loads_bundle` (text) give the :class:`AgentBundle`;
:func:`read_bundle` and :func:`reads_bundle` give a :class:`LoadedBundle`, the bundle
with the line of each field, for validation and messages that point at lines.

The contract (``docs/bundle-format.md``): a file that does not follow it is
refused as a whole, and each problem names the file, the line and the field path,
in the file's camelCase spelling, with a message that says what to write instead.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic.alias_generators import to_camel
from pydantic_core import ErrorDetails

from parlant_runtime.bundle.schema import AgentBundle
from parlant_runtime.bundle.source import (
    FieldPath,
    Format,
    SourceMap,
    UnreadableFile,
    data_bounds_problem,
    format_path,
    parse_text,
    read_utf8,
    unknown_key_hint,
)
from parlant_runtime.errors import BundleError, BundleProblem

__all__ = [
    "LoadedBundle",
    "bundle_from_data",
    "load_bundle",
    "loads_bundle",
    "read_bundle",
    "reads_bundle",
]

_SUFFIX_FORMATS: dict[str, Format] = {".json": "json", ".yaml": "yaml", ".yml": "yaml"}


@dataclass(frozen=True, slots=True)
class LoadedBundle:
    """A bundle together with where it came from, for messages that point at lines."""

    bundle: AgentBundle
    source: SourceMap
    path: str | None


def load_bundle(path: str | Path) -> AgentBundle:
    """Load an agent bundle from a YAML or JSON file.

    Raises:
        BundleError: the file cannot be read or does not follow the bundle contract;
            ``problems`` lists every problem with its file, line and field path.
    """
    return read_bundle(path).bundle


def read_bundle(path: str | Path) -> LoadedBundle:
    """Like :func:`load_bundle`, keeping the line numbers for later messages."""
    name = str(path)
    file = Path(path)
    try:
        text = read_utf8(file, "bundle file")
    except UnreadableFile as exc:
        raise _single(name, str(exc)) from exc
    fmt = _SUFFIX_FORMATS.get(file.suffix.lower(), "yaml")
    return reads_bundle(text, fmt=fmt, filename=name)


def loads_bundle(text: str, *, fmt: Format = "yaml", filename: str | None = None) -> AgentBundle:
    """Load an agent bundle from YAML or JSON text (see :func:`load_bundle`).

    ``filename`` names the text's origin in the problems of a :class:`BundleError`.
    """
    return reads_bundle(text, fmt=fmt, filename=filename).bundle


def reads_bundle(text: str, *, fmt: Format = "yaml", filename: str | None = None) -> LoadedBundle:
    """Like :func:`loads_bundle`, keeping the line numbers for later messages."""
    parsed = parse_text(text, fmt=fmt, filename=filename)
    if parsed.data is None and not parsed.problems:
        raise _single(filename, "is empty; a bundle needs at least an `agent` with a `name`")
    if parsed.problems and parsed.data is None:
        raise BundleError(parsed.problems)
    return _validate(parsed.data, parsed.source, filename, parsed.problems)


def bundle_from_data(data: Any, *, filename: str | None = None) -> AgentBundle:
    """Build a bundle from already-parsed data (dicts and lists), same checks as files
    (the bounds on depth and size included).

    Raises:
        BundleError: every problem found, as for a file.
    """
    problem = data_bounds_problem(data, filename)
    if problem is not None:
        raise BundleError([problem])
    return _validate(data, SourceMap(), filename, []).bundle


def _single(filename: str | None, message: str) -> BundleError:
    return BundleError([BundleProblem(filename, None, "", message)])


def _validate(
    data: Any, source: SourceMap, filename: str | None, problems: list[BundleProblem]
) -> LoadedBundle:
    if not isinstance(data, dict):
        kind = type(data).__name__ if data is not None else "nothing"
        problems.append(
            BundleProblem(
                filename,
                source.line_of(()),
                "",
                f"a bundle is a mapping with an `agent` key, not {kind}",
            )
        )
        raise BundleError(problems)
    duplicates = list(_duplicate_names(data, source, filename))
    problems.extend(duplicates)
    try:
        bundle = AgentBundle.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            if duplicates and error["type"] == "value_error" and "duplicate" in error["msg"]:
                continue  # reported above, at the repeated entry's own line
            if any(not isinstance(part, str | int) for part in error["loc"]):
                continue  # a key that is not text: reported while reading the file
            problems.append(_problem_from_error(error, data, source, filename))
        raise BundleError(_sorted(problems)) from None
    if problems:
        raise BundleError(_sorted(problems))
    return LoadedBundle(bundle, source, filename)


def _sorted(problems: list[BundleProblem]) -> list[BundleProblem]:
    return sorted(problems, key=lambda p: (p.line is None, p.line or 0, p.field))


# ---------------------------------------------------------------------------
# duplicate names, found on the raw data so that they are reported together with
# every other problem and at the line of the repeated entry


_UNIQUE_KEYS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("journeys", ("title",)),
    ("guidelines", ("name",)),
    ("cannedResponses", ("name",)),
    ("terms", ("name",)),
    ("tools", ("name",)),
    ("variables", ("key",)),
    ("knowledgeBases", ("knowledgeBaseId",)),
)
_JOURNEY_UNIQUE_KEYS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("states", ("name",)),
    ("guidelines", ("guideline",)),
)


def _get(mapping: dict[str, Any], camel: str) -> Any:
    if camel in mapping:
        return mapping[camel]
    return mapping.get(re.sub(r"(?<!^)([A-Z])", r"_\1", camel).lower())


def _duplicates_in(
    container: dict[str, Any],
    rules: tuple[tuple[str, tuple[str, ...]], ...],
    prefix: FieldPath,
    source: SourceMap,
    filename: str | None,
) -> Iterator[BundleProblem]:
    for collection, keys in rules:
        items = _get(container, collection)
        if not isinstance(items, list):
            continue
        first_index: dict[tuple[Any, ...], int] = {}
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                continue
            values = tuple(_get(item, key) for key in keys)
            if values[0] is None or not all(isinstance(v, str) for v in values):
                continue
            if values in first_index:
                path = (*prefix, collection, index, keys[0])
                shown = " ".join(str(v) for v in values)
                yield BundleProblem(
                    filename,
                    source.line_of(path),
                    format_path(path),
                    f"duplicate {keys[0]} {shown!r}, already used by {collection}"
                    f"[{first_index[values]}]; each must be unique",
                )
            else:
                first_index[values] = index


def _duplicate_names(
    data: dict[str, Any], source: SourceMap, filename: str | None
) -> Iterator[BundleProblem]:
    yield from _duplicates_in(data, _UNIQUE_KEYS, (), source, filename)
    journeys = _get(data, "journeys")
    if isinstance(journeys, list):
        for index, journey in enumerate(journeys):
            if isinstance(journey, dict):
                yield from _duplicates_in(
                    journey, _JOURNEY_UNIQUE_KEYS, ("journeys", index), source, filename
                )


# ---------------------------------------------------------------------------
# pydantic errors in the contract's words


def _problem_from_error(
    error: ErrorDetails, data: Any, source: SourceMap, filename: str | None
) -> BundleProblem:
    loc: FieldPath = tuple(error["loc"])
    kind = error["type"]
    given = error.get("input")
    ctx = error.get("ctx", {})
    if kind == "extra_forbidden":
        message = _unknown_key(loc, data)
    elif kind == "missing":
        message = f"required field {loc[-1]!r} is missing; add it"
    elif kind == "enum":
        expected = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        shown = repr(given) if isinstance(given, str) else _short(given)  # the contract's wording
        message = f"{shown} is not one of {', '.join(expected)}"
    elif kind in _BOUNDS:
        limit = next(iter(ctx.values()), "?")
        message = f"must be {_BOUNDS[kind]} {limit}, got {_short(given)}"
    elif kind == "string_too_short":
        message = "must not be empty"
    elif kind == "string_too_long":
        message = f"must be at most {ctx.get('max_length', '?')} characters long"
    elif kind == "string_pattern_mismatch":
        message = (
            f"{_short(given)} is not a name: use letters, digits and _, not starting with a digit"
        )
    elif kind.endswith("_type") or kind.endswith("_parsing"):
        wanted = error["msg"].removeprefix("Input should be ").split(",")[0]
        message = f"expected {wanted}, got {_short(given)}"
    else:
        message = error["msg"].removeprefix("Value error, ")
        if kind not in {"value_error", "assertion_error"}:
            message = f"{message} (got {_short(given)})"
    return BundleProblem(filename, source.line_of(loc), format_path(loc), message)


_BOUNDS = {
    "less_than_equal": "at most",
    "less_than": "less than",
    "greater_than_equal": "at least",
    "greater_than": "more than",
}


def _short(value: Any) -> str:
    """A value the way the file spells it (JSON), shortened."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _unknown_key(loc: FieldPath, data: Any) -> str:
    key = str(loc[-1])
    parent = data
    for part in loc[:-1]:
        try:
            parent = parent[part]
        except (KeyError, IndexError, TypeError):
            parent = None
            break
    camel = to_camel(key)
    if isinstance(parent, dict) and camel != key and camel in parent:
        return f"{key!r} and {camel!r} are the same field given twice; keep one"
    return f"unknown key {key!r}" + unknown_key_hint(AgentBundle, loc)
