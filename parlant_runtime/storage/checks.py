"""Checks every store makes before it writes a turn: sizes, types, names.

They run before any I/O, so a refused turn leaves nothing behind and costs no
round trip; the memory and SQL adapters share them so that they refuse alike.
"""

from __future__ import annotations

import functools
import json
import math
import re
from datetime import datetime
from enum import Enum
from typing import Any
from uuid import UUID

from pydantic import BaseModel

from parlant_runtime.bundle.schema import AgentBundle
from parlant_runtime.model import VariableScope, value_fits_type
from parlant_runtime.storage.port import (
    MAX_EVENT_BYTES,
    MAX_EVENTS_PER_TURN,
    MAX_ID_LENGTH,
    MAX_INTEGER,
    MAX_TITLE_LENGTH,
    MAX_VALUE_DEPTH,
    MAX_VARIABLE_BYTES,
    InvalidData,
    SessionStart,
    TurnCommit,
)

__all__ = [
    "TOOL_DEGRADED",
    "TOOL_HEALTHY",
    "USAGE_COUNTERS",
    "check_bundle",
    "check_session_start",
    "check_text",
    "check_turn",
    "check_value",
    "check_variable",
    "check_workspace",
    "counters_of",
    "json_size",
    "parse_usage_key",
    "storable",
]

USAGE_COUNTERS: dict[str, frozenset[str]] = {
    "agent": frozenset({"total_sessions", "total_messages", "total_tokens_used", "total_cost"}),
    "session": frozenset({"tokens_used", "cost"}),
    "guideline": frozenset({"match_count"}),
    "canned_response": frozenset({"use_count"}),
    "journey": frozenset({"total_sessions"}),
    "transition": frozenset({"use_count"}),
    "journey_guideline": frozenset({"match_count"}),
    "tool": frozenset({"use_count"}),
    "tool_integration": frozenset({"error_count"}),
    "agent_knowledge_base": frozenset({"search_count"}),
}
"""The usage counters a turn may bump, by entity (counter columns of the SQL tables)."""

TOOL_HEALTHY = 95
"""Least success rate (percent) of a healthy tool integration (see engine/health.py)."""

TOOL_DEGRADED = 50
"""Least success rate (percent) of a degraded one; below it, ``failing``."""

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,199}")  # fullmatch: no trailing newline slips in
_SURROGATE = re.compile("[\ud800-\udfff]")

NUL_HELP = (
    "contains a NUL character (\\u0000), which PostgreSQL cannot store in text or JSON; "
    "remove it or encode the data (base64, hex) before storing it"
)
SURROGATE_HELP = (
    "contains a lone surrogate (a character between \\ud800 and \\udfff), which is not "
    "Unicode text and no database stores; decode the text properly (it often comes from "
    "bytes decoded with errors='surrogateescape')"
)

# leaves a published bundle may hold besides JSON's (its ids, enums and dates)
_MODEL_LEAVES = (UUID, Enum, datetime)


def _text_fault(text: str) -> str | None:
    if "\x00" in text:
        return NUL_HELP
    if _SURROGATE.search(text) is not None:
        return SURROGATE_HELP
    return None


_Trail = tuple[Any, str | int] | None  # (parent trail, key): built into a path on error only


def _path(what: str, trail: _Trail) -> str:
    parts: list[str] = []
    while trail is not None:
        trail, key = trail
        parts.append(f"[{key}]" if isinstance(key, int) else f".{key}")
    return what + "".join(reversed(parts))


_TEXT_BYTES = 6
"""Most bytes one character of text takes in compact JSON: ``\\u001f``; UTF-8 needs 4 at most."""
_NUMBER_BYTES = 24
"""Most bytes of a number in JSON: a float's ``repr`` (``-2.2250738585072014e-308``)."""


