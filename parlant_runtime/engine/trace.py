"""The trace of a turn: every condition, transition, guideline and reply decision.

A chat backend shows it to the people who debug an agent; conversation tests read
it to say why a step went where it went. It is plain data (``to_dict`` gives
JSON). The whole trace is in the turn's result; the metadata of the turn's last
event stores :meth:`Trace.stored`, which is the same data while it stays under
:data:`STORED_TRACE_BYTES` of JSON and a compacted form past that (the rule is in
:meth:`Trace.stored` and ``docs/engine.md``), so a large agent never makes a turn
too large to commit.
"""

from __future__ import annotations

import copy
import json
import operator
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

__all__ = [
    "STORED_TRACE_BYTES",
    "STORED_TRACE_ITEMS",
    "STORED_TRACE_TEXT",
    "ConditionTrace",
    "ReplyTrace",
    "Trace",
    "TransitionTrace",
]

STORED_TRACE_BYTES = 64 * 1024
"""Most bytes of JSON the trace stored with an event may take (a quarter of an event)."""

STORED_TRACE_ITEMS = 200
"""Most entries a compacted stored trace keeps per list, before it shrinks further."""

STORED_TRACE_TEXT = 300
"""Most characters a compacted stored trace keeps per text, before it shrinks further."""


@dataclass(frozen=True, slots=True)
class ConditionTrace:
    """One condition evaluated: what, how (always, expression, natural), result, why."""

    where: str
    text: str | None
    kind: str
    result: bool
    reason: str | None = None
    rationale: str | None = None
    """For a natural-language condition decided by a language model: its short reason."""


@dataclass(frozen=True, slots=True)
class TransitionTrace:
    """One transition considered from a state, and what came of it."""

    source: str
    target: str
    priority: int
    outcome: str
    """``taken``, ``condition false``, ``revisit forbidden``, ``not tried`` (an earlier one won)."""
    transition_id: str | None = None
    """The transition's id (as published), telling apart transitions between the same states."""


@dataclass(frozen=True, slots=True)
class ReplyTrace:
    """How the reply was chosen, and why the other candidates were not."""

    source: str
    """``canned_response``, ``state_prompt``, ``guideline``, ``no_match``, ``none``."""
    chosen: str | None
    skipped: tuple[tuple[str, str], ...] = ()
    """(candidate, reason) for each candidate passed over."""
    parts: tuple[tuple[str, str | None], ...] = ()
    """(source, chosen) of each message sent, when the reply has more than one part."""


