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
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import accumulate
from pathlib import Path
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel
from pydantic.alias_generators import to_camel

from parlant_runtime.errors import BundleProblem

__all__ = [
    "MAX_BUNDLE_BYTES",
    "MAX_BUNDLE_DEPTH",
    "MAX_BUNDLE_NODES",
    "FieldPath",
    "ParsedText",
    "SourceMap",
    "UnreadableFile",
    "data_bounds_problem",
    "did_you_mean",
    "format_path",
    "parse_text",
    "read_utf8",
    "unknown_key_hint",
]

MAX_BUNDLE_BYTES = 16 * 1024 * 1024
"""Largest bundle text accepted (16 MiB): far above any real agent, far below harm."""

MAX_BUNDLE_NODES = 250_000
"""Most nodes (keys and values, aliases counted as often as used) a bundle may have.

The largest example agent has about 700; a journey of 10,000 states about 140,000."""

MAX_BUNDLE_DEPTH = 64
"""Deepest nesting of lists and mappings a bundle may have (the examples reach 9)."""

FieldPath = tuple[str | int, ...]
Format = Literal["yaml", "json"]


def _normalise(path: FieldPath) -> FieldPath:
    return tuple(to_camel(part) if isinstance(part, str) else part for part in path)


class UnreadableFile(Exception):
    """A file that cannot be read as UTF-8 text; the message says why."""


def read_utf8(path: str | Path, what: str) -> str:
    """The text of a file, or :class:`UnreadableFile` saying why not (``what`` names it)."""
    try:
        with Path(path).open("rb") as file:
            # at most one byte past the limit: a huge file (or /dev/zero) is never read whole
            raw = file.read(MAX_BUNDLE_BYTES + 1)
    except IsADirectoryError:
        raise UnreadableFile(f"is a folder, not a {what}") from None
    except FileNotFoundError:
        raise UnreadableFile("no such file; check the path") from None
    except OSError as exc:
        raise UnreadableFile(f"cannot be read: {exc.strerror or exc}") from exc
    if len(raw) > MAX_BUNDLE_BYTES:
        raise UnreadableFile(
            f"is too large to be a {what} (more than {MAX_BUNDLE_BYTES:,} bytes); "
            "split it or trim it"
        )
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

    def problem(self, path: FieldPath, line: int, message: str) -> None:
        self.problems.append(BundleProblem(self.filename, line, format_path(path), message))

    def walk(self, node: yaml.Node, path: FieldPath, line: int) -> None:
        # the composer bounded the expanded size and the depth, so this walk is bounded
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


_DEEP = (
    f"the data is nested deeper than {MAX_BUNDLE_DEPTH} levels; no bundle needs that many, "
    "flatten it"
)


class _TooLarge(Exception):
    """The text breaks a bound (depth, nodes, a recursive alias); says where and why."""

    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


def _yaml_error(filename: str | None, exc: yaml.YAMLError, what: str) -> BundleProblem:
    mark = getattr(exc, "problem_mark", None)
    line = mark.line + 1 if mark is not None else None
    reason = getattr(exc, "problem", None) or str(exc)
    if reason == "exceeded maximum nesting depth":  # libyaml's own bound (1,000), above ours
        return BundleProblem(filename, line, "", _DEEP)
    return BundleProblem(filename, line, "", f"not valid {what}: {reason}")


def _too_large(filename: str | None, detail: str, line: int | None = None) -> ParsedText:
    message = f"the file is too large to be a bundle ({detail}); split the agent or trim it"
    return ParsedText(None, SourceMap(), [BundleProblem(filename, line, "", message)])


def _refused(filename: str | None, exc: _TooLarge) -> ParsedText:
    return ParsedText(None, SourceMap(), [BundleProblem(filename, exc.line, "", exc.message)])


def parse_text(text: str, *, fmt: Format, filename: str | None = None) -> ParsedText:
    """Parse bundle text; never raises for bad input, it reports problems instead.

    The bounds (:data:`MAX_BUNDLE_BYTES`, :data:`MAX_BUNDLE_DEPTH`,
    :data:`MAX_BUNDLE_NODES`) are checked before or while the text is read, never
    after: hostile text costs at most the work of the bound it breaks.
    """
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_BUNDLE_BYTES:
        return _too_large(filename, f"{size:,} bytes, limit {MAX_BUNDLE_BYTES:,}")
    if fmt == "json":
        try:
            _check_json_shape(text)
        except _TooLarge as exc:
            return _refused(filename, exc)
    walker = _Walker(filename)
    try:
        data = _compose_and_construct(text, fmt, walker)
    except yaml.YAMLError as exc:
        if fmt == "yaml":
            return ParsedText(None, SourceMap(), [_yaml_error(filename, exc, "YAML")])
        data = None  # valid JSON that YAML's reader refuses: no line numbers, still checked
    except _TooLarge as exc:
        return _refused(filename, exc)
    if fmt == "json":
        data = _parse_json(text, filename, walker)
    return ParsedText(data, walker.source, walker.problems)


