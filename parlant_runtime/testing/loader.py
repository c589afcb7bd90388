"""Reading conversation test files, with every problem reported at its line.

Test files are YAML read the way bundles are (:func:`parse_text` of the bundle
package: PyYAML's composer, so each field path has a line, and duplicate keys are
refused). A file that does not follow the contract is refused as a whole, each
problem naming the file, the line and the field path, with what to write instead;
the ``test`` command then exits 2.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from parlant_runtime.bundle.source import (
    FieldPath,
    SourceMap,
    UnreadableFile,
    format_path,
    parse_text,
    read_utf8,
    unknown_key_hint,
)
from parlant_runtime.errors import BundleProblem, ParlantRuntimeError
from parlant_runtime.testing.schema import ConversationSpec

__all__ = [
    "ConversationFile",
    "ConversationFileError",
    "Problem",
    "loads_conversation_file",
    "read_conversation_file",
    "resolve_bundle",
]

Problem = BundleProblem
"""One problem with a file: file, line, field path and message (the bundle loader's type)."""


class ConversationFileError(ParlantRuntimeError):
    """A conversation test file (or its bundle) cannot be read; every problem is listed."""

    def __init__(self, problems: list[Problem]) -> None:
        if not problems:
            raise ValueError("ConversationFileError needs at least one problem")
        self.problems: tuple[Problem, ...] = tuple(problems)
        super().__init__("\n".join(str(problem) for problem in self.problems))


@dataclass(frozen=True, slots=True)
class ConversationFile:
    """A test file read and checked, with the lines of its fields."""

    spec: ConversationSpec
    source: SourceMap
    path: str | None

    def line_of(self, *path: str | int) -> int | None:
        """The line of a field path such as ``("cases", 0, "steps", 1)``."""
        return self.source.line_of(path)


def read_conversation_file(path: str | Path) -> ConversationFile:
    """Read a conversation test file.

    Raises:
        ConversationFileError: the file cannot be read or breaks the contract.
    """
    name = str(path)
    try:
        text = read_utf8(path, "conversation test file")
    except UnreadableFile as exc:
        raise _single(name, str(exc)) from exc
    return loads_conversation_file(text, filename=name)


def loads_conversation_file(text: str, *, filename: str | None = None) -> ConversationFile:
    """Read a conversation test file from YAML text (see :func:`read_conversation_file`)."""
    parsed = parse_text(text, fmt="yaml", filename=filename)
    if parsed.problems and parsed.data is None:
        raise ConversationFileError(parsed.problems)
    data, source, problems = parsed.data, parsed.source, list(parsed.problems)
    if not isinstance(data, dict):
        message = "the file is empty; a conversation test file needs a `cases` list"
        if data is not None:
            kind = type(data).__name__
            message = f"a conversation test file is a mapping with a `cases` list, not a {kind}"
        raise ConversationFileError([*problems, Problem(filename, source.line_of(()), "", message)])
    problems.extend(_duplicate_case_names(data, source, filename))
    try:
        spec = ConversationSpec.model_validate(data)
    except ValidationError as exc:
        problems.extend(_problem(error, data, source, filename) for error in exc.errors())
        raise ConversationFileError(_sorted(problems)) from None
    if problems:
        raise ConversationFileError(_sorted(problems))
    return ConversationFile(spec, source, filename)


def resolve_bundle(loaded: ConversationFile, override: str | Path | None = None) -> Path:
    """The bundle a file runs against: ``override``, else its ``bundle`` beside the file.

    Raises:
        ConversationFileError: neither names a bundle.
    """
    if override is not None:
        return Path(override)
    if loaded.spec.bundle is None:
        message = "no bundle: add `bundle: path/to/bundle.yaml` or pass --bundle"
        raise _single(loaded.path, message, line=loaded.line_of())
    folder = Path(loaded.path).parent if loaded.path is not None else Path()
    return folder / loaded.spec.bundle


def _single(
    filename: str | None, message: str, *, line: int | None = None
) -> ConversationFileError:
    return ConversationFileError([Problem(filename, line, "", message)])


def _sorted(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: (p.line is None, p.line or 0, p.field))


def _duplicate_case_names(
    data: dict[str, Any], source: SourceMap, filename: str | None
) -> list[Problem]:
    cases = data.get("cases")
    if not isinstance(cases, list):
        return []
    first: dict[str, int] = {}
    problems = []
    for index, case in enumerate(cases):
        name = case.get("name") if isinstance(case, dict) else None
        if not isinstance(name, str):
            continue
        if name in first:
            path: FieldPath = ("cases", index, "name")
            message = f"duplicate case name {name!r}, already used by cases[{first[name]}]"
            problems.append(Problem(filename, source.line_of(path), format_path(path), message))
        else:
            first[name] = index
    return problems


# ---------------------------------------------------------------------------
# pydantic errors in the contract's words


def _problem(error: ErrorDetails, data: Any, source: SourceMap, filename: str | None) -> Problem:
    loc: FieldPath = tuple(part for part in error["loc"] if isinstance(part, str | int))
    kind, given = error["type"], error.get("input")
    if kind == "extra_forbidden":
        message = f"unknown key {loc[-1]!r}{unknown_key_hint(ConversationSpec, loc)}"
    elif kind == "missing":
        message = f"required key {loc[-1]!r} is missing; add it"
    elif kind == "too_short" and isinstance(given, list):
        message = "must not be empty; give at least one"
    elif kind == "string_too_short":
        message = "must not be empty"
    elif kind == "enum":
        expected = error.get("ctx", {}).get("expected", "")
        message = f"{_short(given)} is not one of {expected.replace(chr(39), '')}"
    elif kind.endswith("_type") or kind.endswith("_parsing"):
        wanted = error["msg"].removeprefix("Input should be ").split(",")[0]
        hint = "; quote it" if wanted == "a valid string" and given is not None else ""
        message = f"expected {wanted}, got {_short(given)}{hint}"
    else:
        message = error["msg"].removeprefix("Value error, ")
    return Problem(filename, source.line_of(loc), format_path(loc), message)


def _short(value: Any) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
