"""Reading bundle text into plain data plus a map from field paths to line numbers.

YAML is read with PyYAML's composer, whose nodes carry their positions, and the
data is constructed from the same node tree; JSON is read with the standard
library (strict JSON semantics) and located through the same composer, which
understands JSON's syntax. Problems of the text itself (not YAML, duplicate keys,
keys that are not text, too large) are collected here, each with its line.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel
from pydantic.alias_generators import to_camel

from parlant_runtime.errors import BundleProblem

__all__ = [
    "MAX_BUNDLE_BYTES",
    "MAX_BUNDLE_NODES",
    "FieldPath",
    "ParsedText",
    "SourceMap",
    "UnreadableFile",
    "did_you_mean",
    "format_path",
    "parse_text",
    "read_utf8",
    "unknown_key_hint",
]

MAX_BUNDLE_BYTES = 16 * 1024 * 1024
"""Largest bundle text accepted (16 MiB): far above any real agent, far below harm."""

MAX_BUNDLE_NODES = 1_000_000
"""Most YAML nodes a document may expand to (guards against alias bombs)."""

FieldPath = tuple[str | int, ...]
Format = Literal["yaml", "json"]


def _normalise(path: FieldPath) -> FieldPath:
    return tuple(to_camel(part) if isinstance(part, str) else part for part in path)


class UnreadableFile(Exception):
    """A file that cannot be read as UTF-8 text; the message says why."""


def read_utf8(path: str | Path, what: str) -> str:
    """The text of a file, or :class:`UnreadableFile` saying why not (``what`` names it)."""
    try:
        raw = Path(path).read_bytes()
    except IsADirectoryError:
        raise UnreadableFile(f"is a folder, not a {what}") from None
    except FileNotFoundError:
        raise UnreadableFile("no such file; check the path") from None
    except OSError as exc:
        raise UnreadableFile(f"cannot be read: {exc.strerror or exc}") from exc
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnreadableFile(f"is not UTF-8 text (byte {exc.start}); save it as UTF-8") from exc


def format_path(path: FieldPath) -> str:
    """``("journeys", 0, "states")`` -> ``journeys[0].states``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


@dataclass(slots=True)
class SourceMap:
    """Line numbers (1-based) of the fields of one bundle file.

    Paths are stored in camelCase, the spelling the library reports, whichever
    spelling the file used.
    """

    lines: dict[FieldPath, int] = field(default_factory=dict)

    def line_of(self, path: FieldPath) -> int | None:
        """The line of ``path``, or of the nearest enclosing field that has one."""
        key = _normalise(path)
        while True:
            line = self.lines.get(key)
            if line is not None or not key:
                return line
            key = key[:-1]


@dataclass(slots=True)
class ParsedText:
    """The outcome of parsing: data (``None`` when unreadable), lines and problems."""

    data: Any
    source: SourceMap
    problems: list[BundleProblem]


class _Walker:
    """Records the lines of a composed YAML node tree and checks its keys."""

    def __init__(self, filename: str | None) -> None:
        self.filename = filename
        self.source = SourceMap()
        self.problems: list[BundleProblem] = []
        self.nodes = 0

    def problem(self, path: FieldPath, line: int, message: str) -> None:
        self.problems.append(BundleProblem(self.filename, line, format_path(path), message))

    def walk(self, node: yaml.Node, path: FieldPath, line: int) -> None:
        self.nodes += 1
        if self.nodes > MAX_BUNDLE_NODES:
            raise _TooLarge
        self.source.lines.setdefault(_normalise(path), line)
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, int] = {}
            for key_node, value_node in node.value:
                key_line = key_node.start_mark.line + 1
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue  # `<<: *anchor` merges keys; the constructed data has them
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag not in (
                    "tag:yaml.org,2002:str",
                    "tag:yaml.org,2002:null",
                ):
                    self.problem(path, key_line, "keys must be text; quote the key")
                    continue
                key = key_node.value
                if key in seen:
                    self.problem(
                        (*path, key),
                        key_line,
                        f"duplicate key {key!r} (first on line {seen[key]}); keep one",
                    )
                    continue
                seen[key] = key_line
                self.walk(value_node, (*path, key), key_line)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self.walk(item, (*path, index), item.start_mark.line + 1)


class _TooLarge(Exception):
    pass


def _yaml_error(filename: str | None, exc: yaml.YAMLError, what: str) -> BundleProblem:
    mark = getattr(exc, "problem_mark", None)
    line = mark.line + 1 if mark is not None else None
    reason = getattr(exc, "problem", None) or str(exc)
    return BundleProblem(filename, line, "", f"not valid {what}: {reason}")