def _plainly_fine(value: Any) -> int | None:
    """The common case, fast: plain JSON types only, every rule of :func:`check_value`
    kept; the answer is then a bound never below the bytes of the value as compact JSON
    (what :func:`json_size` counts), so that a value well within a limit is never
    encoded to be measured. ``None`` means "look closely" (a fault, or a type only the
    walk decides on)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    pop, push = stack.pop, stack.append
    size = 0
    while stack:
        item, depth = pop()
        kind = type(item)
        if kind is str:
            # ASCII text (the usual) holds no surrogate: the search is for the rest only
            if "\x00" in item or (not item.isascii() and _SURROGATE.search(item)):
                return None
            size += len(item) * _TEXT_BYTES + 2
        elif kind is dict:
            if depth >= MAX_VALUE_DEPTH:
                return None
            size += 2
            for key, child in item.items():
                if type(key) is not str or "\x00" in key:
                    return None
                if not key.isascii() and _SURROGATE.search(key):
                    return None
                size += len(key) * _TEXT_BYTES + 4  # quotes, colon, comma
                push((child, depth + 1))
        elif kind is list or kind is tuple:  # a tuple is a JSON array too (the walk agrees)
            if depth >= MAX_VALUE_DEPTH:
                return None
            size += 2 + len(item)  # brackets, commas
            for child in item:
                push((child, depth + 1))
        elif kind is int:
            if not -MAX_INTEGER - 1 <= item <= MAX_INTEGER:
                return None
            size += _NUMBER_BYTES
        elif kind is float:
            if not math.isfinite(item):
                return None
            size += _NUMBER_BYTES
        elif item is None or kind is bool:
            size += 5
        else:
            return None
    return size


def check_value(value: Any, what: str, *, models: bool = False) -> None:
    """Refuse a caller's value that not every store can hold alike, before any work.

    JSON data only (text, numbers, booleans, null, lists, objects with text keys), no
    text with a NUL character or a lone surrogate, integers within 64 bits, finite
    floats, at most :data:`MAX_VALUE_DEPTH` levels of lists and objects. The walk is a
    loop, not a recursion, so a value nested 100,000 deep is refused as cheaply as a
    flat one. ``models`` also walks pydantic models and accepts their ids, enums and
    dates (a bundle).

    Raises:
        InvalidData: naming ``what`` and where in it (``metadata.notes[2]``).
    """
    if _plainly_fine(value) is None:
        _walk(value, what, models=models)


def _walk(value: Any, what: str, *, models: bool) -> None:
    """:func:`check_value` the slow way, which names the fault and where it is."""
    stack: list[tuple[Any, int, _Trail]] = [(value, 0, None)]
    while stack:
        item, depth, trail = stack.pop()
        if isinstance(item, str):
            fault = _text_fault(item)
            if fault is not None:
                raise InvalidData(f"{_path(what, trail)} {fault}")
        elif item is None or isinstance(item, bool):
            continue
        elif isinstance(item, int):
            if not -MAX_INTEGER - 1 <= item <= MAX_INTEGER:
                raise InvalidData(
                    f"{_path(what, trail)} is a number beyond 64 bits (from {-MAX_INTEGER - 1:,} "
                    f"to {MAX_INTEGER:,}); store larger numbers as text"
                )
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise InvalidData(
                    f"not JSON data: {_path(what, trail)} is {item}, not a number JSON can "
                    "hold; write a finite number or null"
                )
        elif isinstance(item, dict | list | tuple) or (models and isinstance(item, BaseModel)):
            if depth >= MAX_VALUE_DEPTH:
                raise InvalidData(
                    f"{what} is nested deeper than {MAX_VALUE_DEPTH} levels of lists and "
                    "objects; flatten it"
                )
            if isinstance(item, BaseModel):
                pairs: Any = item.__dict__.items()
            elif isinstance(item, dict):
                pairs = item.items()
            else:
                pairs = enumerate(item)
            children: list[tuple[Any, int, _Trail]] = []
            for key, child in pairs:
                if isinstance(item, dict):
                    if isinstance(key, str):
                        fault = _text_fault(key)
                        if fault is not None:
                            raise InvalidData(f"{_path(what, trail)} (a key) {fault}")
                    elif not (key is None or isinstance(key, int | float)):
                        raise InvalidData(
                            f"not JSON data: {_path(what, trail)} has a key of type "
                            f"{type(key).__name__}"
                        )
                children.append((child, depth + 1, (trail, key)))
            stack.extend(reversed(children))  # depth first, in order: the first fault wins
        elif not (models and isinstance(item, _MODEL_LEAVES)):
            raise InvalidData(f"not JSON data: {_path(what, trail)} is a {type(item).__name__}")


def _json_text(value: Any) -> str:
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidData(f"not JSON data: {exc}") from exc


def json_size(value: Any, what: str = "the data", *, within: int | None = None) -> int:
    """Bytes of the value as compact JSON (what the database stores). With ``within``,
    a value that surely fits that many bytes may be answered with a bound instead (at
    most ``within``, never below the true size), without building its JSON: compare
    the answer with the same limit.

    Raises:
        InvalidData: the value breaks a rule of :func:`check_value`; the message names
            ``what`` and where.
    """
    bound = _plainly_fine(value)
    if bound is None:
        _walk(value, what, models=False)
    elif within is not None and bound <= within:
        return bound
    return len(_json_text(value).encode())


def check_text(value: str | None, what: str, limit: int = MAX_ID_LENGTH) -> None:
    """Refuse a text no store holds alike: a NUL character, a lone surrogate, too long.

    Raises:
        InvalidData: naming ``what``.
    """
    if value is None:
        return
    if not isinstance(value, str):
        raise InvalidData(f"{what} must be text, not {type(value).__name__}")
    fault = _text_fault(value)
    if fault is not None:
        raise InvalidData(f"{what} {fault}")
    if len(value) > limit:
        raise InvalidData(
            f"{what} is {len(value):,} characters long, at most {limit:,}; use a shorter one "
            "(a hash of it, say)"
        )


def storable(*texts: str) -> bool:
    """Whether every store could hold these ids or keys (:func:`check_text` passes).

    A text that fails names nothing that exists: reads answer as for any unknown id
    (``NotFound``, ``None``) instead of letting a driver's error through.
    """
    return all(
        isinstance(text, str) and len(text) <= MAX_ID_LENGTH and _text_fault(text) is None
        for text in texts
    )


def check_workspace(workspace_id: str, name: str | None = None) -> None:
    """Refuse a workspace id or name that not every store holds alike.

    Raises:
        InvalidData: an empty id, or one that :func:`check_text` refuses.
    """
    if not workspace_id:
        raise InvalidData("a workspace id cannot be empty")
    check_text(workspace_id, "the workspace id")
    check_text(name, "the workspace name")


def check_variable(key: str, value: Any, what: str | None = None) -> None:
    """Refuse a variable a caller gives that no store holds alike (key and value).

    Raises:
        InvalidData: the key is not an identifier, or the value breaks a rule of
            :func:`check_value` or is larger than :data:`MAX_VARIABLE_BYTES`.
    """
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        shown = key if isinstance(key, str) and _text_fault(key) is None else "given"
        raise InvalidData(f"variable key {shown!r} is not an identifier")
    label = what or f"variable {key!r}"
    size = json_size(value, label, within=MAX_VARIABLE_BYTES)
    if size > MAX_VARIABLE_BYTES:
        raise InvalidData(f"{label} is {size:,} bytes of JSON, more than {MAX_VARIABLE_BYTES:,}")


def counters_of(entity: str) -> frozenset[str]:
    """The usage counters of an entity kind.

    Raises:
        InvalidData: the kind has no counters.
    """
    if entity not in USAGE_COUNTERS:
        raise InvalidData(f"no usage counters for {entity!r}; known: {sorted(USAGE_COUNTERS)}")
    return USAGE_COUNTERS[entity]


@functools.lru_cache(maxsize=4096)
def parse_usage_key(key: str) -> tuple[str, UUID, str]:
    """``"<entity>:<uuid>:<counter>"`` -> its parts, checked. Remembered: an agent's
    turns bump the same few counters, and a turn's key is parsed by the check and by
    the writer (a refused key is not remembered).

    Raises:
        InvalidData: the key is malformed or names no known counter.
    """
    try:
        entity, raw_id, counter = key.split(":")
        entity_id = UUID(raw_id)
    except ValueError as exc:
        raise InvalidData(f"usage key {key!r} is not '<entity>:<uuid>:<counter>'") from exc
    if counter not in counters_of(entity):
        raise InvalidData(f"{entity} has no usage counter {counter!r}")
    return entity, entity_id, counter


def check_turn(turn: TurnCommit) -> None:
    """Refuse a turn that breaks a size, type or naming rule.

    Raises:
        InvalidData: what is wrong, naming the event or variable.
    """
    if turn.current_state_id is not None and turn.current_journey_id is None:
        raise InvalidData("a turn that sets a state must set its journey too")
    if len(turn.events) > MAX_EVENTS_PER_TURN:
        raise InvalidData(
            f"a turn appends at most {MAX_EVENTS_PER_TURN} events, this one {len(turn.events)}"
        )
    keys: set[str] = set()
    for index, event in enumerate(turn.events):
        what = f"event {index} ({event.event_type.value})"
        size = json_size(
            {"content": event.content, "metadata": event.metadata}, what, within=MAX_EVENT_BYTES
        )
        if size > MAX_EVENT_BYTES:
            raise InvalidData(
                f"event {index} ({event.event_type.value}) is {size:,} bytes of JSON, "
                f"more than {MAX_EVENT_BYTES:,}; store large payloads elsewhere and refer to them"
            )
        check_text(event.tool_call_id, f"{what}: the tool call id")
        if event.idempotency_key is not None:
            check_text(event.idempotency_key, f"{what}: the idempotency key")
            if event.idempotency_key in keys:
                raise InvalidData(f"idempotency key {event.idempotency_key!r} repeats in one turn")
            keys.add(event.idempotency_key)
    for key in turn.usage:
        parse_usage_key(key)
    if (
        turn.metadata is not None
        and json_size(turn.metadata, "session metadata", within=MAX_EVENT_BYTES) > MAX_EVENT_BYTES
    ):
        raise InvalidData(f"session metadata is larger than {MAX_EVENT_BYTES:,} bytes of JSON")
    for change in turn.variables:
        if change.scope is VariableScope.GLOBAL:
            raise InvalidData(
                f"variable {change.key!r}: global values are set by publishing, not by a turn"
            )
        # first: the type check needs sane values
        if not change.is_private:
            check_variable(change.key, change.value)
        else:
            try:
                check_variable(change.key, change.value)
            except InvalidData:  # the message may quote the value or its keys: never echo it
                raise InvalidData(
                    f"variable {change.key!r} is private and its value cannot be stored: it "
                    "must be JSON data of at most 64 levels and 64 KiB, with 64-bit integers "
                    "and no NUL character or lone surrogate"
                ) from None
        if not value_fits_type(change.value, change.value_type):
            shown = "its value" if change.is_private else _short(change.value)  # never echo it
            raise InvalidData(
                f"variable {change.key!r}: {shown} is not a {change.value_type.value}"
            )


def check_session_start(start: SessionStart) -> None:
    """Refuse a session start the database could not hold, before anything is written.

    Raises:
        InvalidData: what is wrong (metadata not JSON or too large, a NUL character).
    """
    check_text(start.customer_id, "the customer id")
    check_text(start.user_id, "the user id")
    check_text(start.title, "the session title", MAX_TITLE_LENGTH)
    if json_size(start.metadata, "session metadata", within=MAX_EVENT_BYTES) > MAX_EVENT_BYTES:
        raise InvalidData(f"session metadata is larger than {MAX_EVENT_BYTES:,} bytes of JSON")


def check_bundle(bundle: AgentBundle) -> None:
    """Refuse a bundle holding values no store holds alike (see :func:`check_value`):
    a NUL character or lone surrogate anywhere, JSON settings nested too deep, numbers
    beyond 64 bits.

    Raises:
        InvalidData: naming the first place found (``bundle.tools[0].parameters``).
    """
    check_value(bundle, "bundle", models=True)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