def data_bounds_problem(data: Any, filename: str | None = None) -> BundleProblem | None:
    """The bound that already-parsed data breaks (depth, nodes), if any, as a problem.

    Data built in memory (``bundle_from_data``) gets the bounds a file gets while it is
    read; the walk is a loop, so data nested 100,000 deep costs no recursion.
    """
    nodes = 0
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        item, depth = stack.pop()
        nodes += 1
        if nodes > MAX_BUNDLE_NODES:
            detail = f"more than {MAX_BUNDLE_NODES:,} nodes"
            message = f"the data is too large to be a bundle ({detail}); split the agent or trim it"
            return BundleProblem(filename, None, "", message)
        if isinstance(item, dict | list | tuple):
            if depth > MAX_BUNDLE_DEPTH:
                return BundleProblem(filename, None, "", _DEEP)
            if isinstance(item, dict):
                nodes += len(item)  # the keys
                stack.extend((value, depth + 1) for value in item.values())
            else:
                stack.extend((value, depth + 1) for value in item)
    return None


# YAML is parsed by libyaml when PyYAML has it (about twenty times faster than the
# pure-Python parser, which is the fallback); either way only the events are used:
# the nodes are composed below, within the bounds
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _compose_and_construct(text: str, fmt: Format, walker: _Walker) -> Any:
    """Compose the node tree (recording lines), then construct data from it (YAML only)."""
    loader = _Loader(text)
    try:
        node = _compose_single(loader)
        if node is None:
            return None
        walker.walk(node, (), node.start_mark.line + 1)
        return loader.construct_document(node) if fmt == "yaml" else None
    finally:
        loader.dispose()


def _compose_single(loader: Any) -> yaml.Node | None:
    """The stream's one document as a node tree, or ``None`` for an empty stream."""
    loader.get_event()  # stream start
    node = None
    if not loader.check_event(yaml.StreamEndEvent):
        loader.get_event()  # document start
        node = _BoundedComposer(loader).compose()
        loader.get_event()  # document end
    if not loader.check_event(yaml.StreamEndEvent):
        event = loader.get_event()
        raise yaml.composer.ComposerError(
            "expected a single document in the stream",
            node.start_mark if node is not None else None,
            "but found another document",
            event.start_mark,
        )
    loader.get_event()  # stream end
    return node


@dataclass(slots=True)
class _Open:
    """A collection being composed: its node, its items so far, its pending key."""

    node: yaml.SequenceNode | yaml.MappingNode
    counted_before: int  # nodes counted before this one: its size is what comes after
    items: list[Any] = field(default_factory=list)
    height: int = 0  # of its tallest item so far, aliases expanded