@dataclass
class Trace:
    """Everything one turn decided, in order."""

    conditions: list[ConditionTrace] = field(default_factory=list)
    transitions: list[TransitionTrace] = field(default_factory=list)
    path: list[str] = field(default_factory=list)
    """``journey/state`` entered during the turn, in order."""
    guidelines: list[str] = field(default_factory=list)
    reply: ReplyTrace | None = None
    errors: list[str] = field(default_factory=list)
    tools: list[dict[str, Any]] = field(default_factory=list)
    """Tool calls in order: ``tool``, ``by`` (``state <journey>/<state>`` or ``guideline
    <name>``), ``called``, ``call_id``, ``ok``, ``attempts``, ``fell_back``, ``error``."""
    knowledge: list[dict[str, Any]] = field(default_factory=list)
    """Knowledge bases searched, in the order used: ``knowledge_base``, ``threshold``,
    ``max_results``, ``kept`` (``[id, score]`` pairs), ``below_threshold``,
    ``over_max_results``."""
    model: dict[str, Any] | None = None
    """Language-model calls of the turn: ``calls``, ``input_tokens``, ``output_tokens``,
    ``cost_micros`` (millionths of a dollar; ``None`` without a price), ``models``;
    ``None`` when the turn asked no model."""
    collected: list[dict[str, Any]] = field(default_factory=list)
    """Variables read from the customer's words: ``variable``, ``stored`` and, when it
    was refused, ``error`` (a private variable's value is never shown)."""

    def to_dict(self) -> dict[str, Any]:
        """The trace as JSON-ready data (what :func:`dataclasses.asdict` gives, built faster)."""
        return {name: _plain(getattr(self, name)) for name in _names(Trace)}

    def stored(self) -> dict[str, Any]:
        """The trace as stored with the turn's last event: :meth:`to_dict` while its JSON
        stays under :data:`STORED_TRACE_BYTES`; past that, a compacted form marked
        ``"truncated": true``:

        - conditions that were false for no reason are left out (they decided nothing:
          true ones, and false ones with a reason, such as an error, are kept);
        - each list keeps its first :data:`STORED_TRACE_ITEMS` entries and each text its
          first :data:`STORED_TRACE_TEXT` characters (cut texts end with ``…``);
        - ``"omitted"`` counts the entries left out, per list;
        - while that is still too large, both limits are halved.
        """
        full = self.to_dict()
        if self._bound() <= STORED_TRACE_BYTES or _size(full) <= STORED_TRACE_BYTES:
            return full
        items, text = STORED_TRACE_ITEMS, STORED_TRACE_TEXT
        while True:
            compact = _compact(full, items, text)
            if _size(compact) <= STORED_TRACE_BYTES or items <= 1:
                return compact
            items, text = max(items // 2, 1), max(text // 2, 16)

    def _bound(self) -> int:
        """Never less than the bytes of :meth:`to_dict` as JSON: each text counted at its
        worst (:data:`_JSON_BLOWUP` bytes a character), each other value at 22 bytes.
        Cheap (no JSON is built), so that a trace of ordinary size is never measured."""
        total = 64
        for name in _names(Trace):
            value = getattr(self, name)
            total += len(name) + 4
            if isinstance(value, list):
                total += _rows_bound(value)
            elif value is not None:
                total += _rows_bound([value])
        return total


_JSON_BLOWUP = 6
"""Most bytes one character of text can take in JSON (``\\u001f``)."""

_NAMES: dict[type, tuple[str, ...]] = {}


def _names(cls: type) -> tuple[str, ...]:
    names = _NAMES.get(cls)
    if names is None:
        names = _NAMES[cls] = tuple(f.name for f in fields(cls))
    return names


_ATOMS = frozenset({str, int, float, bool, type(None)})
_ATOM_HINTS = frozenset({"str", "int", "float", "bool", "None"})
_FLAT: dict[type, Callable[[Any], tuple[Any, ...]] | None] = {}


def _flat(cls: type) -> Callable[[Any], tuple[Any, ...]] | None:
    """For a row class whose fields all hold plain values: a getter of them all."""
    if cls not in _FLAT:
        hints = [str(f.type).replace(" ", "").split("|") for f in fields(cls)]
        plain = all(set(hint) <= _ATOM_HINTS for hint in hints)
        names = _names(cls)
        getter = operator.attrgetter(*names) if plain and len(names) > 1 else None
        _FLAT[cls] = getter
    return _FLAT[cls]


def _rows(rows: list[Any]) -> list[Any]:
    """A list of the trace as :func:`dataclasses.asdict` would copy it."""
    if rows and type(rows[0]) in _ROWS:
        cls = type(rows[0])
        getter = _flat(cls)
        if getter is not None and set(map(type, rows)) == {cls}:
            names = _names(cls)
            return [dict(zip(names, values, strict=True)) for values in map(getter, rows)]
    return [_plain(row) for row in rows]


_TEXT_HINTS = frozenset({"str", "None"})
_COLUMNS: dict[type, tuple[int, tuple[tuple[Callable[[Any], Any], bool], ...]] | None] = {}


def _columns(cls: type) -> tuple[int, tuple[tuple[Callable[[Any], Any], bool], ...]] | None:
    """For a row class of plain fields: bytes of its keys and punctuation, and a getter
    per field with whether it holds text (else a number, a flag or null)."""
    if cls not in _COLUMNS:
        hints = [set(str(f.type).replace(" ", "").split("|")) for f in fields(cls)]
        if all(hint <= _ATOM_HINTS for hint in hints):
            names = _names(cls)
            fixed = sum(len(name) + 4 for name in names) + 2
            getters = tuple(
                (operator.attrgetter(name), hint <= _TEXT_HINTS)
                for name, hint in zip(names, hints, strict=True)
            )
            _COLUMNS[cls] = (fixed, getters)
        else:
            _COLUMNS[cls] = None
    return _COLUMNS[cls]


def _rows_bound(rows: list[Any]) -> int:
    """Never less than the bytes of ``rows`` (as :func:`_plain` gives them) as JSON."""
    if not rows:
        return 2
    types = set(map(type, rows))
    if types == {str}:
        return sum(map(len, rows)) * _JSON_BLOWUP + 3 * len(rows) + 2
    cls = type(rows[0])
    columns = _columns(cls) if cls in _ROWS else None
    if columns is None or len(types) > 1:
        return _size(_plain(rows))
    fixed, getters = columns
    total = (fixed + 1) * len(rows) + 2
    for getter, text in getters:
        if text:
            chars = sum(map(len, filter(None, map(getter, rows))))
            total += chars * _JSON_BLOWUP + 6 * len(rows)  # quotes, or null
        else:
            total += 22 * len(rows)
    return total


def _plain(value: Any) -> Any:
    """``value`` as :func:`dataclasses.asdict` would copy it (entries are flat dataclasses)."""
    if type(value) in _ATOMS:
        return value
    if isinstance(value, list):
        return _rows(value)
    if type(value) in _ROWS:
        return {name: _plain(getattr(value, name)) for name in _names(type(value))}
    if type(value) is tuple:
        return tuple(_plain(item) for item in value)
    return copy.deepcopy(value)


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True, default=str)


def _size(value: Any) -> int:
    """Never less than the bytes of ``value`` as compact UTF-8 JSON (each character
    beyond ASCII counts as its ``\\uXXXX`` escape, at least as long)."""
    return len(_ENCODER.encode(value))


def _cut(value: Any, text: int) -> Any:
    if isinstance(value, str):
        return value if len(value) <= text else value[: text - 1] + "…"
    if isinstance(value, dict):
        return {key: _cut(item, text) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_cut(item, text) for item in value]
    return value


def _compact(full: dict[str, Any], items: int, text: int) -> dict[str, Any]:
    """The compacted stored trace (see :meth:`Trace.stored`)."""
    omitted: dict[str, int] = {}
    compact: dict[str, Any] = {}
    for key, value in full.items():
        entries = value
        if key == "reply" and isinstance(value, dict):
            skipped = list(value.get("skipped", ()))
            if len(skipped) > items:
                omitted["reply.skipped"] = len(skipped) - items
            compact[key] = _cut({**value, "skipped": skipped[:items]}, text)
            continue
        if not isinstance(value, list):
            compact[key] = _cut(value, text)
            continue
        if key == "conditions":
            entries = [c for c in value if c.get("result") or c.get("reason") is not None]
        dropped = len(value) - min(len(entries), items)
        if dropped:
            omitted[key] = dropped
        compact[key] = _cut(entries[:items], text)
    compact["truncated"] = True
    compact["omitted"] = omitted
    return compact


_ROWS = frozenset({ConditionTrace, TransitionTrace, ReplyTrace})