def _too_large(filename: str | None, detail: str) -> ParsedText:
    message = f"the file is too large to be a bundle ({detail}); split the agent or trim it"
    return ParsedText(None, SourceMap(), [BundleProblem(filename, None, "", message)])


def parse_text(text: str, *, fmt: Format, filename: str | None = None) -> ParsedText:
    """Parse bundle text; never raises for bad input, it reports problems instead."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_BUNDLE_BYTES:
        return _too_large(filename, f"{size:,} bytes, limit {MAX_BUNDLE_BYTES:,}")
    walker = _Walker(filename)
    try:
        data = _compose_and_construct(text, fmt, walker)
    except yaml.YAMLError as exc:
        if fmt == "yaml":
            return ParsedText(None, SourceMap(), [_yaml_error(filename, exc, "YAML")])
        data = None  # valid JSON that YAML's reader refuses: no line numbers, still checked
    except _TooLarge:
        return _too_large(filename, f"more than {MAX_BUNDLE_NODES:,} nodes")
    if fmt == "json":
        data = _parse_json(text, filename, walker)
    return ParsedText(data, walker.source, walker.problems)


def _compose_and_construct(text: str, fmt: Format, walker: _Walker) -> Any:
    """Compose the node tree (recording lines), then construct data from it (YAML only)."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        walker.walk(node, (), node.start_mark.line + 1)
        return loader.construct_document(node) if fmt == "yaml" else None
    finally:
        loader.dispose()


def _parse_json(text: str, filename: str | None, walker: _Walker) -> Any:
    try:
        return json.loads(
            text, object_pairs_hook=_refuse_duplicate_json_keys, parse_constant=_refuse_constant
        )
    except _DuplicateJsonKey as exc:
        if not walker.problems:  # the composer found it already, with its line
            walker.problems.append(BundleProblem(filename, None, "", str(exc)))
        return None
    except _NotJsonNumber as exc:
        walker.problems.append(BundleProblem(filename, None, "", str(exc)))
        return None
    except json.JSONDecodeError as exc:
        walker.problems.append(
            BundleProblem(filename, exc.lineno, "", f"not valid JSON: {exc.msg}")
        )
        return None


class _DuplicateJsonKey(ValueError):
    pass


class _NotJsonNumber(ValueError):
    pass


def _refuse_constant(name: str) -> Any:
    raise _NotJsonNumber(f"{name} is not a JSON number; write a finite number or null")


def _refuse_duplicate_json_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateJsonKey(f"duplicate key {key!r}; keep one")
        result[key] = value
    return result


# ---------------------------------------------------------------------- unknown keys


def did_you_mean(word: str, known: Iterable[str]) -> str | None:
    """The one of ``known`` that ``word`` most likely misspells, or ``None``.

    Case is ignored (``timeOutMs`` is ``timeoutMs``); otherwise difflib's closeness.
    """
    known = list(known)
    folded = {name.casefold(): name for name in known}
    if word.casefold() in folded:
        return folded[word.casefold()]
    close = difflib.get_close_matches(word, known, n=1)
    return close[0] if close else None


def unknown_key_hint(root: type[BaseModel], loc: FieldPath) -> str:
    """What to say after "unknown key X" at ``loc`` in a document ``root`` validates:
    the closest known key, else the keys known there, else "remove it"."""
    model = _model_at(root, loc[:-1])
    if model is None:
        return "; remove it"
    known = sorted(info.alias or name for name, info in model.model_fields.items())
    close = did_you_mean(str(loc[-1]), known)
    if close:
        return f"; did you mean {close!r}?"
    return f"; known keys here: {', '.join(known)}"


def _model_at(root: type[BaseModel], loc: FieldPath) -> type[BaseModel] | None:
    """The model that validates the mapping at ``loc`` (lists and maps stepped through,
    fields found by name or alias)."""
    current: Any = root
    for part in loc:
        current = _optional_of(current)
        if get_origin(current) is dict:
            current = get_args(current)[1]
        elif get_origin(current) is list and isinstance(part, int):
            current = get_args(current)[0]
        elif isinstance(current, type) and issubclass(current, BaseModel):
            found = next(
                (info for name, info in current.model_fields.items() if part in (name, info.alias)),
                None,
            )
            if found is None:
                return None
            current = found.annotation
        else:
            return None
    current = _optional_of(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _optional_of(annotation: Any) -> Any:
    """``X | None`` -> ``X``; anything else unchanged."""
    if get_origin(annotation) in (Union, UnionType):
        options = [arg for arg in get_args(annotation) if arg is not type(None)]
        return options[0] if len(options) == 1 else annotation
    return annotation