class _BoundedComposer:
    """PyYAML's composition, without recursion and within the bounds.

    It counts the nodes the data will have once aliases are expanded (each alias adds
    the expanded size of the node it repeats) and the depth it will reach, and stops
    at the first event that breaks a bound, so an alias bomb or a deep or huge
    document costs the work up to the bound, never the work of the whole.
    """

    def __init__(self, loader: Any) -> None:
        self.loader = loader  # Any: PyYAML's stubs do not type its C parser's events
        self.anchors: dict[str, yaml.Node] = {}
        self.sizes: dict[int, tuple[int, int]] = {}  # id(anchored node) -> (nodes, height)
        self.nodes = 0
        self.stack: list[_Open] = []

    def compose(self) -> yaml.Node:
        loader = self.loader
        while True:
            event: Any = loader.get_event()
            if isinstance(event, yaml.CollectionEndEvent):
                done = self.stack.pop()
                done.node.end_mark = event.end_mark
                done.node.value = (
                    done.items
                    if isinstance(done.node, yaml.SequenceNode)
                    else list(zip(done.items[::2], done.items[1::2], strict=True))
                )
                finished: yaml.Node = done.node
                height = done.height + 1
                if id(finished) in self.sizes:
                    self.sizes[id(finished)] = (self.nodes - done.counted_before, height)
            elif isinstance(event, yaml.AliasEvent):
                finished, height = self._alias(event)
            else:
                node = self._node(event)
                if isinstance(node, yaml.ScalarNode):
                    finished, height = node, 1
                else:
                    continue
            if not self.stack:
                return finished
            parent = self.stack[-1]
            parent.items.append(finished)
            parent.height = max(parent.height, height)

    def _line(self, event: Any) -> int:
        return int(event.start_mark.line) + 1

    def _count(self, added: int, event: Any) -> None:
        self.nodes += added
        if self.nodes > MAX_BUNDLE_NODES:
            raise _TooLarge(
                f"the file is too large to be a bundle (more than {MAX_BUNDLE_NODES:,} nodes, "
                "aliases counted as often as they are used); split the agent or trim it",
                self._line(event),
            )

    def _deep(self, height: int, event: Any) -> None:
        if len(self.stack) + height > MAX_BUNDLE_DEPTH:
            raise _TooLarge(_DEEP, self._line(event))

    def _alias(self, event: Any) -> tuple[yaml.Node, int]:
        target = self.anchors.get(event.anchor)
        if target is None:
            raise yaml.composer.ComposerError(
                None, None, f"found undefined alias {event.anchor!r}", event.start_mark
            )
        if any(open_.node is target for open_ in self.stack):
            raise _TooLarge(
                f"the alias *{event.anchor} refers to itself (a structure that never ends); "
                "repeat the data instead",
                self._line(event),
            )
        size, height = self.sizes[id(target)]
        self._count(size, event)
        self._deep(height, event)
        return target, height

    def _node(self, event: Any) -> yaml.Node:
        loader = self.loader
        anchor = getattr(event, "anchor", None)
        if anchor is not None and anchor in self.anchors:
            raise yaml.composer.ComposerError(
                f"found duplicate anchor {anchor!r}; first occurrence",
                self.anchors[anchor].start_mark,
                "second occurrence",
                event.start_mark,
            )
        self._count(1, event)
        node: yaml.Node
        start: Any = event.start_mark  # libyaml's marks are not PyYAML's class, same fields
        if isinstance(event, yaml.ScalarEvent):
            tag = event.tag
            if tag is None or tag == "!":
                tag = loader.resolve(yaml.ScalarNode, event.value, event.implicit)
            end: Any = event.end_mark
            node = yaml.ScalarNode(tag, event.value, start, end, style=event.style)
            self._deep(1, event)
        elif isinstance(event, yaml.SequenceStartEvent | yaml.MappingStartEvent):
            sequence = isinstance(event, yaml.SequenceStartEvent)
            kind = yaml.SequenceNode if sequence else yaml.MappingNode
            tag = event.tag
            if tag is None or tag == "!":
                tag = loader.resolve(kind, None, event.implicit)
            node = kind(tag, [], start, None, flow_style=event.flow_style)
            self._deep(1, event)
            self.stack.append(_Open(node, self.nodes - 1))
        else:  # the parser gives nothing else inside a document
            raise yaml.composer.ComposerError(
                None, None, f"unexpected {type(event).__name__}", event.start_mark
            )
        if anchor is not None:
            self.anchors[anchor] = node
            self.sizes[id(node)] = (1, 1)  # a collection's: set again once it is composed
        return node


# a JSON string (escapes included) and the characters that matter for the shape
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


def _check_json_shape(text: str) -> None:
    """Refuse JSON nested deeper or holding more values than the bounds, before parsing.

    Strings are blanked out, then the brackets left give the depth and the commas and
    colons the count of values and keys: a few passes of regular expressions and C
    loops over the text, where parsing would build every value (and recurse).
    """
    bare = _JSON_STRING.sub("0", text)
    nodes = bare.count(",") + bare.count(":") + bare.count("[") + bare.count("{") + 1
    if nodes > MAX_BUNDLE_NODES:
        raise _TooLarge(
            f"the file is too large to be a bundle (more than {MAX_BUNDLE_NODES:,} nodes); "
            "split the agent or trim it",
            None,
        )
    brackets = _NOT_BRACKET.sub("", bare)
    depth = 0
    position = -1
    for position, depth in enumerate(accumulate(map(_STEP.__getitem__, brackets))):  # noqa: B007
        if depth > MAX_BUNDLE_DEPTH:
            break
    if depth > MAX_BUNDLE_DEPTH:
        # the line of the bracket that went too deep: find it in the original text
        line = _line_of_bracket(text, position)
        raise _TooLarge(_DEEP, line)


def _line_of_bracket(text: str, index: int) -> int | None:
    """The line of the ``index``-th bracket outside strings of ``text``."""
    seen = -1
    line = 1
    for match in re.finditer(r'[\[\]{}\n]|"[^"\\]*(?:\\.[^"\\]*)*"', text):
        found = match.group()
        if found == "\n":
            line += 1
        elif found[0] == '"':
            line += found.count("\n")  # an invalid JSON string may span lines
        else:
            seen += 1
            if seen == index:
                return line
    return None


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
